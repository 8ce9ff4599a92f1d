"""Dedup stages on real CEDR sentences with planted duplicates and exact expected counts."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATASETS
from synthmix.core.errors import ConfigError
from synthmix.core.text import normalize
from synthmix.data.labeled import LabeledData, from_frame, load_labeled
from synthmix.dedup import (
    DedupConfig,
    Deduplicator,
    EmbeddingDedup,
    ExactDedup,
    IncrementalDedup,
    Match,
    MinHashDedup,
    RealLeakCheck,
    Stage,
    StageContext,
    StageIndex,
    available_stages,
    build_stages,
    candidate_pairs,
    deduplicate,
    jaccard,
    lsh_bands,
    normal_parts,
    register_stage,
    shingle,
    write_dedup_report,
)
from synthmix.dedup import forms as dedup_forms
from synthmix.dedup import registry as dedup_registry
from synthmix.embeddings.encoder import Encoder, build_encoder

FILLER = "внезапно"  # a word none of the chosen sentences contains (checked below)


def words(text: str) -> frozenset[str]:
    return frozenset(normalize(text).split())


def pick_distinct(texts: Sequence[str], count: int, min_words: int) -> list[str]:
    """Real sentences that are pairwise far apart (word Jaccard < 0.5), chosen by brute
    force, so any duplicate found among them is a false positive."""
    chosen: list[str] = []
    chosen_sets: list[frozenset[str]] = []
    for text in texts:
        mine = words(text)
        if len(mine) < min_words or FILLER in mine:
            continue
        if all(jaccard(mine, other) < 0.5 for other in chosen_sets):
            chosen.append(text)
            chosen_sets.append(mine)
        if len(chosen) == count:
            break
    return chosen


def leaks_into(text: str, real: Sequence[frozenset[str]], threshold: float) -> bool:
    """Brute force; Jaccard >= t needs the smaller set to hold >= t of the larger one, so
    only real texts of similar size are compared."""
    mine = words(text)
    for theirs in real:
        small, large = sorted((len(mine), len(theirs)))
        if small >= threshold * large and jaccard(mine, theirs) >= threshold:
            return True
    return False


def replace_one_word(text: str) -> str:
    tokens = text.split()
    tokens[len(tokens) // 2] = FILLER
    return " ".join(tokens)


def replace_five_words(text: str) -> str:
    tokens = text.split()
    for offset in (1, 3, 5, 7, 9):
        tokens[offset] = f"{FILLER}{offset}"
    return " ".join(tokens)


def swap_words(text: str) -> str:
    """Swap the first two different words, so the normalised form changes but not the set
    of words."""
    tokens = normalize(text).split()
    second = next(i for i, token in enumerate(tokens) if token != tokens[0])
    tokens[0], tokens[second] = tokens[second], tokens[0]
    return " ".join(tokens)


def restyle(text: str) -> str:
    return "  " + text.upper().replace(", ", " ,  ").rstrip(".!?") + "!!! "


@pytest.fixture(scope="module")
def distinct(cedr_train: LabeledData) -> list[str]:
    chosen = pick_distinct(cedr_train.texts, 200, min_words=15)
    assert len(chosen) == 200
    return chosen


@pytest.fixture(scope="module")
def planted(distinct: list[str]) -> dict[str, list[str]]:
    """200 distinct originals, then 20 restyled exact copies, 20 one-word replacements,
    20 word swaps and 10 five-word rewrites (Jaccard well below 0.8: must survive)."""
    return {
        "originals": distinct,
        "exact": [restyle(t) for t in distinct[:20]],
        "replaced": [replace_one_word(t) for t in distinct[20:40]],
        "swapped": [swap_words(t) for t in distinct[40:60]],
        "rewritten": [replace_five_words(t) for t in distinct[60:70]],
    }


def all_texts(planted: dict[str, list[str]]) -> list[str]:
    return [text for group in planted.values() for text in group]


def test_planted_variants_have_the_intended_similarity(planted: dict[str, list[str]]) -> None:
    originals = planted["originals"]
    for copy, original in zip(planted["exact"], originals, strict=False):
        assert normalize(copy) == normalize(original) and copy != original
    for copy, original in zip(planted["replaced"], originals[20:], strict=False):
        assert 0.8 <= jaccard(words(copy), words(original)) < 1
    for copy, original in zip(planted["swapped"], originals[40:], strict=False):
        assert normalize(copy) != normalize(original)
    for copy, original in zip(planted["rewritten"], originals[60:], strict=False):
        assert jaccard(words(copy), words(original)) < 0.75


def test_distinct_real_sentences_all_survive(planted: dict[str, list[str]]) -> None:
    texts = planted["originals"]
    keep = np.ones(len(texts), dtype=bool)
    for stage in (ExactDedup(), MinHashDedup(), MinHashDedup(shingles="char")):
        result = stage.run(texts, keep)
        assert result.removed == 0, result.examples()
        assert result.keep.all()


def test_exact_stage_counts(planted: dict[str, list[str]]) -> None:
    texts = all_texts(planted)
    result = ExactDedup().run(texts, np.ones(len(texts), dtype=bool))
    assert (result.checked, result.removed) == (len(texts), 20)
    assert {d.position for d in result.duplicates} == set(range(200, 220))
    assert all(d.match.position == d.position - 200 for d in result.duplicates)
    assert len(result.examples()) == 5


def test_minhash_stage_counts(planted: dict[str, list[str]]) -> None:
    texts = all_texts(planted)
    result = MinHashDedup().run(texts, np.ones(len(texts), dtype=bool))
    # Exact copies are near-duplicates too (Jaccard 1); five-word rewrites are not.
    assert result.removed == 60
    assert {d.position for d in result.duplicates} == set(range(200, 260))
    for d in result.duplicates:
        assert d.match.position is not None
        assert d.match.score >= 0.8
        assert d.match.position == d.position - 200


def test_minhash_respects_the_incoming_mask(planted: dict[str, list[str]]) -> None:
    texts = all_texts(planted)
    keep = np.ones(len(texts), dtype=bool)
    keep[20:40] = False  # the originals of the replaced copies are already gone
    result = MinHashDedup().run(texts, keep)
    assert result.removed == 40
    assert result.keep[220:240].all()
    assert not result.keep[20:40].any()


def test_pipeline_attributes_each_removal_to_the_first_stage(
    planted: dict[str, list[str]],
) -> None:
    texts = all_texts(planted)
    data = from_frame(pd.DataFrame({"text": texts, "label": "joy"}))
    result = Deduplicator([ExactDedup(), MinHashDedup()]).run(data)
    counts = {stage.name: stage.removed for stage in result.stages}
    assert counts == {"exact": 20, "minhash": 40}
    assert len(result.data) == len(texts) - 60
    assert set(result.data.texts) >= set(planted["originals"]) | set(planted["rewritten"])
    assert list(result.removed["stage"]) == ["exact"] * 20 + ["minhash"] * 40
    assert result.contradictions == 0


def test_char_shingles_find_the_same_planted_duplicates(planted: dict[str, list[str]]) -> None:
    texts = all_texts(planted)
    result = MinHashDedup(threshold=0.7, shingles="char", ngram=5).run(
        texts, np.ones(len(texts), dtype=bool)
    )
    assert {d.position for d in result.duplicates} == set(range(200, 260))


def test_batch_pairs_match_brute_force(cedr_train: LabeledData) -> None:
    """On real CEDR (which has its own near-duplicates) LSH + verification finds every pair
    brute force finds at Jaccard >= 0.9, where LSH recall is ~1."""
    forms = sorted({normalize(t) for t in cedr_train.texts[:1500]} - {""})
    sets = [frozenset(f.split()) for f in forms]
    truth = {
        (a, b)
        for a in range(len(sets))
        for b in range(a + 1, len(sets))
        if jaccard(sets[a], sets[b]) >= 0.9
    }
    found = set(candidate_pairs([sorted(s) for s in sets], 128, lsh_bands(0.9, 128), 42, "auto"))
    assert truth <= found


def test_leak_check_flags_edited_copies_of_test_sentences(
    cedr_test: LabeledData, planted: dict[str, list[str]]
) -> None:
    real = cedr_test.texts
    sources = pick_distinct(real, 15, min_words=10)
    dropped = [" ".join(t.split()[:2] + t.split()[3:]) for t in sources[:10]]
    leaks = dropped + [restyle(t) for t in sources[10:]]
    synthetic = planted["originals"] + leaks
    # Ground truth by brute force: the distinct train sentences may themselves echo test ones.
    real_sets = [words(t) for t in real]
    echoes = sum(leaks_into(t, real_sets, 0.7) for t in planted["originals"])
    stage = RealLeakCheck(real)
    result = stage.run(synthetic, np.ones(len(synthetic), dtype=bool))
    assert result.removed == result.flagged == echoes + 15
    flagged = {d.position for d in result.duplicates}
    assert set(range(200, 215)) <= flagged
    assert all(d.match.position is None and d.match.text in set(real) for d in result.duplicates)

    only_flag = RealLeakCheck(real, drop=False).run(synthetic, np.ones(len(synthetic), bool))
    assert (only_flag.removed, only_flag.flagged) == (0, echoes + 15)
    assert only_flag.keep.all()


def test_leak_check_runs_first_when_real_data_is_given(
    cedr_test: LabeledData, cedr_train: LabeledData
) -> None:
    copy = cedr_test.texts[0]
    texts = [copy.upper(), copy, *pick_distinct(cedr_train.texts, 5, min_words=8)]
    data = from_frame(pd.DataFrame({"text": texts, "label": "joy"}))
    result = deduplicate(data, real=cedr_test)
    counts = {stage.name: stage.removed for stage in result.stages}
    assert counts == {"real-leak": 2, "exact": 0, "minhash": 0}


def test_same_text_under_two_labels_is_a_contradiction(distinct: list[str]) -> None:
    texts = [distinct[0], distinct[1], distinct[0].lower(), replace_one_word(distinct[1])]
    labels = ["joy", "fear", "anger", "fear"]
    data = from_frame(pd.DataFrame({"text": texts, "label": labels}))
    stages = [ExactDedup(), MinHashDedup()]

    across = Deduplicator(stages, across_labels=True).run(data)
    assert across.data.texts == texts[:2]
    assert across.contradictions == 1
    assert across.removed["duplicate_label"].tolist() == ["joy", "fear"]

    within = Deduplicator(stages, across_labels=False).run(data)
    assert within.data.texts == texts[:3]
    assert within.contradictions == 0


def test_incremental_agrees_with_batch(planted: dict[str, list[str]]) -> None:
    texts = all_texts(planted)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    texts = [texts[i] for i in order]
    labels = [("joy", "fear")[i % 2] for i in range(len(texts))]
    data = from_frame(pd.DataFrame({"text": texts, "label": labels}))
    for across in (True, False):
        stages = [ExactDedup(), MinHashDedup(), MinHashDedup(threshold=0.6, shingles="char")]
        batch = Deduplicator(stages, across_labels=across).run(data)
        stream = IncrementalDedup(stages, across_labels=across)
        survived = [stream.add(t, label) for t, label in zip(texts, labels, strict=True)]
        assert stream.accepted == batch.data.texts
        assert sum(survived) == len(batch.data)
        assert stream.stats.removed == {s.name: s.removed for s in batch.stages if s.removed}
        assert stream.stats.contradictions == batch.contradictions


def test_incremental_leak_check(cedr_test: LabeledData) -> None:
    stream = IncrementalDedup(build_stages(DedupConfig(), real=cedr_test.texts[:500]))
    assert not stream.add(cedr_test.texts[3] + "!!")
    assert stream.add("Совершенно новая фраза, которой нет в данных.")
    assert not stream.add("совершенно новая фраза которой нет в данных")
    assert stream.stats.removed == {"real-leak": 1, "exact": 1}


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return build_encoder()


def test_embedding_catches_a_sentence_with_one_word_dropped(
    cedr_train: LabeledData, encoder: Encoder
) -> None:
    long = [t for t in cedr_train.texts if len(t.split()) >= 12][1:4]
    shortened = [" ".join(t.split()[:5] + t.split()[6:]) for t in long]
    unrelated = pick_distinct(cedr_train.texts[1000:], 3, min_words=6)
    texts = long + unrelated + shortened
    stage = EmbeddingDedup(encoder=encoder)
    result = stage.run(texts, np.ones(len(texts), dtype=bool))
    assert {d.position for d in result.duplicates} == {6, 7, 8}
    assert all(d.match.score >= 0.92 for d in result.duplicates)

    stream = IncrementalDedup([stage])
    assert [stream.add(t) for t in texts] == [True] * 6 + [False] * 3
    chunked = IncrementalDedup([stage])  # a shortened copy meets its original in either batch
    assert chunked.add_many(texts[:4]) + chunked.add_many(texts[4:]) == [True] * 6 + [False] * 3


def test_report_and_summary(planted: dict[str, list[str]], tmp_path: Path) -> None:
    texts = all_texts(planted)
    data = from_frame(pd.DataFrame({"text": texts, "label": "joy"}))
    config = DedupConfig()
    result = deduplicate(data, build_stages(config))
    path = write_dedup_report(result, tmp_path / "dedup.json", config)
    report = json.loads(path.read_text(encoding="utf-8"))
    assert (report["total"], report["kept"], report["removed"]) == (270, 210, 60)
    assert [s["removed"] for s in report["stages"]] == [20, 40]
    assert all(len(s["examples"]) == 5 for s in report["stages"])
    assert report["config"]["minhash_threshold"] == 0.8
    summary = result.summary()
    assert "exact: removed 20 of 270" in summary
    assert "minhash: removed 40 of 250" in summary


def test_shingles_and_bands() -> None:
    assert shingle("а б в", "word", 2) == ["а б", "б в"]
    assert shingle("ab", "char", 5) == ["ab"]
    assert shingle("", "word") == []
    assert lsh_bands(0.8, 128) == 16
    assert lsh_bands(0.7, 128) == 32


def test_normal_parts_agree_with_normalize(
    cedr_train: LabeledData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One table lookup per character; "ß" and "İ" fold to two characters and take the
    # casefold-first path, a newline inside a text the per-text one.
    odd = ["Ёлка,\tмама!", "  ", "ПРИВЕТ\u00a0мир...", "ǅ ΣΑΣ ς 🙂 1,5 )))", "\ud800x"]
    widening = ["ß_ü", "İstanbul"]
    real = cedr_train.texts[:3000]
    cases = [real + odd, real + odd + widening, odd + widening + ["a\nb"]]
    # 40 texts in chunks of 4: only one chunk holds a newline (and 40 is past the per-text
    # path that small batches take).
    for chunk, texts in [(100_000, t) for t in cases] + [(4, [*odd, "a\nb", *real[:34]])]:
        monkeypatch.setattr(dedup_forms, "_NORMALISE_CHUNK", chunk)
        parts = normal_parts(texts)
        assert parts == [re.sub(r"[^\w\s]+", " ", t.casefold()) for t in texts]
        assert [" ".join(p.split()) for p in parts] == [normalize(t) for t in texts]
    assert [" ".join(p.split()) for p in normal_parts(odd[:2])] == ["ёлка мама", ""]


def test_datasketch_fallback_finds_the_same_duplicates(planted: dict[str, list[str]]) -> None:
    texts = planted["originals"][:60] + planted["replaced"] + planted["swapped"]
    keep = np.ones(len(texts), dtype=bool)
    fast = MinHashDedup(backend="rensa").run(texts, keep)
    slow = MinHashDedup(backend="datasketch").run(texts, keep)
    assert [d.position for d in slow.duplicates] == [d.position for d in fast.duplicates]
    assert slow.removed == 40
    stream = IncrementalDedup([MinHashDedup(backend="datasketch")])
    assert sum(stream.add(t) for t in texts) == 60


# ------------------------------------------------------------ batch vs incremental, real data


@pytest.fixture(scope="module")
def rusentiment_sample() -> LabeledData:
    """3000 real RuSentiment posts: greetings and reposts make them rich in natural exact and
    near duplicates, some of them under different labels."""
    path = SHARED_DATASETS / "rusentiment" / "train.csv"
    if not path.exists():
        pytest.skip("shared RuSentiment not available")
    data = load_labeled(path)
    return data.subset(np.random.default_rng(0).permutation(len(data))[:3000])


def test_batch_and_incremental_keep_the_same_texts_on_real_data(
    rusentiment_sample: LabeledData,
) -> None:
    data = rusentiment_sample
    texts, labels = data.texts, list(data.labels)
    real = load_labeled(SHARED_DATASETS / "rusentiment" / "test.csv").texts
    for across in (True, False):
        stages = build_stages(DedupConfig(minhash_threshold=0.7, shingles="char"), real)
        stages.append(MinHashDedup(threshold=0.6, name="minhash-word"))
        batch = Deduplicator(stages, across_labels=across).run(data)
        one_by_one = IncrementalDedup(stages, across_labels=across)
        for text, label in zip(texts, labels, strict=True):
            one_by_one.add(text, label)
        chunked = IncrementalDedup(stages, across_labels=across)
        for start in range(0, len(texts), 500):  # add_many: batches past the small-batch paths
            chunked.add_many(texts[start : start + 500], labels[start : start + 500])
        removed = {s.name: s.removed for s in batch.stages if s.removed}
        assert set(removed) == {"real-leak", "exact", "minhash-char", "minhash-word"}
        assert sum(removed.values()) > 100
        for stream in (one_by_one, chunked):
            assert stream.accepted == batch.data.texts
            assert stream.accepted_labels == list(batch.data.labels)
            assert stream.stats.removed == removed
            assert stream.stats.contradictions == batch.contradictions
        assert batch.contradictions > 0 or not across


# ------------------------------------------------------------------------ stage registry


class KeepShort(Stage):
    """Drops texts longer than `limit` characters (matched to no text: position None)."""

    name = "too-long"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def index(self) -> StageIndex:
        return TooLongIndex(self.limit)


class TooLongIndex:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.texts: Sequence[str] = []

    def open(self, texts: Sequence[str], keys: Sequence[int]) -> np.ndarray:
        self.texts = texts
        return np.array([len(t) > self.limit for t in texts], dtype=bool)

    def match(self, position: int) -> Match | None:
        text = self.texts[position]
        return Match(text, None, 1.0) if len(text) > self.limit else None

    def accept(self, position: int) -> None:
        return None

    def close(self, kept: np.ndarray) -> None:
        return None


def too_long_factory(context: StageContext) -> KeepShort:
    return KeepShort(**context.options("too-long"))


def test_a_stage_registered_at_runtime_is_used_by_the_config(
    distinct: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dedup_registry.STAGES, "_entries", dict(dedup_registry.STAGES._entries))
    register_stage("too-long", too_long_factory)
    limit = sorted(len(t) for t in distinct[:20])[10]
    texts = [*distinct[:20], distinct[0].upper()]
    data = from_frame(pd.DataFrame({"text": texts, "label": "joy"}))
    config = DedupConfig(stages=["exact", "too-long"], options={"too-long": {"limit": limit}})
    stages = build_stages(config)
    assert [s.name for s in stages] == ["exact", "too-long"]
    result = Deduplicator(stages).run(data)
    assert {s.name: s.removed for s in result.stages} == {"exact": 1, "too-long": 9}
    assert all(len(t) <= limit for t in result.data.texts)
    stream = IncrementalDedup(stages)
    assert [stream.add(t) for t in texts] == [len(t) <= limit for t in distinct[:20]] + [False]


def test_a_stage_from_an_installed_plugin_is_found_by_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real distribution on sys.path: its entry_points.txt names the factory."""
    package = tmp_path / "dedup_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from test_dedup import KeepShort\n\n"
        "def make(context):\n    return KeepShort(**context.options('plugin-long'))\n",
        encoding="utf-8",
    )
    info = tmp_path / "dedup_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: dedup-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[synthmix.dedup_stages]\nplugin-long = dedup_plugin:make\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(dedup_registry.STAGES, "_entries", dict(dedup_registry.STAGES._entries))
    monkeypatch.setattr(dedup_registry.STAGES, "_plugins_loaded", False)
    assert "plugin-long" in available_stages()
    config = DedupConfig(stages=["plugin-long"], options={"plugin-long": {"limit": 10}})
    stream = IncrementalDedup(build_stages(config))
    assert [stream.add(t) for t in ("short", "much longer than ten")] == [True, False]


