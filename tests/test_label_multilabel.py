"""Multi-label labeling: label-set stages and cascade, per-label calibration, the LLM stage
and annotators answering JSON lists (scripted server on 127.0.0.1), set agreement against
independent computations, and a keywords-only smoke on real ru_goemotions."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import cohen_kappa_score

from conftest import dataset_dir
from llm_server import ScriptedServer, prompt_text, serve
from synthmix.cards.card import TaskCard, parse_card
from synthmix.core.errors import SynthmixError
from synthmix.data.multilabel import load_multilabel, multilabel_from_frame
from synthmix.labeling import KeywordStage, LLMStage
from synthmix.labeling.annotators import Annotator, Moderator, annotate, resolve
from synthmix.labeling.llm_stage import parse_label_set
from synthmix.labeling.multilabel import (
    MultiLabelCascade,
    calibrate_multilabel,
    cross_validate_multilabel,
)
from synthmix.llm import AnswerCache, CachedBackend, OpenAICompatibleBackend
from synthmix.stats.set_agreement import (
    exact_set_agreement,
    krippendorff_alpha_sets,
    per_label_kappa,
)

CARD = {
    "task": "эмоции",
    "language": "ru",
    "description": "A multi-label task: a text carries any number of these labels.",
    "classes": [
        {"name": "joy", "description": "Радость: счастье, восторг", "keywords": ["рад", "ура"]},
        {
            "name": "surprise",
            "description": "Удивление: неожиданность",
            "keywords": ["неожиданно", "вот это да"],
        },
        {"name": "sadness", "description": "Грусть: тоска, печаль", "keywords": ["грустно"]},
    ],
}


@pytest.fixture(scope="module")
def card() -> TaskCard:
    return parse_card(CARD, "card")


# ---------------------------------------------------------------------------- stages, cascade


def test_keywords_give_every_matching_label(card: TaskCard) -> None:
    texts = ["Я так рад, вот это да!", "Грустно и пусто", "Обычный вторник"]
    multi = KeywordStage(card, threshold=0.5, multi_label=True)
    rows = multi.score(texts)
    # s / (s + prior): one keyword each for joy and surprise -> 0.5 and 0.5.
    assert rows[0].tolist() == pytest.approx([0.5, 0.5, 0.0])
    # The single-label margin sees a tie there: no evidence for either.
    assert KeywordStage(card).score(texts)[0].tolist() == pytest.approx([0.0, 0.0, 0.0])
    result = MultiLabelCascade([multi], fallback="none").run_sets(
        texts, gold=[["joy", "surprise"], ["sadness"], []]
    )
    assert result.label_sets == [("joy", "surprise"), ("sadness",), None]
    assert [d.decided for d in result.decisions] == [True, True, False]
    assert result.decisions[0].confidence == {"joy": 0.5, "surprise": 0.5}
    assert result.accuracy().value == 1.0 and result.exact_sets().k == 2  # type: ignore[union-attr]
    with pytest.raises(TypeError, match="run_sets"):
        MultiLabelCascade([multi]).run(texts)


def _gold_frame(rows: list[tuple[str, list[str]]]) -> Any:
    frame = pd.DataFrame({"text": [t for t, _ in rows], "labels": [json.dumps(s) for _, s in rows]})
    return multilabel_from_frame(frame, source="gold")


def test_per_label_thresholds_reach_the_target_on_each_label(card: TaskCard) -> None:
    # "рад" is joy 40 times of 40; "грустно" sadness 20 of 40 (the other 20 texts say it
    # ironically and are joy): joy's threshold opens, sadness's stays shut.
    rows = [(f"Я рад, день {i}", ["joy"]) for i in range(40)]
    rows += [(f"Грустно, день {i}", ["sadness"]) for i in range(20)]
    rows += [(f"Грустно, что ты так рад не был: шучу {i}", ["joy"]) for i in range(20)]
    gold = _gold_frame(rows)
    stage = KeywordStage(card, threshold=float("inf"), multi_label=True)
    report = calibrate_multilabel(MultiLabelCascade([stage]), gold, 0.9, holdout=0)
    calibration = report.stages[0]
    thresholds = calibration.thresholds  # type: ignore[attr-defined]
    assert thresholds["joy"] == pytest.approx(0.5)  # one keyword: 1 / (1 + prior)
    assert np.isinf(thresholds["sadness"]) and np.isinf(thresholds["surprise"])
    # Every decided label is joy and right: 60 texts asserted, 60 correct.
    assert calibration.precision.k == calibration.precision.n == 60
    assert "1 of 3 labels" in calibration.line()
    cascade = report.cascade
    assert isinstance(cascade, MultiLabelCascade)
    out = cascade.run_sets(["Я рад", "Грустно"])
    # "Грустно" passes no threshold: the fallback's guess, not decided.
    assert out.label_sets == [("joy",), ("sadness",)]
    assert [d.decided for d in out.decisions] == [True, False]

    # Cross-validated on the same texts (card keywords only: nothing learned), alike.
    cv = cross_validate_multilabel(MultiLabelCascade([stage]), gold, 0.9)
    assert cv.stages[0].thresholds == thresholds  # type: ignore[attr-defined]


def test_cascade_yaml_takes_an_llm_backend_but_not_multi_label() -> None:
    from synthmix.core.errors import ConfigError
    from synthmix.labeling import parse_config

    backend = {"kind": "openai", "base_url": "http://127.0.0.1:9", "model": "m"}
    parsed = parse_config({"stages": [{"type": "llm", "params": {"backend": backend}}]}, "c")
    assert parsed.stages[0].params["backend"] == backend
    with pytest.raises(ConfigError, match=r"'multi_label' is set by the command \(--multi-label\)"):
        parse_config({"stages": [{"type": "keywords", "params": {"multi_label": True}}]}, "c")


def test_keywords_mined_per_label_from_multilabel_examples(card: TaskCard) -> None:
    from synthmix.labeling.config import build_cascade, parse_config

    rows = [(f"Солнце и море, отпуск {i}", ["joy"]) for i in range(6)]
    rows += [(f"Дождь и слякоть, осень {i}", ["sadness"]) for i in range(6)]
    rows += [(f"Солнце, а потом внезапный дождь {i}", ["sadness", "surprise"]) for i in range(6)]
    config = parse_config(
        {"stages": [{"type": "keywords", "params": {"mine_from_examples": True}}]}, "c"
    )
    cascade = build_cascade(config, card, _gold_frame(rows), multi_label=True)
    assert isinstance(cascade, MultiLabelCascade)
    rows_ = cascade.stages[0].score(["внезапный дождь"])[0]
    by_label = dict(zip(card.class_names, rows_, strict=True))
    # Mined: "внезапный" only in surprise texts, "дождь" in sadness ones; both labels score.
    assert by_label["surprise"] > 0 and by_label["sadness"] > 0 and by_label["joy"] == 0


def test_embedding_and_nli_score_each_label_on_its_own(card: TaskCard, tmp_path: Path) -> None:
    from synthmix.embeddings.encoder import build_encoder
    from synthmix.labeling import EmbeddingStage, NLIStage

    texts = ["Я так рад, вот это неожиданность!", "Мне грустно."]
    encoder = build_encoder()
    multi = EmbeddingStage(card, encoder, multi_label=True).score(texts)
    stage = EmbeddingStage(card, encoder)
    cosine = encoder.encode(texts) @ stage.prototypes().T
    assert multi == pytest.approx(np.clip(cosine, 0, 1))  # no softmax across labels
    assert stage.score(texts).sum(axis=1) == pytest.approx([1.0, 1.0])

    pytest.importorskip("transformers")
    from test_label import _tiny_nli

    nli = NLIStage(card, model=str(_tiny_nli(tmp_path / "nli")), multi_label=True)
    rows = nli.score(texts)
    assert rows.shape == (2, 3) and ((rows >= 0) & (rows <= 1)).all()
    # Entailment against contradiction per label: the rows need not sum to 1.
    assert not np.allclose(rows.sum(axis=1), 1.0)


# ---------------------------------------------------------------------------- LLM stage


def test_parse_label_set_matches_names_and_aliases(card: TaskCard) -> None:
    from synthmix.labeling.llm_stage import label_aliases

    aliases = label_aliases(card)
    parsed = parse_label_set('Метки: ["joy", "Удивление", "happiness"]', aliases)
    assert parsed.labels == ("joy", "surprise") and parsed.rejected == ["happiness"]
    assert parse_label_set("[]", aliases).labels == ()
    assert parse_label_set("joy, surprise", aliases).labels is None  # no JSON list
    assert parse_label_set('[1, 2] then ["sadness"]', aliases).labels == ("sadness",)


def _set_answer(body: dict[str, Any]) -> str:
    """JSON lists by the open text; draw seed 2 adds surprise to rain; "странно" texts get a
    label the card does not have."""
    text = prompt_text(body)
    if "Ответы разметчиков" in text:
        return 'Метки: ["sadness"]\nОбоснование: дождь и пустота — это грусть.'
    field, open_text = re.findall(r"Текст: (.*)\n(Метки|Эмоции):\s*$", text)[-1][::-1]
    if "странно" in open_text:
        return '["joy", "happiness"]'
    if "Хм" in open_text:
        return "Сложно сказать."
    if "дождь" in open_text:
        extra = ', "surprise"' if body.get("seed") == 2 or field == "Эмоции" else ""
        return f'["sadness"{extra}]'
    return '["joy"]'


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with serve(_set_answer) as running:
        yield running


def _backend(server: ScriptedServer, tmp_path: Path) -> CachedBackend:
    http = OpenAICompatibleBackend(server.url, "test-model", api_key_env=None, timeout_s=5.0)
    return CachedBackend(http, AnswerCache(tmp_path / "cache.sqlite"))


EXAMPLES = [
    ("Ура, неожиданно сдал экзамен!", ["joy", "surprise"]),
    ("Как же грустно без тебя", ["sadness"]),
    ("Рад тебя видеть", ["joy"]),
]


def test_llm_stage_asks_for_a_json_list_and_counts_unknown_labels(
    card: TaskCard, server: ScriptedServer, tmp_path: Path
) -> None:
    backend = _backend(server, tmp_path)
    examples = _gold_frame(EXAMPLES)
    stage = LLMStage(card, backend, examples, k=1, n_samples=3, multi_label=True)
    texts = ["Опять дождь и пусто", "Как странно всё вышло", "Лето!", "Хм."]
    rows = stage.score(texts)
    assert rows[0].tolist() == pytest.approx([0, 1 / 3, 1])  # sadness 3/3, surprise 1/3
    assert rows[1].tolist() == pytest.approx([1, 0, 0])  # "happiness" ignored
    assert rows[3].tolist() == [0, 0, 0]  # no list: no label
    prompt = server.bodies[0]["messages"][1]["content"]
    assert "JSON-список" in prompt
    assert 'Метки: ["joy", "surprise"]' in prompt  # the shot shows its real label set
    assert all(not b.get("logprobs") for b in server.bodies)  # a list has no first-token read
    assert stage.problems() == [
        "llm: 3 of 12 answers named labels that are not in the card, ignored: 'happiness' x3",
        "llm: 3 of 12 answers held no JSON list of labels (counted as naming none)",
    ]
    # Every answer was cached before use: a rerun asks the server nothing.
    count = server.count
    again = LLMStage(card, backend, examples, k=1, n_samples=3, multi_label=True)
    assert again.score(texts).tolist() == rows.tolist() and server.count == count


# ---------------------------------------------------------------------------- agreement


def _alpha_by_hand(units: list[list[frozenset[str] | None]], distance: Any) -> float:
    """Krippendorff's alpha from its definition (pairable values, observed vs expected
    disagreement), written out independently of nltk."""
    values = [[v for v in unit if v is not None] for unit in units]
    values = [v for v in values if len(v) >= 2]
    n = sum(len(v) for v in values)
    observed = (
        sum(
            sum(distance(a, b) for a, b in itertools.permutations(v, 2)) / (len(v) - 1)
            for v in values
        )
        / n
    )
    pooled = [x for v in values for x in v]
    expected = sum(distance(a, b) for a, b in itertools.permutations(pooled, 2)) / (n * (n - 1))
    return 1 - observed / expected


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return 0.0 if a == b else 1 - len(a & b) / len(a | b)


def _masi(a: frozenset[str], b: frozenset[str]) -> float:
    # Passonneau (2006): 1 - J * M, M = 1 equal, 2/3 subset, 1/3 overlap, 0 disjoint.
    if a == b:
        return 0.0
    m = 2 / 3 if (a <= b or b <= a) else (1 / 3 if a & b else 0.0)
    return 1 - len(a & b) / len(a | b) * m


UNITS: list[list[frozenset[str] | None]] = [
    [frozenset({"joy"}), frozenset({"joy"}), frozenset({"joy", "surprise"})],
    [frozenset({"sadness"}), frozenset({"sadness"}), None],
    [frozenset({"joy", "surprise"}), frozenset({"surprise"}), frozenset({"surprise"})],
    [frozenset(), frozenset(), frozenset({"sadness"})],
    [frozenset({"joy", "sadness"}), frozenset({"joy", "surprise"}), frozenset({"joy"})],
    [frozenset({"surprise"}), None, None],  # one answer: not pairable, left out
]


def test_set_alpha_matches_the_definition_and_krippendorff() -> None:
    import krippendorff

    for name, distance in (("masi", _masi), ("jaccard", _jaccard)):
        expected = _alpha_by_hand(UNITS, distance)
        assert krippendorff_alpha_sets(UNITS, name) == pytest.approx(expected)  # type: ignore[arg-type]
    # On one label per item, MASI is the nominal distance: the `krippendorff` package.
    coders = [["a", "b", "a", "c", None], ["a", "b", "b", "c", "a"], ["a", None, "b", "c", "a"]]
    single = [[None if c[u] is None else frozenset({c[u]}) for c in coders] for u in range(5)]
    codes = {"a": 0, "b": 1, "c": 2}
    matrix = np.array([[np.nan if v is None else codes[v] for v in c] for c in coders])
    nominal = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert krippendorff_alpha_sets(single, "masi") == pytest.approx(nominal)
    assert np.isnan(krippendorff_alpha_sets([[frozenset({"a"}), None]]))


def test_per_label_kappa_and_exact_sets_match_sklearn() -> None:
    a = [u[0] for u in UNITS]
    b = [u[1] for u in UNITS]
    classes = ["joy", "sadness", "surprise"]
    kappas = per_label_kappa(a, b, classes)
    both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    for label in classes:
        left = [int(label in x) for x, _ in both]
        right = [int(label in y) for _, y in both]
        assert kappas[label] == pytest.approx(cohen_kappa_score(left, right))
    assert exact_set_agreement(UNITS) == (1, 5)  # only the sadness pair agrees throughout


# ---------------------------------------------------------------------------- annotators


def test_multilabel_annotators_moderator_and_review_csv(
    card: TaskCard, server: ScriptedServer, tmp_path: Path
) -> None:
    from synthmix.labeling.annotate import AnnotationRun, summary_lines, write_annotation
    from synthmix.labeling.annotators import set_agreement_report

    backend = _backend(server, tmp_path)
    annotators = [
        Annotator("a", card, backend, k=1, multi_label=True),
        Annotator("b", card, backend, k=1, templates={"field": "Эмоции"}, multi_label=True),
    ]
    texts = ["Ура, лето", "Опять дождь и пусто", "Рад встрече"]
    table = annotate(annotators, texts)
    assert list(table["a"]) == [("joy",), ("sadness",), ("joy",)]
    assert list(table["b"]) == [("joy",), ("sadness", "surprise"), ("joy",)]
    resolved = resolve(table, ["a", "b"], Moderator(card, backend, multi_label=True))
    assert list(resolved["source"]) == ["agreement", "moderator", "agreement"]
    assert resolved.at[1, "label"] == ("sadness",)
    moderated = [b for b in server.bodies if "Ответы разметчиков" in prompt_text(b)]
    assert len(moderated) == 1 and '- b: ["sadness", "surprise"]' in prompt_text(moderated[0])

    gold = [("joy",), ("sadness",), ("joy", "surprise")]
    resolved["gold"] = pd.Series(gold, dtype=object)
    report = set_agreement_report(resolved, ["a", "b"], card.class_names, gold)
    assert report["exact_set_agreement"] == {"agree": 2, "items": 3, "share": 2 / 3}
    assert report["per_label_cohen_kappa"]["a~b"]["joy"] == pytest.approx(1.0)
    assert report["vs_gold"]["a"]["exact_set"] == pytest.approx(2 / 3)
    assert report["vs_gold"]["a"]["per_class"]["surprise"]["recall"] == 0.0
    report["final"] = {"by_source": {"agreement": 2, "moderator": 1}, "unlabelled": 0}
    run = AnnotationRun(resolved, ["a", "b"], report)
    write_annotation(run, tmp_path / "review.csv", tmp_path / "tasks.json")
    tasks = json.loads((tmp_path / "tasks.json").read_text("utf-8"))
    final = next(p for p in tasks[1]["predictions"] if p["model_version"] == "final")
    assert final["result"][0]["value"] == {"choices": ["sadness"]}
    b = next(p for p in tasks[1]["predictions"] if p["model_version"] == "b")
    assert b["result"][0]["value"] == {"choices": ["sadness", "surprise"]}
    review = pd.read_csv(tmp_path / "review.csv", encoding="utf-8-sig")
    assert review.loc[1, "b"] == '["sadness", "surprise"]'
    assert review.loc[2, "gold"] == '["joy", "surprise"]'
    assert review["human_label"].isna().all()
    assert any("MASI" in line for line in summary_lines(run))


def test_annotate_and_label_commands_multi_label(
    card: TaskCard, server: ScriptedServer, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from synthmix.cli.app import app

    (tmp_path / "card.yaml").write_text(yaml.safe_dump(CARD, allow_unicode=True), "utf-8")
    pd.DataFrame(
        {
            "text": ["Ура, лето", "Опять дождь и пусто", "Как странно всё вышло"],
            "labels": ['["joy"]', '["sadness"]', '["surprise"]'],
        }
    ).to_csv(tmp_path / "texts.csv", index=False)
    backend = {"kind": "openai", "base_url": server.url, "model": "m", "api_key_env": None}
    config = {
        "annotators": [
            {"name": "a", "backend": backend, "k": 1},
            {"name": "b", "backend": backend, "k": 1, "templates": {"field": "Эмоции"}},
        ],
        "moderator": {"backend": backend},
        "cache": str(tmp_path / "cache.sqlite"),
    }
    (tmp_path / "annotators.yaml").write_text(yaml.safe_dump(config), "utf-8")
    common = [str(tmp_path / "texts.csv"), "--card", str(tmp_path / "card.yaml")]
    result = CliRunner().invoke(
        app,
        [
            "annotate",
            *common,
            "--annotators",
            str(tmp_path / "annotators.yaml"),
            "--gold-column",
            "labels",
            "--multi-label",
            "--out",
            str(tmp_path / "review.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    agreement = json.loads((tmp_path / "review.agreement.json").read_text("utf-8"))
    assert agreement["task"] == "multi_label" and "krippendorff_alpha_masi" in agreement
    problem = "a: 1 of 3 answers named labels that are not in the card, ignored: 'happiness' x1"
    assert problem in result.output

    # The cascade: keywords, then the LLM (thresholds fixed), into the multi-label format.
    cascade = {
        "stages": [
            {"type": "keywords", "threshold": 0.5},
            {
                "type": "llm",
                "threshold": 0.6,
                "params": {"backend": backend, "k": 1, "n_samples": 3, "cache": config["cache"]},
            },
        ]
    }
    (tmp_path / "cascade.yaml").write_text(yaml.safe_dump(cascade), "utf-8")
    out = tmp_path / "labeled.jsonl"
    labeled = CliRunner().invoke(
        app,
        [
            "label",
            *common,
            "--multi-label",
            "--cascade",
            str(tmp_path / "cascade.yaml"),
            "--out",
            str(out),
        ],
    )
    assert labeled.exit_code == 0, labeled.output
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [(r["row"], r["labels"], r["stage"]) for r in rows] == [
        (1, ["joy"], "keywords"),  # "ура"
        (2, ["sadness"], "llm"),  # surprise on 1 draw of 3: below 0.6
        (3, ["joy"], "llm"),
    ]
    data = load_multilabel(out)  # the multi-label source format
    assert data.label_sets == [("joy",), ("sadness",), ("joy",)]
    assert "answers named labels that are not in the card" in labeled.output
    report = json.loads((tmp_path / "labeled.report.json").read_text("utf-8"))
    assert report["labeling"]["task"] == "multi_label"
    assert report["llm_answers"]["llm"]["unknown_labels"] == {"happiness": 3}

    bad = tmp_path / "gold.csv"
    pd.DataFrame({"text": ["x"], "labels": ["joy, fear"]}).to_csv(bad, index=False)
    refused = CliRunner().invoke(
        app, ["label", *common, "--multi-label", "--calibrate", str(bad), "--out", str(out)]
    )
    assert refused.exit_code != 0 and isinstance(refused.exception, SynthmixError)
    message = str(refused.exception)
    assert "gold.csv: row 1: column 'labels': not a JSON list of labels" in message
    assert "\n" not in message


# ---------------------------------------------------------------------------- real data

GOEMOTIONS_KEYWORDS = {
    "gratitude": ["спасибо", "благодарить", "благодарный"],
    "love": ["любить", "обожать"],
    "amusement": ["смешно", "смешной", "лол", "ржать", "хаха"],
    "sadness": ["грустно", "грустный", "печальный"],
    "admiration": ["отличный", "потрясающий", "красивый"],
}


def test_keywords_cascade_on_real_goemotions(tmp_path: Path) -> None:
    from synthmix.cards.multilabel import draft_multilabel_card
    from synthmix.labeling.config import parse_config
    from synthmix.labeling.run import label_sets, write_run

    folder = dataset_dir("ru_goemotions")
    train = load_multilabel(folder / "train.csv")
    test = load_multilabel(folder / "test.csv")
    card = draft_multilabel_card(train, "goemotions", n_examples=0)
    for class_card in card.classes:
        class_card.keywords = GOEMOTIONS_KEYWORDS.get(class_card.name, [])
    rng = np.random.default_rng(0)
    gold = train.subset(np.sort(rng.choice(len(train), 1500, replace=False)))
    unlabeled = test.subset(np.arange(300))
    config = parse_config({"stages": [{"type": "keywords"}]}, "cascade")
    run = label_sets(unlabeled.texts, card, config, gold=gold, target_precision=0.85)
    calibration = run.calibration.stages[0]
    thresholds = calibration.thresholds  # type: ignore[attr-defined]
    # "спасибо" is gratitude in ~95% of GoEmotions texts: its threshold opens.
    assert np.isfinite(thresholds["gratitude"])
    assert np.isinf(thresholds["neutral"])  # no keywords, no evidence
    assert calibration.precision.low >= 0.85  # type: ignore[attr-defined]
    checked = run.calibration.holdout
    assert checked is not None and checked.accuracy().value >= 0.8  # type: ignore[union-attr]
    write_run(run, tmp_path / "labeled.jsonl")
    labeled = load_multilabel(tmp_path / "labeled.jsonl")
    decided = [d for d in run.result.decisions if d.decided]
    assert len(labeled) == len(decided) > 0
    truth = dict(zip(unlabeled.texts, unlabeled.label_sets, strict=True))
    pairs = zip(labeled.texts, labeled.label_sets, strict=True)
    right = sum(set(s) <= set(truth[t]) for t, s in pairs)
    assert right / len(labeled) >= 0.7
