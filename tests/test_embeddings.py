from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from synthmix.embeddings import CachedEncoder, SentenceTransformerEncoder, USEMultilingualEncoder
from synthmix.errors import ConfigError


class CountingEncoder:
    """The real offline encoder, counting how many texts it was asked to embed."""

    def __init__(self) -> None:
        self.inner = USEMultilingualEncoder()
        self.name = self.inner.name
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self.inner.encode(texts)


PARAPHRASES = ["Привет, как дела?", "Здравствуйте, как вы поживаете?"]
UNRELATED = "Центробанк повысил ключевую ставку до 16 процентов."


def test_offline_encoder_gives_meaningful_normalised_vectors() -> None:
    vectors = USEMultilingualEncoder().encode([*PARAPHRASES, UNRELATED])
    assert vectors.shape == (3, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.5 > similarity[0, 2] + 0.3


def test_each_unique_text_is_embedded_once_and_persisted(tmp_path: Path) -> None:
    counting = CountingEncoder()
    cache = CachedEncoder(counting, tmp_path / "vectors.sqlite")
    first = cache.encode([*PARAPHRASES, PARAPHRASES[0]])
    assert counting.calls == [2]
    again = cache.encode([PARAPHRASES[1], UNRELATED])
    assert counting.calls == [2, 1]
    assert np.allclose(again[0], first[1])

    fresh_counting = CountingEncoder()
    reopened = CachedEncoder(fresh_counting, tmp_path / "vectors.sqlite")
    vectors = reopened.encode([*PARAPHRASES, UNRELATED])
    assert fresh_counting.calls == []
    assert np.allclose(vectors[:2], first[:2])


def test_hub_encoder_without_the_package_is_a_clear_error() -> None:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="needs sentence-transformers"):
            SentenceTransformerEncoder("cointegrated/rubert-tiny2").encode(["текст"])
    else:
        pytest.skip("sentence-transformers is installed; loading a hub model needs internet")
