"""Label-set and pair generation against a scripted OpenAI-compatible server on 127.0.0.1,
with real GoEmotions texts and SentiRuEval aspects as what the "model" answers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import dataset_dir
from llm_server import prompt_text, serve
from synthmix.cards.card import draft_card
from synthmix.cards.multilabel import draft_multilabel_card
from synthmix.core.text import normalize
from synthmix.data.labeled import load_labeled, stratified_fraction
from synthmix.data.multilabel import MultiLabelData, load_multilabel
from synthmix.data.pairs import join_pair
from synthmix.generation.generate import GenerationConfig
from synthmix.generation.tasks import (
    generate_label_sets,
    generate_pairs,
    label_set_distribution,
)
from synthmix.llm import AnswerCache, CachedBackend, OpenAICompatibleBackend

_SETS = re.compile(r"ко всем этим классам: (.+?)\.\n")


def _label_set_answerer(pool: MultiLabelData, leak: str) -> Callable[[dict[str, Any]], str]:
    """Answers with test texts carrying the asked labels (a fixed few per set, so long runs
    repeat themselves), plus one copy of a real training text."""
    by_set: dict[tuple[str, ...], list[str]] = {}
    for text, labels in zip(pool.texts, pool.label_sets, strict=True):
        by_set.setdefault(labels, []).append(text.replace("\n", " "))

    def answer(body: dict[str, Any]) -> str:
        found = _SETS.search(prompt_text(body))
        assert found is not None
        labels = tuple(sorted(re.findall(r"«([^»]+)»", found.group(1))))
        texts = by_set.get(labels) or [f"Текст про {' и '.join(labels)} номер один."]
        salt = int(hashlib.sha256(prompt_text(body).encode()).hexdigest(), 16)
        picked = [texts[(salt + i) % len(texts)] for i in range(4)]
        return "Вот тексты:\n" + "\n".join(
            f"{i}. {t}" for i, t in enumerate([*picked, leak], start=1)
        )

    return answer


def test_label_sets_follow_real_cooccurrence_and_skip_leaks(tmp_path: Path) -> None:
    folder = dataset_dir("ru_goemotions")
    real = load_multilabel(folder / "train.csv").subset(range(400))
    pool = load_multilabel(folder / "test.csv")
    card = draft_multilabel_card(real, task="эмоции")
    with serve(_label_set_answerer(pool, leak=real.texts[0])) as server:
        backend = CachedBackend(
            OpenAICompatibleBackend(server.url, "test-model", api_key_env=None),
            AnswerCache(tmp_path / "cache.db"),
        )
        config = GenerationConfig(per_class=0, texts_per_call=5, k=2, seed=1)
        data, report = asyncio.run(generate_label_sets(backend, card, real, 40, config))
        calls = server.count
        again, _ = asyncio.run(generate_label_sets(backend, card, real, 40, config))
        assert server.count == calls  # a rerun is answered from the cache
    assert len(data) == 40 == report.kept
    assert again.texts == data.texts
    assert report.leaks >= report.calls  # the real text in every answer is dropped
    assert normalize(real.texts[0]) not in {normalize(t) for t in data.texts}
    keys = [normalize(t) for t in data.texts]
    assert len(set(keys)) == len(keys)
    seen_sets = set(real.label_sets)
    assert all(labels in seen_sets for labels in data.label_sets)
    # Label sets are asked for in proportion to the real co-occurrence: neutral alone most.
    shares = dict(label_set_distribution(real))
    asked = Counter(report.asked)
    assert asked.most_common(1)[0][0] == "neutral" and shares[("neutral",)] > 0.25
    assert set(data.frame.columns) >= {"text", "labels", "generator", "call_id"}


def test_pairs_are_generated_for_real_first_texts_and_deduped_on_the_pair(
    tmp_path: Path,
) -> None:
    folder = dataset_dir("sentirueval2015_restaurant_aspects")
    real = stratified_fraction(
        load_labeled(folder / "train.csv", text_pair_column="aspect"), 0.1, 0
    )
    assert real.pairs is not None
    known = {join_pair(t, p) for t, p in zip(real.texts, real.pairs, strict=True)}
    # Prompts show a review on one line; a real aspect of it, offered back, must be caught.
    first_of_review = {" ".join(t.split()): p for t, p in zip(real.texts, real.pairs, strict=True)}
    words = ["обслуживание", "официант", "кухня", "десерт", "вино", "интерьер", "музыка"]

    def answer(body: dict[str, Any]) -> str:
        text = prompt_text(body)
        review = re.search(r"Вот текст:\n«(.+?)»", text, re.S)
        assert review is not None
        real_aspect = first_of_review.get(review.group(1), "ресторан")
        salt = int(hashlib.sha256(text.encode()).hexdigest(), 16)
        picked = [words[(salt + i) % len(words)] for i in range(3)]
        # a real pair of this review: a leak unless its label differs, then a repeat
        return "\n".join(f"{i}. {w}" for i, w in enumerate([*picked, real_aspect, picked[0]], 1))

    card = draft_card(real, "аспекты")
    with serve(answer) as server:
        backend = CachedBackend(
            OpenAICompatibleBackend(server.url, "test-model", api_key_env=None),
            AnswerCache(tmp_path / "cache.db"),
        )
        config = GenerationConfig(per_class=0, texts_per_call=5, k=3, seed=0)
        data, report = asyncio.run(
            generate_pairs(backend, card, real, 6, config, pair_description="аспект отзыва")
        )
    assert data.class_counts() == dict.fromkeys(sorted(set(real.labels)), 6)
    assert data.pairs is not None
    joined = [join_pair(t, p) for t, p in zip(data.texts, data.pairs, strict=True)]
    assert len(set(joined)) == len(joined)  # unique as pairs
    assert not set(joined) & known  # no real pair comes back as synthetic
    assert set(data.texts) <= set(real.texts)  # first texts are real reviews
    assert report.duplicates > 0  # the repeated aspect of each answer
    assert report.leaks > 0  # real pairs offered back


def test_generate_sets_cli_writes_a_multilabel_source(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from synthmix.cli.app import app
    from synthmix.data.multilabel import load_multilabel as load

    folder = dataset_dir("ru_goemotions")
    real = load_multilabel(folder / "train.csv").subset(range(300))
    real.frame.assign(labels=[json.dumps(list(s)) for s in real.label_sets]).to_csv(
        tmp_path / "train.csv", index=False
    )
    card = draft_multilabel_card(real, task="эмоции")
    (tmp_path / "card.yaml").write_text(card.to_yaml(), encoding="utf-8")
    out = tmp_path / "sets.csv"
    with serve(_label_set_answerer(load_multilabel(folder / "test.csv"), leak="")) as server:
        args = ["generate-sets", str(tmp_path / "train.csv"), "--card", str(tmp_path / "card.yaml")]
        args += ["--total", "15", "--out", str(out), "--backend", "openai"]
        args += ["--base-url", server.url, "--model", "test-model"]
        args += ["--api-key-env", "SYNTHMIX_UNSET_KEY", "--cache", str(tmp_path / "cache.db")]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    made = load(out)
    assert len(made) == 15 and set(made.classes) <= set(real.classes)
    report = json.loads(out.with_name("sets.report.json").read_text(encoding="utf-8"))
    assert report["kept"] == 15 and report["redaction"] == {"applied": False}


def test_generate_pairs_cli_writes_pairs_an_experiment_source_reads(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from synthmix.cli.app import app

    folder = dataset_dir("sentirueval2015_restaurant_aspects")
    real = stratified_fraction(
        load_labeled(folder / "train.csv", text_pair_column="aspect"), 0.05, 0
    )
    real.frame.rename(columns={"text_pair": "aspect"}).to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "card.yaml").write_text(draft_card(real, "аспекты").to_yaml(), encoding="utf-8")
    words = ["обслуживание", "официант", "кухня", "десерт", "вино", "интерьер", "музыка"]

    def answer(body: dict[str, Any]) -> str:
        salt = int(hashlib.sha256(prompt_text(body).encode()).hexdigest(), 16)
        return "\n".join(f"{i}. {words[(salt + i) % len(words)]}" for i in range(1, 4))

    out = tmp_path / "pairs.csv"
    with serve(answer) as server:
        args = [
            "generate-pairs",
            str(tmp_path / "train.csv"),
            "--card",
            str(tmp_path / "card.yaml"),
        ]
        args += ["--text-pair-column", "aspect", "--per-class", "3", "--out", str(out)]
        args += ["--backend", "openai", "--base-url", server.url, "--model", "test-model"]
        args += ["--api-key-env", "SYNTHMIX_UNSET_KEY", "--cache", str(tmp_path / "cache.db")]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    made = load_labeled(out, text_pair_column="aspect")
    assert made.class_counts() == dict.fromkeys(sorted(set(real.labels)), 3)
    assert made.pairs is not None and set(made.pairs) <= set(words)
    assert set(made.texts) <= set(real.texts)
