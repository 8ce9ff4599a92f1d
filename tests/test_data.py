from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthmix.core.errors import DataError
from synthmix.data.labeled import (
    LabeledData,
    check_test_labels,
    from_frame,
    load_labeled,
    sample_per_class,
    split_train_test,
    stratified_fraction,
)


@pytest.fixture()
def real_rows(cedr_train: LabeledData) -> pd.DataFrame:
    """Twelve real CEDR rows, two of each class, as a user's file would hold them."""
    frame = cedr_train.frame
    return (
        frame.groupby("label", sort=True)
        .head(2)
        .sort_values("label", kind="stable")
        .reset_index(drop=True)[["text", "label"]]
    )


def write_csv(path: Path, frame: pd.DataFrame, **kwargs: object) -> Path:
    frame.to_csv(path, index=False, **kwargs)  # type: ignore[call-overload]
    return path


def error_of(call: object) -> str:
    with pytest.raises(DataError) as caught:
        call()  # type: ignore[operator]
    return str(caught.value)


def test_reads_every_supported_format(tmp_path: Path, real_rows: pd.DataFrame) -> None:
    write_csv(tmp_path / "d.csv", real_rows)
    write_csv(tmp_path / "d.tsv", real_rows, sep="\t")
    real_rows.to_json(tmp_path / "d.jsonl", orient="records", lines=True, force_ascii=False)
    real_rows.to_json(tmp_path / "d.json", orient="records", force_ascii=False)
    real_rows.to_parquet(tmp_path / "d.parquet")
    for suffix in ("csv", "tsv", "jsonl", "json", "parquet"):
        data = load_labeled(tmp_path / f"d.{suffix}")
        assert data.texts == real_rows["text"].tolist(), suffix
        assert data.labels == real_rows["label"].tolist(), suffix


def test_custom_column_names_and_extra_columns_kept(
    tmp_path: Path, real_rows: pd.DataFrame
) -> None:
    frame = real_rows.rename(columns={"text": "sentence", "label": "emotion"}).assign(src="lj")
    data = load_labeled(write_csv(tmp_path / "d.csv", frame), "sentence", "emotion")
    assert list(data.frame.columns) == ["text", "label", "src"]
    assert data.class_counts() == {label: 2 for label in sorted(real_rows["label"].unique())}


def test_dataframe_and_dataset_like_inputs(real_rows: pd.DataFrame) -> None:
    class DatasetLike:  # the part of datasets.Dataset that synthmix relies on
        def to_pandas(self) -> pd.DataFrame:
            return real_rows

    assert from_frame(real_rows).labels == real_rows["label"].tolist()
    assert from_frame(DatasetLike()).texts == real_rows["text"].tolist()


def test_integer_labels_become_strings(tmp_path: Path, real_rows: pd.DataFrame) -> None:
    frame = real_rows.assign(label=pd.factorize(real_rows["label"])[0])
    frame.to_parquet(tmp_path / "d.parquet")
    assert load_labeled(tmp_path / "d.parquet").labels[:3] == ["0", "0", "1"]


