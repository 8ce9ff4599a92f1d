"""Configs validated once at the edge: one line naming the file, the key and what is allowed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from synthmix.classifiers import registry
from synthmix.core.errors import ConfigError
from synthmix.core.plugins import Registry
from synthmix.experiment.config import parse_experiment
from synthmix.generation.plan import load_plan

BASE = {"name": "x", "data": {"train": "train.csv"}}


def _error(raw: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_experiment(raw, "exp.yaml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("exp.yaml: ")
    assert "pydantic" not in message and "__init__" not in message
    return message


def test_misspelt_classifier_parameter_names_the_allowed_ones() -> None:
    message = _error({**BASE, "classifier": {"params": {"imbalanse": "none"}}})
    assert "unknown parameter 'imbalanse'" in message
    assert "imbalance" in message.split("allowed:")[1]


def test_classifier_parameter_of_the_wrong_type() -> None:
    message = _error({**BASE, "classifier": {"params": {"C": "big"}}})
    assert "parameter 'C'" in message and "'big'" in message


def test_seed_is_not_a_classifier_parameter() -> None:
    message = _error({**BASE, "classifier": {"params": {"random_state": 3}}})
    assert "set per seed" in message


def test_unknown_classifier_lists_the_available_ones() -> None:
    message = _error({**BASE, "classifiers": [{"name": "tfidf_logreg"}, {"name": "bert"}]})
    assert "unknown classifier 'bert'" in message and "tfidf_logreg" in message


def test_nested_unknown_key_and_wrong_type_name_the_path() -> None:
    message = _error({**BASE, "data": {"train": "a.csv", "tset": "b.csv"}})
    assert "data: unknown key 'tset' (allowed: train, test," in message
    message = _error({**BASE, "sources": [{"name": "s", "path": "s.csv", "plans": 3}]})
    assert "sources[0].plans: expected" in message


def test_internal_fields_cannot_be_set_from_yaml() -> None:
    assert "unknown key 'base_dir'" in _error({**BASE, "base_dir": "/"})


def _plan(tmp_path: Path, dedup: str) -> Path:
    (tmp_path / "card.yaml").write_text("task: t\nclasses: {a: {description: d}}\n", "utf-8")
    path = tmp_path / "plan.yaml"
    path.write_text(
        f"card: card.yaml\nout: s.csv\nper_class: 2\ngenerators: [{{}}]\ndedup: {dedup}\n",
        "utf-8",
    )
    return path


def test_literal_settings_are_accepted_and_checked(tmp_path: Path) -> None:
    """`dedup: {shingles: char}` was refused by the hand-written coercion (every Literal was)."""
    assert load_plan(_plan(tmp_path, "{shingles: char}")).dedup.shingles == "char"
    with pytest.raises(ConfigError) as caught:
        load_plan(_plan(tmp_path, "{shingles: chars}"))
    assert "dedup.shingles: 'chars' is not allowed (use 'word' or 'char')" in str(caught.value)


def test_a_plugin_registers_through_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A third-party package's entry point (a real installed distribution's metadata on
    sys.path) makes its classifier selectable by name, like a built-in."""
    (tmp_path / "my_plugin.py").write_text(
        "from synthmix.classifiers.tfidf import TfidfLogReg\nclass Tiny(TfidfLogReg):\n    pass\n",
        "utf-8",
    )
    info = tmp_path / "my_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[synthmix.classifiers]\ntiny = my_plugin:Tiny\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fresh: Registry[registry.ClassifierFactory] = Registry("synthmix.classifiers", "classifier", {})
    monkeypatch.setattr(registry, "CLASSIFIERS", fresh)
    assert "tiny" in registry.available_classifiers()
    model = registry.build_classifier(registry.ClassifierConfig(name="tiny"), seed=0)
    assert type(model).__name__ == "Tiny"
    sys.modules.pop("my_plugin", None)


@pytest.mark.parametrize(
    ("plans", "expected"),
    [
        ({"learning_curve": [0.1, 1.5]}, "plans: learning_curve: 1.5 is not a fraction"),
        ({"small_real_fraction": 0}, "plans: small_real_fraction: 0.0 is not a fraction"),
        ({"synthetic_counts": [0]}, "plans: synthetic_counts: 0 must be >= 1"),
    ],
)
def test_plan_values_out_of_range_name_the_key(plans: dict[str, object], expected: str) -> None:
    assert expected in _error({**BASE, "plans": plans})


def test_cascade_mined_keywords_of_the_wrong_shape_are_one_line() -> None:
    from synthmix.cards.card import parse_card
    from synthmix.labeling.config import build_cascade, parse_config

    card = parse_card(
        {"task": "t", "language": "ru", "classes": [{"name": "a", "description": "d"}]}, "c"
    )
    config = parse_config({"stages": [{"type": "keywords", "params": {"mined": True}}]}, "c")
    with pytest.raises(ConfigError, match="'mined' must map each class to its keywords"):
        build_cascade(config, card)


def test_a_plan_can_force_redaction_on_for_a_loopback_server(tmp_path: Path) -> None:
    path = _plan(tmp_path, "{}")
    path.write_text(path.read_text() + "redaction: {enabled: true}\n", "utf-8")
    assert load_plan(path).redaction.enabled is True
    path.write_text(path.read_text().replace("enabled", "enabeld"), "utf-8")
    with pytest.raises(ConfigError, match="redaction: unknown key 'enabeld'"):
        load_plan(path)
