from __future__ import annotations

import json
from pathlib import Path

import pytest

import synthmix
from llm_server import Reply, cedr_answerer, serve
from synthmix.cards.card import load_card
from synthmix.classifiers.registry import ClassifierConfig
from synthmix.data.labeled import LabeledData
from synthmix.experiment.config import DataConfig, ExperimentConfig
from synthmix.experiment.mixing import SMALL_REAL_PLUS_COUNT, PlanConfig
from synthmix.experiment.run_dir import RunDir
from synthmix.experiment.runner import run_experiment
from synthmix.experiment.source_stats import generation_stats
from synthmix.experiment.sources import SourceConfig
from synthmix.generation.plan import GenerationPlan, GeneratorSpec, run_plan
from synthmix.report import write_report

CARD = Path(synthmix.__file__).parent / "demo_data" / "cedr_emotions" / "card.yaml"


def test_report_shows_generation_and_dedup_counts_per_source(
    experiment_files: Path, cedr_test: LabeledData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_KEY", "sk-secret-never-shown")
    names = {c.shown_name: c.name for c in load_card(CARD).classes}
    # Small pools make the scripted model repeat itself, so the dedup counts are not zero.
    with serve(cedr_answerer(cedr_test, pool_size=6, names=names)) as server:
        server.script = [Reply(status=500)]  # one fault, retried: the report must say so
        plan = GenerationPlan(
            card=str(CARD),
            out=str(tmp_path / "llm.jsonl"),
            cache=str(tmp_path / "cache.sqlite"),
            generators=[
                GeneratorSpec(
                    kind="openai", model="test-model", base_url=server.url, api_key_env="TEST_KEY"
                )
            ],
            strategies=["zero-shot", "few-shot"],
            temperatures=[0.7],
            per_class=4,
            k=2,
        )
        made = run_plan(plan, progress=False)
    config = ExperimentConfig(
        name="stats",
        data=DataConfig(
            train=str(experiment_files / "train.csv"), test=str(experiment_files / "test.csv")
        ),
        sources=[
            SourceConfig(
                path=str(made.out),
                name="llm",
                split_by=["strategy", "temperature"],
                plans=[SMALL_REAL_PLUS_COUNT],
            )
        ],
        plans=PlanConfig(
            learning_curve=[],
            synthetic_only=False,
            half_and_half=False,
            real_plus_equal=False,
            synthetic_ratios=[],
            synthetic_counts=[4],
        ),
        seeds=[0],
        classifier=ClassifierConfig(name="tfidf_logreg", params={"max_iter": 100}),
        base_dir=tmp_path,
    )
    run_dir = tmp_path / "run"
    run_experiment(config, run_dir, jobs=1, progress=False)

    stats = json.loads(RunDir(run_dir).sources_file.read_text(encoding="utf-8"))
    assert set(stats) == {"llm:zero-shot/0.7", "llm:few-shot/0.7"}
    assert sum(s["retries"] for s in stats.values()) == 1
    assert all(s["redacted"] is False for s in stats.values())  # a loopback server
    assert sum(s["failed_calls"] for s in stats.values()) == 0
    for run in made.runs:
        source = stats[f"llm:{run.strategy}/0.7"]
        totals = run.totals()
        assert source["kept"] == totals["kept"] > 0
        assert source["calls"] == totals["calls"]
        assert source["unused_calls"] == totals["unused_calls"]
        assert source["duplicates"] == totals["duplicates"] > 0
        # For the cost per F1 point in the report.
        assert source["prompt_tokens"] == totals["prompt_tokens"] > 0
        assert source["completion_tokens"] == totals["completion_tokens"]
    markdown = write_report(run_dir).markdown.read_text(encoding="utf-8")
    assert "Generation and deduplication per source" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| llm:few-shot/0.7"))
    few_shot = stats["llm:few-shot/0.7"]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    header = next(line for line in markdown.splitlines() if line.startswith("| source |"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    checked = (("duplicates", "exact dup."), ("unique", "unique"), ("kept", "kept"))
    for key, title in (*checked, ("retries", "retries")):
        assert cells[columns.index(title)] == str(few_shot[key])
    # Spare calls depend on timing; where any were made, the report shows them.
    spared = any(s["unused_calls"] for s in stats.values())
    assert ("unused" in columns) == spared
    if spared:
        assert cells[columns.index("unused")] == str(few_shot["unused_calls"])
    assert "sk-secret" not in markdown
    assert cells[columns.index("redacted")] == "no"


def test_sources_without_a_generation_report_have_no_stats(tmp_path: Path) -> None:
    (tmp_path / "mine.csv").write_text("text,label\nпривет,a\nпока,b\n", encoding="utf-8")
    assert generation_stats([SourceConfig(path="mine.csv")], tmp_path) == {}
    (tmp_path / "mine.report.json").write_text("{not json", encoding="utf-8")
    assert generation_stats([SourceConfig(path="mine.csv")], tmp_path) == {}


def test_a_labeled_source_carries_its_trust_into_the_report(
    experiment_files: Path, cedr_train: LabeledData, tmp_path: Path
) -> None:
    """A source `synthmix label` wrote keeps the precision its labels were stated with, and the
    experiment report shows it next to the source."""
    from synthmix.augment.eda import write_source
    from synthmix.labeling.run import Trust
    from synthmix.stats.intervals import wilson

    labeled = tmp_path / "labeled.jsonl"
    write_source(cedr_train.subset(list(range(60))), labeled)
    trust = Trust(60, wilson(52, 58), 0, wilson(0, 0), 7, calibrated=True)
    # the name `synthmix label` wrote before one sidecar rule, still read
    old = tmp_path / "labeled.jsonl.report.json"
    old.write_text(json.dumps({"trust": trust.to_dict()}), encoding="utf-8")
    stats = generation_stats([SourceConfig(path=str(labeled), name="auto")], tmp_path)
    assert stats == {"auto": {"trust": trust.to_dict()}}
    old.unlink()
    report = {"labels": str(labeled), "trust": trust.to_dict()}
    (tmp_path / "labeled.report.json").write_text(json.dumps(report), encoding="utf-8")
    stats = generation_stats([SourceConfig(path=str(labeled), name="auto")], tmp_path)
    assert stats == {"auto": {"trust": trust.to_dict()}}  # not also read as a generation report
    config = ExperimentConfig(
        name="trust",
        data=DataConfig(
            train=str(experiment_files / "train.csv"), test=str(experiment_files / "test.csv")
        ),
        sources=[SourceConfig(path=str(labeled), name="auto", plans=[SMALL_REAL_PLUS_COUNT])],
        plans=PlanConfig(
            learning_curve=[],
            synthetic_only=False,
            half_and_half=False,
            real_plus_equal=False,
            synthetic_ratios=[],
            synthetic_counts=[2],
        ),
        seeds=[0],
        base_dir=tmp_path,
    )
    run_dir = tmp_path / "run"
    run_experiment(config, run_dir, jobs=1, progress=False)
    markdown = write_report(run_dir).markdown.read_text(encoding="utf-8")
    assert "Trust in auto-labeled sources" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| auto |"))
    low, high = wilson(52, 58).low, wilson(52, 58).high
    assert f"{52 / 58:.2f} [{low:.2f}, {high:.2f}]" in row and "| yes |" in row


def test_redaction_of_each_run_is_summed_per_source(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text("", encoding="utf-8")
    runs = [
        {"totals": {}, "redaction": {"applied": True, "counts": {"EMAIL": 2, "PHONE": 1}}},
        {"totals": {}, "redaction": {"applied": True, "counts": {"PERSON": 4}}},
    ]
    (tmp_path / "s.report.json").write_text(json.dumps({"runs": runs}), encoding="utf-8")
    stats = generation_stats([SourceConfig(path="s.jsonl")], tmp_path)["s"]
    assert stats["redacted"] is True and stats["redacted_values"] == 7
    runs.append({"totals": {}, "redaction": {"applied": False}})
    (tmp_path / "s.report.json").write_text(json.dumps({"runs": runs}), encoding="utf-8")
    assert generation_stats([SourceConfig(path="s.jsonl")], tmp_path)["s"]["redacted"] is False
