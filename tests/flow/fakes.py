"""In-memory ports for the deploy steps: a ledger, a cluster, a notifier, health probes.

They keep just enough behaviour to drive the flow's decisions (lock lease,
verdicts, tag pointers, a colour's image and rollout, hook Jobs); the real
adapters are exercised by the flow tests against moto and the emulator.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from bluegreen.domain.errors import TrafficNotWeighted
from bluegreen.domain.models import (
    AlarmStates,
    CanaryEnv,
    Colour,
    Deployment,
    Digest,
    Hook,
    HookRun,
    ImageRecord,
    Outcome,
    Role,
    RolloutState,
    Verdict,
)
from bluegreen.domain.pods import PodState, PodWarning
from bluegreen.domain.ports import AlarmProbe, Cluster, HttpProbe, Ledger, Notifier
from bluegreen.domain.snapshot import ClusterSnapshot
from bluegreen.domain.traffic import Confirmation, RouterKind, Traffic, Weights

REPO = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud"


def digest(n: int) -> Digest:
    """A distinct, valid digest per number."""
    return Digest(f"{n:064x}")


class FakeLedger(Ledger):
    """``ports.Ledger`` in memory (thread-safe: Map iterations and executions run in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.images_: dict[Digest, ImageRecord] = {}
        self.tags: dict[str, Digest] = {}
        self.verdicts: dict[Digest, tuple[Verdict, str, int]] = {}
        self.records: dict[str, Deployment] = {}
        self.holder: str | None = None
        self.attempt = ""
        self.claimed: set[tuple[str, str]] = set()
        self._tick = 0

    def _next(self) -> int:
        self._tick += 1
        return self._tick

    def record_push(
        self,
        digest: Digest,
        tag: str | None,
        pushed_at: datetime,
        event_id: str,
        *,
        confirmed_at: datetime | None = None,
    ) -> ImageRecord:
        with self._lock:
            old = self.images_.get(digest)
            tags = set(old.tags if old else ())
            if tag:
                previous = self.tags.get(tag)
                if previous is not None and previous != digest:
                    prev = self.images_[previous]
                    self.images_[previous] = replace(prev, tags=prev.tags - {tag})
                self.tags[tag] = digest
                tags.add(tag)
            record = ImageRecord("rezfusion-cloud", digest, frozenset(tags), pushed_at, event_id)
            self.images_[digest] = record
            return record

    def image(self, digest: Digest) -> ImageRecord | None:
        return self.images_.get(digest)

    def digest_for_tag(self, tag: str) -> Digest | None:
        return self.tags.get(tag)

    def images(
        self, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[ImageRecord], str | None]:
        return list(self.images_.values())[:limit], None

    def set_verdict(self, digest: Digest, verdict: Verdict, reason: str = "") -> None:
        with self._lock:
            self.verdicts[digest] = (verdict, reason, self._next())

    def verdict(self, digest: Digest) -> Verdict:
        return self.verdicts.get(digest, (Verdict.UNKNOWN, "", 0))[0]

    def last_healthy(self, exclude: Sequence[Digest] = ()) -> Digest | None:
        healthy = [
            (tick, d)
            for d, (v, _, tick) in self.verdicts.items()
            if v is Verdict.HEALTHY and d not in exclude
        ]
        return max(healthy)[1] if healthy else None

    def put_deployment(self, deployment: Deployment) -> None:
        with self._lock:
            self.records.setdefault(deployment.id, deployment)

    def update_deployment(self, deployment_id: str, **changes: object) -> Deployment:
        with self._lock:
            self.records[deployment_id] = replace(self.records[deployment_id], **changes)  # type: ignore[arg-type]
            return self.records[deployment_id]

    def finish_deployment(
        self,
        deployment_id: str,
        outcome: Outcome,
        cause: str = "",
        rolled_back_to: Digest | None = None,
    ) -> Deployment:
        changes: dict[str, object] = {"outcome": outcome, "finished_at": datetime.now(UTC)}
        if cause:
            changes["cause"] = cause
        if rolled_back_to is not None:
            changes["rolled_back_to"] = rolled_back_to
        return self.update_deployment(deployment_id, **changes)

    def open_deployment(self, deployment: Deployment) -> bool:
        with self._lock:
            current = self.records.get(deployment.id)
            if current is not None and not (
                current.outcome is Outcome.FAILED and not current.execution_arn
            ):
                return False
            self.records[deployment.id] = deployment
            return True

    def abandon_deployment(self, deployment_id: str, cause: str) -> bool:
        with self._lock:
            current = self.records[deployment_id]
            if current.outcome is not Outcome.RUNNING or current.execution_arn:
                return False
            self.records[deployment_id] = replace(
                current, outcome=Outcome.FAILED, cause=cause, finished_at=datetime.now(UTC)
            )
            return True

    def claim_deployment(self, deployment_id: str, execution_arn: str) -> Deployment | None:
        with self._lock:
            current = self.records.get(deployment_id)
            if current is None or current.outcome is not Outcome.RUNNING:
                return None
            if current.execution_arn not in ("", execution_arn):
                return None
            self.records[deployment_id] = replace(current, execution_arn=execution_arn)
            return self.records[deployment_id]

    def deployment(self, deployment_id: str) -> Deployment | None:
        return self.records.get(deployment_id)

    def deployments(
        self, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Deployment], str | None]:
        return list(self.records.values())[::-1][:limit], None

    def acquire_lock(self, holder: str, lease_seconds: int) -> bool:
        with self._lock:
            if self.holder in (None, holder):
                self.holder = holder
                return True
            return False

    def renew_lock(self, holder: str, lease_seconds: int, attempt: str = "") -> bool:
        with self._lock:
            if self.holder != holder or (attempt and attempt < self.attempt):
                return False
            self.attempt = max(attempt, self.attempt)
            return True

    def release_lock(self, holder: str) -> None:
        with self._lock:
            if self.holder == holder:
                self.holder = None
                self.attempt = ""

    def lock_holder(self) -> str | None:
        return self.holder

    def unclaim_event(self, deployment_id: str, outcome: str) -> None:
        with self._lock:
            self.claimed.discard((deployment_id, outcome))

    def claim_event(self, deployment_id: str, outcome: str) -> bool:
        with self._lock:
            if (deployment_id, outcome) in self.claimed:
                return False
            self.claimed.add((deployment_id, outcome))
            return True


