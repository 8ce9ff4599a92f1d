"""`generate` in batch mode against a loopback Batch API server: rounds of every class and run
in one batch each, output equal to live mode, a killed run resumes its batch without
resubmitting, failed and expired lines retried live or in the next round."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import synthmix
from batch_server import BatchServer, serve_batches
from llm_server import cedr_answerer, serve
from synthmix.cards.card import load_card
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData
from synthmix.generation.plan import load_plan, run_plan

CARD = Path(synthmix.__file__).parent / "demo_data" / "cedr_emotions" / "card.yaml"
NAMES = {c.shown_name: c.name for c in load_card(CARD).classes}


def _plan(folder: Path, url: str, train: Path, **extra: Any) -> Path:
    plan = {
        "card": str(CARD),
        "data": str(train),
        "out": str(folder / "synthetic.jsonl"),
        "cache": str(folder / "cache.sqlite"),
        "generators": [
            {
                "kind": "openai",
                "model": "m",
                "base_url": url,
                "options": {"backoff_base_s": 0.01, "price_per_1k_prompt": 1.0},
            }
        ],
        "strategies": ["few-shot", "fskw"],
        "temperatures": [0.7],
        "per_class": 8,
        "k": 3,
        "batch": True,
        "batch_poll_s": 0.02,
        "redaction": {"enabled": False},
        "dedup": {"embedding": False},
        **extra,
    }
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def batches(cedr_test: LabeledData) -> Iterator[BatchServer]:
    with serve_batches(cedr_answerer(cedr_test, names=NAMES, pool_size=20)) as server:
        yield server


def test_batch_rounds_give_the_live_output_at_batch_prices(
    batches: BatchServer, cedr_train: LabeledData, cedr_test: LabeledData, tmp_path: Path
) -> None:
    train = Path(cedr_train.source)
    result = run_plan(load_plan(_plan(tmp_path, batches.url, train)), progress=False)
    summary = result.runs[0].batch
    assert summary is not None and summary["rounds"] > 1  # the shortfall went out again
    # One batch per round for every class of both strategies, nothing submitted twice.
    assert len(summary["batch_ids"]) == summary["rounds"] == batches.submissions
    assert len(set(batches.custom_ids)) == len(batches.custom_ids) == batches.request_lines
    report = json.loads(result.report.read_text(encoding="utf-8"))
    entry = report["runs"][0]
    assert entry["batch"]["batch_ids"] == summary["batch_ids"]
    assert entry["batch"]["cost"] == pytest.approx(
        sum(run["totals"]["cost"] for run in report["runs"])
    )
    calls = sum(run["totals"]["calls"] for run in report["runs"])
    assert summary["answered"] == calls and summary["cached"] == 0

    live_dir = tmp_path / "live"
    live_dir.mkdir()
    with serve(cedr_answerer(cedr_test, names=NAMES, pool_size=20)) as live:
        plan = load_plan(_plan(live_dir, live.url, train, batch=False))
        live_result = run_plan(plan, progress=False)
    pd.testing.assert_frame_equal(result.data.frame, live_result.data.frame)
    live_cost = sum(run.totals()["cost"] for run in live_result.runs)
    # The same prompts at half the price (batch calls may be more: rounds are sized ahead).
    per_call = entry["batch"]["cost"] / calls
    assert per_call == pytest.approx(live_cost / live.count / 2, rel=0.2)


_GENERATE = """
import sys
from synthmix.cli.app import main
sys.argv = ["synthmix", "generate", "--plan", sys.argv[1]]
main()
"""


def test_a_killed_batch_run_resumes_its_batch_and_never_resubmits(
    batches: BatchServer, cedr_train: LabeledData, tmp_path: Path
) -> None:
    plan = _plan(tmp_path, batches.url, Path(cedr_train.source))
    batches.polls_until_done = 10**9  # the provider takes its time
    killed = subprocess.Popen([sys.executable, "-c", _GENERATE, str(plan)])
    deadline = time.monotonic() + 60
    while batches.submissions < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # polling
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait(timeout=10) == -signal.SIGKILL
    submitted = list(batches.custom_ids)
    assert batches.submissions == 1 and submitted

    batches.polls_until_done = 1
    rerun = subprocess.run(
        [sys.executable, "-c", _GENERATE, str(plan)], capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stderr
    assert batches.custom_ids[: len(submitted)] == submitted
    assert len(set(batches.custom_ids)) == len(batches.custom_ids)  # no line went out twice
    report = json.loads((tmp_path / "synthetic.report.json").read_text(encoding="utf-8"))
    batch = report["runs"][0]["batch"]
    assert batch["resumed"] == 1 and batch["batch_ids"][0] == "batch-2"
    assert "batches batch-2" in rerun.stderr and "cost at batch prices" in rerun.stderr
    frame = pd.read_json(tmp_path / "synthetic.jsonl", lines=True)
    assert frame.groupby(["strategy", "label"]).size().eq(8).all()


def _fails(body: dict[str, Any]) -> bool:
    return sum(map(ord, body["messages"][-1]["content"])) % 3 == 0


def test_failed_lines_are_retried_live_or_in_the_next_round(
    batches: BatchServer, cedr_train: LabeledData, tmp_path: Path
) -> None:
    train = Path(cedr_train.source)
    batches.fail_once = _fails
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    result = run_plan(load_plan(_plan(live_dir, batches.url, train)), progress=False)
    summary = result.runs[0].batch
    assert summary is not None and batches.failed_once
    assert summary["live_retries"] == len(batches.failed_once) == batches.live_calls
    assert summary["failed"] == len(batches.failed_once)
    assert len(set(batches.custom_ids)) == len(batches.custom_ids)  # each line went out once

    uploads_before, live_before = len(batches.uploads), batches.live_calls
    batches.fail_once = None
    batches.expire_batches = 1  # and the first batch expires with half its lines unanswered
    later = tmp_path / "later"
    later.mkdir()
    plan = load_plan(_plan(later, batches.url, train, batch_failed="next-round"))
    carried = run_plan(plan, progress=False)
    assert batches.live_calls == live_before  # nothing went live
    first, second, *_ = batches.uploads[uploads_before:]
    expired = first[1::2]  # the lines the expired batch left unanswered
    assert set(expired) <= set(second)  # into the next round's batch
    later_lines = [key for ids in batches.uploads[uploads_before + 1 :] for key in ids]
    assert not set(first[0::2]) & set(later_lines)  # answered lines never went out again
    frame = carried.data.frame
    assert frame.groupby(["strategy", "label"]).size().eq(8).all()


def test_batch_mode_needs_an_openai_generator(tmp_path: Path, cedr_train: LabeledData) -> None:
    plan = _plan(tmp_path, "http://127.0.0.1:1", Path(cedr_train.source))
    raw = yaml.safe_load(plan.read_text(encoding="utf-8"))
    raw["generators"] = [{"kind": "llama-cpp"}]
    plan.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match="generator 1 is llama-cpp"):
        load_plan(plan)
    raw["generators"], raw["batch_failed"] = [{"kind": "openai", "model": "m"}], "later"
    plan.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match="batch_failed must be one of live, next-round"):
        load_plan(plan)


def test_cli_batch_and_structured_flags(
    cedr_train: LabeledData, cedr_test: LabeledData, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from synthmix.cli.app import app

    listing = cedr_answerer(cedr_test, names=NAMES, pool_size=20)

    def answer(body: dict[str, Any]) -> str:
        if "response_format" not in body:
            return listing(body)
        items = [line.split(". ", 1)[1] for line in listing(body).splitlines() if ". " in line]
        return json.dumps({"texts": items}, ensure_ascii=False)

    out = tmp_path / "s.jsonl"
    with serve_batches(answer) as server:
        args = ["generate", "--card", str(CARD), "--data", cedr_train.source]
        args += ["--backend", "openai", "--base-url", server.url, "--model", "m"]
        args += ["--strategy", "few-shot", "--per-class", "3", "--out", str(out)]
        args += ["--cache", str(tmp_path / "c.sqlite"), "--no-redact", "--structured"]
        args += ["--batch", "--batch-poll", "0.02", "--batch-failed", "next-round"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert server.submissions >= 1 and server.live_calls == 0
    report = json.loads((tmp_path / "s.report.json").read_text(encoding="utf-8"))
    run = report["runs"][0]
    assert run["parsing"]["structured"] and set(run["parsing"]["methods"]) == {"schema"}
    assert run["batch"]["failed_lines"] == "next-round" and report["plan"]["batch"] is True
    assert "parsing (structured)" in result.output and "batches batch-" in result.output