def test_cp1251_file_is_read_and_reported(
    tmp_path: Path, real_rows: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_csv(tmp_path / "win.csv", real_rows, encoding="cp1251")
    with caplog.at_level(logging.WARNING, logger="synthmix"):
        data = load_labeled(path)
    assert data.texts == real_rows["text"].tolist()
    assert data.encoding == "cp1251"
    assert f"{path}: not UTF-8; read as cp1251 (Windows Cyrillic)" in caplog.text


def test_wrong_explicit_encoding_names_the_line(tmp_path: Path, real_rows: pd.DataFrame) -> None:
    path = write_csv(tmp_path / "win.csv", real_rows, encoding="cp1251")
    first_cyrillic_line = 2  # line 1 is the ASCII header
    assert error_of(lambda: load_labeled(path, encoding="utf-8")).startswith(
        f"{path}: line {first_cyrillic_line}: not valid utf-8 (byte 0x"
    )


def test_mojibake_is_rejected(tmp_path: Path, real_rows: pd.DataFrame) -> None:
    garbled = real_rows.copy()
    original = garbled.loc[3, "text"]
    garbled.loc[3, "text"] = original.encode("utf-8").decode("cp1251", errors="replace")
    # Keep only rows that round-trip, so the test exercises the detection, not the codec.
    if "\ufffd" in garbled.loc[3, "text"]:
        garbled.loc[3, "text"] = "Привет, как дела".encode().decode("cp1251")
    path = write_csv(tmp_path / "d.csv", garbled)
    message = error_of(lambda: load_labeled(path))
    assert message.startswith(f"{path}: row 4: text is garbled Cyrillic (")
    assert message.endswith("UTF-8 was read as cp1251 and saved again; re-export the file as UTF-8")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda f: f.assign(text=f["text"].where(f.index != 4, "   ")), "row 5: empty text"),
        (lambda f: f.assign(label=f["label"].where(f.index != 2, "")), "row 3: missing label"),
        (
            lambda f: f.assign(label=f["label"].where(~f.index.isin([2, 6, 7]), "")),
            "row 3: missing label (and 2 more rows)",
        ),
    ],
)
def test_row_problems_name_file_and_row(
    tmp_path: Path, real_rows: pd.DataFrame, mutate: object, expected: str
) -> None:
    path = write_csv(tmp_path / "d.csv", mutate(real_rows))  # type: ignore[operator]
    assert error_of(lambda: load_labeled(path)) == f"{path}: {expected}"


def test_nan_label_in_parquet(tmp_path: Path, real_rows: pd.DataFrame) -> None:
    frame = real_rows.astype({"label": object})
    frame.loc[7, "label"] = None
    frame.to_parquet(tmp_path / "d.parquet")
    path = tmp_path / "d.parquet"
    assert error_of(lambda: load_labeled(path)) == f"{path}: row 8: missing label"


def test_missing_column(tmp_path: Path, real_rows: pd.DataFrame) -> None:
    path = write_csv(tmp_path / "d.csv", real_rows.rename(columns={"label": "emotion"}))
    assert error_of(lambda: load_labeled(path)) == (
        f"{path}: no column 'label' (columns: text, emotion); set the label column name"
    )


