"""Mixing arithmetic: the class counts of every plan, computed by hand.

The 'synthetic' source here is the real CEDR test split standing in for generated texts: the
arithmetic does not care where texts came from, and the labels stay real.
"""

from __future__ import annotations

import pytest

from synthmix.data.labeled import LabeledData, sample_per_class
from synthmix.experiment.mixing import (
    HALF_AND_HALF,
    REAL_ONLY,
    REAL_PLUS_EQUAL,
    SMALL_REAL_PLUS_COUNT,
    SMALL_REAL_PLUS_SYNTHETIC,
    SYNTHETIC_ONLY,
    Cell,
    PlanConfig,
    compose,
    plan_cells,
)

REAL_COUNTS = {"anger": 5, "fear": 7, "joy": 21, "no_emotion": 50, "sadness": 15, "surprise": 9}


@pytest.fixture(scope="module")
def real(cedr_train: LabeledData) -> LabeledData:
    return sample_per_class(cedr_train, REAL_COUNTS, seed=0)


def counts(cell: Cell, real: LabeledData, synthetic: LabeledData, seed: int = 0) -> tuple:
    mix = compose(cell, real, synthetic, seed)
    assert sum(mix.real_counts.values()) + sum(mix.synthetic_counts.values()) == len(mix.data)
    return mix.real_counts, mix.synthetic_counts


# Half-up rounding: 0.1 * 15 = 1.5 -> 2, 0.5 * 21 = 10.5 -> 11, 0.25 * 50 = 12.5 -> 13.
TEN_PERCENT = {"anger": 1, "fear": 1, "joy": 2, "no_emotion": 5, "sadness": 2, "surprise": 1}


@pytest.mark.parametrize(
    ("cell", "expected_real", "expected_synthetic"),
    [
        (Cell(REAL_ONLY, 0.1), TEN_PERCENT, {}),
        (Cell(REAL_ONLY, 1.0), REAL_COUNTS, {}),
        (Cell(SYNTHETIC_ONLY, 0.0, 1.0, "s"), {}, REAL_COUNTS),
        (
            Cell(HALF_AND_HALF, 0.5, 0.5, "s"),
            {"anger": 3, "fear": 4, "joy": 11, "no_emotion": 25, "sadness": 8, "surprise": 5},
            {"anger": 2, "fear": 3, "joy": 10, "no_emotion": 25, "sadness": 7, "surprise": 4},
        ),
        (Cell(REAL_PLUS_EQUAL, 1.0, 1.0, "s"), REAL_COUNTS, REAL_COUNTS),
        (
            Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 0.25, "s"),
            TEN_PERCENT,
            {"anger": 1, "fear": 2, "joy": 5, "no_emotion": 13, "sadness": 4, "surprise": 2},
        ),
        (
            Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 0.75, "s"),
            TEN_PERCENT,
            {"anger": 4, "fear": 5, "joy": 16, "no_emotion": 38, "sadness": 11, "surprise": 7},
        ),
        (Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 1.0, "s"), TEN_PERCENT, REAL_COUNTS),
    ],
)
def test_class_counts_of_every_plan(
    real: LabeledData,
    cedr_test: LabeledData,
    cell: Cell,
    expected_real: dict[str, int],
    expected_synthetic: dict[str, int],
) -> None:
    got_real, got_synthetic = counts(cell, real, cedr_test)
    assert got_real == expected_real
    assert got_synthetic == expected_synthetic


def test_half_and_half_keeps_the_real_total(real: LabeledData, cedr_test: LabeledData) -> None:
    mix = compose(Cell(HALF_AND_HALF, 0.5, 0.5, "s"), real, cedr_test, seed=4)
    assert mix.data.class_counts() == REAL_COUNTS


def test_shortfall_when_the_source_is_too_small(
    cedr_train: LabeledData, cedr_test: LabeledData
) -> None:
    mix = compose(Cell(REAL_PLUS_EQUAL, 1.0, 1.0, "s"), cedr_train, cedr_test, seed=0)
    assert mix.synthetic_counts == cedr_test.class_counts()
    assert mix.shortfall == {
        label: cedr_train.class_counts()[label] - n for label, n in cedr_test.class_counts().items()
    }
    assert mix.shortfall["anger"] == 384 - 121


def test_small_real_sample_is_shared_with_the_learning_curve(
    real: LabeledData, cedr_test: LabeledData
) -> None:
    """The zero-synthetic point of a curve must be the same real texts, or the curve mixes
    sampling noise into the effect of synthetic data."""
    alone = compose(Cell(REAL_ONLY, 0.1), real, None, seed=7).data.frame
    mixed = compose(Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 0.5, "s"), real, cedr_test, seed=7)
    mixed_real = mixed.data.frame[mixed.data.frame["origin"] == "real"]
    assert sorted(mixed_real["text"]) == sorted(alone["text"])


def test_seeds_change_the_sample(real: LabeledData, cedr_test: LabeledData) -> None:
    cell = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 0.5, "s")
    assert sorted(compose(cell, real, cedr_test, 0).data.texts) != sorted(
        compose(cell, real, cedr_test, 1).data.texts
    )
    assert (
        compose(cell, real, cedr_test, 1).data.texts == compose(cell, real, cedr_test, 1).data.texts
    )


