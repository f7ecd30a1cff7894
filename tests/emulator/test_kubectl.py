"""The real kubectl (the pinned binary in .venv) against the cluster, as an operator uses it.

Every test runs on the emulator and on the real control plane (``kube``,
``seeded`` or ``scratch``: see ``conftest``),
except the first: it starts the emulator's own server (``python -m
local.cluster``), which only the emulator has.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulator.conftest import (
    BLUE_IMAGE,
    Kube,
    configmap,
    image,
    kubectl,
    kubectl_argv,
    kubectl_env,
)

pytestmark = pytest.mark.kubectl

ROOT = Path(__file__).resolve().parents[2]


def test_get_everything_from_the_standalone_server() -> None:
    # GIVEN the emulator's standalone server with the default seed
    server = subprocess.Popen(
        [sys.executable, "-m", "local.cluster", "--port", "0", "--instant"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        paste = server.stdout.readline()
        # WHEN kubectl lists the usual kinds
        out = kubectl(url, "get", "deploy,svc,cm,pods,rs").stdout
    finally:
        server.terminate()
        server.wait(timeout=5)
    # THEN every seeded object is there, printed as the server's tables
    assert f"--server={url}" in paste
    for name in (
        "deployment.apps/blue-deployment",
        "deployment.apps/green-deployment",
        "service/canary-service",
        "service/production-service",
        "configmap/canary-env",
        "configmap/kube-root-ca.crt",
    ):
        assert name in out
    assert out.count("pod/") == 4
    assert out.count("replicaset.apps/") == 2
    assert "2/2" in out


def _container_image(kube: Kube, name: str) -> str:
    image_name: str = kube.stored("deployments", name)["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    return image_name


def test_configmap_yaml_shows_canary_env_as_the_original_system(seeded: Kube) -> None:
    out = seeded.kubectl("get", "configmap", "canary-env", "-o", "yaml").stdout
    document = yaml.safe_load(out)
    assert document["data"]["canaryEnv"] == ('{"selector":"blue","image":"' + BLUE_IMAGE + '"}')
    assert document["metadata"]["resourceVersion"]


def test_set_image_then_rollout_status_succeeds(kube: Kube) -> None:
    kube.kubectl("set", "image", "deployment/green-deployment", f"web={image('a')}")
    out = kube.kubectl("rollout", "status", "deployment/green-deployment", "--timeout=60s").stdout
    assert 'deployment "green-deployment" successfully rolled out' in out
    assert _container_image(kube, "green-deployment") == image("a")


def test_rollout_status_fails_for_a_broken_image(kube: Kube) -> None:
    kube.backend.mark_image(image("b"), "CrashLoopBackOff")
    # (a deadline of a few seconds: the real controller's runs in real time)
    deadline = '{"spec":{"progressDeadlineSeconds":4}}'
    kube.kubectl("patch", "deployment", "green-deployment", "-p", deadline)
    kube.kubectl("set", "image", "deployment/green-deployment", f"web={image('b')}")
    result = kube.kubectl(
        "rollout", "status", "deployment/green-deployment", "--timeout=60s", check=False
    )
    assert result.returncode != 0
    assert 'deployment "green-deployment" exceeded its progress deadline' in result.stderr
    kube.eventually(
        "a pod shown crash-looping",
        lambda: "CrashLoopBackOff" in kube.kubectl("get", "pods", "-l", "app=green").stdout,
    )


def test_rollout_history_and_undo(kube: Kube) -> None:
    kube.kubectl("set", "image", "deployment/green-deployment", f"web={image('c')}")
    kube.kubectl("rollout", "status", "deployment/green-deployment", "--timeout=60s")
    history = kube.kubectl("rollout", "history", "deployment/green-deployment").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    kube.kubectl("rollout", "undo", "deployment/green-deployment")
    kube.kubectl("rollout", "status", "deployment/green-deployment", "--timeout=60s")
    stored = kube.stored("deployments", "green-deployment")
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] != image("c")
    assert stored["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    detail = kube.kubectl(
        "rollout", "history", "deployment/green-deployment", "--revision=3"
    ).stdout
    assert "rezfusion-cloud@sha256:216c" in detail


@pytest.mark.parametrize(
    ("kind", "patch", "check"),
    [
        (
            "strategic",
            '{"spec":{"template":{"spec":{"containers":[{"name":"web",'
            '"env":[{"name":"EXTRA","value":"1"}]}]}}}}',
            lambda d: (
                {e["name"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
                == {"EXTRA", "WORDPRESS_DB_HOST", "WORDPRESS_DB_NAME"}
            ),
        ),
        (
            "merge",
            '{"metadata":{"labels":{"tier":"web"}}}',
            lambda d: d["metadata"]["labels"] == {"app": "blue", "tier": "web"},
        ),
        (
            "json",
            '[{"op":"replace","path":"/spec/replicas","value":3}]',
            lambda d: d["spec"]["replicas"] == 3,
        ),
    ],
)
def test_patch_types(kube: Kube, kind: str, patch: str, check: Any) -> None:
    kube.kubectl("patch", "deployment", "blue-deployment", f"--type={kind}", "-p", patch)
    assert check(kube.stored("deployments", "blue-deployment"))


def test_create_job_from_a_manifest_and_read_its_logs(scratch: Kube, tmp_path: Path) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "cache-flush"},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "wp",
                                    "image": "wordpress:cli",
                                    "command": ["wp", "cache", "flush", "--allow-root"],
                                }
                            ],
                        }
                    },
                },
            }
        )
    )
    scratch.kubectl("create", "-f", str(manifest))
    scratch.kubectl("wait", "--for=condition=complete", "job/cache-flush", "--timeout=30s")
    assert scratch.kubectl("logs", "job/cache-flush").stdout == "Success: The cache was flushed.\n"
    jobs = scratch.kubectl("get", "jobs").stdout
    assert "Complete" in jobs
    assert "1/1" in jobs


def test_apply_creates_then_updates(scratch: Kube, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied"},
        "data": {"a": "1"},
    }
    manifest.write_text(yaml.safe_dump(document))
    assert "created" in scratch.kubectl("apply", "-f", str(manifest)).stdout
    document["data"] = {"a": "2"}
    manifest.write_text(yaml.safe_dump(document))
    assert "configured" in scratch.kubectl("apply", "-f", str(manifest)).stdout
    stored = scratch.stored("configmaps", "applied")
    assert stored["data"] == {"a": "2"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]


def test_delete_removes_the_object(kube: Kube) -> None:
    out = kube.kubectl("delete", "deployment", "blue-deployment").stdout
    assert 'deployment.apps "blue-deployment" deleted' in out
    assert kube.get("deployments", "blue-deployment") is None
    kube.eventually("the blue pods gone", lambda: "blue" not in kube.kubectl("get", "pods").stdout)
    missing = kube.kubectl("get", "deployment", "blue-deployment", check=False)
    assert missing.returncode == 1
    assert 'deployments.apps "blue-deployment" not found' in missing.stderr


def test_get_watch_shows_a_change(scratch: Kube) -> None:
    configmap(scratch)
    # GIVEN kubectl watching the configmaps
    watcher = subprocess.Popen(
        kubectl_argv(scratch.backend, scratch.namespace, "get", "configmaps", "-w"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kubectl_env(),
    )
    rows: list[list[str]] = []
    reader_done = threading.Event()

    def read() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            if "canary-env" in line:
                rows.append(line.split())
                if len(rows) == 2:
                    break
        reader_done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # WHEN the configmap gets a second key once the watch has shown it
        deadline = time.monotonic() + 30
        while not rows:
            assert time.monotonic() < deadline, "kubectl printed no row"
            time.sleep(0.05)
        scratch.mutate("configmaps", "canary-env", lambda obj: obj["data"].update(extra="1"))
        # THEN the watch printed the initial row and then the changed row
        assert reader_done.wait(30), f"no second row: {rows}"
    finally:
        watcher.terminate()
        watcher.wait(timeout=5)
    assert [row[1] for row in rows] == ["1", "2"]


def test_json_output_round_trips(seeded: Kube) -> None:
    listed = json.loads(seeded.kubectl("get", "deploy", "-o", "json").stdout)
    assert listed["kind"] == "List"
    assert {item["metadata"]["name"] for item in listed["items"]} == {
        "blue-deployment",
        "green-deployment",
    }
    assert all(item["kind"] == "Deployment" for item in listed["items"])


def test_create_job_from_a_cronjob_runs_its_template(scratch: Kube, tmp_path: Path) -> None:
    # GIVEN a CronJob whose pods run as the www-data user
    manifest = tmp_path / "cronjob.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "nightly"},
                "spec": {
                    "schedule": "0 3 * * *",
                    "jobTemplate": {
                        "spec": {
                            "backoffLimit": 0,
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "securityContext": {"runAsUser": 33},
                                    "containers": [
                                        {
                                            "name": "wp",
                                            "image": "wordpress:cli",
                                            "command": ["wp", "cache", "flush"],
                                        }
                                    ],
                                }
                            },
                        }
                    },
                },
            }
        )
    )
    scratch.kubectl("create", "-f", str(manifest))
    # WHEN a Job is created from it (kubectl sends this one as protobuf)
    scratch.kubectl("create", "job", "by-hand", "--from=cronjob/nightly")
    scratch.kubectl("wait", "--for=condition=complete", "job/by-hand", "--timeout=30s")
    # THEN the Job kept the template and succeeded without --allow-root
    job = scratch.stored("jobs", "by-hand")
    assert job["spec"]["template"]["spec"]["securityContext"] == {"runAsUser": 33}
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert scratch.kubectl("logs", "job/by-hand").stdout == "Success: The cache was flushed.\n"


def test_typed_create_commands(scratch: Kube) -> None:
    scratch.kubectl(
        "create", "job", "root-flush", "--image=wordpress:cli", "--", "wp", "cache", "flush"
    )
    scratch.kubectl("create", "configmap", "settings", "--from-literal=a=1")
    scratch.kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=3")
    logs = scratch.eventually(
        "the root-flush pod's log",
        lambda: scratch.kubectl("logs", "job/root-flush", check=False).stdout,
    )
    assert logs.startswith("Error: YIKES! It looks like you're running this as root.")
    assert scratch.stored("configmaps", "settings")["data"] == {"a": "1"}
    scratch.eventually(
        "three web replicas",
        lambda: (
            scratch.stored("deployments", "web").get("status", {}).get("availableReplicas") == 3
        ),
    )
    assert scratch.stored("deployments", "web")["spec"]["replicas"] == 3
