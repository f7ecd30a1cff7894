"""A bounded load generator: real HTTP requests through the proxy, tallied by colour.

The pods the simulated kubelet serves answer with a JSON body naming their
colour (``local/kube/kubelet.py``: ``{"pod", "colour", "image", "status"}``), so
every answer says which colour served it. ``LoadGenerator`` sends requests at a
steady rate on one kept-alive connection (as a browser holds one; the proxy
balances each request) until a count or a time limit, whichever comes first,
and records each answer with the time it was sent:

- an answer with a colour and a 2xx is served by that colour;
- an answer with a colour and a 5xx is that colour's own error (an image that
  answers 5 % 500s): the request reached a pod;
- anything else (connection refused or reset, the proxy's own 502/503/504, a body
  without a colour) is a *failed* request: it found no serving pod. A move of
  traffic must keep those at zero.

It only talks to loopback or to the pod network (``10.244.0.0/16``), and to the
latter only from inside a ``PodNetwork``: it cannot be pointed at anything
that leaves the machine. ``WeightTimeline`` records what the proxy routes by
over time (``GatewayProxy.serving_weights``), so the requests sent under each
weight can be told apart (``by_weights``).

``python -m local.load`` sends requests through the running local stack's proxy
(``make local CLUSTER=kube ROUTER=gateway``) and prints the tally each second.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.kube.kubelet import POD_NETWORK

MAX_REQUESTS = 1_000_000
MAX_SECONDS = 3600.0


class AddressRefused(ValueError):
    """The target is neither loopback nor a pod address reachable from inside the pod network."""


def checked_target(url: str, network: Any = None) -> tuple[str, int]:
    """``(host, port)`` of ``url`` when it is loopback, or a pod address with ``network``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise AddressRefused(f"{url!r}: only http://<address>:<port>/ URLs")
    host = parts.hostname
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise AddressRefused(
            f"{parts.hostname!r} is a name: give a loopback or pod-network address"
        ) from None
    if address.is_loopback:
        pass
    elif address in POD_NETWORK:
        if network is None:
            raise AddressRefused(
                f"{host} is a pod address: it is reachable only from inside the pod network "
                "(from anywhere else it would be routed off the machine)"
            )
    else:
        raise AddressRefused(f"{host} is neither loopback nor in the pod network {POD_NETWORK}")
    return host, int(parts.port or 80)


@dataclass(frozen=True)
class Answer:
    """One request: when it was sent, who answered and how."""

    at: float
    colour: str
    """The colour of the pod that answered; empty for a failed request."""
    status: int
    """The HTTP status (0 when there was no answer)."""
    failure: str = ""


@dataclass
class LoadTally:
    """What the requests of a span of time met."""

    sent: int = 0
    failed: int = 0
    served: Counter[str] = field(default_factory=Counter)
    """Requests a pod of each colour answered, with any status."""
    errors: Counter[str] = field(default_factory=Counter)
    """Of those, the 5xx the pods answered themselves (the image's own errors)."""
    failures: list[str] = field(default_factory=list)
    """The first few failures, in words."""

    @classmethod
    def of(cls, answers: Sequence[Answer]) -> LoadTally:
        tally = cls()
        for answer in answers:
            tally.sent += 1
            if answer.colour:
                tally.served[answer.colour] += 1
                if answer.status >= 500:
                    tally.errors[answer.colour] += 1
            else:
                tally.failed += 1
                if len(tally.failures) < 5:
                    tally.failures.append(answer.failure)
        return tally

    def share(self, colour: str) -> float:
        """Percent of the answered requests ``colour`` answered (0 without any)."""
        answered = sum(self.served.values())
        return 100.0 * self.served[colour] / answered if answered else 0.0

    def describe(self) -> str:
        """``sent 812, failed 0; blue 90, green 722 (green 5xx: 3)``."""
        colours = ", ".join(f"{c} {self.served[c]}" for c in ("blue", "green"))
        errors = ", ".join(f"{c} {n}" for c, n in sorted(self.errors.items()) if n)
        text = f"sent {self.sent}, failed {self.failed}; {colours}"
        if errors:
            text += f" (the pods' own 5xx: {errors})"
        if self.failures:
            text += f"; first failure: {self.failures[0]}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "served": dict(self.served),
            "errors": dict(self.errors),
        }


