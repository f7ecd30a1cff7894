"""A local stack killed with SIGKILL leaves its state file: the CLI says it is not running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from local.stack import STATE_FILE, running_stack
from tests.cli.conftest import Run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.stack
def test_after_a_sigkill_the_cli_says_the_stack_is_not_running(
    bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a local stack started as `make local` does, on free ports and its own state
    state_dir = tmp_path / "killed-stack"
    stack = subprocess.Popen(
        [
            *(sys.executable, "-m", "local.stack", "--state-dir", str(state_dir), "--quiet"),
            *("--api-port", "0", "--moto-port", "0", "--cluster-port", "0"),
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while running_stack(state_dir) is None and time.monotonic() < deadline:
            assert stack.poll() is None, "the stack did not start"
            time.sleep(0.2)
        assert running_stack(state_dir) is not None
        # WHEN it is killed (no clean-up runs) and, not reaped yet, is a zombie
        stack.kill()
        deadline = time.monotonic() + 10
        # WNOWAIT: the exit is seen, not reaped, so the pid stays a zombie.
        while os.waitid(os.P_PID, stack.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            assert time.monotonic() < deadline, "SIGKILL did not end the stack within 10 s"
            time.sleep(0.01)
        assert (state_dir / STATE_FILE).exists(), "SIGKILL leaves the state file"
        monkeypatch.setenv("BLUEGREEN_LOCAL_STATE", str(state_dir / STATE_FILE))
        run = bluegreen("status")
    finally:
        stack.kill()
        stack.wait(timeout=30)
    # THEN the CLI says the stack is not running and how to start it, not "refused"
    assert run.code == 3, run.err
    assert "the local stack is not running" in run.err
    assert f"names pid {stack.pid}, which is no longer alive" in run.err
    assert "make local" in run.err
    assert "refused" not in run.err.lower()