class FakeCluster(Cluster):
    """``ports.Cluster`` in memory: rollouts complete at once unless the image is broken."""

    def __init__(self, blue: Digest, green: Digest, canary: Colour = Colour.BLUE) -> None:
        self.images = {Colour.BLUE: f"{REPO}@{blue}", Colour.GREEN: f"{REPO}@{green}"}
        self.canary = canary
        self.canary_image = self.images[canary]
        self.broken: set[str] = set()
        self.failing_hooks: set[str] = set()
        self.jobs: dict[str, tuple[Colour, Hook, str]] = {}
        self.writes: list[tuple[Colour, str]] = []

    def canary_env(self) -> CanaryEnv:
        return CanaryEnv(self.canary, self.canary_image, "1")

    def deployment_image(self, colour: Colour) -> str:
        return self.images[colour]

    def set_deployment_image(self, colour: Colour, image: str) -> bool:
        if self.images[colour] == image:
            return False
        self.images[colour] = image
        self.writes.append((colour, image))
        return True

    def rollout(self, colour: Colour) -> RolloutState:
        image = self.images[colour]
        broken = image.rpartition("@")[2] in self.broken
        return RolloutState(
            colour=colour,
            image=image,
            desired=2,
            updated=2,
            ready=0 if broken else 2,
            available=0 if broken else 2,
            generation=2,
            observed_generation=2,
            complete=not broken,
            stalled=broken,
            message="ReplicaSet has timed out progressing." if broken else "",
        )

    def new_pods(self, colour: Colour, image: str) -> list[PodState]:
        return []

    def pod_warnings(self, pods: Sequence[str]) -> list[PodWarning]:
        return []

    def previous_log(self, pod: str, container: str, lines: int, limit_bytes: int) -> str:
        return ""

    def service_selectors(self) -> dict[Role, Colour | None]:
        return {Role.CANARY: self.canary, Role.PRODUCTION: self.canary.other}

    def traffic(self) -> Traffic:
        return Traffic(
            router=RouterKind.SELECTOR,
            production=Weights.all_on(self.canary.other),
            canary=self.canary,
            where="the fake cluster's Services",
        )

    def confirm_traffic(self) -> Confirmation:
        return Confirmation.as_written(self.traffic())

    def shift_traffic(
        self,
        weights: Weights,
        canary: Colour | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        raise TrafficNotWeighted("the fake cluster routes by Services' selectors only")

    def snapshot(self) -> ClusterSnapshot:
        return ClusterSnapshot(
            canary_env=self.canary_env(),
            rollouts={colour: self.rollout(colour) for colour in Colour},
            selectors=self.service_selectors(),
            traffic=self.traffic(),
        )

    def switch_roles(
        self,
        canary: Colour,
        image: str | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        if confirm is not None:
            confirm()
        changed = self.canary is not canary
        self.canary = canary
        return changed

    def set_canary_image(self, image: str) -> bool:
        changed = self.canary_image != image
        self.canary_image = image
        return changed

    def start_hook(self, colour: Colour, hook: Hook, run_id: str) -> str:
        name = f"{hook.name}-{len(self.jobs)}"
        self.jobs[name] = (colour, hook, self.images[colour])
        return name

    def hook_run(self, job_name: str, log_lines: int = 50) -> HookRun:
        _, hook, _ = self.jobs[job_name]
        if hook.name in self.failing_hooks or "--allow-root" not in hook.command:
            return HookRun(
                job_name, True, False, "Error: YIKES! running as root", "BackoffLimitExceeded"
            )
        return HookRun(job_name, True, True, "Success: The cache was flushed.")


class FakeNotifier(Notifier):
    """Collects what would be published."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def publish(self, detail_type: str, detail: dict[str, object]) -> None:
        self.events.append((detail_type, detail))


class FakeHttp(HttpProbe):
    def __init__(self, code: int = 200) -> None:
        self.code = code

    def status(self, url: str) -> tuple[int, str]:
        return self.code, "OK" if self.code == 200 else "Service Unavailable"


class FakeAlarms(AlarmProbe):
    """Alarms by name: the given ones are in ALARM, ``existing`` (default: all) exist."""

    def __init__(self, alarming: Sequence[str] = (), existing: Sequence[str] | None = None) -> None:
        self.names = list(alarming)
        self.existing = None if existing is None else set(existing) | set(alarming)

    def states(self, names: Sequence[str]) -> AlarmStates:
        known = [n for n in names if self.existing is None or n in self.existing]
        return AlarmStates(
            alarming=tuple(n for n in known if n in self.names),
            missing=tuple(n for n in names if n not in known),
        )
