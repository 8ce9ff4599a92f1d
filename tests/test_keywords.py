from __future__ import annotations

import numpy as np
import pandas as pd

from synthmix.cards.keywords import log_odds_z, make_lemmatizer, mine_keywords
from synthmix.data.labeled import LabeledData, from_frame

CATS = [
    "Мои кошки спят на диване.",
    "Я покормил кошку утром.",
    "У соседа живёт рыжая кошка.",
    "Кошки любят спать на солнце.",
    "Вечером мы гуляли в парке.",
]
DOGS = [
    "Собаки громко лаяли во дворе.",
    "Я вывел собаку на прогулку.",
    "Эта собака охраняет дом.",
    "Собаку зовут Шарик, и она любит гулять.",
    "Вечером мы гуляли в парке.",
]


def _data() -> LabeledData:
    frame = pd.DataFrame({"text": CATS + DOGS, "label": ["cats"] * 5 + ["dogs"] * 5})
    return from_frame(frame)


def test_top_keyword_per_class_is_the_lemma() -> None:
    keywords = mine_keywords(_data(), language="ru", top_k=5, min_count=3)
    assert keywords["cats"][0][0] == "кошка"
    assert keywords["dogs"][0][0] == "собака"
    words = {w for pairs in keywords.values() for w, _ in pairs}
    assert not words & {"в", "на", "мы", "я"}  # stop words
    assert "гулять" not in {w for w, _ in keywords["cats"]}  # in both classes: not salient
    scores = [s for _, s in keywords["cats"]]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)


def test_min_count_filters_rare_words() -> None:
    keywords = mine_keywords(_data(), language="ru", top_k=20, min_count=4)
    assert [w for w, _ in keywords["cats"]] == ["кошка"]
    assert [w for w, _ in keywords["dogs"]] == ["собака"]


def test_lemmatizer_and_english_fallback() -> None:
    lemma = make_lemmatizer("ru")
    assert {lemma(w) for w in ("кошки", "кошку", "Кошкой")} == {"кошка"}
    frame = pd.DataFrame(
        {
            "text": ["I love cats", "cats are great", "the cats sleep", "dogs bark", "a dog"],
            "label": ["c", "c", "c", "d", "d"],
        }
    )
    keywords = mine_keywords(from_frame(frame), language="en", min_count=2)
    assert keywords["c"][0][0] == "cats" and keywords["d"] == []


def test_log_odds_is_symmetric_and_zero_for_equal_rates() -> None:
    prior = np.array([2.0, 2.0])
    z = log_odds_z(np.array([5.0, 5.0]), np.array([5.0, 5.0]), prior)
    assert np.allclose(z, 0.0)
    a, b = np.array([8.0, 2.0]), np.array([2.0, 8.0])
    assert np.allclose(log_odds_z(a, b, prior), -log_odds_z(b, a, prior))
