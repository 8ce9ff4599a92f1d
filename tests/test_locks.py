"""One writer per output, checked before any work: a second process is refused with one line
naming the first; a non-writable output or cache is one line, not a traceback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthmix.core.errors import ConfigError
from synthmix.core.files import check_writable
from synthmix.core.locks import OutputLocked, exclusive
from synthmix.llm.cache import AnswerCache

HOLD = (
    "import sys, time; from synthmix.core.locks import exclusive\n"
    "with exclusive(sys.argv[1]):\n"
    "    print('held', flush=True); time.sleep(60)\n"
)


def _synthmix(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "synthmix", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _holder(path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_is_refused_naming_the_first(tmp_path: Path) -> None:
    out = tmp_path / "kept.jsonl"
    holder = _holder(out)
    try:
        with pytest.raises(OutputLocked) as caught, exclusive(out):
            pass
        assert f"PID {holder.pid}" in str(caught.value) and str(out) in str(caught.value)
    finally:
        holder.kill()
        holder.wait()
    with exclusive(out):  # the kernel released the lock of the killed holder
        pass


def test_cli_refuses_an_output_another_process_writes(tmp_path: Path) -> None:
    data = tmp_path / "synth.csv"
    data.write_text("text,label\nпервый текст,a\nвторой текст,b\n", encoding="utf-8")
    out = tmp_path / "kept.csv"
    holder = _holder(out)
    try:
        result = _synthmix("dedup", str(data), "--out", str(out))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {out}: another synthmix process (PID {holder.pid})")
    assert result.stderr.count("\n") == 1 and not out.exists()


def test_two_experiments_on_one_run_dir(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = _holder(run_dir)
    config = tmp_path / "experiment.yaml"
    config.write_text("name: x\ndata: {train: train.csv}\n", encoding="utf-8")
    try:
        result = _synthmix("experiment", str(config), "--out", str(run_dir))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2 and "is writing this run directory" in result.stderr


def test_outputs_that_cannot_be_files(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a directory"):
        check_writable(tmp_path)
    with pytest.raises(ConfigError, match="is a file, so the output cannot be written"):
        check_writable(tmp_path / "file" / "out.jsonl")
    with pytest.raises(ConfigError, match="cannot open the answer cache here"):
        AnswerCache(tmp_path / "file" / "cache.sqlite")


def test_a_lock_waits_for_nobody_once_released(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    started = time.monotonic()
    for _ in range(3):
        with exclusive(out):
            pass
    assert time.monotonic() - started < 1.0


_BAR_THEN_ERROR = """
import sys
from tqdm import tqdm
from synthmix.cli.app import app, main
from synthmix.core.errors import ConfigError

@app.command("fail-mid-bar")
def fail_mid_bar() -> None:
    bar = tqdm(total=10, desc="texts")
    bar.update(3)
    raise ConfigError("card.yaml: the thing that went wrong")

sys.argv = ["synthmix", "fail-mid-bar"]
main()
"""


def test_an_error_during_a_progress_bar_starts_its_own_line() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _BAR_THEN_ERROR], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.replace("\\r", "\\n").splitlines()
    assert "error: card.yaml: the thing that went wrong" in lines


def test_generate_is_refused_before_its_first_call(tmp_path: Path) -> None:
    from llm_server import serve

    out = tmp_path / "synthetic.jsonl"
    card = Path(__file__).parents[1] / "src/synthmix/demo_data/cedr_emotions/card.yaml"
    holder = _holder(out)
    try:
        with serve(lambda body: "1. текст") as server:
            result = _synthmix(
                "generate", "--card", str(card), "--strategy", "zero-shot", "--per-class", "1",
                "--backend", "openai", "--base-url", server.url, "--model", "m",
                "--api-key-env", "NO_SUCH_KEY", "--out", str(out),
                "--cache", str(tmp_path / "cache.sqlite"),
            )  # fmt: skip
            assert server.count == 0
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2 and "another synthmix process" in result.stderr
