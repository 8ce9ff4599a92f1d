"""Answer cache: every paid answer is written to SQLite before anyone parses it.

A generation run killed at any point (kill -9, a crash in the parser, a laptop lid) is
rerun with the same settings and gets every answer it already paid for from here,
making no request for them. WAL mode keeps a committed answer intact through a kill and
lets a rerun open the file without recovery steps.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synthmix.core.errors import ConfigError
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
# A request another process is paying for right now: a second process sharing the cache waits
# for that answer instead of paying for the same request again.
_CLAIMS = """
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed_at REAL NOT NULL
)
"""
# Batch submissions (`synthmix.llm.batch`): recorded before the batch is created, its id right
# after, so a run killed at any point finds the batch it submitted instead of submitting again.
# `scope` names the backend (its cache identity) whose batches these are.
_SUBMISSIONS = """
CREATE TABLE IF NOT EXISTS batch_submissions (
    token TEXT PRIMARY KEY,
    batch_id TEXT,
    keys TEXT NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0,
    submitted_at REAL NOT NULL,
    scope TEXT NOT NULL DEFAULT ''
)
"""
# A claim older than this is taken over even if its owner looks alive (a hung process, or one
# on another machine sharing the file).
CLAIM_TTL_S = 600.0
CLAIM_POLL_S = 0.2


@dataclass(frozen=True)
class Submission:
    """A batch this cache file's runs submitted and have not collected yet; `batch_id` is
    None when the run died between recording it and the provider's answer."""

    token: str
    batch_id: str | None
    keys: list[str]


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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit, each INSERT is its own durable transaction.
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against process death in WAL mode; only power loss can drop
            # the last commits, which then are simply requested again.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.execute(_CLAIMS)
            self._db.execute(_SUBMISSIONS)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(batch_submissions)")}
            if "scope" not in columns:  # a file from before scopes existed
                self._db.execute(
                    "ALTER TABLE batch_submissions ADD COLUMN scope TEXT NOT NULL DEFAULT ''"
                )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"{self.path}: cannot open the answer cache here ({' '.join(str(exc).split())});"
                " choose a writable --cache path"
            ) from None

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

    def claim(self, key: str) -> bool:
        """Claim `key` for this process; False while another live process holds it."""
        now = time.time()
        host, pid = socket.gethostname(), os.getpid()
        inserted = self._db.execute(
            "INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?)", (key, host, pid, now)
        ).rowcount
        if inserted:
            return True
        row = self._db.execute(
            "SELECT host, pid, claimed_at FROM claims WHERE key = ?", (key,)
        ).fetchone()
        if row is None or (row[0], row[1]) == (host, pid) or _stale(row[0], row[1], row[2], now):
            self._db.execute(
                "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)", (key, host, pid, now)
            )
            return True
        return False

    def release(self, key: str) -> None:
        self._db.execute(
            "DELETE FROM claims WHERE key = ? AND host = ? AND pid = ?",
            (key, socket.gethostname(), os.getpid()),
        )

    # ------------------------------------------------------------ batch submissions

    def record_submission(self, token: str, keys: list[str], scope: str) -> None:
        """Before a batch is created: these request keys go out under `token`."""
        self._db.execute(
            "INSERT INTO batch_submissions VALUES (?, NULL, ?, 0, ?, ?)",
            (token, json.dumps(sorted(keys)), time.time(), scope),
        )

    def submission_created(self, token: str, batch_id: str) -> None:
        self._db.execute(
            "UPDATE batch_submissions SET batch_id = ? WHERE token = ?", (batch_id, token)
        )

    def open_submissions(self, scope: str) -> list[Submission]:
        """Batches of `scope` submitted and not collected, oldest first."""
        rows = self._db.execute(
            "SELECT token, batch_id, keys FROM batch_submissions "
            "WHERE collected = 0 AND scope = ? ORDER BY submitted_at",
            (scope,),
        ).fetchall()
        return [Submission(token, batch_id, json.loads(keys)) for token, batch_id, keys in rows]

    def submission_collected(self, token: str) -> None:
        self._db.execute("UPDATE batch_submissions SET collected = 1 WHERE token = ?", (token,))

    def forget_submission(self, token: str) -> None:
        """A submission that never reached the provider (killed before the batch existed)."""
        self._db.execute("DELETE FROM batch_submissions WHERE token = ?", (token,))

    def close(self) -> None:
        self._db.close()


def _stale(host: str, pid: int, claimed_at: float, now: float) -> bool:
    if now - claimed_at > CLAIM_TTL_S:
        return True
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True  # the owner died (kill -9): its claim is void
    except PermissionError:
        return False
    return False


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    requests: int = 0  # calls passed to the wrapped backend (a miss joined in flight is not)
    waited: int = 0  # answers another process sharing the cache paid for while we waited


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
            shared = await self._claim_or_wait(key)
            if shared is not None:
                self.stats.waited += 1
                future.set_result(shared)
                return shared
            self.stats.requests += 1
            try:
                result = await self.backend.complete(request)
                # Persist first: whatever the caller does next (parse, crash), this is paid.
                self.cache.put(key, result, request)
            finally:
                self.cache.release(key)
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

    async def _claim_or_wait(self, key: str) -> CompletionResult | None:
        """None once this process holds the claim on `key` (it pays); the answer, when another
        process that held the claim has put it into the cache meanwhile."""
        while not self.cache.claim(key):
            await asyncio.sleep(CLAIM_POLL_S)
            found = self.cache.get(key)
            if found is not None:
                return found.to_result()
        found = self.cache.get(key)  # answered between our miss and our claim
        return found.to_result() if found is not None else None
