"""The loop every generator runs: batches of calls until a target, within a budget.

`generate` (texts per class) and `personas` (a persona pool) differ in what they ask and
what they keep; the loop around it is this one. Each round asks for what the target still
needs at full yield (no more than `concurrency` calls, nor more than the call budget
allows), runs the calls to their end (`gather_settled`: every paid answer reaches the
cache before an error is raised), counts their usage, and hands the answers over. The
batch size depends only on earlier answers, so a rerun behind a `CachedBackend` makes the
same requests in the same order and gets them all from the cache.

Live calls (the default) do not wait for a round's slowest call: they form a sliding window
with the same guarantees (`_pipelined`). Otherwise how a round's calls are answered is a
`Runner`'s business: `generation.batching.BatchRounds` sends the rounds of every class
as one batch to a provider's Batch API. A runner may leave a call unanswered (a failed batch
line): the loop asks it again in its next round, at most `ROUND_TRIES` times.

Also here, written once for both: usage counting, the run's spend (for `max_cost`), the
cache statistics of a report, and redacting the real texts a prompt carries.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from tqdm import tqdm

from synthmix.llm.backend import (
    Backend,
    BackendError,
    CompletionRequest,
    CompletionResult,
    gather_settled,
)
from synthmix.llm.cache import CachedBackend
from synthmix.llm.redaction import RedactionConfig, Redactor, backend_is_remote, should_redact

log = logging.getLogger("synthmix")

M = TypeVar("M")

# Why a loop stopped. "target": enough kept; "exhausted": no inputs left to make calls from.
TARGET = "target"
EXHAUSTED = "exhausted"
MAX_CALLS = "max_calls"
MAX_COST = "max_cost"


ROUND_TRIES = 3  # rounds a call left unanswered by a runner is asked in before it is dropped


class Runner(Protocol):
    """Answers a round's requests, in order; None for a request left unanswered this round.
    `round_size` caps the calls of a round (None: the budget's `concurrency`);
    `adaptive` sizes later rounds by the yield seen so far instead of assuming every call
    gives `per_call` items (worth it when each round waits for hours)."""

    round_size: int | None
    adaptive: bool

    async def run(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult | None]: ...


class LiveRunner:
    """Concurrent calls to `backend`; every call is answered or raises."""

    round_size: int | None = None
    adaptive = False

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def run(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult | None]:
        return list(await gather_settled(self.backend.complete(r) for r in requests))


class Usage(Protocol):
    """The usage counters a report carries (`ClassReport`, `PoolReport`)."""

    calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float


class Meter:
    """Counts each answer's usage into a report, and what the whole run spent."""

    def __init__(self) -> None:
        self.spent = 0.0

    def count(self, report: Usage, result: CompletionResult) -> None:
        report.calls += 1
        report.cached_calls += int(result.cached)
        report.prompt_tokens += result.prompt_tokens
        report.completion_tokens += result.completion_tokens
        # Cached answers count too: the budget caps what the output cost, so a rerun stops
        # where the first run would have stopped.
        report.cost += result.cost
        self.spent += result.cost


@dataclass(frozen=True)
class Budget:
    """`target` items wanted, each call giving up to `per_call`; at most `max_calls` calls
    (and `available`, when the inputs allow only so many); `max_cost` is checked between
    batches against the meter's spend, so a batch in flight may overshoot it by at most
    its own cost."""

    target: int
    max_calls: int
    per_call: int = 1
    concurrency: int = 8
    available: int | None = None
    max_cost: float | None = None


@dataclass(frozen=True)
class Call(Generic[M]):
    """One request and what the caller needs to read its answer (a prompt, an origin)."""

    request: CompletionRequest
    meta: M


Answer = tuple[M, CompletionResult]


async def run_batches(
    backend: Backend,
    budget: Budget,
    kept: Callable[[], int],
    plan: Callable[[range], Sequence[Call[M]]],
    take: Callable[[list[Answer[M]]], None],
    meter: Meter,
    report: Usage,
    blocked: Callable[[], str | None] | None = None,
    bar: tqdm[Any] | None = None,
    postfix: Callable[[], dict[str, Any]] | None = None,
    runner: Runner | None = None,
    slots: Slots | None = None,
    ready: Callable[[], Awaitable[None]] | None = None,
    slot_key: int = 0,
    spare: bool = False,
) -> str:
    """Run batches until `kept()` reaches the target or a limit stops the loop; returns
    why it stopped (`TARGET`, `EXHAUSTED`, `blocked()`'s reason, `MAX_CALLS`, `MAX_COST`).

    `plan` gets the indices of a batch's calls (0, 1, ... within this loop) and builds
    them; `take` gets their answers in call order, after their usage is counted; `bar`
    moves by what `take` kept. `runner` answers the calls (default: live calls to
    `backend`); calls it leaves unanswered go first into the next round.

    Live calls (no runner) are pipelined instead of run in rounds: see `_pipelined`, which
    also explains `slots`, `ready` and `spare`."""
    if runner is None or type(runner) is LiveRunner:
        return await _pipelined(
            backend, budget, kept, plan, take, meter, report, blocked, bar, postfix,
            slots, ready, slot_key, spare,
        )  # fmt: skip
    if slots is not None or ready is not None or spare:
        raise ValueError("slots, ready and spare are for live calls only")
    cap = runner.round_size or budget.concurrency
    made = 0
    start = kept()
    carried: list[tuple[Call[M], int]] = []  # unanswered calls and the rounds they were in
    while True:
        remaining = budget.target - kept()
        if remaining <= 0:
            return TARGET
        room = budget.max_calls - made
        if budget.available is not None:
            if made >= budget.available and not carried:
                return EXHAUSTED
            room = min(room, budget.available - made)
        reason = blocked() if blocked is not None else None
        if reason is not None:
            return reason
        if made >= budget.max_calls and not carried:
            return MAX_CALLS
        if budget.max_cost is not None and meter.spent >= budget.max_cost:
            return MAX_COST
        per_call: float = budget.per_call
        if runner.adaptive and made > len(carried):
            per_call = seen_per_call(budget.per_call, kept() - start, made - len(carried))
        wanted = min(math.ceil(remaining / per_call), cap)
        size = max(0, min(wanted - len(carried), cap - len(carried), room))
        calls = [call for call, _ in carried] + list(plan(range(made, made + size)))
        tries = [n for _, n in carried] + [0] * size
        made += size
        results = await runner.run([call.request for call in calls])
        answered: list[Answer[M]] = []
        carried = []
        for call, result, n in zip(calls, results, tries, strict=True):
            if result is not None:
                meter.count(report, result)
                answered.append((call.meta, result))
            elif n + 1 < ROUND_TRIES:
                carried.append((call, n + 1))
            else:
                log.warning("a call went unanswered in %d rounds; dropped", ROUND_TRIES)
        if not answered and not carried:
            raise BackendError(f"no call of a round of {len(calls)} was answered")
        before = kept()
        take(answered)
        if bar is not None:
            # Postfix first: update() redraws, and a stale postfix would show there.
            if postfix is not None:
                bar.set_postfix(postfix(), refresh=False)
            bar.update(kept() - before)


def seen_per_call(per_call: int, got: int, answers: int) -> float:
    """Items per call as seen over `answers` answers that gave `got` items, within
    [per_call / 10, per_call]: a few empty answers do not make the need look endless."""
    if answers <= 0:
        return float(per_call)
    return min(float(per_call), max(got / answers, per_call / 10))


@dataclass
class Seen:
    """Answers read and items they gave, for one loop or all loops of a run."""

    answers: int = 0
    got: int = 0

    def add(self, got: int) -> None:
        self.answers += 1
        self.got += got


class Slots:
    """At most `size` calls in flight for several loops together (the classes of one run).
    A freed slot goes to the waiting call with the lowest priority key: the earliest class,
    then its earliest call, whose answer is read first. A slot no call waits for is lent
    to the loops that take spare calls (`lend`), the latest class first: a later class
    needs its calls anyway, while the class being read may be near its target.

    `seen` tallies the answers all loops have read and what they kept: a class that has
    read nothing yet sizes its spare calls by the run's yield, not by full yield."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"slots need a size >= 1, got {size}")
        self.free = size
        self.seen = Seen()
        self._waiting: list[tuple[tuple[int, int], int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._takers: dict[int, Callable[[], bool]] = {}

    def try_acquire(self) -> bool:
        if self.free > 0 and not self._waiting:
            self.free -= 1
            return True
        return False

    async def acquire(self, priority: tuple[int, int]) -> None:
        if self.try_acquire():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed a slot just as it was cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)  # the slot passes straight to the waiter
                return
        self.free += 1
        self.lend_free()

    def lend(self, key: int, taker: Callable[[], bool] | None) -> None:
        """`taker` (None: withdraw it) is offered slots no call waits for; it returns
        whether it started a call holding the slot (that call releases it)."""
        if taker is None:
            self._takers.pop(key, None)
        else:
            self._takers[key] = taker

    def lend_free(self) -> None:
        while self.free > 0 and not self._waiting and self._takers:
            for key in sorted(self._takers, reverse=True):
                self.free -= 1
                if self._takers[key]():
                    break
                self.free += 1
            else:
                return


def _stop_reason(
    budget: Budget,
    kept: int,
    made: int,
    meter: Meter,
    blocked: Callable[[], str | None] | None,
) -> str | None:
    if budget.target - kept <= 0:
        return TARGET
    if budget.available is not None and made >= budget.available:
        return EXHAUSTED
    reason = blocked() if blocked is not None else None
    if reason is not None:
        return reason
    if made >= budget.max_calls:
        return MAX_CALLS
    if budget.max_cost is not None and meter.spent >= budget.max_cost:
        return MAX_COST
    return None


async def _pipelined(
    backend: Backend,
    budget: Budget,
    kept: Callable[[], int],
    plan: Callable[[range], Sequence[Call[M]]],
    take: Callable[[list[Answer[M]]], None],
    meter: Meter,
    report: Usage,
    blocked: Callable[[], str | None] | None,
    bar: tqdm[Any] | None,
    postfix: Callable[[], dict[str, Any]] | None,
    slots: Slots | None,
    ready: Callable[[], Awaitable[None]] | None,
    slot_key: int,
    spare: bool,
) -> str:
    """Live calls as a sliding window: up to `concurrency` calls in flight, a new one
    started as soon as the oldest is read, instead of rounds that wait for their slowest
    call (a server with parallel slots would sit half idle at each round's end).

    Answers are read in call order, and whether call i is made depends only on the answers
    read before it, so the calls made and the output are the same on every run (and, behind
    a `CachedBackend`, a rerun asks for the same requests); past the target, every call in
    flight is still read (counted, cached), as a round's calls were. `max_cost` is checked
    before each call, so the calls in flight may overshoot it by at most their own cost.

    `spare`: a slot that would sit idle (the oldest answer is still out, or the target
    needs no more calls at full yield) starts the next call anyway, up to `concurrency`
    running for this loop and `concurrency` - 1 calls past what the target needs at the
    yield seen so far (this loop's once it has read `concurrency` answers, else the run's;
    full yield before any). Which calls are made then depends on timing, so it is only for a
    `plan` whose call i depends on i alone and a `take` that ignores answers past the
    target (then the output is still the same on every run); never with `max_cost`, and
    not while answers come from the cache (a rerun makes no call the first run did not).

    `slots` caps the calls in flight of several loops together (each call waits for one,
    keyed by `(slot_key, call index)`); `ready` is awaited before the first answer is read:
    a loop may send its first calls while an earlier loop still reads its own."""
    cap = budget.concurrency
    made = 0
    pending: deque[tuple[Call[M], asyncio.Task[CompletionResult]]] = deque()
    spare = spare and budget.max_cost is None
    if spare and slots is None:
        slots = Slots(cap)

    # Whether the last answer came from the cache; before the first, as if it had.
    replaying = True

    async def ask(call: Call[M], index: int, held: bool = False) -> CompletionResult:
        nonlocal replaying
        if slots is None:
            return await backend.complete(call.request)
        if not held:
            await slots.acquire((slot_key, index))
        try:
            result = await backend.complete(call.request)
            replaying = result.cached
            return result
        finally:
            slots.release()

    def start(size: int, held: bool = False) -> None:
        nonlocal made
        indices = range(made, made + size)
        for index, call in zip(indices, plan(indices), strict=True):
            # A free slot is taken now, not when the task first runs: a spare call offered
            # it in between would push this needed call back into the queue.
            holds = held or (slots is not None and slots.try_acquire())
            pending.append((call, asyncio.create_task(ask(call, index, holds))))
        made += size

    own = Seen()

    def spare_need() -> int:
        # At full yield the bound leaves slots idle wherever answers are often dropped: a
        # later class that has prefetched its full-yield need while the class before it
        # nears its target (bundled Gemma: 0.7 texts kept per call, 27 calls fetched of
        # the 35 it needed for 24 texts, the server idle at every class's end).
        tally = own if own.answers >= cap or slots is None else slots.seen
        per_call = seen_per_call(budget.per_call, tally.got, tally.answers)
        return math.ceil((budget.target - kept()) / per_call)

    def take_spare() -> bool:
        # Not while answers come from the cache (nor before the first answer): a rerun
        # would otherwise ask for calls past those the first run made, which depended on
        # timing.
        if replaying or _stop_reason(budget, kept(), made, meter, blocked) is not None:
            return False
        # At most `concurrency` running, answered ones waiting to be read aside (a slow
        # oldest answer would otherwise hold the window shut), and at most
        # `concurrency` - 1 past what the target needs at the yield seen.
        running = sum(1 for _, task in pending if not task.done())
        if running >= cap or len(pending) >= spare_need() + cap - 1:
            return False
        start(1, held=True)
        return True

    if spare and slots is not None:
        slots.lend(slot_key, take_spare)
    waiting = ready
    try:
        while True:
            reason = _stop_reason(budget, kept(), made, meter, blocked)
            if reason is None:
                remaining = budget.target - kept()
                room = budget.max_calls - made
                if budget.available is not None:
                    room = min(room, budget.available - made)
                # What the target still needs at full yield, less what is in flight.
                wanted = math.ceil(remaining / budget.per_call) - len(pending)
                start(max(0, min(wanted, cap - len(pending), room)))
                if spare and slots is not None:
                    slots.lend_free()
            if not pending:
                assert reason is not None  # with room left, a call was just started
                return reason
            call, task = pending[0]
            result = await task
            if waiting is not None:
                await waiting()
                waiting = None
            pending.popleft()  # only now: while it waits, the answer still takes room
            meter.count(report, result)
            before = kept()
            take([(call.meta, result)])
            if before < budget.target:  # answers past the target are not read
                own.add(kept() - before)
                if slots is not None:
                    slots.seen.add(kept() - before)
            if bar is not None:
                if postfix is not None:
                    bar.set_postfix(postfix(), refresh=False)
                bar.update(kept() - before)
    except Exception:
        if slots is not None:
            slots.lend(slot_key, None)
        # Every call in flight runs to its end (its answer reaches the cache) first.
        await asyncio.gather(*(t for _, t in pending), return_exceptions=True)
        raise
    except BaseException:
        for _, t in pending:
            t.cancel()
        raise
    finally:
        if slots is not None:
            slots.lend(slot_key, None)


async def ask_once(
    backend: Backend,
    request: CompletionRequest,
    meter: Meter,
    report: Usage,
    runner: Runner | None = None,
) -> CompletionResult:
    """A single call outside the loop (a preparation step), counted like the others; with a
    runner, a round of its own (asked again, up to `ROUND_TRIES` rounds, if unanswered)."""
    if runner is None:
        result = await backend.complete(request)
    else:
        for _ in range(ROUND_TRIES):
            (found,) = await runner.run([request])
            if found is not None:
                result = found
                break
        else:
            raise BackendError(f"a preparation call went unanswered in {ROUND_TRIES} rounds")
    meter.count(report, result)
    return result


def cache_summary(backend: Backend) -> dict[str, int] | None:
    """Hits, misses and requests of the answer cache in front of `backend`, if any."""
    if not isinstance(backend, CachedBackend):
        return None
    stats = backend.stats
    return {"hits": stats.hits, "misses": stats.misses, "requests": stats.requests}


def fault_summary(backend: Backend) -> dict[str, Any] | None:
    """Attempts, retries by cause and waiting time of the backend behind the cache, where it
    counts them (the HTTP backend); None for backends that do not."""
    inner = backend.backend if isinstance(backend, CachedBackend) else backend
    to_dict = getattr(getattr(inner, "stats", None), "to_dict", None)
    return to_dict() if callable(to_dict) else None


def fault_delta(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> dict[str, Any] | None:
    """What happened between two `fault_summary` readings of one backend."""
    if before is None or after is None:
        return after
    delta: dict[str, Any] = {}
    for key, value in after.items():
        if isinstance(value, dict):
            old = before.get(key) or {}
            changed = {k: v - old.get(k, 0) for k, v in value.items() if v - old.get(k, 0)}
            delta[key] = changed
        else:
            delta[key] = round(value - before.get(key, 0), 2)
    return delta


@dataclass
class Redaction:
    """Texts as they go into prompts, and what redacting them did (counts only: the
    replaced values would put personal data into the report)."""

    groups: dict[str, list[str]]
    report: dict[str, Any]
    redactor: Redactor | None = None


def redact_inputs(
    backend: Backend, config: RedactionConfig, language: str, groups: dict[str, list[str]]
) -> Redaction:
    """Real texts with personal data replaced by placeholders, when they go to a backend
    off this machine (or redaction is forced on). Each text is redacted once, so the counts
    are values found, not times sent."""
    remote = backend_is_remote(backend)
    if not should_redact(config, remote):
        if remote and any(groups.values()):
            log.warning(
                "real texts go verbatim to %s, which is not this machine (redaction is off)",
                getattr(getattr(backend, "backend", backend), "base_url", backend.name),
            )
        return Redaction(groups, {"applied": False})
    redactor = Redactor(config, language=language)
    redacted = {name: redactor.redact_many(texts) for name, texts in groups.items()}
    report: dict[str, Any] = {
        "applied": True,
        "texts": redactor.texts,
        "texts_changed": redactor.changed,
        "counts": redactor.summary(),
    }
    return Redaction(redacted, report, redactor)


def redaction_config(value: RedactionConfig | dict[str, Any]) -> RedactionConfig:
    """A redaction config, also from YAML or a report's config read back (a mapping)."""
    if not isinstance(value, dict):
        return value
    raw = dict(value)
    if "entity_types" in raw:
        raw["entity_types"] = tuple(raw["entity_types"])
    return RedactionConfig(**raw)
