"""Pure parts of the cluster adapter: rollout judgement and hook Job names."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bluegreen.adapters.kube.hooks import hook_job_name
from bluegreen.domain.judgements import judge_rollout
from bluegreen.domain.models import Colour

_DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _deployment(
    *,
    replicas: int | None = 2,
    generation: int = 3,
    observed: int = 3,
    updated: int = 2,
    total: int = 2,
    available: int = 2,
    ready: int = 2,
    progressing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"progressDeadlineSeconds": 120}
    if replicas is not None:
        spec["replicas"] = replicas
    conditions = [progressing] if progressing else []
    return {
        "metadata": {"name": "green-deployment", "generation": generation},
        "spec": spec,
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "readyReplicas": ready,
            "conditions": conditions,
        },
    }


def test_rollout_with_every_replica_updated_and_available_is_complete() -> None:
    # GIVEN a Deployment whose controller has caught up and whose pods are all new and available
    deployment = _deployment()

    # WHEN it is judged
    state = judge_rollout(Colour.GREEN, deployment, "repo@sha256:" + "a" * 64)

    # THEN it is complete, with kubectl's words and the figures carried over
    assert state.complete
    assert not state.stalled
    assert state.message == 'deployment "green-deployment" successfully rolled out'
    assert (state.desired, state.updated, state.available, state.ready) == (2, 2, 2, 2)
    assert state.progress_deadline_seconds == 120
    assert state.digest is not None
    assert state.digest.hex == "a" * 64


@pytest.mark.parametrize(
    ("changes", "expected_message"),
    [
        (
            {"generation": 4, "observed": 3},
            'Waiting for deployment "green-deployment" spec update to be observed',
        ),
        (
            {"updated": 1},
            'Waiting for deployment "green-deployment" rollout to finish: 1 out of 2 new '
            "replicas have been updated",
        ),
        (
            {"total": 3},
            'Waiting for deployment "green-deployment" rollout to finish: 1 old replicas are '
            "pending termination",
        ),
        (
            {"available": 1},
            'Waiting for deployment "green-deployment" rollout to finish: 1 of 2 updated '
            "replicas are available",
        ),
    ],
)
def test_rollout_still_moving_is_progressing_with_kubectls_reason(
    changes: dict[str, Any], expected_message: str
) -> None:
    # GIVEN a Deployment that kubectl would still be waiting for
    deployment = _deployment(**changes)

    # WHEN it is judged
    state = judge_rollout(Colour.GREEN, deployment, "img")

    # THEN it is neither complete nor stalled, and says what it waits for
    assert not state.complete
    assert not state.stalled
    assert state.message == expected_message


def test_rollout_past_its_progress_deadline_is_stalled_with_the_condition_message() -> None:
    # GIVEN a Deployment whose Progressing condition says the deadline passed
    deployment = _deployment(
        updated=1,
        available=0,
        progressing={
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "green-deployment-abc" has timed out progressing.',
        },
    )

    # WHEN it is judged
    state = judge_rollout(Colour.GREEN, deployment, "img")

    # THEN it is stalled, quoting the condition
    assert state.stalled
    assert not state.complete
    assert state.message == (
        'deployment "green-deployment" exceeded its progress deadline: '
        'ReplicaSet "green-deployment-abc" has timed out progressing.'
    )


def test_an_unobserved_spec_wins_over_an_old_deadline_condition() -> None:
    # GIVEN a new spec the controller has not seen, over a stale ProgressDeadlineExceeded
    deployment = _deployment(
        generation=5,
        observed=4,
        progressing={"type": "Progressing", "reason": "ProgressDeadlineExceeded"},
    )

    # WHEN it is judged
    state = judge_rollout(Colour.GREEN, deployment, "img")

    # THEN it is waiting (as kubectl says), not stalled
    assert not state.stalled
    assert not state.complete
    assert "spec update to be observed" in state.message


def test_missing_replicas_means_one_as_the_api_server_defaults_it() -> None:
    # GIVEN a Deployment without spec.replicas and no updated pod yet
    deployment = _deployment(replicas=None, updated=0, total=1, available=1)

    # WHEN it is judged
    state = judge_rollout(Colour.BLUE, deployment, "img")

    # THEN one replica is desired and the rollout is still progressing
    assert state.desired == 1
    assert not state.complete


def test_hook_job_name_is_deterministic_and_readable() -> None:
    # GIVEN a run and a hook
    # WHEN the name is derived twice
    first = hook_job_name("deploy-42", "cache-flush")
    second = hook_job_name("deploy-42", "cache-flush")

    # THEN it is the same both times, and says what it is
    assert first == second
    assert first.startswith("hook-cache-flush-deploy-42-")
    assert _DNS_1123_LABEL.fullmatch(first)


@pytest.mark.parametrize(
    ("run_id", "hook"),
    [
        ("arn:aws:states:us-west-2:123456789012:execution:deploy:" + "x" * 80, "cache-flush"),
        ("Deploy_ÄÖ.2026/11/27", "Cache Flush!"),
        ("-", "-"),
        ("a" * 200, "b" * 200),
    ],
)
def test_hook_job_name_is_always_a_dns_label(run_id: str, hook: str) -> None:
    # GIVEN run ids and hook names of any shape and length
    # WHEN the Job name is derived
    name = hook_job_name(run_id, hook)

    # THEN it is a DNS-1123 label of at most 63 characters
    assert len(name) <= 63
    assert _DNS_1123_LABEL.fullmatch(name), name


def test_runs_that_sanitise_alike_still_get_different_jobs() -> None:
    # GIVEN two run ids that differ only in characters a Job name cannot hold
    # WHEN their Job names are derived
    # THEN they differ, so one run never reuses the other's Job
    assert hook_job_name("run:1", "cache-flush") != hook_job_name("run/1", "cache-flush")
    assert hook_job_name("r1", "cache-flush") != hook_job_name("r1", "rewrite-flush")
