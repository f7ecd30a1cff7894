"""Fast failure detection: seconds from a deploy's apply to its rollback, per failure kind.

The deploy flow's rollout step (``check_rollout``) is polled as the flow polls
it, against the cluster emulator on a clock ``SPEED`` times faster than
Kubernetes (the crash-loop back-off, a pod's start, the progress deadline),
sleeping each ``waitSeconds`` shortened alike. The figures are the flow's own
waited seconds when the step raised ``RolloutFailed``: cluster seconds, beside
the progress deadline, the only signal before (600 s, Argo Rollouts' and
Flagger's default too). Thresholds are the stack's defaults. The requests per
poll are counted at the emulator. The last row is the crash loop on the real
control plane (real kubelet back-off, real time), when it is built.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

COMMAND = ".venv/bin/python -m bench fast_failure   (or: make bench)"
SPEED = 30.0
GOAL = 60
REPO = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud"


def _poll(settings: Any, speed: float, image: str, requests: Any = None) -> tuple[int, str, int]:
    """Deploy ``image`` on blue and poll until RolloutFailed: (waited, error text, max reqs)."""
    from bluegreen.adapters.kube.client import api_client_for
    from bluegreen.adapters.kube.cluster import KubernetesCluster
    from bluegreen.domain.errors import RolloutFailed
    from bluegreen.domain.models import Colour
    from bluegreen.logic.deploy.ports import DeployPorts
    from bluegreen.logic.deploy.rollout import check_rollout
    from bluegreen.logic.health import HealthProbes
    from tests.flow.fakes import FakeAlarms, FakeHttp, FakeLedger, FakeNotifier

    cluster = KubernetesCluster(settings, api_client_for(settings), timeout=(3.0, 10.0))
    ports = DeployPorts(
        settings=settings,
        ledger=FakeLedger(),
        cluster=cluster,
        notifier=FakeNotifier(),
        probes=HealthProbes(http=FakeHttp(), alarms=FakeAlarms()),
    )
    cluster.set_deployment_image(Colour.BLUE, image)
    reading: dict[str, Any] = {"image": image, "waited": 0, "waitSeconds": 0, "polls": 0}
    deployment = {"id": f"bench-{uuid.uuid4().hex[:8]}", "colour": "blue"}
    ports.ledger.acquire_lock(deployment["id"], settings.lock_lease_seconds)
    most = 0
    while True:
        before = len(requests()) if requests else 0
        try:
            reading = check_rollout({"deployment": deployment, "rollout": reading}, ports)
        except RolloutFailed as error:
            if requests:
                most = max(most, len(requests()) - before)
            waited = int(reading["waited"]) + int(reading["waitSeconds"])
            return waited, str(error), most
        if requests:
            most = max(most, len(requests()) - before)
        if reading["complete"]:
            return -1, "completed", most
        time.sleep(int(reading["waitSeconds"]) / speed)


def _kinds() -> list[tuple[str, str | None, dict[str, Any] | None]]:
    from local.cluster.containers import (
        CONFIG_ERROR,
        CRASH_LOOP,
        IMAGE_PULL,
        INVALID_IMAGE,
        OOM_KILLED,
    )

    return [
        (CRASH_LOOP, CRASH_LOOP, None),
        (OOM_KILLED, OOM_KILLED, None),
        (IMAGE_PULL, IMAGE_PULL, None),
        (INVALID_IMAGE, INVALID_IMAGE, None),
        (CONFIG_ERROR, CONFIG_ERROR, None),
        ("Unschedulable (cpu: 64)", None, {"requests": {"cpu": "64"}}),
    ]


def main() -> None:
    """Print the table."""
    from bluegreen.config import Settings
    from local.cluster import Clock, ClusterEmulator

    rows = []
    worst = 0
    for label, mode, resources in _kinds():
        with ClusterEmulator(
            seed="default", clock=Clock.scaled(SPEED), rollout_seconds=2.0
        ) as emulator:
            image = f"{REPO}@sha256:{uuid.uuid4().hex * 2}"
            if mode is not None:
                emulator.faults.break_image(image, mode)
            if resources is not None:

                def ask(deployment: dict[str, Any], wanted: dict[str, Any] = resources) -> None:
                    deployment["spec"]["template"]["spec"]["containers"][0]["resources"] = wanted

                emulator.mutate("deployments", "wp-platform", "blue-deployment", ask)
            settings = Settings(kube_api_url=emulator.url)
            waited, text, most = _poll(settings, SPEED, image, lambda e=emulator: e.requests)
            worst = max(worst, most)
            reason = text.split(": pod ", 1)[-1].split(";")[0][:70]
            rows.append((label, f"{waited} s", reason))
    rows.append(_on_kube())

    print(f"$ {COMMAND}")
    print(
        f"seconds from the apply to the rollback's start (cluster seconds; emulator clock "
        f"x{SPEED:g}; defaults: FailAfterRestarts 2, FailAfterSeconds 60, "
        f"UnschedulableSeconds 180; progress deadline 600 s; goal <= {GOAL} s for crash "
        "loops and image pulls)"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'failure kind':<{width}}  {'detected':>9}  why (from the Cause)")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 40}")
    for label, seconds, reason in rows:
        print(f"{label:<{width}}  {seconds:>9}  {reason}")
    print(f"{'progress deadline':<{width}}  {'600 s':>9}  what the Deployment alone reports")
    print(f"Kubernetes requests per rollout poll, at most: {worst} (target <= 3)")


def _on_kube() -> tuple[str, str, str]:
    """The crash loop on the real control plane, real time; skipped when it is not built."""
    from local.kube.controlplane import ControlPlane, binaries_dir

    label = "CrashLoopBackOff, real control plane"
    if not (binaries_dir() / "kube-apiserver").exists():
        return label, "-", "not built (make kube)"
    from bluegreen.config import Settings
    from local.cluster.containers import CRASH_LOOP

    with ControlPlane(progress=lambda line: None) as plane:
        assert plane.kubelet is not None
        image = f"{REPO}@sha256:{uuid.uuid4().hex * 2}"
        plane.kubelet.images.mark(image, CRASH_LOOP)
        settings = Settings(kubeconfig=str(plane.product_kubeconfig))
        waited, text, _ = _poll(replace(settings), 1.0, image)
    reason = text.split(": pod ", 1)[-1].split(";")[0][:70]
    return label, f"{waited} s", reason
