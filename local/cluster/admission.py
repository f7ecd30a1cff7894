"""Defaulting and validation done by the API server before an object is stored."""

from __future__ import annotations

import json
import random
import re
from typing import Any

from local.cluster.errors import FieldError, Rendered
from local.cluster.resources import Resource
from local.cluster.selectors import (
    label_selector_matches,
    selector_json,
    validate_label_selector,
)

_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{_SUBDOMAIN}')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    f"regex used for validation is '{_LABEL}')"
)
_LABEL_1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    f"'abc-123', regex used for validation is '{_LABEL_1035}')"
)
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def random_suffix(rng: random.Random, length: int = 5) -> str:
    """The random tail of generated names (``generateName``, pod names)."""
    return "".join(rng.choice(_NAME_ALPHABET) for _ in range(length))


# Defaulting ---------------------------------------------------------------------------


def _default_container(container: dict[str, Any]) -> None:
    image = str(container.get("image", ""))
    if "imagePullPolicy" not in container and image:
        last = image.rsplit("/", 1)[-1]
        untagged = "@" not in image and ":" not in last
        container["imagePullPolicy"] = (
            "Always" if untagged or image.endswith(":latest") else "IfNotPresent"
        )
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def default_pod_spec(spec: dict[str, Any], *, template: bool, job: bool = False) -> None:
    """Fill the pod-spec fields the server defaults (templates get fewer than pods)."""
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                _default_container(container)
    if not job:
        spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        for source in ("configMap", "secret"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)
    if not template:
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")


def _default_template(spec: dict[str, Any], *, job: bool = False) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        template.setdefault("metadata", {})
        if isinstance(template.get("spec"), dict):
            default_pod_spec(template["spec"], template=True, job=job)


def apply_defaults(resource: Resource, obj: dict[str, Any], rng: random.Random) -> None:
    """Set server-side defaults on a new or replaced object, in place."""
    spec = obj.get("spec")
    kind = resource.kind
    if kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        labels = obj["metadata"].setdefault("labels", {})
        labels.setdefault("kubernetes.io/metadata.name", obj["metadata"].get("name", ""))
        obj.setdefault("status", {"phase": "Active"})
    if kind == "Secret":
        obj.setdefault("type", "Opaque")
    if not isinstance(spec, dict):
        return
    if kind in {"Deployment", "ReplicaSet", "StatefulSet"}:
        spec.setdefault("replicas", 1)
        _default_template(spec)
    if kind == "Deployment":
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
    if kind == "Pod":
        default_pod_spec(spec, template=False)
    if kind == "Job":
        _default_job(obj, spec)
    if kind == "CronJob":
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job_spec = spec.get("jobTemplate", {}).get("spec")
        if isinstance(job_spec, dict):
            _default_template(job_spec, job=True)
    if kind == "Service":
        _default_service(spec, rng)


def _default_job(obj: dict[str, Any], spec: dict[str, Any]) -> None:
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec.setdefault("manualSelector", None)
    if spec.get("manualSelector") is None:
        spec.pop("manualSelector")
    _default_template(spec, job=True)
    uid = obj["metadata"].get("uid", "")
    name = obj["metadata"].get("name", "")
    if not spec.get("manualSelector") and uid:
        # The server generates the selector from the Job's uid, as real clusters do.
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        template = spec.setdefault("template", {})
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels.setdefault("batch.kubernetes.io/controller-uid", uid)
        labels.setdefault("batch.kubernetes.io/job-name", name)
        labels.setdefault("controller-uid", uid)
        labels.setdefault("job-name", name)


def _default_service(spec: dict[str, Any], rng: random.Random) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        if "clusterIP" not in spec:
            spec["clusterIP"] = f"10.100.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])


# Validation ---------------------------------------------------------------------------


def _validate_name(resource: Resource, meta: dict[str, Any]) -> list[FieldError]:
    name = meta.get("name")
    if not name:
        return [FieldError("metadata.name", "Required", "name or generateName is required")]
    if resource.kind in {"Service"}:
        pattern, message = _LABEL_1035, _LABEL_1035_MSG
    elif resource.kind in {"Namespace"}:
        pattern, message = _LABEL, _LABEL_MSG
    else:
        pattern, message = _SUBDOMAIN, _SUBDOMAIN_MSG
    limit = 63 if pattern != _SUBDOMAIN else 253
    if not isinstance(name, str) or not re.fullmatch(pattern, name):
        return [FieldError("metadata.name", "Invalid", message, name)]
    if len(name) > limit:
        return [
            FieldError("metadata.name", "Invalid", f"must be no more than {limit} characters", name)
        ]
    return []


