"""A steady stream of simulated requests through the router, published as ALB metrics.

``TrafficSimulator`` stands in for the users and the load balancer of the local
stack. Every tick it reads where the stack's router sends production (the Ingress,
the HTTPRoute or the Services, through the product's own cluster adapter; or, on
the real control plane under ``alb``, the listener rule the AWS Load Balancer
Controller made in moto's ELBv2, ``held_weights``: what the load balancer holds), sends
its share of a steady request rate to each colour, lets each request succeed, fail
with a 5xx or be slow by what that colour's image does, and publishes the window
as an ALB does, per target group, into (moto's) CloudWatch: so the canary's
analysis has real numbers to judge.

What an image does is set by ``mark`` (``errors``: 5 % of its requests answer
5xx; ``slow``: it answers in about 2 s; ``good`` otherwise). A colour whose
Deployment has no available replica fails every request sent to it. Under the
``selector`` router, a Service that re-points its selector makes the load
balancer deregister the old targets and register new ones, which serve nothing
until their first health check passes (``registration_seconds``): requests sent
to production meanwhile fail, the failure the weighted routers avoid.

``failed`` counts the simulated requests that failed for a reason other than
their image (no ready target), which is what a flip must keep at zero.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.cloudwatch import publish_target_group

BEHAVIOURS = ("good", "errors", "slow")
ERROR_SHARE = {"good": 0.0, "errors": 0.05, "slow": 0.0}
LATENCY = {"good": 0.05, "errors": 0.06, "slow": 2.0}


@dataclass
class Tally:
    """What the simulated users saw, per colour and in all."""

    sent: dict[str, int] = field(default_factory=lambda: {"blue": 0, "green": 0})
    errors: dict[str, int] = field(default_factory=lambda: {"blue": 0, "green": 0})
    failed: int = 0
    """Requests that found no serving target (not the image's own 5xx)."""


class TrafficSimulator:
    """Simulated production traffic through the stack's router, as ALB metrics."""

    def __init__(
        self,
        cluster: Any,
        cloudwatch: Any,
        target_groups: Mapping[str, str],
        *,
        rate: float = 50.0,
        tick: float = 0.25,
        load_balancer: str = "",
        registration_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 7,
        held_weights: Callable[[], Any] | None = None,
    ) -> None:
        """``cluster`` is the product's ``KubernetesCluster`` (what the router says);
        ``target_groups`` maps ``blue``/``green`` to their TargetGroup dimension.

        ``held_weights``, when given, says what the load balancer itself holds
        (production's ``Weights``, or None while it holds none): requests then go by
        it instead of by the router object, which the load balancer follows only
        once its controller has reconciled the write.
        """
        self._cluster = cluster
        self._held_weights = held_weights
        self._cloudwatch = cloudwatch
        self._target_groups = dict(target_groups)
        self.rate = rate
        self._tick = tick
        self._load_balancer = load_balancer
        self._registration = registration_seconds
        self._clock = clock
        self._random = random.Random(seed)
        self._marks: dict[str, str] = {}
        self._carry = {"blue": 0.0, "green": 0.0}
        # Half a request of credit: a 5 % image errs on its 10th request, not its 20th.
        self._error_carry = {"blue": 0.5, "green": 0.5}
        self._registered: dict[str, tuple[str | None, float]] = {}
        self._rollouts: dict[Any, tuple[float, Any]] = {}
        self.tally = Tally()
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # what images do -------------------------------------------------------------------

    def mark(self, image_or_digest: str, behaviour: str) -> None:
        """``errors``, ``slow`` or ``good`` for every colour that runs that image."""
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"{behaviour!r} is not one of {', '.join(BEHAVIOURS)}")
        with self._lock:
            self._marks[_digest_part(image_or_digest)] = behaviour

    def marks(self) -> dict[str, str]:
        """Every image marked so far (by digest) and what it does."""
        with self._lock:
            return dict(self._marks)

    def behaviour_of(self, image: str) -> str:
        with self._lock:
            return self._marks.get(_digest_part(image), "good")

    # running --------------------------------------------------------------------------

    def start(self) -> TrafficSimulator:
        self._thread = threading.Thread(target=self._run, name="traffic-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TrafficSimulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        last = self._clock()
        while not self._stop.wait(self._tick):
            now = self._clock()
            try:
                self.step(now - last)
                self.last_error = ""
            except Exception as exc:  # the cluster or moto restarting: try again next tick
                self.last_error = f"{type(exc).__name__}: {exc}"
            last = now

    def step(self, seconds: float) -> dict[str, int]:
        """Send ``seconds`` worth of requests through the router and publish them."""
        if self._held_weights is not None:
            traffic, weights = None, self._held_weights()
        else:
            traffic = self._cluster.traffic()
            weights = traffic.production
        shares = {"blue": 0.0, "green": 0.0}
        if weights is not None and weights.blue + weights.green > 0:
            total = weights.blue + weights.green
            shares = {"blue": weights.blue / total, "green": weights.green / total}
        when = datetime.now(UTC)
        sent: dict[str, int] = {}
        for colour, share in shares.items():
            exact = self.rate * seconds * share + self._carry[colour]
            count = int(exact)
            self._carry[colour] = exact - count
            if count <= 0:
                continue
            sent[colour] = count
            self._serve(colour, count, when, traffic)
        return sent

    def _serve(self, colour: str, count: int, when: datetime, traffic: Any) -> None:
        from bluegreen.domain.models import Colour

        state = self._rollout(Colour(colour))
        if state.available <= 0 or not self._registered_ok(colour, traffic):
            # Nothing serves these requests: the load balancer answers 502/503 itself,
            # which ALB counts as ELB errors, not target errors.
            self.tally.failed += count
            self.tally.sent[colour] += count
            return
        behaviour = self.behaviour_of(state.image)
        exact = count * ERROR_SHARE[behaviour] + self._error_carry[colour]
        errors = int(exact)
        self._error_carry[colour] = exact - errors
        base = LATENCY[behaviour]
        latencies = [base * (0.8 + 0.4 * self._random.random()) for _ in range(count)]
        self.tally.sent[colour] += count
        self.tally.errors[colour] += errors
        target_group = self._target_groups.get(colour)
        if target_group:
            publish_target_group(
                self._cloudwatch,
                target_group,
                requests=count,
                errors=errors,
                latencies=latencies,
                when=when,
                load_balancer=self._load_balancer,
            )

    def _rollout(self, colour: Any) -> Any:
        """A colour's rollout, read at most once a second (the cluster's load stays light)."""
        now = self._clock()
        cached = self._rollouts.get(colour)
        if cached is None or now - cached[0] >= 1.0:
            cached = (now, self._cluster.rollout(colour))
            self._rollouts[colour] = cached
        return cached[1]

    def _registered_ok(self, colour: str, traffic: Any) -> bool:
        """Under the selector router: are production's targets past their first health check?"""
        if traffic is None or traffic.router.value != "selector":
            return True
        sole = traffic.production.sole if traffic.production is not None else None
        selected = sole.value if sole is not None else None
        now = self._clock()
        previous = self._registered.get("production")
        if previous is None:
            self._registered["production"] = (selected, now - self._registration)
            return True
        if previous[0] != selected:
            self._registered["production"] = (selected, now)
            return False
        return now - previous[1] >= self._registration


def image_mark(image: str) -> str:
    """The digest of an image reference (or the text as given): how images are marked."""
    return _digest_part(image)


def _digest_part(image: str) -> str:
    """The digest of an image reference (or the text as given): how images are marked."""
    _, sep, digest = image.partition("@")
    text = digest if sep else image
    return text if text.startswith("sha256:") else f"sha256:{text}" if len(text) == 64 else text
