"""A small fake services API on loopback, and a runner for the ``bluegreen`` command line."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bluegreen_cli.main import main

from tests.fake_api import FakeApi, serving


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with serving(FakeApi(), "") as fake:
        yield fake


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No endpoint from the host: no env variable, no running local stack."""
    monkeypatch.delenv("BLUEGREEN_ENDPOINT", raising=False)
    monkeypatch.setenv("BLUEGREEN_LOCAL_STATE", str(tmp_path / "no-stack.json"))


@pytest.fixture
def bluegreen() -> Callable[..., Run]:
    """Run the command line in-process; returns exit code, stdout and stderr."""

    def run(*argv: str) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), out=out, err=err)
        return Run(code, out.getvalue(), err.getvalue())

    return run
