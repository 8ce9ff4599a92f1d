from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from synthmix.core.errors import ConfigError
from synthmix.embeddings.encoder import (
    CachedEncoder,
    SentenceTransformerEncoder,
    USEMultilingualEncoder,
)


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


class OnesEncoder:
    name = "ones"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), 8), dtype=np.float32)


WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from synthmix.embeddings.encoder import CachedEncoder

class OnesEncoder:
    name = "ones"
    def encode(self, texts):
        return np.ones((len(texts), 8), dtype=np.float32)

path, worker, start = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
start.with_suffix(f".{worker}").touch()  # imported, ready to write
while not start.exists():
    time.sleep(0.005)
for batch in range(150):
    # Read, miss, write: what each grid worker does with its texts.
    own = [f"{worker}-{batch}-{i}" for i in range(20)]
    CachedEncoder(OnesEncoder(), path).encode(own + [f"shared-{batch}-{i}" for i in range(20)])
"""


def test_two_processes_write_one_cache_without_locking_errors(tmp_path: Path) -> None:
    """Two workers write the same cache at once while a third connection holds the write lock
    longer than sqlite's default 5 s wait: both wait their turn and every vector lands."""
    path, start = tmp_path / "vectors.sqlite", tmp_path / "start"
    CachedEncoder(OnesEncoder(), path).encode(["created"])
    workers = ("a", "b")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), worker, str(start)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in workers
    ]
    deadline = time.monotonic() + 60
    while not all(start.with_suffix(f".{w}").exists() for w in workers):
        assert time.monotonic() < deadline, "writers did not start"
        time.sleep(0.01)
    with sqlite3.connect(path, timeout=60, isolation_level=None) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        start.touch()
        time.sleep(6)
        blocker.execute("COMMIT")
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [p.returncode for p in processes] == [0, 0], errors
    with sqlite3.connect(path) as db:
        (rows,) = db.execute("SELECT COUNT(*) FROM vectors").fetchone()
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    assert rows == 1 + 2 * 150 * 20 + 150 * 20
    assert mode == "wal"
