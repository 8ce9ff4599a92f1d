"""MinHash LSH back ends: rensa (native, fast) or datasketch where rensa is missing.

LSH only proposes candidates; the stages verify each candidate pair with the exact Jaccard
similarity of the two shingle sets. Exact verification is cheap for short texts and makes
the counts deterministic, where a 128-slot estimate wobbles by about ±0.035 around 0.8.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, Protocol

import numpy as np

from synthmix.core.errors import ConfigError

log = logging.getLogger("synthmix")

Backend = Literal["auto", "rensa", "datasketch"]
# LSH bands are chosen so a pair exactly at the threshold becomes a candidate with at least
# this probability; pairs above the threshold are found more often still.
LSH_TARGET_RECALL = 0.9
# Below this many texts, sketches are built one by one (the incremental path's batches).
_FEW_SKETCHES = 64


def lsh_bands(threshold: float, num_perm: int, target: float = LSH_TARGET_RECALL) -> int:
    """Fewest bands (fewest false candidates) among divisors of num_perm that make a pair at
    `threshold` a candidate with probability >= target."""
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
    for bands in (b for b in range(1, num_perm + 1) if num_perm % b == 0):
        rows = num_perm // bands
        if 1 - (1 - threshold**rows) ** bands >= target:
            return bands
    return num_perm


class LSHIndex(Protocol):
    """Keys are consecutive from 0 in order of insertion."""

    def add(self, key: int, shingles: list[str]) -> None: ...

    def add_many(self, shingle_sets: list[list[str]]) -> None: ...

    def query(self, shingles: list[str]) -> list[int]: ...

    def query_many(self, shingle_sets: list[list[str]]) -> list[list[int]]: ...


class RensaIndex:
    def __init__(self, num_perm: int, bands: int, seed: int) -> None:
        from rensa import RMinHash, RMinHashLSH

        self.num_perm, self.seed = num_perm, seed
        self._lsh = RMinHashLSH(0.5, num_perm, bands)  # threshold unused: only banding
        self._minhash = RMinHash
        self._size = 0

    def _sketch(self, shingles: list[str]) -> Any:
        sketch = self._minhash(self.num_perm, self.seed)
        sketch.update(shingles)
        return sketch

    def add(self, key: int, shingles: list[str]) -> None:
        self._lsh.insert(key, self._sketch(shingles))
        self._size = max(self._size, key + 1)

    def _sketches(self, shingle_sets: list[list[str]]) -> list[Any]:
        if len(shingle_sets) < _FEW_SKETCHES:  # from_token_sets costs ~250 µs to start
            return [self._sketch(shingles) for shingles in shingle_sets]
        return list(self._minhash.from_token_sets(shingle_sets, self.num_perm, self.seed))

    def add_many(self, shingle_sets: list[list[str]]) -> None:
        if not shingle_sets:
            return
        self._lsh.insert_many(self._sketches(shingle_sets), start_key=self._size)
        self._size += len(shingle_sets)

    def query(self, shingles: list[str]) -> list[int]:
        return list(self._lsh.query(self._sketch(shingles)))

    def query_many(self, shingle_sets: list[list[str]]) -> list[list[int]]:
        if not shingle_sets:
            return []
        return [list(keys) for keys in self._lsh.query_all(self._sketches(shingle_sets))]


class DatasketchIndex:
    def __init__(self, num_perm: int, bands: int, seed: int) -> None:
        from datasketch import MinHashLSH

        self.num_perm, self.seed = num_perm, seed
        self._lsh = MinHashLSH(num_perm=num_perm, params=(bands, num_perm // bands))
        self._size = 0

    def _sketch(self, shingles: list[str]) -> Any:
        from datasketch import MinHash

        sketch = MinHash(num_perm=self.num_perm, seed=self.seed)
        sketch.update_batch([s.encode("utf-8") for s in shingles])
        return sketch

    def add(self, key: int, shingles: list[str]) -> None:
        self._lsh.insert(key, self._sketch(shingles), check_duplication=False)
        self._size = max(self._size, key + 1)

    def add_many(self, shingle_sets: list[list[str]]) -> None:
        start = self._size
        for offset, shingles in enumerate(shingle_sets):
            self.add(start + offset, shingles)

    def query(self, shingles: list[str]) -> list[int]:
        return [int(k) for k in self._lsh.query(self._sketch(shingles))]

    def query_many(self, shingle_sets: list[list[str]]) -> list[list[int]]:
        return [self.query(s) for s in shingle_sets]


def resolve_backend(backend: Backend = "auto") -> Literal["rensa", "datasketch"]:
    if backend in ("rensa", "datasketch"):
        return backend
    try:
        import rensa  # noqa: F401
    except ImportError:
        log.info("rensa not installed; MinHash falls back to datasketch (much slower)")
        return "datasketch"
    return "rensa"


def new_index(backend: Backend, num_perm: int, bands: int, seed: int) -> LSHIndex:
    if resolve_backend(backend) == "rensa":
        return RensaIndex(num_perm, bands, seed)
    return DatasketchIndex(num_perm, bands, seed)


def candidate_pairs(
    shingle_sets: list[list[str]], num_perm: int, bands: int, seed: int, backend: Backend
) -> list[tuple[int, int]]:
    """Pairs (a < b) sharing at least one LSH band. With rensa, one native pass over a
    digest matrix first flags the texts that collide with anything; only those get sketch
    objects and per-text candidate lists, which is most of the speed on mostly-unique data.
    The one-shot flag query leaves the index empty: 10x faster than inserting the matrix."""
    if len(shingle_sets) < 2:
        return []
    if resolve_backend(backend) == "rensa":
        from rensa import RMinHash, RMinHashLSH

        matrix = RMinHash.digest_matrix_from_token_sets(shingle_sets, num_perm, seed)
        flags = RMinHashLSH(0.5, num_perm, bands).query_duplicate_flags_matrix_one_shot(matrix)
        members = np.flatnonzero(np.fromiter(flags, dtype=bool, count=len(shingle_sets)))
        subset = [shingle_sets[i] for i in members]
    else:
        members = np.arange(len(shingle_sets))
        subset = shingle_sets
    index = new_index(backend, num_perm, bands, seed)
    index.add_many(subset)
    pairs: list[tuple[int, int]] = []
    for a, keys in enumerate(index.query_many(subset)):
        pairs.extend((int(members[a]), int(members[b])) for b in keys if b > a)
    return pairs
