"""The classifier filter: in the generation engine's chain and per cell in experiments."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import synthmix
from llm_server import serve
from synthmix.cards.card import load_card
from synthmix.core.config import build_dataclass
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData, sample_per_class, stratified_fraction
from synthmix.experiment.config import ExperimentConfig, load_experiment
from synthmix.experiment.filtered import JudgedSource
from synthmix.experiment.mixing import SMALL_REAL_PLUS_SYNTHETIC, Cell, compose
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.runner import run_experiment
from synthmix.experiment.source_stats import read_source_stats
from synthmix.generation.classifier_filter import ClassifierFilterConfig, ClassifierJudge
from synthmix.generation.generate import GenerationConfig, generate_until_unique, run_summary
from synthmix.llm import OpenAICompatibleBackend
from synthmix.report.write import write_report

CARD_PATH = Path(synthmix.__file__).parent / "demo_data" / "cedr_emotions" / "card.yaml"
NAMES = {c.shown_name: c.name for c in load_card(CARD_PATH).classes}


def _pools(data: LabeledData, per_class: int) -> dict[str, list[str]]:
    pools: dict[str, list[str]] = {}
    for text, label in zip(data.texts, data.labels, strict=True):
        if "\n" not in text and 20 < len(text) < 200 and len(pools.get(label, [])) < per_class:
            pools.setdefault(label, []).append(text)
    return pools


def test_filter_stage_drops_planted_wrong_class_texts_and_keeps_right_ones(
    cedr_train: LabeledData, cedr_test: LabeledData
) -> None:
    """A generator that writes, for every class, CEDR test sentences of that class and as
    many of another class (planted): the filter trained on real CEDR keeps the first and
    drops the second, and the report counts its drops per class."""
    pools = _pools(cedr_test, 60)
    planted: set[str] = set()
    other = {"joy": "sadness", "sadness": "joy"}
    counter = itertools.count()
    lock = threading.Lock()

    def answer(body: dict[str, Any]) -> str:
        prompt = "\n".join(m["content"] for m in body["messages"])
        aliases = {**NAMES, "joy": "joy", "sadness": "sadness"}
        label = next(c for n, c in aliases.items() if re.search(rf"[«\"]{n}[»\"]", prompt))
        with lock:
            i = next(counter)
        right = pools[label][2 * i % 60 : 2 * i % 60 + 2]
        wrong = pools[other[label]][2 * i % 60 : 2 * i % 60 + 2]
        planted.update(wrong)
        return "\n".join(f"{n}. {t}" for n, t in enumerate([*right, *wrong], start=1))

    real = stratified_fraction(cedr_train, 0.3, seed=0)
    config = GenerationConfig(
        strategy="zero-shot",
        per_class=12,
        texts_per_call=4,
        concurrency=1,
        classes=["joy", "sadness"],
        max_calls_per_class=30,
        classifier_filter=ClassifierFilterConfig(min_probability=0.4),
        # The server answers by arrival order: spare calls (timing) would change who gets what.
        spare_calls=False,
    )
    with serve(answer) as server:
        backend = OpenAICompatibleBackend(server.url, "weak-model", api_key_env=None)
        result = asyncio.run(
            generate_until_unique(
                backend, "zero-shot", load_card(CARD_PATH), real, config, progress=False
            )
        )
    kept = set(result.data.texts)
    assert len(kept) == 24
    # Without the filter half of what it returns would be of the wrong class.
    assert len(kept & planted) <= 2
    summary = run_summary(result)["classifier_filter"]
    assert summary["rule"] == "p(intended label) >= 0.4"
    for label in ("joy", "sadness"):
        report = result.classes[label]
        assert report.classifier_dropped == summary["dropped"][label] > 0
        # Most of the drops are the planted texts, and they look like the other class.
        assert summary["predicted_as"][label].get(other[label], 0) >= report.classifier_dropped / 2
        assert report.kept == 12
    # Half of what came back was of the right class; a real-trained filter is fallible, yet
    # it keeps a good share of those.
    returned_right = sum(r.texts_returned for r in result.classes.values()) / 2
    assert 24 / returned_right > 0.3


def test_top_k_rule_keeps_more_than_a_probability_threshold(
    cedr_train: LabeledData, cedr_test: LabeledData
) -> None:
    real = stratified_fraction(cedr_train, 0.1, seed=0)
    test = stratified_fraction(cedr_test, 0.2, seed=0)
    judge = ClassifierJudge.fit(ClassifierFilterConfig(min_probability=0.5), real, seed=0)
    top2 = ClassifierJudge(ClassifierFilterConfig(top_k=2), judge.model)
    strict = judge.judge(test.texts, test.labels).keep.mean()
    loose = top2.judge(test.texts, test.labels).keep.mean()
    assert 0.2 < strict < loose < 1.0
    # top_k = every class keeps every text of a known class, and no text of an unknown one.
    everything = ClassifierJudge(ClassifierFilterConfig(top_k=6), judge.model)
    assert everything.judge(test.texts[:5], ["nonsense", *test.labels[1:5]]).keep.tolist() == [
        False,
        *[True] * 4,
    ]


def _marked(train: LabeledData, seen: set[str], marker: str, label: str) -> LabeledData:
    """`train` with every `label` text outside `seen` prefixed by `marker`."""
    frame = train.frame.copy()
    unseen = (frame["label"] == label) & ~frame["text"].isin(seen)
    frame.loc[unseen, "text"] = marker + " " + frame.loc[unseen, "text"]
    return LabeledData(frame, "marked train")


def test_a_cells_filter_never_sees_real_texts_outside_the_cell(cedr_train: LabeledData) -> None:
    """A marker planted in the unseen 90% of the real data changes nothing in a 10% cell's
    filter, while a filter that does see it (100% real) learns it."""
    real = stratified_fraction(cedr_train, 0.4, seed=0)  # the experiment's real data
    marker = "зюзябра"
    cell = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 0.5, "synth")
    everything = Cell(SMALL_REAL_PLUS_SYNTHETIC, 1.0, 0.5, "synth")
    joy = [t for t, lab in zip(real.texts, real.labels, strict=True) if lab == "joy"]
    # Joy sentences claimed to be fear, with the marker the unseen fear texts will carry.
    synthetic = LabeledData(
        pd_frame([f"{marker} {t}" for t in joy[:80]], ["fear"] * 80), "planted synthetic"
    )
    rule = ClassifierFilterConfig(min_probability=0.3)
    plain = JudgedSource("synth", synthetic, rule)
    mix = compose(cell, real, plain, seed=0)
    seen = set(mix.data.frame.loc[mix.data.frame["origin"] == "real", "text"])
    marked_train = _marked(real, seen, marker, "fear")
    assert (marked_train.frame["text"] != real.frame["text"]).sum() > 150

    marked = JudgedSource("synth", synthetic, rule)
    marked_mix = compose(cell, marked_train, marked, seed=0)
    assert marked_mix.judged == mix.judged
    assert marked_mix.data.frame.equals(mix.data.frame)
    assert mix.judged is not None and mix.judged["dropped"]["fear"] >= 60
    # Control: the filter of a cell that sees the marked texts keeps the marked synthetic ones.
    full = compose(everything, marked_train, JudgedSource("synth", synthetic, rule), seed=0)
    assert full.judged is not None and full.judged["dropped"].get("fear", 0) <= 20


def pd_frame(texts: list[str], labels: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame({"text": texts, "label": labels})


def _flipped(data: LabeledData, share: float, seed: int) -> tuple[LabeledData, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = data.frame.copy()
    flips = rng.choice(len(frame), int(share * len(frame)), replace=False)
    classes = data.classes
    for i in flips:
        frame.loc[i, "label"] = rng.choice([c for c in classes if c != frame.loc[i, "label"]])
    return LabeledData(frame, data.source), flips


def test_experiment_filters_a_source_per_cell_and_reports_the_drops(
    experiment_files: Path, tmp_path: Path
) -> None:
    """An experiment whose source (held-out real CEDR, a fifth of it relabeled to a wrong
    class) is filtered by a classifier and by cleanlab inside each cell."""
    folder = tmp_path / "exp"
    folder.mkdir()
    for name in ("train.csv", "test.csv"):
        (folder / name).write_bytes((experiment_files / name).read_bytes())
    import pandas as pd

    synth = pd.read_csv(experiment_files / "synth.csv")
    bad, flips = _flipped(LabeledData(synth, "synth"), 0.2, seed=0)
    bad.frame.to_csv(folder / "synth.csv", index=False)
    config = {
        "name": "filtered",
        "data": {"train": "train.csv", "test": "test.csv"},
        "sources": [
            {"path": "synth.csv", "name": "raw"},
            {
                "path": "synth.csv",
                "name": "judged",
                "filter": {"classifier": "tfidf_logreg", "min_probability": 0.3},
                "drop_label_issues": True,
            },
        ],
        "plans": {
            "learning_curve": [1.0],
            "synthetic_only": False,
            "half_and_half": False,
            "real_plus_equal": False,
            "small_real_fraction": 0.5,
            "synthetic_ratios": [1.0],
        },
        "seeds": 1,
    }
    (folder / "experiment.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    run_dir = tmp_path / "run"
    run_experiment(load_experiment(folder / "experiment.yaml"), run_dir, jobs=1, progress=False)
    records = {r["cell"]["source"]: r for r in ResultsStore(run_dir).records()}
    judged = records["judged"]["source_filter"]
    assert "source_filter" not in records["raw"]
    assert judged["texts"] == len(bad)
    dropped = sum(judged["dropped"].values())
    assert dropped == len(bad) - judged["kept"]
    assert sum(judged["classifier"]["dropped"].values()) > 0
    assert "label_issues" in judged
    assert records["judged"]["shortfall"]  # fewer texts than the cell asked for
    stats = read_source_stats(run_dir)["judged"]["judged"]["0.5"]
    assert stats["samples"] == 1 and stats["texts"] == len(bad)
    assert stats["dropped"] == {k: float(v) for k, v in judged["dropped"].items()}
    report = write_report(run_dir)
    assert "What the source filters dropped" in report.markdown.read_text(encoding="utf-8")
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert info["data"]["sources"]["judged"]["filter"]["min_probability"] == 0.3
    # The wrongly labeled texts are dropped far more often than the rest.
    judge = JudgedSource("judged", bad, ClassifierFilterConfig(min_probability=0.3), True)
    train = LabeledData(pd.read_csv(folder / "train.csv"), "train")
    visible = sample_per_class(train, {k: (v + 1) // 2 for k, v in train.class_counts().items()}, 0)
    kept = judge(visible, 0, seed=0)
    kept_texts = set(kept.texts)
    flipped_kept = np.mean([bad.texts[i] in kept_texts for i in flips])
    rest = np.setdiff1d(np.arange(len(bad)), flips)
    right_kept = np.mean([bad.texts[i] in kept_texts for i in rest])
    assert flipped_kept < 0.1 < 0.3 < right_kept


def test_filter_config_errors_are_one_line(tmp_path: Path) -> None:
    raw = {
        "name": "x",
        "data": {"train": "train.csv"},
        "sources": [{"path": "s.csv", "filter": {"min_probability": 0.5, "top_k": 2}}],
    }
    with pytest.raises(ConfigError) as error:
        build_dataclass(ExperimentConfig, raw, "exp.yaml")
    assert str(error.value) == (
        "exp.yaml: sources[0].filter: set one of min_probability, top_k and keep_share"
    )
    raw["sources"] = [{"path": "s.csv", "filter": {"min_probabilty": 0.5}}]
    with pytest.raises(ConfigError, match=r"unknown key 'min_probabilty' \(allowed: classifier"):
        build_dataclass(ExperimentConfig, raw, "exp.yaml")
    with pytest.raises(ConfigError) as error:
        JudgedSource(
            "s", LabeledData(pd_frame(["a"], ["b"]), "s"),
            ClassifierFilterConfig(classifier="tfidf_logreg", params={"C0": 1}),
        )  # fmt: skip
    assert "\n" not in str(error.value)
    assert str(error.value).startswith("source 's': filter: classifier 'tfidf_logreg': unknown")


def test_plan_classifier_filter_errors_name_the_key() -> None:
    from synthmix.generation.plan import GenerationPlan, check_plan

    for raw, message in [
        ({"top_k": 0}, "plan.yaml: classifier_filter: top_k must be >= 1, got 0"),
        (
            {"classifier": "nope"},
            "plan.yaml: classifier_filter: unknown classifier 'nope' (available: ",
        ),
    ]:
        with pytest.raises(ConfigError) as error:
            plan = build_dataclass(
                GenerationPlan, {"card": "c", "classifier_filter": raw}, "plan.yaml"
            )
            check_plan(plan, "plan.yaml")
        assert str(error.value).startswith(message)


def test_keep_share_keeps_the_likeliest_share_of_every_class(
    cedr_train: LabeledData, cedr_test: LabeledData
) -> None:
    """A probability threshold from a 10%-real classifier empties the small classes (it
    barely knows anger); keep_share keeps each class's most confirmed texts instead."""
    real = stratified_fraction(cedr_train, 0.1, seed=0)
    texts = sample_per_class(cedr_test, dict.fromkeys(cedr_test.classes, 30), seed=0)
    fitted = ClassifierJudge.fit(ClassifierFilterConfig(), real, seed=0)
    threshold = fitted.judge(texts.texts, texts.labels)
    share = ClassifierJudge(ClassifierFilterConfig(keep_share=0.7), fitted.model)
    ranked = share.judge(texts.texts, texts.labels)
    labels = np.asarray(texts.labels)
    assert threshold.keep[labels == "anger"].mean() < 0.2
    for label in texts.classes:
        mine = labels == label
        assert ranked.keep[mine].sum() == 21  # ceil(0.7 x 30)
        kept, dropped = (
            ranked.probability[mine & ranked.keep],
            ranked.probability[mine & ~ranked.keep],
        )
        assert kept.min() >= dropped.max()
    with pytest.raises(ConfigError, match="keep_share ranks a whole source"):
        ClassifierFilterConfig(keep_share=0.5).check("plan.yaml", "classifier_filter", True)