def test_file_level_problems(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    assert error_of(lambda: load_labeled(missing)) == f"{missing}: file not found"
    xlsx = tmp_path / "d.xlsx"
    xlsx.write_bytes(b"PK")
    assert error_of(lambda: load_labeled(xlsx)).startswith(f"{xlsx}: unsupported file type '.xlsx'")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert error_of(lambda: load_labeled(empty)) == f"{empty}: no rows"
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n")
    assert error_of(lambda: load_labeled(header_only)) == f"{header_only}: no rows"
    bad_json = tmp_path / "d.jsonl"
    bad_json.write_text('{"text": "а", "label": "joy"}\n{"text": "б", \n', encoding="utf-8")
    assert error_of(lambda: load_labeled(bad_json)).startswith(f"{bad_json}: row 2: invalid JSON")


def test_single_class(tmp_path: Path, real_rows: pd.DataFrame) -> None:
    path = write_csv(tmp_path / "d.csv", real_rows[real_rows["label"] == "joy"])
    data = load_labeled(path)
    assert error_of(data.require_classes) == (
        f"{path}: only one class ('joy'); a classifier needs at least 2"
    )


def test_test_label_absent_from_train(tmp_path: Path, real_rows: pd.DataFrame) -> None:
    train_path = write_csv(tmp_path / "train.csv", real_rows[real_rows["label"] != "fear"])
    test_path = write_csv(tmp_path / "test.csv", real_rows)
    train, test = load_labeled(train_path), load_labeled(test_path)
    first_fear_row = int(np.flatnonzero(real_rows["label"] == "fear")[0]) + 1
    assert error_of(lambda: check_test_labels(train, test)) == (
        f"{test_path}: row {first_fear_row}: label 'fear' does not occur in the training data "
        f"({train_path}) (and 1 more rows)"
    )


def test_stratified_fraction_keeps_every_class(cedr_train: LabeledData) -> None:
    counts = cedr_train.class_counts()
    sample = stratified_fraction(cedr_train, 0.1, seed=3)
    assert sample.class_counts() == {k: int(np.floor(0.1 * n + 0.5)) for k, n in counts.items()}
    tiny = stratified_fraction(cedr_train, 0.0001, seed=3)
    assert tiny.class_counts() == {k: 1 for k in counts}


def test_stratified_fraction_is_seeded(cedr_train: LabeledData) -> None:
    a = stratified_fraction(cedr_train, 0.05, seed=1).texts
    assert a == stratified_fraction(cedr_train, 0.05, seed=1).texts
    assert a != stratified_fraction(cedr_train, 0.05, seed=2).texts


def test_sample_per_class_takes_what_exists(cedr_train: LabeledData) -> None:
    sample = sample_per_class(cedr_train, {"anger": 10_000, "joy": 5}, seed=0)
    assert sample.class_counts() == {"anger": 384, "joy": 5}


def test_split_train_test_is_stratified_and_disjoint(cedr_train: LabeledData) -> None:
    train, test = split_train_test(cedr_train, 0.2, seed=0)
    assert len(train) + len(test) == len(cedr_train)
    assert test.class_counts()["anger"] == round(0.2 * 384)
    together = Counter(zip(train.texts, train.labels, strict=True)) + Counter(
        zip(test.texts, test.labels, strict=True)
    )
    assert together == Counter(zip(cedr_train.texts, cedr_train.labels, strict=True))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_files_with_a_byte_order_mark_are_read(
    tmp_path: Path, real_rows: pd.DataFrame, encoding: str
) -> None:
    path = write_csv(tmp_path / "excel.csv", real_rows, encoding=encoding)
    assert load_labeled(path).texts == real_rows["text"].tolist()


def test_utf16_without_a_mark_is_named(tmp_path: Path, real_rows: pd.DataFrame) -> None:
    path = write_csv(tmp_path / "raw.csv", real_rows, encoding="utf-16-le")
    assert "looks like UTF-16 without a byte-order mark" in error_of(lambda: load_labeled(path))
    assert load_labeled(path, encoding="utf-16-le").texts == real_rows["text"].tolist()


def test_nul_characters_duplicate_columns_and_keys_are_refused(
    tmp_path: Path, real_rows: pd.DataFrame
) -> None:
    nul = real_rows.copy()
    nul.loc[3, "text"] = "abc\x00def"
    path = write_csv(tmp_path / "nul.csv", nul)
    assert error_of(lambda: load_labeled(path)) == (
        f"{path}: row 4: text contains a NUL character (a binary or mis-decoded file?)"
    )
    twice = tmp_path / "twice.csv"
    twice.write_text("text,label,text\nпривет,joy,пока\n", encoding="utf-8")
    assert error_of(lambda: load_labeled(twice)) == (
        f"{twice}: the header names the column 'text' twice"
    )
    keys = tmp_path / "keys.jsonl"
    keys.write_text('{"text": "a", "label": "joy"}\n{"text": "b", "text": "c", "label": "x"}\n')
    assert error_of(lambda: load_labeled(keys)) == f"{keys}: row 2: the key 'text' appears twice"


def test_a_huge_text_is_warned_with_its_row(
    tmp_path: Path, real_rows: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    huge = real_rows.copy()
    huge.loc[5, "text"] = "слово " * 5000
    path = write_csv(tmp_path / "huge.csv", huge)
    with caplog.at_level(logging.WARNING, logger="synthmix"):
        load_labeled(path)
    assert f"{path}: row 6: a text of 30000 characters" in caplog.text