def _validate_metadata(meta: dict[str, Any]) -> list[FieldError]:
    errors = []
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            errors.append(FieldError(f"metadata.{key}", "Invalid", "must be a map", value))
            continue
        for k, v in value.items():
            if not isinstance(v, str):
                errors.append(
                    FieldError(f"metadata.{key}", "Invalid", "values must be strings", str(k))
                )
    return errors


def _validate_containers(spec: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    containers = spec.get("containers")
    if not containers or not isinstance(containers, list):
        return [FieldError(f"{path}.containers", "Required")]
    seen: set[str] = set()
    for index, container in enumerate(containers):
        where = f"{path}.containers[{index}]"
        if not isinstance(container, dict):
            errors.append(FieldError(where, "Invalid", "must be an object", str(container)))
            continue
        name = container.get("name")
        if not name:
            errors.append(FieldError(f"{where}.name", "Required"))
        elif not isinstance(name, str) or not re.fullmatch(_LABEL, name) or len(name) > 63:
            errors.append(FieldError(f"{where}.name", "Invalid", _LABEL_MSG, name))
        elif name in seen:
            errors.append(FieldError(f"{where}.name", "Duplicate", "", name))
        else:
            seen.add(name)
        if not container.get("image") or not isinstance(container.get("image"), str):
            errors.append(FieldError(f"{where}.image", "Required"))
        for port_index, port in enumerate(container.get("ports") or []):
            number = port.get("containerPort") if isinstance(port, dict) else None
            if not isinstance(number, int) or not 0 < number < 65536:
                errors.append(
                    FieldError(
                        f"{where}.ports[{port_index}].containerPort",
                        "Invalid" if number is not None else "Required",
                        "must be between 1 and 65535, inclusive" if number is not None else "",
                        number,
                    )
                )
        for env_index, env in enumerate(container.get("env") or []):
            if not isinstance(env, dict) or not env.get("name"):
                errors.append(FieldError(f"{where}.env[{env_index}].name", "Required"))
    return errors


def _validate_template(spec: dict[str, Any], path: str, restart: set[str]) -> list[FieldError]:
    template = spec.get("template")
    if not isinstance(template, dict):
        return [FieldError(f"{path}.template", "Required")]
    pod_spec = template.get("spec")
    if not isinstance(pod_spec, dict):
        return [FieldError(f"{path}.template.spec.containers", "Required")]
    errors = _validate_containers(pod_spec, f"{path}.template.spec")
    policy = pod_spec.get("restartPolicy")
    if policy is None and restart == {"OnFailure", "Never"}:
        errors.append(
            FieldError(
                f"{path}.template.spec.restartPolicy",
                "Required",
                'valid values: "OnFailure", "Never"',
            )
        )
    elif policy is not None and policy not in restart:
        supported = ", ".join(f'"{p}"' for p in sorted(restart, reverse=True))
        errors.append(
            FieldError(
                f"{path}.template.spec.restartPolicy",
                "Unsupported",
                f"supported values: {supported}",
                policy,
            )
        )
    return errors


def _validate_selected(spec: dict[str, Any], kind: str) -> list[FieldError]:
    """The selector of a controller's spec, and that it selects the pods of its template."""
    selector = spec.get("selector")
    labels = (spec.get("template") or {}).get("metadata", {}).get("labels") or {}
    if not isinstance(selector, dict):
        return [FieldError("spec.selector", "Required")]
    errors = validate_label_selector(selector, "spec.selector")
    empty = not (selector.get("matchLabels") or selector.get("matchExpressions"))
    if empty and kind != "Job":
        errors.append(
            FieldError(
                "spec.selector",
                "Invalid",
                "empty selector is invalid for deployment",
                Rendered(selector_json(selector)),
            )
        )
    if errors:
        return errors
    if not label_selector_matches(selector, labels):
        shown = json.dumps(
            {k: labels[k] for k in sorted(labels)}, separators=(",", ":"), ensure_ascii=False
        )
        errors.append(
            FieldError(
                "spec.template.metadata.labels",
                "Invalid",
                "`selector` does not match template `labels`",
                Rendered(shown),
            )
        )
    return errors


def validate(
    resource: Resource, obj: dict[str, Any], old: dict[str, Any] | None
) -> list[FieldError]:
    """Every validation error of ``obj`` (``old`` is the stored version on updates)."""
    meta = obj.get("metadata") or {}
    errors = _validate_name(resource, meta) + _validate_metadata(meta)
    spec = obj.get("spec")
    kind = resource.kind
    if kind in {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"}:
        if not isinstance(spec, dict):
            return [
                *errors,
                FieldError("spec.selector", "Required"),
                FieldError("spec.template.spec.containers", "Required"),
            ]
        restart = {"OnFailure", "Never"} if kind == "Job" else {"Always"}
        if kind != "Job" or spec.get("manualSelector"):
            errors += _validate_selected(spec, kind)
        errors += _validate_template(spec, "spec", restart)
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            errors.append(
                FieldError(
                    "spec.replicas", "Invalid", "must be greater than or equal to 0", replicas
                )
            )
        if old is not None and old.get("spec", {}).get("selector") != spec.get("selector"):
            errors.append(
                FieldError(
                    "spec.selector",
                    "Invalid",
                    "field is immutable",
                    json.dumps(spec.get("selector")),
                )
            )
        if kind == "Job":
            errors += _validate_job(spec, old)
    if kind == "Pod":
        if not isinstance(spec, dict):
            return [*errors, FieldError("spec.containers", "Required")]
        errors += _validate_containers(spec, "spec")
    if kind == "Service" and isinstance(spec, dict):
        errors += _validate_service(spec)
    if kind in {"ConfigMap", "Secret"} and old is not None and old.get("immutable"):
        for key in ("data", "binaryData", "stringData"):
            if obj.get(key) != old.get(key):
                errors.append(
                    FieldError(key, "Forbidden", "field is immutable when `immutable` is set")
                )
        if not obj.get("immutable"):
            errors.append(
                FieldError("immutable", "Forbidden", "field is immutable when `immutable` is set")
            )
    if kind == "Service" and old is not None and isinstance(spec, dict):
        before = (old.get("spec") or {}).get("clusterIP")
        if before and spec.get("clusterIP") != before:
            errors.append(
                FieldError(
                    "spec.clusterIPs[0]",
                    "Invalid",
                    "may not change once set",
                    spec.get("clusterIP"),
                )
            )
    if kind == "ConfigMap":
        for key in ("data", "binaryData"):
            data = obj.get(key)
            if data is not None and not isinstance(data, dict):
                errors.append(FieldError(key, "Invalid", "must be a map", str(data)))
            for name, value in (data or {}).items():
                if not re.fullmatch(r"[-._a-zA-Z0-9]+", str(name)):
                    errors.append(
                        FieldError(
                            f"{key}[{name}]",
                            "Invalid",
                            "a valid config key must consist of alphanumeric characters, '-', "
                            "'_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex "
                            "used for validation is '[-._a-zA-Z0-9]+')",
                            name,
                        )
                    )
                elif key == "data" and not isinstance(value, str):
                    errors.append(
                        FieldError(f"{key}[{name}]", "Invalid", "must be a string", str(value))
                    )
    return errors


def _validate_job(spec: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    errors = []
    for field in (
        "backoffLimit",
        "parallelism",
        "completions",
        "ttlSecondsAfterFinished",
        "activeDeadlineSeconds",
    ):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0):
            errors.append(
                FieldError(f"spec.{field}", "Invalid", "must be greater than or equal to 0", value)
            )
    if old is not None:
        old_spec = old.get("spec", {})
        if old_spec.get("template") != spec.get("template"):
            errors.append(
                FieldError(
                    "spec.template", "Invalid", "field is immutable", "core.PodTemplateSpec{...}"
                )
            )
        if old_spec.get("completions") != spec.get("completions"):
            errors.append(
                FieldError(
                    "spec.completions", "Invalid", "field is immutable", spec.get("completions")
                )
            )
    return errors


def _validate_service(spec: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    kind = spec.get("type", "ClusterIP")
    if kind not in {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"}:
        return [
            FieldError(
                "spec.type",
                "Unsupported",
                'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
                kind,
            )
        ]
    ports = spec.get("ports")
    if kind != "ExternalName" and spec.get("clusterIP") != "None" and not ports:
        errors.append(FieldError("spec.ports", "Required"))
    for index, port in enumerate(ports or []):
        number = port.get("port") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            errors.append(
                FieldError(
                    f"spec.ports[{index}].port",
                    "Invalid" if number is not None else "Required",
                    "must be between 1 and 65535, inclusive" if number is not None else "",
                    number,
                )
            )
        if len(ports or []) > 1 and isinstance(port, dict) and not port.get("name"):
            errors.append(FieldError(f"spec.ports[{index}].name", "Required"))
    selector = spec.get("selector")
    if selector is not None and not isinstance(selector, dict):
        errors.append(FieldError("spec.selector", "Invalid", "must be a map", str(selector)))
    return errors
