"""Labeled text data: loading from files or frames, validation, stratified sampling.

Rows are numbered from 1 in error messages, counting data rows only (the CSV header is not a
row), so "row 3" is the third record of the file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthmix.core.errors import DataError

log = logging.getLogger("synthmix")

TEXT = "text"
LABEL = "label"
# The second text of a text-pair task (an aspect term, a question's passage), when there is one.
TEXT_PAIR = "text_pair"
# Longer texts are warned about: a whole document in one cell is more often a broken file.
LONG_TEXT = 20_000
SUPPORTED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


@dataclass(frozen=True)
class LabeledData:
    """Texts with labels, plus any extra columns (e.g. provenance of synthetic texts).

    `frame` always has the columns `text` and `label` (strings) and a 0..n-1 index;
    `source` names where the rows came from, for error messages and run records.
    """

    frame: pd.DataFrame
    source: str
    encoding: str = "utf-8"

    @property
    def texts(self) -> list[str]:
        return self.frame[TEXT].tolist()

    @property
    def labels(self) -> list[str]:
        return self.frame[LABEL].tolist()

    @property
    def pairs(self) -> list[str] | None:
        """The second texts of a text-pair task, or None for one text per row."""
        return self.frame[TEXT_PAIR].tolist() if TEXT_PAIR in self.frame.columns else None

    @property
    def classes(self) -> list[str]:
        return sorted(self.frame[LABEL].unique().tolist())

    def class_counts(self) -> dict[str, int]:
        counts = self.frame[LABEL].value_counts()
        return {str(k): int(v) for k, v in sorted(counts.items())}

    def __len__(self) -> int:
        return len(self.frame)

    def subset(self, positions: np.ndarray | list[int]) -> LabeledData:
        frame = self.frame.iloc[np.asarray(positions, dtype=int)].reset_index(drop=True)
        return LabeledData(frame=frame, source=self.source, encoding=self.encoding)

    def require_classes(self, minimum: int = 2) -> None:
        classes = self.classes
        if len(classes) < minimum:
            found = ", ".join(repr(c) for c in classes)
            raise DataError(
                self.source, f"only one class ({found}); a classifier needs at least {minimum}"
            )


def load_labeled(
    path: str | Path,
    text_column: str = TEXT,
    label_column: str = LABEL,
    encoding: str = "auto",
    text_pair_column: str | None = None,
) -> LabeledData:
    """Read a CSV/TSV/JSONL/JSON/Parquet file of labeled texts and validate it.

    `encoding="auto"` reads UTF-8 and falls back to cp1251 (common for Russian files saved
    by Excel), logging that it did so; any other value is used as given. `text_pair_column`
    names the second text of a text-pair task; it is kept as the column `text_pair`.
    """
    frame, used = read_frame(path, encoding)
    return from_frame(
        frame,
        text_column,
        label_column,
        source=str(path),
        encoding=used,
        text_pair_column=text_pair_column,
    )


def read_frame(path: str | Path, encoding: str = "auto") -> tuple[pd.DataFrame, str]:
    """A data file's rows as read, not yet validated, and the encoding used (see
    `load_labeled`)."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise DataError(source, "file not found")
    if path.is_dir():
        raise DataError(source, "is a directory, expected a data file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(
            source, f"unsupported file type '{suffix}' (use {', '.join(SUPPORTED_SUFFIXES)})"
        )
    if suffix == ".parquet":
        return _read_parquet(path), "parquet"
    text, used = decode_bytes(path.read_bytes(), source, encoding)
    return _parse_text(text, suffix, source), used


def from_frame(
    frame: Any,
    text_column: str = TEXT,
    label_column: str = LABEL,
    source: str = "<DataFrame>",
    encoding: str = "utf-8",
    text_pair_column: str | None = None,
) -> LabeledData:
    """Validate a pandas DataFrame or a Hugging Face `datasets.Dataset` (anything with
    `to_pandas()`) as labeled texts. Extra columns are kept."""
    if not isinstance(frame, pd.DataFrame):
        if hasattr(frame, "to_pandas"):
            frame = frame.to_pandas()
        else:
            raise DataError(source, f"expected a pandas DataFrame, got {type(frame).__name__}")
    validated = _validate(frame, text_column, label_column, source)
    if text_pair_column is not None:
        validated = _with_pair(frame, validated, text_pair_column, source)
    return LabeledData(frame=validated, source=source, encoding=encoding)


def decode_bytes(raw: bytes, source: str, encoding: str = "auto") -> tuple[str, str]:
    """Decode a file's bytes; return (text, encoding used). Undecodable bytes are an error
    that names the line."""
    if encoding != "auto":
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise DataError(
                source, f"line {line}: not valid {encoding} (byte 0x{raw[exc.start]:02x})"
            ) from None
        except LookupError:
            raise DataError(source, f"unknown encoding '{encoding}'") from None
    for bom, name in _BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(name), name
            except UnicodeDecodeError as exc:
                raise DataError(source, f"not valid {name} after its byte-order mark") from exc
    if _looks_like_utf16(raw):
        raise DataError(
            source,
            "looks like UTF-16 without a byte-order mark; pass its encoding "
            "(--encoding utf-16-le or utf-16-be) or re-save it as UTF-8",
        )
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        utf8_error = f"line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
    text = raw.decode("cp1251", errors="replace")
    if "\ufffd" not in text and _CYRILLIC.search(text):
        log.warning("%s: not UTF-8; read as cp1251 (Windows Cyrillic)", source)
        return text, "cp1251"
    raise DataError(source, f"{utf8_error}; re-save the file as UTF-8 or pass its encoding")


# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def _looks_like_utf16(raw: bytes) -> bool:
    """Whether the bytes read as UTF-16 text in Latin or Cyrillic script: UTF-8 and single-byte
    files decoded that way give CJK or private-use characters instead."""
    sample = raw[: 4096 // 2 * 2]
    if len(sample) < 4:
        return False
    for name in ("utf-16-le", "utf-16-be"):
        text = sample.decode(name, errors="replace")
        familiar = sum(ord(ch) < 0x0530 or 0x2000 <= ord(ch) < 0x2070 for ch in text)
        if familiar > 0.95 * len(text):
            return True
    return False


def _parse_text(text: str, suffix: str, source: str) -> pd.DataFrame:
    if suffix in (".csv", ".tsv"):
        _reject_duplicate_header(text, "\t" if suffix == ".tsv" else ",", source)
        try:
            return pd.read_csv(
                io.StringIO(text),
                sep="\t" if suffix == ".tsv" else ",",
                dtype=str,
                keep_default_na=False,
            )
        except pd.errors.EmptyDataError:
            raise DataError(source, "no rows") from None
        except pd.errors.ParserError as exc:
            raise DataError(source, f"malformed {suffix[1:].upper()}: {_one_line(exc)}") from None
    if suffix == ".json":
        try:
            records = json.loads(text, object_pairs_hook=_unique_keys)
        except _DuplicateKey as exc:
            raise DataError(source, f"an object has the key '{exc.key}' twice") from None
        except json.JSONDecodeError as exc:
            raise DataError(source, f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
        if not isinstance(records, list):
            raise DataError(source, "expected a JSON array of objects")
        return _records_frame(records, source)
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line, object_pairs_hook=_unique_keys))
        except _DuplicateKey as exc:
            raise DataError(source, f"the key '{exc.key}' appears twice", row=number) from None
        except json.JSONDecodeError as exc:
            raise DataError(source, f"invalid JSON ({exc.msg})", row=number) from None
    return _records_frame(records, source)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's default keeps the last of two equal keys; a data row must not lose one silently."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _reject_duplicate_header(text: str, delimiter: str, source: str) -> None:
    """pandas renames a repeated column `text.1`, so the wrong one could be read as texts."""
    first = next(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=delimiter), [])
    names = [name.strip() for name in first]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(source, f"the header names the column '{repeated[0]}' twice")


def _records_frame(records: list[Any], source: str) -> pd.DataFrame:
    for number, record in enumerate(records, start=1):
        if not isinstance(record, Mapping):
            raise DataError(source, "expected a JSON object", row=number)
    return pd.DataFrame.from_records(records)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        raise DataError(str(path), f"unreadable Parquet: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _validate(frame: pd.DataFrame, text_col: str, label_col: str, source: str) -> pd.DataFrame:
    for column, option in ((text_col, "text"), (label_col, "label")):
        if column not in frame.columns:
            present = ", ".join(str(c) or "(blank)" for c in frame.columns) or "none"
            raise DataError(
                source, f"no column '{column}' (columns: {present}); set the {option} column name"
            )
    if len(frame) == 0:
        raise DataError(source, "no rows")
    texts = frame[text_col]
    labels = frame[label_col]
    _reject_rows(source, _missing(texts), "empty text")
    _reject_rows(source, _missing(labels), "missing label")
    as_text = texts.astype(str)
    _reject_rows(
        source,
        np.asarray(as_text.str.contains("\x00", regex=False)),
        "text contains a NUL character (a binary or mis-decoded file?)",
    )
    _warn_long(as_text, source)
    cleaned = frame.drop(columns=[text_col, label_col]).reset_index(drop=True)
    cleaned.insert(0, TEXT, texts.astype(str).reset_index(drop=True))
    cleaned.insert(1, LABEL, labels.map(_label_str).reset_index(drop=True))
    _reject_mojibake(cleaned[TEXT], source)
    return cleaned


def _with_pair(
    frame: pd.DataFrame, validated: pd.DataFrame, column: str, source: str
) -> pd.DataFrame:
    """The validated rows with the second text of each pair as the column `text_pair`."""
    if column not in frame.columns:
        present = ", ".join(str(c) or "(blank)" for c in frame.columns) or "none"
        raise DataError(
            source, f"no column '{column}' (columns: {present}); set the text pair column name"
        )
    pairs = frame[column].reset_index(drop=True)
    _reject_rows(source, _missing(pairs), f"empty pair text (column '{column}')")
    as_text = pairs.astype(str)
    _reject_rows(
        source,
        np.asarray(as_text.str.contains("\x00", regex=False)),
        "pair text contains a NUL character (a binary or mis-decoded file?)",
    )
    _reject_mojibake(as_text, source)
    out = validated.drop(columns=[column], errors="ignore")
    if TEXT_PAIR in out.columns:
        out = out.drop(columns=[TEXT_PAIR])
    out.insert(2, TEXT_PAIR, as_text)
    return out


def _warn_long(texts: pd.Series, source: str) -> None:
    lengths = texts.str.len().to_numpy()
    long = np.flatnonzero(lengths > LONG_TEXT)
    if len(long):
        more = f" (and {len(long) - 1} more)" if len(long) > 1 else ""
        log.warning(
            "%s: row %d: a text of %d characters%s; check that it is one text and not a "
            "whole file in one cell",
            source,
            long[0] + 1,
            lengths[long[0]],
            more,
        )


def _label_str(value: Any) -> str:
    # Integer labels read from Parquet/JSON arrive as int or float (1.0); keep "1", not "1.0".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _missing(values: pd.Series) -> np.ndarray:
    as_text = values.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else v)
    return np.asarray(as_text.astype(str).str.strip().eq("") | values.isna())


