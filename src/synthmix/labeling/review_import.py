"""The way back from human review: a Label Studio JSON export, or a review CSV whose
`human_label` column a reviewer filled in, read into labels with their provenance.

The output is one JSONL file that every reader of labeled texts takes: an experiment's
source (`decided: true` on every row, as `synthmix label` writes), `synthmix label
--calibrate` (gold) and `--examples`. Each row keeps where its label came from: the review
file, the Label Studio task and annotation ids or the CSV row, the reviewer(s), the label
the text had before review and whether the human changed it.

What counts, and why:
- a cancelled (skipped) annotation, a task with no annotation and an annotation with no
  choice say nothing about the label: the text is skipped and counted;
- reviewers who disagree on a text (several annotations of one task, or one text in
  several review files) are a conflict: listed in `<out stem>.conflicts.jsonl`, never
  settled by picking one, unless exactly one label carries Label Studio's ground-truth mark
  (a manager's explicit choice);
- a label that is not a class of the card (by name or display name) is an error naming
  the file and the task or row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from synthmix.cards.card import TaskCard
from synthmix.core.errors import ConfigError, DataError
from synthmix.core.files import sidecar
from synthmix.data.labeled import LABEL, TEXT, decode_bytes, read_frame

HUMAN_LABEL = "human_label"
# The exporter's prediction holding the label a text had before review
# (`label_studio_tasks` in synthmix.labeling.annotators, model_version "final").
FINAL_PREDICTION = "final"
Blank = Literal["skip", "keep"]


@dataclass(frozen=True)
class Vote:
    """One reviewer's label for one text, and where it was read."""

    text: str
    label: str
    reviewer: str | None
    file: str
    where: str  # "task 7" / "row 3": for messages
    review_row: int  # the task's position in the export, or the CSV's data row (from 1)
    original_label: str | None
    task_id: Any = None
    annotation_id: Any = None
    ground_truth: bool = False
    source: dict[str, Any] = field(default_factory=dict)  # file/row/origin the text came from


@dataclass(frozen=True)
class Skipped:
    file: str
    where: str
    text: str
    reason: str  # cancelled, unannotated, no choice, blank


@dataclass
class FileRead:
    """What one review file held: its votes, the texts skipped, and the cancelled
    annotations (which may sit beside another reviewer's answer on the same task)."""

    path: str
    kind: str  # label-studio or review-table
    items: int = 0
    votes: list[Vote] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    cancelled_annotations: int = 0


@dataclass
class ReviewImport:
    labels: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    files: list[FileRead]

    def counts(self) -> dict[str, Any]:
        changed = [r["changed"] for r in self.labels]
        skipped: dict[str, int] = {}
        for read in self.files:
            for item in read.skipped:
                skipped[item.reason] = skipped.get(item.reason, 0) + 1
        by_label: dict[str, int] = {}
        for row in self.labels:
            by_label[row[LABEL]] = by_label.get(row[LABEL], 0) + 1
        return {
            "imported": len(self.labels),
            "accepted": sum(c is False for c in changed),
            "changed": sum(c is True for c in changed),
            "new": sum(c is None for c in changed),  # no label before review to compare
            "skipped": sum(skipped.values()),
            "skipped_by_reason": dict(sorted(skipped.items())),
            "cancelled_annotations": sum(f.cancelled_annotations for f in self.files),
            "conflicts": len(self.conflicts),
            "resolved_by_ground_truth": sum(
                r["resolved_by"] == "ground_truth" for r in self.labels
            ),
            "by_label": dict(sorted(by_label.items())),
        }

    def report(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "files": [
                {
                    "path": f.path,
                    "kind": f.kind,
                    "items": f.items,
                    "votes": len(f.votes),
                    "skipped": len(f.skipped),
                    "cancelled_annotations": f.cancelled_annotations,
                }
                for f in self.files
            ],
            "skipped": [
                {"file": s.file, "where": s.where, "reason": s.reason, "text": s.text}
                for f in self.files
                for s in f.skipped
            ],
        }

    def summary(self) -> str:
        c = self.counts()
        reasons = ", ".join(f"{k} {v}" for k, v in c["skipped_by_reason"].items())
        return (
            f"{c['imported']} reviewed labels: {c['accepted']} accepted, {c['changed']} changed, "
            f"{c['new']} new; skipped {c['skipped']}"
            + (f" ({reasons})" if reasons else "")
            + f"; conflicts {c['conflicts']}"
        )