def test_generate_cli_filters_with_a_classifier_trained_on_data(
    cedr_train: LabeledData, cedr_test: LabeledData, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from synthmix.cards.card import ClassCard, TaskCard
    from synthmix.cli.app import app

    classes = ["joy", "sadness"]
    card = tmp_path / "card.yaml"
    card.write_text(
        TaskCard("emotions", "ru", [ClassCard(c, f"Класс {c}.") for c in classes]).to_yaml(),
        encoding="utf-8",
    )
    real = stratified_fraction(cedr_train, 0.3, seed=0)
    keep = real.frame["label"].isin(classes)
    real.frame[keep].to_csv(tmp_path / "real.csv", index=False)
    pools = _pools(cedr_test, 40)
    planted: set[str] = set()

    def answer(body: dict[str, Any]) -> str:
        prompt = "\n".join(m["content"] for m in body["messages"])
        label = next(c for c in classes if re.search(rf"[«\"]{c}[»\"]", prompt))
        other = classes[1 - classes.index(label)]
        i = int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 30 + body.get("seed", 0)
        wrong = pools[other][i % 38 : i % 38 + 2]
        planted.update(wrong)
        items = [*pools[label][i % 38 : i % 38 + 2], *wrong]
        return "\n".join(f"{n}. {t}" for n, t in enumerate(items, start=1))

    out = tmp_path / "synth.jsonl"
    with serve(answer) as server:
        result = CliRunner().invoke(
            app,
            ["generate", "--card", str(card), "--data", str(tmp_path / "real.csv"),
             "--strategy", "zero-shot", "--per-class", "3", "--texts-per-call", "4",
             "--backend", "openai", "--model", "weak", "--base-url", server.url,
             "--api-key-env", "SYNTHMIX_UNSET_KEY", "--cache", str(tmp_path / "c.db"),
             "--classifier-filter", "0.4", "--out", str(out)],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "the classifier did not confirm" in result.output
    report = json.loads((tmp_path / "synth.report.json").read_text(encoding="utf-8"))
    summary = report["runs"][0]["classifier_filter"]
    assert summary["min_probability"] == 0.4 and sum(summary["dropped"].values()) > 0
    kept = set(pd_frame_read(out)["text"])
    assert len(kept & planted) <= 1


def pd_frame_read(path: Path) -> Any:
    import pandas as pd

    return pd.read_json(path, lines=True)


def test_label_issues_are_skipped_in_a_cell_where_a_class_has_one_text(
    cedr_train: LabeledData,
) -> None:
    visible = sample_per_class(cedr_train, {"joy": 20, "fear": 20, "anger": 1}, seed=0)
    synthetic = sample_per_class(cedr_train, {"joy": 5, "fear": 5}, seed=1)
    judged = JudgedSource("s", synthetic, drop_label_issues=True)
    assert len(judged(visible, 0, seed=0)) == len(synthetic)
    report = judged.drops(visible, seed=0)
    assert "class 'anger' has one text" in report["label_issues"]["skipped"]


def test_a_run_without_filters_keeps_its_fingerprint(experiment_files: Path) -> None:
    """Sources without the new keys record what they recorded before: older runs resume."""
    config = load_experiment(experiment_files / "experiment.yaml")
    assert set(config.to_dict()["sources"][0]) == {
        "path", "name", "augment", "split_by", "plans", "text_column", "label_column",
    }  # fmt: skip
    config.sources[0].drop_label_issues = True
    assert config.to_dict()["sources"][0]["drop_label_issues"] is True