def _reject_rows(source: str, bad: np.ndarray, problem: str) -> None:
    positions = np.flatnonzero(bad)
    if len(positions) == 0:
        return
    more = f" (and {len(positions) - 1} more rows)" if len(positions) > 1 else ""
    raise DataError(source, f"{problem}{more}", row=int(positions[0]) + 1)


def _reject_mojibake(texts: pd.Series, source: str) -> None:
    """UTF-8 bytes once decoded as cp1251 and saved again read as 'РџСЂРёРІРµС‚'; such a
    file trains a classifier on garbage, so it is an error, not a warning."""
    for position, text in enumerate(texts):
        if "Р" not in text and "С" not in text:
            continue
        try:
            repaired = text.encode("cp1251").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if repaired != text and _CYRILLIC.search(repaired):
            raise DataError(
                source,
                f"text is garbled Cyrillic ('{text[:20]}' should read '{repaired[:20]}'): "
                "UTF-8 was read as cp1251 and saved again; re-export the file as UTF-8",
                row=position + 1,
            )


def check_test_labels(train: LabeledData, test: LabeledData) -> None:
    """Every test label must occur in training data, or its recall is undefined."""
    known = set(train.classes)
    unknown = ~test.frame[LABEL].isin(known)
    positions = np.flatnonzero(unknown.to_numpy())
    if len(positions) == 0:
        return
    first = int(positions[0])
    label = test.frame[LABEL].iloc[first]
    more = f" (and {len(positions) - 1} more rows)" if len(positions) > 1 else ""
    raise DataError(
        test.source,
        f"label '{label}' does not occur in the training data ({train.source}){more}",
        row=first + 1,
    )


def round_half_up(value: float) -> int:
    """Python's round() rounds 2.5 to 2; sample sizes should not depend on parity."""
    return math.floor(value + 0.5)


def stratified_fraction(data: LabeledData, fraction: float, seed: int) -> LabeledData:
    """Sample `fraction` of each class without replacement; every class keeps at least one
    example, so rare classes never vanish from a small training set."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    counts = {
        label: max(1, round_half_up(fraction * n)) for label, n in data.class_counts().items()
    }
    return sample_per_class(data, counts, seed)


def sample_per_class(data: LabeledData, counts: Mapping[str, int], seed: int) -> LabeledData:
    """Take up to counts[label] rows of each label at random (fewer where the class is
    smaller); the order of the result is by class, then random."""
    rng = np.random.default_rng(seed)
    labels = data.frame[LABEL].to_numpy()
    chosen: list[np.ndarray] = []
    for label in sorted(counts):
        pool = np.flatnonzero(labels == label)
        take = min(int(counts[label]), len(pool))
        if take > 0:
            chosen.append(np.sort(rng.choice(pool, size=take, replace=False)))
    positions = np.concatenate(chosen) if chosen else np.array([], dtype=int)
    return data.subset(positions)


def split_train_test(
    data: LabeledData, test_size: float, seed: int
) -> tuple[LabeledData, LabeledData]:
    """Stratified split for users with a single labeled file; classes with one example
    stay in train."""
    counts = {
        label: round_half_up(test_size * n) if n > 1 else 0
        for label, n in data.class_counts().items()
    }
    rng = np.random.default_rng(seed)
    labels = data.frame[LABEL].to_numpy()
    test_positions: list[int] = []
    for label in sorted(counts):
        pool = np.flatnonzero(labels == label)
        test_positions.extend(rng.choice(pool, size=counts[label], replace=False).tolist())
    train_mask = np.ones(len(data), dtype=bool)
    train_mask[test_positions] = False
    test = data.subset(sorted(test_positions))
    train = data.subset(np.flatnonzero(train_mask))
    return (
        LabeledData(train.frame, f"{data.source} (train split)", data.encoding),
        LabeledData(test.frame, f"{data.source} (test split)", data.encoding),
    )
