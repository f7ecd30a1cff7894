"""Real kubectl (the pinned binary in .venv) against the emulator: the issue's acceptance."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

from local.cluster import ClusterEmulator
from tests.emulator.conftest import BLUE_IMAGE, NAMESPACE, image

pytestmark = pytest.mark.kubectl

KUBECTL = Path(sys.executable).with_name("kubectl")
ROOT = Path(__file__).resolve().parents[2]
# kubectl caches discovery under $HOME; each test run gets its own throwaway home.
_HOME = tempfile.TemporaryDirectory(prefix="kubectl-home-")


def kubectl(
    url: str, *args: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run kubectl against ``url`` in the seeded namespace."""
    result = subprocess.run(
        [str(KUBECTL), f"--server={url}", "-n", NAMESPACE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": _HOME.name, "KUBECONFIG": "/dev/null"},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
    return result


def test_get_everything_from_the_standalone_server(tmp_path: Path) -> None:
    # GIVEN the standalone server with the default seed
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
    ):
        assert name in out
    assert out.count("pod/") == 4
    assert out.count("replicaset.apps/") == 2
    assert "2/2" in out


def test_configmap_yaml_shows_canary_env_as_the_original_system(
    cluster_emulator: ClusterEmulator,
) -> None:
    out = kubectl(cluster_emulator.url, "get", "configmap", "canary-env", "-o", "yaml").stdout
    document = yaml.safe_load(out)
    assert document["data"]["canaryEnv"] == ('{"selector":"blue","image":"' + BLUE_IMAGE + '"}')
    assert document["metadata"]["resourceVersion"]


def test_set_image_then_rollout_status_succeeds(cluster_emulator: ClusterEmulator) -> None:
    url = cluster_emulator.url
    kubectl(url, "set", "image", "deployment/green-deployment", f"web={image('a')}")
    out = kubectl(url, "rollout", "status", "deployment/green-deployment").stdout
    assert 'deployment "green-deployment" successfully rolled out' in out
    stored = cluster_emulator.get("deployments", NAMESPACE, "green-deployment")
    assert stored is not None
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == image("a")


def test_rollout_status_fails_for_a_broken_image(cluster_emulator: ClusterEmulator) -> None:
    url = cluster_emulator.url
    cluster_emulator.faults.break_image(image("b"))
    kubectl(url, "set", "image", "deployment/green-deployment", f"web={image('b')}")
    result = kubectl(url, "rollout", "status", "deployment/green-deployment", check=False)
    assert result.returncode != 0
    assert 'deployment "green-deployment" exceeded its progress deadline' in result.stderr
    pods = kubectl(url, "get", "pods", "-l", "app=green").stdout
    assert "CrashLoopBackOff" in pods


def test_rollout_history_and_undo(cluster_emulator: ClusterEmulator) -> None:
    url = cluster_emulator.url
    kubectl(url, "set", "image", "deployment/green-deployment", f"web={image('c')}")
    history = kubectl(url, "rollout", "history", "deployment/green-deployment").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    kubectl(url, "rollout", "undo", "deployment/green-deployment")
    kubectl(url, "rollout", "status", "deployment/green-deployment")
    stored = cluster_emulator.get("deployments", NAMESPACE, "green-deployment")
    assert stored is not None
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] != image("c")
    assert stored["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    detail = kubectl(
        url, "rollout", "history", "deployment/green-deployment", "--revision=3"
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
def test_patch_types(cluster_emulator: ClusterEmulator, kind: str, patch: str, check) -> None:
    kubectl(
        cluster_emulator.url,
        "patch",
        "deployment",
        "blue-deployment",
        f"--type={kind}",
        "-p",
        patch,
    )
    assert check(cluster_emulator.get("deployments", NAMESPACE, "blue-deployment"))


def test_create_job_from_a_manifest_and_read_its_logs(
    cluster_emulator: ClusterEmulator, tmp_path: Path
) -> None:
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
    url = cluster_emulator.url
    kubectl(url, "create", "-f", str(manifest))
    kubectl(url, "wait", "--for=condition=complete", "job/cache-flush", "--timeout=10s")
    assert kubectl(url, "logs", "job/cache-flush").stdout == "Success: The cache was flushed.\n"
    jobs = kubectl(url, "get", "jobs").stdout
    assert "Complete" in jobs
    assert "1/1" in jobs


def test_apply_creates_then_updates(cluster_emulator: ClusterEmulator, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    document = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied"},
        "data": {"a": "1"},
    }
    manifest.write_text(yaml.safe_dump(document))
    url = cluster_emulator.url
    assert "created" in kubectl(url, "apply", "-f", str(manifest)).stdout
    document["data"] = {"a": "2"}
    manifest.write_text(yaml.safe_dump(document))
    assert "configured" in kubectl(url, "apply", "-f", str(manifest)).stdout
    stored = cluster_emulator.get("configmaps", NAMESPACE, "applied")
    assert stored is not None
    assert stored["data"] == {"a": "2"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]


def test_delete_removes_the_object(cluster_emulator: ClusterEmulator) -> None:
    url = cluster_emulator.url
    out = kubectl(url, "delete", "deployment", "blue-deployment").stdout
    assert 'deployment.apps "blue-deployment" deleted' in out
    assert cluster_emulator.get("deployments", NAMESPACE, "blue-deployment") is None
    assert "blue" not in kubectl(url, "get", "pods").stdout
    missing = kubectl(url, "get", "deployment", "blue-deployment", check=False)
    assert missing.returncode == 1
    assert 'deployments.apps "blue-deployment" not found' in missing.stderr


def test_get_watch_shows_a_change(cluster_emulator: ClusterEmulator) -> None:
    # GIVEN kubectl watching the configmaps
    timer = threading.Timer(
        0.8,
        cluster_emulator.mutate,
        args=("configmaps", NAMESPACE, "canary-env", lambda obj: obj["data"].update(extra="1")),
    )
    timer.start()
    # WHEN the configmap gets a second key while it watches
    result = kubectl(
        cluster_emulator.url, "get", "configmaps", "-w", "--request-timeout=2s", check=False
    )
    timer.join()
    # THEN the watch printed the initial row and then the changed row
    rows = [line.split() for line in result.stdout.splitlines() if "canary-env" in line]
    assert [row[1] for row in rows] == ["1", "2"]


def test_json_output_round_trips(cluster_emulator: ClusterEmulator) -> None:
    out = kubectl(cluster_emulator.url, "get", "deploy", "-o", "json").stdout
    listed = json.loads(out)
    assert listed["kind"] == "List"
    assert {item["metadata"]["name"] for item in listed["items"]} == {
        "blue-deployment",
        "green-deployment",
    }
    assert all(item["kind"] == "Deployment" for item in listed["items"])


def test_create_job_from_a_cronjob_runs_its_template(
    cluster_emulator: ClusterEmulator, tmp_path: Path
) -> None:
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
    url = cluster_emulator.url
    kubectl(url, "create", "-f", str(manifest))
    # WHEN a Job is created from it (kubectl sends this one as protobuf)
    kubectl(url, "create", "job", "by-hand", "--from=cronjob/nightly")
    # THEN the Job keeps the template and succeeds without --allow-root
    job = cluster_emulator.get("jobs", NAMESPACE, "by-hand")
    assert job is not None
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["securityContext"] == {"runAsUser": 33}
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert any(c["type"] == "Complete" for c in job["status"]["conditions"])
    assert kubectl(url, "logs", "job/by-hand").stdout == "Success: The cache was flushed.\n"


def test_typed_create_commands(cluster_emulator: ClusterEmulator) -> None:
    url = cluster_emulator.url
    kubectl(
        url, "create", "job", "root-flush", "--image=wordpress:cli", "--", "wp", "cache", "flush"
    )
    kubectl(url, "create", "configmap", "settings", "--from-literal=a=1")
    kubectl(url, "create", "deployment", "web", "--image=nginx:1.27", "--replicas=3")
    logs = kubectl(url, "logs", "job/root-flush").stdout
    assert logs.startswith("Error: YIKES! It looks like you're running this as root.")
    settings = cluster_emulator.get("configmaps", NAMESPACE, "settings")
    assert settings is not None
    assert settings["data"] == {"a": "1"}
    web = cluster_emulator.get("deployments", NAMESPACE, "web")
    assert web is not None
    assert web["spec"]["replicas"] == 3
    assert web["status"]["availableReplicas"] == 3