def test_plan_cells_enumerates_the_grid() -> None:
    cells = plan_cells(PlanConfig(), ["a", "b"])
    real_fractions = [c.real_fraction for c in cells if c.plan == REAL_ONLY]
    assert real_fractions == [0.05, 0.1, 0.2, 0.5, 1.0]
    assert len(cells) == 5 + 2 * (3 + 4)
    assert len({c.key for c in cells}) == len(cells)
    small = [
        c.synthetic_ratio for c in cells if c.plan == SMALL_REAL_PLUS_SYNTHETIC and c.source == "a"
    ]
    assert small == [0.25, 0.5, 0.75, 1.0]


def test_plan_cells_always_has_the_references() -> None:
    plans = PlanConfig(learning_curve=[0.3], small_real_fraction=0.15)
    fractions = [c.real_fraction for c in plan_cells(plans, ["a"]) if c.plan == REAL_ONLY]
    assert fractions == [0.15, 0.3, 1.0]
    no_sources = [c.real_fraction for c in plan_cells(plans, [])]
    assert no_sources == [0.3, 1.0]


def test_titles() -> None:
    assert Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 0.25, "s").title == "10% real + 25% synthetic"
    assert Cell(REAL_ONLY, 0.05).title == "5% real"
    assert Cell(HALF_AND_HALF, 0.5, 0.5, "s").title == "half real + half synthetic"


def test_deriver_sees_only_the_cells_real_sample(real: LabeledData) -> None:
    """Synthetic texts derived for a '10% real' cell must come from those 10% only; deriving
    them from all real data would leak the other 90% into the cell."""
    seen: list[LabeledData] = []

    def deriver(visible: LabeledData, per_class: int, seed: int) -> LabeledData:
        seen.append(visible)
        return visible  # the visible texts themselves stand in for derived ones

    mix = compose(Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 1.0, "s"), real, deriver, seed=2)
    real_texts = mix.data.frame.loc[mix.data.frame["origin"] == "real", "text"]
    assert sorted(seen[0].texts) == sorted(real_texts)
    assert mix.shortfall == {k: n - TEN_PERCENT[k] for k, n in REAL_COUNTS.items()}

    compose(Cell(SYNTHETIC_ONLY, 0.0, 1.0, "s"), real, deriver, seed=2)
    assert len(seen[1]) == len(real)


def test_fixed_count_plan(real: LabeledData, cedr_test: LabeledData) -> None:
    cell = Cell(SMALL_REAL_PLUS_COUNT, 0.1, 0.0, "s", synthetic_count=4)
    got_real, got_synthetic = counts(cell, real, cedr_test)
    assert got_real == TEN_PERCENT
    assert got_synthetic == {label: 4 for label in REAL_COUNTS}
    assert cell.title == "10% real + 4 synthetic per class"
    assert cell.key == "small_real_plus_count|s|0.1|n=4"


def test_sources_can_be_limited_to_some_plans() -> None:
    plans = PlanConfig(learning_curve=[1.0], synthetic_counts=[10, 20])
    cells = plan_cells(plans, ["eda", "llm"], {"llm": [SMALL_REAL_PLUS_COUNT]})
    llm = [c.key for c in cells if c.source == "llm"]
    assert llm == ["small_real_plus_count|llm|0.1|n=10", "small_real_plus_count|llm|0.1|n=20"]
    eda_plans = {c.plan for c in cells if c.source == "eda"}
    assert eda_plans == {
        SYNTHETIC_ONLY,
        HALF_AND_HALF,
        REAL_PLUS_EQUAL,
        SMALL_REAL_PLUS_SYNTHETIC,
        SMALL_REAL_PLUS_COUNT,
    }


def test_cells_with_one_real_sample_and_seed_reuse_one_augmentation(real: LabeledData) -> None:
    """ "10% real + 25/50/75/100% EDA" augment their shared real sample once, at the largest
    count asked for; each cell's texts are what augmenting for its own counts would give."""
    from synthmix.experiment.sources import DerivedSource, ReusedAugmentations

    source = DerivedSource("eda", {"alpha": 0.1})
    calls: list[dict[str, int]] = []

    class Counting(DerivedSource):
        def __call__(self, visible, per_class, seed):  # type: ignore[no-untyped-def]
            calls.append(dict(per_class))
            return super().__call__(visible, per_class, seed)

    reused = ReusedAugmentations(Counting("eda", {"alpha": 0.1}))
    cells = [Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, ratio, "eda") for ratio in (1.0, 0.5, 0.25)]
    mixes = [compose(cell, real, reused, seed=3) for cell in cells]
    assert len(calls) == 1  # the 100% cell's request, the largest, served the others
    direct = compose(cells[1], real, source, seed=3)  # augmenting for this cell alone
    assert mixes[1].data.frame.equals(direct.data.frame)
    assert mixes[1].synthetic_counts == {k: round(0.5 * n + 1e-9) for k, n in REAL_COUNTS.items()}
    compose(cells[0], real, reused, seed=4)  # another seed: another augmentation
    assert len(calls) == 2


def test_a_derived_source_augments_each_class_only_as_far_as_the_cell_needs(
    real: LabeledData,
) -> None:
    seen: list[object] = []

    def deriver(visible: LabeledData, per_class: object, seed: int) -> LabeledData:
        seen.append(per_class)
        return visible

    compose(Cell(HALF_AND_HALF, 0.5, 0.5, "s"), real, deriver, seed=0)
    # n - round_half_up(n / 2) per class, not the largest class's count for every class
    assert seen == [
        {"anger": 2, "fear": 3, "joy": 10, "no_emotion": 25, "sadness": 7, "surprise": 4}
    ]
