"""``local.load``: the bounded load generator the traffic stories send real requests with."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.load import (
    AddressRefused,
    LoadGenerator,
    WeightTimeline,
    by_weights,
    checked_target,
)


class _Pods:
    """A loopback server answering as the kubelet's pod servers do, by a script of answers."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, Any] | None]] = []
        self.hosts: list[str] = []
        pods = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                pods.hosts.append(self.headers.get("Host", ""))
                status, body = pods.answers.pop(0) if pods.answers else (200, {"colour": "green"})
                raw = json.dumps(body).encode() if body is not None else b"Bad Gateway"
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pods() -> Iterator[_Pods]:
    server = _Pods()
    yield server
    server.close()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://8.8.8.8/", "neither loopback nor in the pod network"),
        ("http://192.168.1.10:8080/", "neither loopback nor in the pod network"),
        ("http://10.244.3.4/", "reachable only from inside the pod network"),
        ("http://www.example.com/", "is a name"),
        ("https://127.0.0.1/", "only http://"),
    ],
)
def test_an_address_off_the_machine_is_refused(url: str, words: str) -> None:
    with pytest.raises(AddressRefused, match=words):
        LoadGenerator(url)


def test_loopback_and_pod_addresses_inside_the_pod_network_are_accepted() -> None:
    assert checked_target("http://127.0.0.1:8080/") == ("127.0.0.1", 8080)
    assert checked_target("http://localhost/") == ("127.0.0.1", 80)
    assert checked_target("http://10.244.3.4:8080/", network=object()) == ("10.244.3.4", 8080)


@pytest.mark.parametrize(
    "limits",
    [{"count": 0}, {"count": 2_000_000}, {"seconds": 0}, {"seconds": 7200}, {"rate": 0}],
)
def test_the_limits_are_bounded(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LoadGenerator("http://127.0.0.1:9/", **limits)  # type: ignore[arg-type]


def test_it_stops_at_its_count(pods: _Pods) -> None:
    # WHEN it may send 25 requests, fast, for a minute
    load = LoadGenerator(pods.url, host="www.example.com", rate=1000, count=25, seconds=60)
    load.start().join(10)
    # THEN it sent 25, with the Host header, and stopped by itself
    assert not load.running
    assert load.tally().sent == 25
    assert set(pods.hosts) == {"www.example.com"}


def test_it_stops_at_its_time_limit(pods: _Pods) -> None:
    began = time.monotonic()
    load = LoadGenerator(pods.url, rate=20, count=10_000, seconds=0.5)
    load.start().join(10)
    assert time.monotonic() - began < 2.0
    # 20 per second for half a second: the first at once, then one every 50 ms
    assert 8 <= load.tally().sent <= 11


def test_answers_are_tallied_by_colour_and_failures_are_what_no_pod_answered(
    pods: _Pods,
) -> None:
    # GIVEN a blue answer, a green answer, green's own 500, and the proxy's own 502
    pods.answers = [
        (200, {"colour": "blue"}),
        (200, {"colour": "green"}),
        (500, {"colour": "green", "status": 500}),
        (502, None),
    ]
    load = LoadGenerator(pods.url, rate=1000, count=4, seconds=10)
    load.start().join(10)
    tally = load.tally()
    # THEN the pods' answers count for their colour, their 500 as that colour's error
    assert (tally.sent, tally.failed) == (4, 1)
    assert tally.served == {"blue": 1, "green": 2}
    assert tally.errors == {"green": 1}
    assert tally.failures == ["502: b'Bad Gateway'"]
    assert tally.share("green") == pytest.approx(100 * 2 / 3)


def test_a_refused_connection_is_a_failed_request() -> None:
    from local.kube.controlplane import free_port

    load = LoadGenerator(f"http://127.0.0.1:{free_port()}/", rate=1000, count=3, seconds=10)
    load.start().join(10)
    tally = load.tally()
    assert (tally.sent, tally.failed) == (3, 3)
    assert tally.failures[0].startswith("ConnectionRefusedError")


def test_requests_are_told_apart_by_the_weights_routed_by_when_they_were_sent(
    pods: _Pods,
) -> None:
    # GIVEN weights that change at t=10 and requests recorded at known times
    now = [0.0]
    weights = [{"blue": 100, "green": 0}]
    timeline = WeightTimeline(lambda: weights[0], clock=lambda: now[0])
    timeline._poll()
    now[0], weights[0] = 10.0, {"blue": 0, "green": 100}
    timeline._poll()
    load = LoadGenerator(pods.url)
    from local.load import Answer

    for at in (1.0, 5.0, 9.8):
        load._record(Answer(at, "blue", 200))
    for at in (10.2, 12.0, 15.0):
        load._record(Answer(at, "green", 200))
    # WHEN split with half a second left out at each end of a stretch
    found = by_weights(load, timeline, margin=0.5, end=16.0)
    # THEN each stretch holds the requests sent well inside it
    assert [(w, t.sent, dict(t.served)) for w, t in found] == [
        ({"blue": 100, "green": 0}, 2, {"blue": 2}),
        ({"blue": 0, "green": 100}, 2, {"green": 2}),
    ]
