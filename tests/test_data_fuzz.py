"""Generated files fed to the loaders: every outcome is a correct load or one clear
`SynthmixError` line, never another exception (Hypothesis)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthmix.core.errors import SynthmixError
from synthmix.data.labeled import load_labeled

cell = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40
) | st.sampled_from(["", " ", '"', "a,b", 'say "hi"', "строка\nвторая", "x" * 300])
columns = st.lists(
    st.sampled_from(["text", "label", "id", "Text", "", "text "]), min_size=1, max_size=4
)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1251", "utf-32", "latin-1"])


def _check(path: Path) -> None:
    try:
        data = load_labeled(path)
    except SynthmixError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message
        assert "Traceback" not in message
        return
    assert len(data) > 0 and all(isinstance(t, str) and t.strip() for t in data.texts)
    assert all(isinstance(label, str) and label for label in data.labels)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=columns,
    rows=st.lists(st.lists(cell, min_size=0, max_size=5), max_size=6),
    encoding=encodings,
)
def test_generated_csv_loads_or_fails_in_one_line(
    header: list[str], rows: list[list[str]], encoding: str
) -> None:
    frame = pd.DataFrame([(row + [""] * len(header))[: len(header)] for row in rows])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        try:
            text = ",".join(header) + "\n" + frame.to_csv(index=False, header=False)
            path.write_bytes(text.encode(encoding, errors="replace"))
        except (UnicodeError, ValueError):
            return
        _check(path)


@settings(max_examples=80, deadline=None)
@given(
    records=st.lists(
        st.dictionaries(
            st.sampled_from(["text", "label", "meta"]),
            st.none() | st.integers() | st.floats(allow_nan=True) | cell | st.lists(cell),
        ),
        max_size=5,
    ),
    garbage=st.sampled_from(["", "{", "[1, 2]", "null", '"str"', "\x00"]),
)
def test_generated_jsonl_loads_or_fails_in_one_line(
    records: list[dict[str, object]], garbage: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.jsonl"
        lines = [json.dumps(r, ensure_ascii=False) for r in records] + [garbage]
        path.write_text("\n".join(lines), encoding="utf-8")
        _check(path)
