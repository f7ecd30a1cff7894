"""``python -m local.stack --router``: the router, the simulated traffic, ``push --errors``."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from bluegreen_cli.main import main as bluegreen

from local.stack import STATE_FILE, LocalStack, StackOptions, parse_options
from tests.stack import signing

pytestmark = [
    pytest.mark.stack,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


RATE = 200
"""The simulated users' requests per second."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = StackOptions.ephemeral(
        tmp_path_factory.mktemp("traffic"), speed=300, router="gateway", traffic_rate=RATE
    )
    with LocalStack(options) as running:
        yield running


@pytest.fixture(autouse=True)
def _cli_finds_this_stack(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLUEGREEN_ENDPOINT", raising=False)
    monkeypatch.setenv("BLUEGREEN_LOCAL_STATE", str(stack.options.state_dir / STATE_FILE))


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = bluegreen(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_router_and_the_traffic_rate_are_options() -> None:
    options = parse_options(["--router", "alb", "--traffic", "50"])
    assert (options.router, options.traffic_rate) == ("alb", 50.0)
    assert parse_options([]).router == "selector"


def test_an_unknown_router_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_options(["--router", "istio"])
    assert exited.value.code == 2
    assert "invalid choice: 'istio'" in capsys.readouterr().err


def test_the_stacks_handlers_route_through_the_httproute(stack: LocalStack) -> None:
    status, body = signing.call(stack, "GET", "/services")
    assert status == 200
    assert body["traffic"]["router"] == "gateway"
    assert 'HTTPRoute "web"' in body["traffic"]["object"]


def test_the_simulated_users_send_production_through_the_weights(stack: LocalStack) -> None:
    # GIVEN the seed: production all on green
    def tally() -> Any:
        return signing.call(stack, "POST", "/_local/traffic", {})[1]

    # WHEN the simulated users have sent half a second's worth of requests more
    before = tally()
    deadline = time.monotonic() + 10
    while (after := tally())["sent"]["green"] - before["sent"]["green"] < RATE // 2:
        assert time.monotonic() < deadline, f"green got {after['sent']} in 10 s, from {before}"
        time.sleep(0.05)

    # THEN green got them, blue (the canary, no production weight) none, none failed
    assert after["sent"]["blue"] == 0
    assert after["failed"] == 0
    assert after["lastError"] == ""


def test_push_errors_marks_the_image_for_the_simulated_users(stack: LocalStack) -> None:
    # WHEN an image that answers 5 % 5xx is pushed as dev
    code, out, err = cli("--json", "push", "dev", "--errors", "--wait", "--interval", "0.2")

    # THEN it deploys to the canary like any image (its pods are healthy) ...
    assert code == 0, err
    body = json.loads(out)
    digest = body["record"]["toDigest"]
    assert body["execution"]["status"] == "SUCCEEDED"
    # ... and the simulator knows what it does when traffic reaches it
    status, tally = signing.call(stack, "POST", "/_local/traffic", {})
    assert status == 200
    assert tally["marks"][digest] == "errors"


def test_a_mark_of_the_wrong_shape_is_refused(stack: LocalStack) -> None:
    status, body = signing.call(
        stack, "POST", "/_local/traffic", {"image": "sha256:" + "a" * 64, "behaviour": "flaky"}
    )
    assert status == 400
    assert "flaky" in body["detail"]
