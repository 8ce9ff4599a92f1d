"""Answer cache: every paid answer is written to SQLite before anyone parses it.

A generation run killed at any point (kill -9, a crash in the parser, a laptop lid) is
rerun with the same settings and gets every answer it already paid for from here,
making no request for them. WAL mode keeps a committed answer intact through a kill and
lets a rerun open the file without recovery steps.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synthmix.llm.backend import (
    Backend,
    CompletionRequest,
    CompletionResult,
    cache_key,
    choice_details,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    texts TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost REAL NOT NULL,
    raw TEXT NOT NULL,
    request TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class CachedAnswer:
    texts: list[str]
    prompt_tokens: int
    completion_tokens: int
    cost: float
    raw: dict[str, Any]
    created_at: str

    def to_result(self) -> CompletionResult:
        # Finish reasons and logprobs are read from the stored raw answer, as the backends
        # read them from the fresh one: no extra columns, and rows written before these
        # fields existed still load (with what their raw answer holds, else None).
        finish_reasons, logprobs = choice_details(self.raw, len(self.texts))
        return CompletionResult(
            texts=list(self.texts),
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            raw=self.raw,
            cost=self.cost,
            cached=True,
            finish_reasons=finish_reasons,
            logprobs=logprobs,
        )


class AnswerCache:
    """SQLite table of answers keyed by `synthmix.llm.cache_key`. Each `put` commits at
    once (autocommit), so what `get` can see survives the process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, each INSERT is its own durable transaction.
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against process death in WAL mode; only power loss can drop
        # the last commits, which then are simply requested again.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def __repr__(self) -> str:
        return f"AnswerCache({str(self.path)!r})"

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM answers").fetchone()
        return int(count)

    def __contains__(self, key: str) -> bool:
        row = self._db.execute("SELECT 1 FROM answers WHERE key = ?", (key,)).fetchone()
        return row is not None

    def get(self, key: str) -> CachedAnswer | None:
        row = self._db.execute(
            "SELECT texts, prompt_tokens, completion_tokens, cost, raw, created_at "
            "FROM answers WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        texts, prompt_tokens, completion_tokens, cost, raw, created_at = row
        return CachedAnswer(
            texts=json.loads(texts),
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(completion_tokens),
            cost=float(cost),
            raw=json.loads(raw),
            created_at=str(created_at),
        )

    def put(
        self, key: str, result: CompletionResult, request: CompletionRequest | None = None
    ) -> None:
        # The request is kept for audits ("what prompt produced this?"); it holds prompt
        # and sampling parameters only, no credentials.
        request_json = "{}"
        if request is not None:
            request_json = json.dumps(
                {"messages": request.messages, "prompt": request.prompt, **request.sampling()},
                ensure_ascii=False,
            )
        self._db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                json.dumps(result.texts, ensure_ascii=False),
                result.prompt_tokens,
                result.completion_tokens,
                result.cost,
                json.dumps(result.raw, ensure_ascii=False),
                request_json,
                datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        )

    def close(self) -> None:
        self._db.close()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    requests: int = 0  # calls passed to the wrapped backend (a miss joined in flight is not)


class CachedBackend:
    """Any backend behind an `AnswerCache`. A request's key includes its
    `sample_index`, so draw #3 of a prompt asked twice is answered once.

    Identical misses in flight at the same time share one request.
    """

    def __init__(self, backend: Backend, cache: AnswerCache) -> None:
        self.backend = backend
        self.cache = cache
        self.name = backend.name
        self.model = backend.model
        self.chat = backend.chat
        self.is_remote = backend.is_remote
        self.stats = CacheStats()
        self._pending: dict[str, asyncio.Future[CompletionResult]] = {}

    def __repr__(self) -> str:
        return f"CachedBackend({self.backend!r}, {self.cache!r})"

    def cache_identity(self) -> dict[str, str]:
        return self.backend.cache_identity()

    def key(self, request: CompletionRequest) -> str:
        return cache_key(self.backend.cache_identity(), request)

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        key = self.key(request)
        found = self.cache.get(key)
        if found is not None:
            self.stats.hits += 1
            return found.to_result()
        self.stats.misses += 1
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CompletionResult] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            self.stats.requests += 1
            result = await self.backend.complete(request)
            # Persist first: whatever the caller does next (parse, crash), this is paid.
            self.cache.put(key, result, request)
            future.set_result(result)
            return result
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: no "never retrieved" warning if unshared
            raise
        finally:
            del self._pending[key]
