"""Hook Jobs: built from the colour's pod template, created once, reported with their logs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.adapters.kube.hooks import hook_job_name
from bluegreen.domain.errors import ClusterObjectMissing
from bluegreen.domain.models import Colour, Hook, HookRun
from local.cluster import ClusterEmulator
from tests.backends import Backend
from tests.cluster.conftest import RequestLog
from tests.cluster.test_canary_env import SEED_IMAGE

CACHE_FLUSH = Hook(
    name="cache-flush", command=("wp", "cache", "flush", "--allow-root"), timeout_seconds=120
)
CACHE_FLUSH_AS_ROOT_WITHOUT_FLAG = Hook(name="cache-flush", command=("wp", "cache", "flush"))


def dress_up_blue(deployment: dict[str, Any]) -> None:
    """Give blue's pod everything a hook must inherit, and things it must not."""
    pod = deployment["spec"]["template"]["spec"]
    web = pod["containers"][0]
    web["envFrom"] = [{"secretRef": {"name": "wp-secrets"}}]
    web["args"] = ["apache2-foreground"]
    web["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    web["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    pod["containers"].append({"name": "metrics", "image": "prom/statsd-exporter:v0.28.0"})
    pod["serviceAccountName"] = "default"
    pod["securityContext"] = {"fsGroup": 33}


def job(backend: Backend, name: str) -> dict[str, Any]:
    found = backend.get("jobs", name)
    assert found is not None, f"no Job {name}"
    return found


def test_hook_job_is_built_from_the_colours_pod_template(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN blue's pod has env, envFrom, a volume, a service account, a security context,
    # args, probes and a sidecar
    backend.mutate("deployments", "blue-deployment", dress_up_blue)
    deployment = backend.get("deployments", "blue-deployment")
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    web = pod["containers"][0]

    # WHEN the cache-flush hook is started on blue
    name = cluster.start_hook(Colour.BLUE, CACHE_FLUSH, "deploy-0042")

    # THEN the Job runs web's image, env, envFrom and mounts with the hook's command instead of
    # the server's, in a pod with the same volumes, account and security context
    created = job(backend, name)
    spec = created["spec"]
    template = spec["template"]
    (container,) = template["spec"]["containers"]
    assert container["name"] == "web"
    assert container["image"] == SEED_IMAGE
    assert container["command"] == ["wp", "cache", "flush", "--allow-root"]
    for inherited in ("env", "envFrom", "volumeMounts"):
        assert container[inherited] == web[inherited], inherited
    for dropped in ("args", "readinessProbe", "livenessProbe", "ports"):
        assert dropped not in container, dropped
    for inherited in ("volumes", "serviceAccountName", "securityContext"):
        assert template["spec"][inherited] == pod[inherited], inherited
    assert template["spec"]["restartPolicy"] == "Never"

    # AND it runs once, within the hook's timeout, and cleans itself up
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 120
    assert spec["ttlSecondsAfterFinished"] > 0

    # AND it is labelled as ours, and its pod would never receive blue's traffic
    expected = {
        "app.kubernetes.io/managed-by": "eks-bluegreen",
        "bluegreen/hook": "cache-flush",
        "bluegreen/run": "deploy-0042",
    }
    assert expected.items() <= created["metadata"]["labels"].items()
    assert expected.items() <= template["metadata"]["labels"].items()
    assert "app" not in template["metadata"]["labels"]


def test_starting_the_same_hook_of_the_same_run_twice_creates_one_job(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN a hook already started for a run (a retried Step Functions task)
    first = cluster.start_hook(Colour.BLUE, CACHE_FLUSH, "deploy-0042")

    # WHEN it is started again for the same run
    second = cluster.start_hook(Colour.BLUE, CACHE_FLUSH, "deploy-0042")

    # THEN the existing Job is reused
    assert first == second == hook_job_name("deploy-0042", "cache-flush")
    ours = [
        j
        for j in backend.list("jobs")
        if j["metadata"]["labels"].get("bluegreen/run") == "deploy-0042"
    ]
    assert len(ours) == 1


def test_another_run_gets_its_own_job(cluster: KubernetesCluster) -> None:
    # GIVEN a hook started for one run
    first = cluster.start_hook(Colour.BLUE, CACHE_FLUSH, "deploy-0042")

    # WHEN the rollback of that run starts it again
    second = cluster.start_hook(Colour.BLUE, CACHE_FLUSH, "deploy-0042-rollback")

    # THEN it is a different Job
    assert first != second


def finished(backend: Backend, cluster: KubernetesCluster, name: str, **options: Any) -> HookRun:
    """The hook's run once its Job has ended (at once on the emulator's instant clock)."""

    def ended() -> HookRun | None:
        run = cluster.hook_run(name, **options)
        return run if run.finished else None

    return backend.eventually(f"hook Job {name} ended", ended)


def test_a_successful_hook_reports_its_log(cluster: KubernetesCluster, backend: Backend) -> None:
    # GIVEN the cache flush with --allow-root started on blue
    name = cluster.start_hook(Colour.BLUE, CACHE_FLUSH, "deploy-1")

    # WHEN its run is read once it ended
    run = finished(backend, cluster, name)

    # THEN it finished, succeeded, and its log says so
    assert run.finished
    assert run.succeeded
    assert run.job_name == name
    assert "Success: The cache was flushed." in run.log_tail
    assert run.reason == ""


def test_a_failed_hook_reports_its_log_and_why(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN the cache flush as root without --allow-root (the original system's bug)
    name = cluster.start_hook(Colour.BLUE, CACHE_FLUSH_AS_ROOT_WITHOUT_FLAG, "deploy-2")

    # WHEN its run is read once it ended
    run = finished(backend, cluster, name)

    # THEN it finished and failed; the log shows wp-cli's complaint, the reason the exit code
    assert run.finished
    assert not run.succeeded
    assert "--allow-root" in run.log_tail
    assert "BackoffLimitExceeded" in run.reason
    assert "exited with code 1" in run.reason


def test_log_tail_keeps_the_last_lines(cluster: KubernetesCluster, backend: Backend) -> None:
    # GIVEN a hook that prints five lines
    chatty = Hook(name="chatty", command=("sh", "-c", "echo 1; echo 2; echo 3; echo 4; echo 5"))
    name = cluster.start_hook(Colour.GREEN, chatty, "deploy-3")

    # WHEN its run is read keeping two lines
    run = finished(backend, cluster, name, log_lines=2)

    # THEN only the last two are kept
    assert run.succeeded
    assert run.log_tail == "4\n5"


def test_a_hook_still_running_is_not_finished(
    cluster: KubernetesCluster, emulator: ClusterEmulator, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN a hook whose Job never ends
    emulator.faults.fail_jobs("cache-flush", mode="hang")
    name = cluster.start_hook(Colour.BLUE, CACHE_FLUSH, "deploy-4")
    log = request_log()

    # WHEN its run is read
    run = cluster.hook_run(name)

    # THEN it is not finished, and that took one request (no pod or log lookups)
    assert not run.finished
    assert not run.succeeded
    assert len(log.all()) == 1


def test_an_unknown_job_is_named(cluster: KubernetesCluster) -> None:
    # GIVEN no such Job
    # WHEN its run is read
    # THEN the error names it
    with pytest.raises(ClusterObjectMissing, match='Job "hook-nothing-here"'):
        cluster.hook_run("hook-nothing-here")
