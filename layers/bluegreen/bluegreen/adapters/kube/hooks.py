"""Post-deploy hooks as Kubernetes Jobs built from a colour's pod template.

A hook runs the serving pod's container (same image, env, volumes) with its command
overridden. The Job's name is derived from the run and the hook only, so a task
that is retried after the Job was created finds and reuses it instead of running
the hook twice.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from bluegreen.adapters.kube.requests import KubeRequests, Refused
from bluegreen.adapters.kube.workloads import Workloads
from bluegreen.config import Settings
from bluegreen.domain.errors import ClusterConflict, InvalidInput
from bluegreen.domain.judgements import job_failure_reason
from bluegreen.domain.models import Colour, Hook, HookRun

MANAGED_BY = "eks-bluegreen"
"""Value of ``app.kubernetes.io/managed-by`` on everything this product creates."""

HOOK_LABEL = "bluegreen/hook"
RUN_LABEL = "bluegreen/run"
COLOUR_LABEL = "bluegreen/colour"
RUN_ANNOTATION = "bluegreen/run-id"

_DNS_LABEL_MAX = 63
_NOT_IN_HOOKS = ("args", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "ports")
"""Container fields of the serving pod that make no sense for a run-once command."""

_LOG_LIMIT_BYTES = 64 * 1024


class HookJobs:
    """Creates hook Jobs and reads how they ended."""

    def __init__(
        self,
        requests: KubeRequests,
        workloads: Workloads,
        settings: Settings,
        *,
        ttl_seconds: int = 3600,
    ) -> None:
        self._requests = requests
        self._workloads = workloads
        self._settings = settings
        self._ttl_seconds = ttl_seconds

    @property
    def _namespace(self) -> str:
        return self._settings.namespace

    def start(self, colour: Colour, hook: Hook, run_id: str) -> str:
        """Create the hook's Job from that colour's pod template; returns the Job name."""
        if not run_id:
            raise InvalidInput("run_id", "must be a non-empty string")
        name = hook_job_name(run_id, hook.name)
        job = self._job(name, colour, hook, run_id, self._workloads.read(colour))
        try:
            self._requests.call(
                "create",
                f'Job "{name}" in namespace "{self._namespace}"',
                self._requests.apis.batch.create_namespaced_job,
                self._namespace,
                job,
                refusals=(409,),
            )
        except Refused as refused:
            if refused.reason != "AlreadyExists":
                raise ClusterConflict(
                    f'Job "{name}" could not be created: {refused.message}'
                ) from None
        return name

    def run(self, job_name: str, log_lines: int = 50) -> HookRun:
        """Where a hook Job stands; once finished, with its pod's log tail and the reason."""
        what = f'Job "{job_name}" in namespace "{self._namespace}"'
        job = self._requests.call(
            "read", what, self._requests.apis.batch.read_namespaced_job, job_name, self._namespace
        )
        conditions = {
            c.get("type"): c
            for c in job.get("status", {}).get("conditions") or []
            if c.get("status") == "True"
        }
        if "Complete" not in conditions and "Failed" not in conditions:
            return HookRun(job_name=job_name, finished=False, succeeded=False)
        succeeded = "Complete" in conditions
        pod = self._newest_pod(job)
        log_tail = ""
        if pod is not None:
            log_tail = self._workloads.log(
                pod["metadata"]["name"],
                self._settings.container_name,
                log_lines,
                _LOG_LIMIT_BYTES,
            )
        reason = "" if succeeded else job_failure_reason(conditions["Failed"], pod)
        return HookRun(
            job_name=job_name,
            finished=True,
            succeeded=succeeded,
            log_tail=log_tail,
            reason=reason,
        )

    def _job(
        self, name: str, colour: Colour, hook: Hook, run_id: str, deployment: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The Job for a hook: the serving pod's template with the command overridden.

        Only the configured container is kept (a sidecar would keep the pod, and
        so the Job, running forever), without probes or ports. The template's
        labels are replaced by ours: a pod labelled ``app=<colour>`` would be
        selected by the colour's Service and receive traffic.
        """
        template = deployment.get("spec", {}).get("template", {})
        pod_spec = copy.deepcopy(template.get("spec", {}))
        container = {
            key: value
            for key, value in self._workloads.container(deployment, colour).items()
            if key not in _NOT_IN_HOOKS
        }
        container["command"] = list(hook.command)
        pod_spec["containers"] = [container]
        pod_spec["restartPolicy"] = "Never"
        pod_spec.pop("nodeName", None)
        labels = {
            "app.kubernetes.io/managed-by": MANAGED_BY,
            HOOK_LABEL: _label_value(hook.name),
            RUN_LABEL: _label_value(run_id),
            COLOUR_LABEL: colour.value,
        }
        annotations = dict(template.get("metadata", {}).get("annotations") or {})
        annotations.pop("kubectl.kubernetes.io/restartedAt", None)
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": self._namespace,
                "labels": labels,
                "annotations": {RUN_ANNOTATION: run_id},
            },
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": hook.timeout_seconds,
                "ttlSecondsAfterFinished": self._ttl_seconds,
                "template": {
                    "metadata": {"labels": labels, "annotations": annotations},
                    "spec": pod_spec,
                },
            },
        }

    def _newest_pod(self, job: Mapping[str, Any]) -> dict[str, Any] | None:
        match_labels = job.get("spec", {}).get("selector", {}).get("matchLabels") or {
            "job-name": job["metadata"]["name"]
        }
        selector = ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))
        listed = self._requests.call(
            "list",
            f'Pods of Job "{job["metadata"]["name"]}" in namespace "{self._namespace}"',
            self._requests.apis.core.list_namespaced_pod,
            self._namespace,
            label_selector=selector,
        )
        pods: list[dict[str, Any]] = listed.get("items", [])
        if not pods:
            return None
        return max(pods, key=lambda pod: str(pod["metadata"].get("creationTimestamp", "")))


def hook_job_name(run_id: str, hook_name: str) -> str:
    """The hook's Job name: deterministic, DNS-1123, at most 63 characters.

    Readable prefix (hook and run, sanitised and truncated) plus a hash of the
    exact pair, so that two runs whose sanitised names coincide still differ.
    """
    digest = hashlib.sha256(f"{run_id}\0{hook_name}".encode()).hexdigest()[:8]
    readable = re.sub(r"[^a-z0-9]+", "-", f"hook-{hook_name}-{run_id}".lower()).strip("-")
    readable = readable[: _DNS_LABEL_MAX - len(digest) - 1].rstrip("-")
    return f"{readable}-{digest}"


def _label_value(value: str) -> str:
    """A valid label value (63 characters of ``[A-Za-z0-9_.-]``, alphanumeric at both ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:_DNS_LABEL_MAX]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