class LoadGenerator:
    """Requests to ``url`` (``Host: host``) at ``rate`` per second, at most ``count`` of them
    and for at most ``seconds``; from inside ``network`` when given (a ``PodNetwork``)."""

    def __init__(
        self,
        url: str,
        *,
        host: str = "",
        network: Any = None,
        rate: float = 100.0,
        count: int = 10_000,
        seconds: float = 60.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < count <= MAX_REQUESTS:
            raise ValueError(f"count must be from 1 to {MAX_REQUESTS}, got {count}")
        if not 0 < seconds <= MAX_SECONDS:
            raise ValueError(f"seconds must be more than 0 and at most {MAX_SECONDS:g}")
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.address = checked_target(url, network)
        parts = urllib.parse.urlsplit(url)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.host = host
        self.network = network
        self.rate = rate
        self.count = count
        self.seconds = seconds
        self.timeout = timeout
        self._clock = clock
        self._answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at = 0.0

    # running ------------------------------------------------------------------------------

    def start(self) -> LoadGenerator:
        self.started_at = self._clock()
        self._thread = threading.Thread(target=self._run, name="load-generator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> LoadTally:
        """Stop sending (the request in flight finishes); the tally of everything sent."""
        self._stop.set()
        self.join()
        return self.tally()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self.address
        if self.network is not None:
            return self.network.connection(host, port, self.timeout)  # type: ignore[no-any-return]
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _run(self) -> None:
        connection = self._connection()
        headers = {"Host": self.host} if self.host else {}
        deadline = self.started_at + self.seconds
        gap = 1.0 / self.rate
        next_at = self.started_at
        try:
            for _ in range(self.count):
                now = self._clock()
                if self._stop.is_set() or now >= deadline:
                    return
                # Paced, and stoppable at once.
                if next_at > now and self._stop.wait(next_at - now):
                    return
                sent_at = self._clock()
                next_at = max(next_at + gap, sent_at - 1.0)
                self._record(self._send(connection, headers, sent_at))
        finally:
            connection.close()

    def _send(
        self, connection: http.client.HTTPConnection, headers: Mapping[str, str], at: float
    ) -> Answer:
        try:
            connection.request("GET", self.path, headers=dict(headers))
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()  # the next request opens a new connection
            return Answer(at, "", 0, f"{type(exc).__name__}: {exc}")
        colour = ""
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                colour = str(parsed.get("colour") or "")
        except ValueError:
            pass
        if not colour:
            return Answer(at, "", response.status, f"{response.status}: {body[:80]!r}")
        return Answer(at, colour, response.status)

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self._answers.append(answer)

    # reading ------------------------------------------------------------------------------

    def answers(self, since: float | None = None, until: float | None = None) -> list[Answer]:
        """The answers to requests sent in ``[since, until)`` (monotonic clock), in order."""
        with self._lock:
            found = list(self._answers)
        return [
            a for a in found if (since is None or a.at >= since) and (until is None or a.at < until)
        ]

    def tally(self, since: float | None = None, until: float | None = None) -> LoadTally:
        return LoadTally.of(self.answers(since, until))


class WeightTimeline:
    """What ``read()`` says (the weights the proxy routes by), polled every ``every`` seconds;
    ``changes`` holds ``(monotonic time, value)`` each time it differs from the last."""

    def __init__(
        self,
        read: Callable[[], Mapping[str, int] | None],
        *,
        every: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._every = every
        self._clock = clock
        self.changes: list[tuple[float, dict[str, int]]] = []
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WeightTimeline:
        self._poll()
        self._thread = threading.Thread(target=self._run, name="weight-timeline", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WeightTimeline:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._poll()

    def _poll(self) -> None:
        before = self._clock()
        try:
            value = self._read()
        except Exception as exc:  # the proxy restarting: the next poll tells
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        if value is None:
            return
        value = dict(value)
        if not self.changes or self.changes[-1][1] != value:
            # The change happened between the previous poll and this one: stamped at the
            # start of this poll, it is at most one period late.
            self.changes.append((before, value))

    def spans(self, end: float | None = None) -> list[tuple[float, float, dict[str, int]]]:
        """``(start, end, weights)`` of each constant stretch, the last one up to ``end``."""
        end = self._clock() if end is None else end
        changes = list(self.changes)
        return [
            (at, changes[i + 1][0] if i + 1 < len(changes) else end, weights)
            for i, (at, weights) in enumerate(changes)
        ]


def by_weights(
    load: LoadGenerator, timeline: WeightTimeline, *, margin: float = 0.5, end: float | None = None
) -> list[tuple[dict[str, int], LoadTally]]:
    """The tally of the requests sent under each stretch of constant weights.

    ``margin`` seconds are left out at both ends of a stretch: a change is seen up
    to one poll late, and a request sent just before a change may be balanced just
    after it.
    """
    found = []
    for start, stop, weights in timeline.spans(end):
        if stop - start <= 2 * margin:
            continue
        found.append((weights, load.tally(start + margin, stop - margin)))
    return found


# -- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Send requests through the running local stack's proxy; print the tally each second."""
    from local.stack import STATE_DIR, STATE_FILE, running_stack_at

    parser = argparse.ArgumentParser(
        prog="python -m local.load",
        description="Real HTTP requests through the local stack's Gateway proxy (make local "
        "CLUSTER=kube ROUTER=gateway), tallied by the colour of the pod that answered.",
    )
    parser.add_argument("--url", help="default: the running stack's proxy (loopback)")
    parser.add_argument("--host", help="the Host header (default: the stack's route's host)")
    parser.add_argument("--count", type=int, default=1000, help="at most this many requests")
    parser.add_argument("--seconds", type=float, default=30.0, help="for at most this long")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument(
        "--state", type=Path, default=STATE_DIR / STATE_FILE, help="the stack's stack.json"
    )
    args = parser.parse_args(argv)
    url, host = args.url, args.host
    if url is None or host is None:
        state = running_stack_at(args.state)
        plane = state.data_plane if state is not None else {}
        if "proxy_url" not in plane:
            parser.error(
                f"no running stack with a proxy in {args.state}: start one with "
                "`make local CLUSTER=kube ROUTER=gateway`, or give --url and --host"
            )
        url = url or plane["proxy_url"]
        host = host if host is not None else plane["proxy_host"]
    try:
        load = LoadGenerator(
            url, host=host, rate=args.rate, count=args.count, seconds=args.seconds
        ).start()
    except ValueError as exc:
        parser.error(str(exc))
    try:
        while load.running:
            load.join(1.0)
            print(f"{time.monotonic() - load.started_at:5.1f}s  {load.tally().describe()}")
    except KeyboardInterrupt:
        pass
    tally = load.stop()
    print(f"done: {tally.describe()}")
    return 0 if tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