def test_an_unknown_stage_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        DedupConfig(stages=["exact", "minhsah"])
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        "unknown dedup stage 'minhsah' (available: embedding, exact, minhash, real-leak)"
    )
    with pytest.raises(ConfigError, match=r"options\.minhash: built-in stages take"):
        DedupConfig(options={"minhash": {"threshold": 0.5}})


def test_switches_and_order_of_named_stages(cedr_test: LabeledData) -> None:
    real = cedr_test.texts[:50]
    names = lambda config: [s.name for s in build_stages(config, real)]  # noqa: E731
    assert names(DedupConfig()) == ["real-leak", "exact", "minhash"]
    assert names(DedupConfig(stages=["minhash", "exact"])) == ["real-leak", "minhash", "exact"]
    assert names(DedupConfig(stages=["exact", "real-leak"])) == ["exact", "real-leak"]
    assert names(DedupConfig(exact=False, leak_check=False)) == ["minhash"]
    assert [s.name for s in build_stages(DedupConfig(stages=["exact", "real-leak"]))] == ["exact"]
    assert "stages" not in DedupConfig().to_dict()  # reports of default configs unchanged


def test_an_unknown_stage_in_a_plan_names_the_file_and_key(tmp_path: Path) -> None:
    from synthmix.generation.plan import load_plan

    (tmp_path / "card.yaml").write_text("task: t\nclasses: {a: {description: d}}\n", "utf-8")
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "card: card.yaml\nout: s.csv\nper_class: 2\ngenerators: [{}]\n"
        "dedup: {stages: [minhash, exakt]}\n",
        "utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_plan(plan)
    assert str(caught.value) == (
        f"{plan}: dedup: unknown dedup stage 'exakt' "
        "(available: embedding, exact, minhash, real-leak)"
    )
