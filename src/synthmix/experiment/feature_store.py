"""The n-gram counts of every distinct text a run trains or tests on, computed once and kept
in the run directory: RUN_DIR/features/<spec key>/.

Each featurising pass appends one chunk (CSR arrays as .npy files plus its texts as JSON),
written under temporary names and listed in `manifest.json` only once complete, so a kill
mid-write leaves a store that simply lacks that chunk. Chunks are opened memory-mapped:
worker processes that open the same store share its pages instead of each holding a copy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from synthmix.classifiers.features import NgramSpec
from synthmix.experiment.run_dir import RunDir

MANIFEST = "manifest.json"
_ARRAYS = ("data", "indices", "indptr")


class FeatureStore:
    def __init__(self, folder: Path, spec: NgramSpec) -> None:
        self.folder = Path(folder)
        self.spec = spec
        self.chunks: list[sp.csr_matrix] = []
        self.row_of: dict[str, int] = {}
        self._offsets: list[int] = [0]
        for name in self._manifest():
            self._open_chunk(name)

    @classmethod
    def of_run(cls, run: RunDir, spec: NgramSpec) -> FeatureStore:
        return cls(run.features_dir / spec.key, spec)

    def __len__(self) -> int:
        return self._offsets[-1]

    def missing(self, texts: Sequence[str]) -> list[str]:
        """Distinct texts not yet stored, in first-seen order."""
        return [text for text in dict.fromkeys(texts) if text not in self.row_of]

    def add(
        self,
        texts: Sequence[str],
        featurise: Callable[[list[str]], sp.csr_matrix] | None = None,
    ) -> int:
        """Count and store the texts not yet stored; returns how many were counted.
        `featurise` (default: the spec's counts) may spread the work over processes."""
        new = self.missing(texts)
        if not new:
            return 0
        counts = (featurise or self.spec.counts)(new)
        name = f"chunk-{len(self.chunks):04d}"
        self.folder.mkdir(parents=True, exist_ok=True)
        for field in _ARRAYS:
            _write_atomic(self.folder / f"{name}.{field}.npy", getattr(counts, field))
        texts_path = self.folder / f"{name}.texts.json"
        _write_text_atomic(texts_path, json.dumps(new, ensure_ascii=False))
        _write_text_atomic(
            self.folder / MANIFEST,
            json.dumps({"spec": self.spec.key, "chunks": [*self._manifest(), name]}),
        )
        self._open_chunk(name)
        return len(new)

    def rows(self, texts: Sequence[str]) -> np.ndarray:
        """Store rows of `texts` (all must be stored)."""
        return np.fromiter((self.row_of[text] for text in texts), dtype=np.int64, count=len(texts))

    def select(self, rows: np.ndarray) -> sp.csr_matrix:
        """The counts of `rows`, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(self.chunks) == 1:
            return self.chunks[0][rows]
        chunk_of = np.searchsorted(self._offsets, rows, side="right") - 1
        parts, positions = [], []
        for index, chunk in enumerate(self.chunks):
            mine = np.flatnonzero(chunk_of == index)
            if len(mine):
                parts.append(chunk[rows[mine] - self._offsets[index]])
                positions.append(mine)
        stacked = sp.vstack(parts, format="csr")
        order = np.empty(len(rows), dtype=np.int64)
        order[np.concatenate(positions)] = np.arange(len(rows))
        return stacked[order]

    def _manifest(self) -> list[str]:
        path = self.folder / MANIFEST
        if not path.exists():
            return []
        names: list[str] = json.loads(path.read_text(encoding="utf-8"))["chunks"]
        return names

    def _open_chunk(self, name: str) -> None:
        arrays = [np.load(self.folder / f"{name}.{field}.npy", mmap_mode="r") for field in _ARRAYS]
        texts = json.loads((self.folder / f"{name}.texts.json").read_text(encoding="utf-8"))
        shape = (len(texts), 2 * self.spec.n_features)
        self.chunks.append(sp.csr_matrix(tuple(arrays), shape=shape, copy=False))
        start = self._offsets[-1]
        self.row_of.update((text, start + i) for i, text in enumerate(texts))
        self._offsets.append(start + len(texts))


def _write_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        np.save(handle, np.ascontiguousarray(array))
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