class _Classes:
    """The card's classes by name and by display name (a reviewer typing into a CSV may
    write what the prompts show, `без эмоций` for `no_emotion`)."""

    def __init__(self, card: TaskCard, card_source: str) -> None:
        self.source = card_source
        self.names = {c.name: c.name for c in card.classes}
        self.names.update({c.display_name: c.name for c in card.classes if c.display_name})

    def get(self, value: str) -> str | None:
        return self.names.get(value.strip())

    def require(self, value: str, file: str, where: str, row: int | None = None) -> str:
        name = self.get(value)
        if name is None:
            problem = f"label {value.strip()!r} is not a class of the card ({self.source})"
            if row is None:
                raise DataError(file, f"{where}: {problem}")
            raise DataError(file, problem, row=row)
        return name

    def original(self, value: Any) -> str | None:
        if value is None or str(value).strip() == "":
            return None
        return self.get(str(value)) or str(value).strip()


# ---------------------------------------------------------------------------- Label Studio


def read_label_studio(
    path: str | Path,
    classes: _Classes,
    from_name: str = "label",
    data_key: str = TEXT,
) -> FileRead:
    """Votes from a Label Studio JSON export: a list of tasks, each with `data` and
    `annotations` (`completions` in Label Studio before 1.0), each annotation's `result`
    holding `choices` under the control tag `from_name`."""
    source = str(path)
    tasks = _load_json(Path(path))
    read = FileRead(source, "label-studio", items=len(tasks))
    names_seen: set[str] = set()
    for position, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DataError(
                source,
                f"task {position}: no 'data' object; export the project in Label Studio's "
                "JSON format (not JSON-MIN or CSV)",
            )
        task_id = task.get("id", position)
        where = f"task {task_id}"
        text = task["data"].get(data_key)
        if not isinstance(text, str) or not text.strip():
            raise DataError(source, f"{where}: no text under data.{data_key}")
        original = classes.original(task["data"].get(LABEL, _final_prediction(task, from_name)))
        origin = _source_fields(
            {k: v for k, v in task["data"].items() if k not in (data_key, LABEL)}
        )
        annotations = task.get("annotations", task.get("completions")) or []
        if not isinstance(annotations, list):
            raise DataError(source, f"{where}: 'annotations' is not a list")
        reasons: list[str] = []
        votes_before = len(read.votes)
        for annotation in annotations:
            if not isinstance(annotation, dict):
                raise DataError(source, f"{where}: an annotation is not an object")
            if annotation.get("was_cancelled"):
                read.cancelled_annotations += 1
                reasons.append("cancelled")
                continue
            annotation_id = annotation.get("id")
            reviewer = _reviewer(annotation.get("completed_by"))
            here = f"{where} (annotation {annotation_id}, {reviewer})"
            choices = _choices(annotation.get("result"), from_name, names_seen, source, here)
            if not choices:
                reasons.append("no choice")
                continue
            if len(choices) > 1:
                raise DataError(
                    source,
                    f"{here}: {len(choices)} choices {choices}; a single-label task takes one",
                )
            read.votes.append(
                Vote(
                    text=text,
                    label=classes.require(choices[0], source, here),
                    reviewer=reviewer,
                    file=source,
                    where=where,
                    review_row=position,
                    original_label=original,
                    task_id=task_id,
                    annotation_id=annotation_id,
                    ground_truth=bool(annotation.get("ground_truth")),
                    source=origin,
                )
            )
        if len(read.votes) == votes_before:
            reason = "cancelled" if "cancelled" in reasons else "no choice"
            read.skipped.append(Skipped(source, where, text, reason if reasons else "unannotated"))
    if not read.votes and names_seen and from_name not in names_seen:
        raise DataError(
            source,
            f"no choices named '{from_name}' (found {', '.join(sorted(names_seen))}); "
            "pass the labeling config's Choices name as --from-name",
        )
    return read


