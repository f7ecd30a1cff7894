"""Write to confirmed: how long each router's data plane takes to apply a move of traffic.

A move of traffic counts as done once the data plane applies it (the router's
``confirm``): the Services' EndpointSlices under ``selector``, the HTTPRoute's
status at its generation under ``gateway``, the listener rule and the targets'
health in ELBv2 under ``alb``. On the local stack, for each router, ``MOVES`` moves
go through the product's own cluster adapter (``KubernetesCluster``):

- ``write``: the move with the waiting off (``confirm_seconds=0``): it returns once
  canaryEnv and the router's objects are written;
- ``to confirmed``: from the end of that write, ``router.confirm()`` polled every
  ``POLL`` s until it says the data plane applies the move (what the data plane
  takes, to within a poll);
- ``move returned``: the same moves as the product makes them, waiting included
  (its polls start at 0.1 s and double up to 2 s, so it returns up to one pause
  after the data plane applied the move).

Stacks: the emulator (a stand-in for each data plane: its EndpointSlice and Gateway
controllers, ``local/alb_controller.py`` for the Load Balancer Controller) and, where
``make kube`` built the control plane, the real control plane: its own EndpointSlice
controller, the AWS Load Balancer Controller against moto, and, as root (a pod
network of the stack's own), Traefik. Moves under ``selector`` switch the roles;
under ``alb`` and ``gateway`` they shift production's weights (10 % to the canary,
then back to 0). Figures, not goals: nothing here is asserted.

Reproduce: ``make bench`` or ``python -m bench confirmed_moves``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMMAND = ".venv/bin/python -m bench confirmed_moves   (or: make bench)"
MOVES = 8
POLL = 0.05
"""Seconds between two readings of the data plane while timing ``to confirmed``."""
DEADLINE = 120.0
"""The product's default budget for a move's confirmation (BG_TRAFFIC_CONFIRM_SECONDS)."""
KUBE_SPEED = 10.0
STACKS: tuple[tuple[str, str, str], ...] = (
    ("emulator", "selector", "the emulator's EndpointSlice controller"),
    ("emulator", "gateway", "the emulator's Gateway (route status)"),
    ("emulator", "alb", "stand-in controller -> moto ELBv2"),
    ("kube", "selector", "kube-controller-manager's EndpointSlices"),
    ("kube", "gateway", "Traefik v3.6.12 (route status)"),
    ("kube", "alb", "AWS Load Balancer Controller v3.6.2 -> moto ELBv2"),
)


@dataclass
class Timings:
    """One stack's figures, in seconds, or why there are none."""

    cluster: str
    router: str
    data_plane: str
    writes: list[float] = field(default_factory=list)
    confirmed: list[float] = field(default_factory=list)
    returned: list[float] = field(default_factory=list)
    unconfirmed: int = 0
    note: str = ""


def _moves(router: str, cluster: Any) -> list[Any]:
    """Moves that each change something, alternating: colours to make the canary under
    ``selector``, production's weights under the weighted routers."""
    from bluegreen.domain.traffic import Weights

    canary = cluster.canary_env().selector
    if router == "selector":
        return [canary.other, canary] * (MOVES // 2)
    return [Weights.split(canary, 10), Weights.all_on(canary.other)] * (MOVES // 2)


def _make(cluster: Any, move: Any) -> None:
    from bluegreen.domain.traffic import Weights

    if isinstance(move, Weights):
        cluster.shift_traffic(move)
    else:
        cluster.switch_roles(move)


def _until_confirmed(cluster: Any, began: float) -> float | None:
    """Seconds from ``began`` until the router's ``confirm`` says the data plane applies
    its objects; None when it does not within ``DEADLINE``."""
    while True:
        try:
            confirmed = cluster.confirm_traffic().confirmed
        except Exception:  # a reading that failed is not a confirmation; poll again
            confirmed = False
        now = time.monotonic()
        if confirmed:
            return now - began
        if now - began > DEADLINE:
            return None
        time.sleep(POLL)


def _measure(timings: Timings, settings: Any) -> None:
    from bluegreen.adapters.kube.cluster import KubernetesCluster

    writer = KubernetesCluster.from_settings(settings, confirm_seconds=0)
    product = KubernetesCluster.from_settings(settings)
    # Connections are made, the objects found and the data plane programmed with the
    # seed's traffic (a controller reconciles after the stack starts) before any timing.
    product.confirm_traffic()
    if _until_confirmed(writer, time.monotonic()) is None:
        timings.note = f"the seed's traffic was not confirmed within {DEADLINE:g} s"
        return
    for move in _moves(timings.router, writer):
        began = time.monotonic()
        _make(writer, move)
        written = time.monotonic()
        timings.writes.append(written - began)
        took = _until_confirmed(writer, written)
        if took is None:
            timings.unconfirmed += 1
            return
        timings.confirmed.append(took)
    for move in _moves(timings.router, product):
        began = time.monotonic()
        _make(product, move)
        timings.returned.append(time.monotonic() - began)


def _on_stack(cluster: str, router: str, data_plane: str, work: Path) -> Timings:
    from bluegreen.config import Settings
    from local.kube.controlplane import binaries_dir
    from local.stack import LocalStack, StackOptions

    timings = Timings(cluster, router, data_plane)
    if cluster == "kube" and not (binaries_dir() / "kube-apiserver").exists():
        timings.note = "the control plane is not built: make kube"
        return timings
    options = StackOptions.ephemeral(
        work / f"{cluster}-{router}",
        cluster=cluster,
        router=router,
        **({"speed": KUBE_SPEED} if cluster == "kube" else {}),
    )
    try:
        stack = LocalStack(options).start()
    except Exception as exc:  # a data plane that cannot run here is a row that says so
        timings.note = f"the stack did not start: {type(exc).__name__}: {exc}"
        return timings
    try:
        if cluster == "kube" and router == "gateway" and stack.proxy is None:
            timings.note = stack.data_plane.get("note", "no real proxy")
            return timings
        assert stack.state is not None
        _measure(timings, Settings.from_env(stack.state.environment))
    except Exception as exc:  # one router's failure is its row's, not the whole table's
        timings.note = f"{type(exc).__name__}: {str(exc)[:160]}"
    finally:
        stack.stop()
    return timings


def _seconds(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} / {max(values):.3f}"


def main() -> None:
    """Time ``MOVES`` moves per router and stack, and print the table."""
    print(f"$ {COMMAND}")
    rows: list[Timings] = []
    with tempfile.TemporaryDirectory(prefix="bench-confirmed-") as work:
        for cluster, router, data_plane in STACKS:
            rows.append(_on_stack(cluster, router, data_plane, Path(work)))
    print(
        f"write to confirmed per router, {MOVES} moves each (seconds, median / max; "
        f"data plane polled every {POLL:g} s)"
    )
    header = ("cluster", "router", "data plane", "write", "to confirmed", "move returned")
    table = [
        (
            t.cluster,
            t.router,
            t.data_plane,
            _seconds(t.writes),
            _seconds(t.confirmed)
            + (f" ({t.unconfirmed} not in {DEADLINE:g} s)" if t.unconfirmed else ""),
            _seconds(t.returned),
        )
        if not t.note
        else (t.cluster, t.router, t.data_plane, "-", t.note, "-")
        for t in rows
    ]
    widths = [max(len(str(row[i])) for row in (header, *table)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *table):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