def _load_json(path: Path) -> list[Any]:
    source = str(path)
    if not path.exists():
        raise DataError(source, "file not found")
    text, _ = decode_bytes(path.read_bytes(), source)
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(source, f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if isinstance(tasks, dict):
        tasks = [tasks]  # one task exported alone
    if not isinstance(tasks, list):
        raise DataError(source, "expected a list of Label Studio tasks (its JSON export)")
    if not tasks:
        raise DataError(source, "no tasks")
    return tasks


def _choices(
    result: Any, from_name: str, names_seen: set[str], source: str, where: str
) -> list[str]:
    if result is None:
        return []
    if not isinstance(result, list):
        raise DataError(source, f"{where}: 'result' is not a list")
    chosen: list[str] = []
    for region in result:
        if not isinstance(region, dict) or region.get("type") != "choices":
            continue  # a comment box or another control tag beside the choice
        names_seen.add(str(region.get("from_name")))
        if region.get("from_name") != from_name:
            continue
        value = region.get("value")
        picked = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(picked, list) or not all(isinstance(c, str) for c in picked):
            raise DataError(source, f"{where}: value.choices is not a list of labels")
        chosen += picked
    return chosen


def _final_prediction(task: dict[str, Any], from_name: str) -> str | None:
    """The label before review, as the project's exporter put it: the `final` prediction."""
    for prediction in task.get("predictions") or []:
        if isinstance(prediction, dict) and prediction.get("model_version") == FINAL_PREDICTION:
            try:
                picked = _choices(prediction.get("result"), from_name, set(), "", "")
            except DataError:
                return None
            return picked[0] if len(picked) == 1 else None
    return None


def _reviewer(completed_by: Any) -> str | None:
    """Label Studio exports the annotator as a user object (id, email, names) or, in some
    versions and imports, as the bare user id."""
    if isinstance(completed_by, dict):
        if completed_by.get("email"):
            return str(completed_by["email"])
        name = " ".join(str(completed_by.get(k) or "") for k in ("first_name", "last_name"))
        if name.strip():
            return name.strip()
        completed_by = completed_by.get("id")
    return None if completed_by is None else f"user {completed_by}"


# ---------------------------------------------------------------------------- review CSV


def read_review_table(
    path: str | Path,
    classes: _Classes,
    reviewer: str | None = None,
    blank: Blank = "skip",
    text_column: str = TEXT,
    encoding: str = "auto",
) -> FileRead:
    """Votes from a review table (`synthmix annotate` / `label-issues` output) whose
    `human_label` column a reviewer filled in. A blank `human_label` is not a review
    (`blank="skip"`), unless the reviewer was told to leave a right label blank
    (`blank="keep"`: the row's `label` stands, as reviewed)."""
    source = str(path)
    frame, _ = read_frame(path, encoding)
    for column in (text_column, HUMAN_LABEL):
        if column not in frame.columns:
            hint = "is this a review file?"
            if Path(path).suffix.lower() == ".json":
                hint = "nor Label Studio tasks with 'data' (export its JSON format, not JSON-MIN)"
            raise DataError(source, f"no column '{column}'; {hint}")
    read = FileRead(source, "review-table", items=len(frame))
    records = frame.fillna("").astype(str).to_dict("records")
    for row, record in enumerate(records, start=1):
        text = record[text_column]
        if not text.strip():
            raise DataError(source, "empty text", row=row)
        original = classes.original(record.get(LABEL))
        human = record[HUMAN_LABEL].strip()
        if not human and blank == "keep" and original is not None:
            human = original
        if not human:
            read.skipped.append(Skipped(source, f"row {row}", text, "blank"))
            continue
        who = record.get("reviewer", "").strip() or reviewer
        origin = _source_fields({k: record[k] for k in ("origin", "file", "row") if record.get(k)})
        read.votes.append(
            Vote(
                text=text,
                label=classes.require(human, source, f"row {row}", row=row),
                reviewer=who,
                file=source,
                where=f"row {row}",
                review_row=row,
                original_label=original,
                source=origin,
            )
        )
    return read


# ---------------------------------------------------------------------------- merging

# The provenance keys of an output row; a review file's own columns must not overwrite them.
_RESERVED = (TEXT, LABEL, "decided", "original_label", "changed", "reviewer", "reviewers",
             "resolved_by", "review_file", "review_row", "task_id", "annotation_id")  # fmt: skip


def _source_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Where the text came from, as the review file recorded it (`label-issues` writes the
    data file and row; a Label Studio task's other data fields): `file`/`row` become
    `source_file`/`source_row`, beside the review file's own row."""
    fields: dict[str, Any] = {}
    for key, value in values.items():
        name = f"source_{key}" if key in ("file", "row") else key
        fields[f"data_{key}" if name in _RESERVED else name] = value
    return fields


def merge_votes(reads: Sequence[FileRead]) -> ReviewImport:
    """One label per text where its reviewers agree (or one ground-truth label settles
    it); a conflict otherwise. Texts keep the order they first appear in."""
    by_text: dict[str, list[Vote]] = {}
    for read in reads:
        for vote in read.votes:
            by_text.setdefault(vote.text, []).append(vote)
    labels: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    for text, votes in by_text.items():
        distinct = {v.label for v in votes}
        resolved_by = "agreement" if len(votes) > 1 else "single"
        if len(distinct) > 1:
            truth = {v.label for v in votes if v.ground_truth}
            if len(truth) != 1:
                conflicts.append(_conflict(text, votes))
                continue
            distinct, resolved_by = truth, "ground_truth"
        labels.append(_record(text, distinct.pop(), votes, resolved_by))
    return ReviewImport(labels, conflicts, list(reads))


def _record(text: str, label: str, votes: list[Vote], resolved_by: str) -> dict[str, Any]:
    first = votes[0]
    original = first.original_label
    return {
        TEXT: text,
        LABEL: label,
        "decided": True,  # a person chose it: an experiment source keeps the row
        "original_label": original,
        "changed": None if original is None else label != original,
        "reviewer": _join(v.reviewer for v in votes if v.label == label),
        "reviewers": len(votes),
        "resolved_by": resolved_by,
        "review_file": _join(v.file for v in votes),
        "review_row": first.review_row,
        "task_id": first.task_id,
        "annotation_id": [v.annotation_id for v in votes if v.annotation_id is not None] or None,
        **first.source,
    }


def _conflict(text: str, votes: list[Vote]) -> dict[str, Any]:
    first = votes[0]
    return {
        TEXT: text,
        "original_label": first.original_label,
        "review_file": _join(v.file for v in votes),
        "where": _join(v.where for v in votes),
        "votes": [
            {
                LABEL: v.label,
                "reviewer": v.reviewer,
                "file": v.file,
                "where": v.where,
                "annotation_id": v.annotation_id,
                "ground_truth": v.ground_truth,
            }
            for v in votes
        ],
    }


def _join(values: Iterable[Any]) -> str | None:
    unique = list(dict.fromkeys(str(v) for v in values if v is not None))
    return ", ".join(unique) or None


# ---------------------------------------------------------------------------- files


def is_label_studio(path: str | Path) -> bool:
    """A `.json` file of tasks with `data` (the Label Studio export) rather than a JSON
    table of review rows."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        head = json.loads(decode_bytes(path.read_bytes(), str(path))[0])
    except (json.JSONDecodeError, DataError):
        return True  # let the Label Studio reader name the problem
    first = head[0] if isinstance(head, list) and head else head
    return isinstance(first, dict) and "data" in first


def import_reviews(
    paths: Sequence[str | Path],
    card: TaskCard,
    card_source: str = "the card",
    reviewer: str | None = None,
    blank: Blank = "skip",
    from_name: str = "label",
    text_column: str = TEXT,
    encoding: str = "auto",
) -> ReviewImport:
    """Read every review file (Label Studio exports and review tables alike) and merge
    their votes; at least one text must come back with a label."""
    if not paths:
        raise ConfigError("no review file given")
    if blank not in ("skip", "keep"):
        raise ConfigError(f"blank must be 'skip' or 'keep', got {blank!r}")
    classes = _Classes(card, card_source)
    reads = [
        read_label_studio(p, classes, from_name, text_column)
        if is_label_studio(p)
        else read_review_table(p, classes, reviewer, blank, text_column, encoding)
        for p in paths
    ]
    result = merge_votes(reads)
    if not result.labels:
        names = ", ".join(str(p) for p in paths)
        raise DataError(names, f"no reviewed label to import ({result.summary()})")
    return result


def conflicts_path(out: str | Path) -> Path:
    """`gold.jsonl` -> `gold.conflicts.jsonl`."""
    out = Path(out)
    return out.with_name(f"{out.stem}.conflicts{out.suffix or '.jsonl'}")


def write_import(result: ReviewImport, out: str | Path) -> Path:
    """The labels (JSONL) to `out`, the conflicts beside it (always written, so a stale
    file never outlives its cause), and `<out stem>.report.json` with the counts."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(_line(r) for r in result.labels), encoding="utf-8")
    conflicts = conflicts_path(out)
    conflicts.write_text("".join(_line(r) for r in result.conflicts), encoding="utf-8")
    report = sidecar(out)
    payload = {**result.report(), "labels": str(out), "conflicts_file": str(conflicts)}
    report.write_text(
        json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return report


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str) + "\n"
