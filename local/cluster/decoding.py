"""Type checks a real API server gets for free by decoding JSON into Go structs.

A body whose fields have the wrong JSON type (``"replicas": "three"``) is refused with
400 BadRequest, as Go's decoder refuses it, before anything is stored. ``null`` means
"unset" and is dropped.
"""

from __future__ import annotations

from typing import Any

from local.cluster.errors import bad_request

_MAP = "map[string]string"
_INT_OR_STRING = "intstr.IntOrString"

_META: dict[str, Any] = {
    "name": str,
    "namespace": str,
    "generateName": str,
    "resourceVersion": str,
    "uid": str,
    "labels": _MAP,
    "annotations": _MAP,
    "finalizers": [str],
}
_SELECTOR: dict[str, Any] = {
    "matchLabels": _MAP,
    "matchExpressions": [{"key": str, "operator": str, "values": [str]}],
}
_SECURITY: dict[str, Any] = {
    "runAsUser": int,
    "runAsGroup": int,
    "fsGroup": int,
    "runAsNonRoot": bool,
    "privileged": bool,
    "allowPrivilegeEscalation": bool,
    "readOnlyRootFilesystem": bool,
}
_CONTAINER: dict[str, Any] = {
    "name": str,
    "image": str,
    "command": [str],
    "args": [str],
    "workingDir": str,
    "imagePullPolicy": str,
    "env": [{"name": str, "value": str}],
    "ports": [{"name": str, "containerPort": int, "hostPort": int, "protocol": str}],
    "volumeMounts": [{"name": str, "mountPath": str, "readOnly": bool, "subPath": str}],
    "securityContext": _SECURITY,
}
_POD_SPEC: dict[str, Any] = {
    "containers": [_CONTAINER],
    "initContainers": [_CONTAINER],
    "restartPolicy": str,
    "terminationGracePeriodSeconds": int,
    "activeDeadlineSeconds": int,
    "serviceAccountName": str,
    "nodeName": str,
    "nodeSelector": _MAP,
    "securityContext": _SECURITY,
    "volumes": [{"name": str}],
}
_TEMPLATE: dict[str, Any] = {"metadata": _META, "spec": _POD_SPEC}
_SHAPES: dict[str, dict[str, Any]] = {
    "Deployment": {
        "spec": {
            "replicas": int,
            "minReadySeconds": int,
            "revisionHistoryLimit": int,
            "progressDeadlineSeconds": int,
            "paused": bool,
            "selector": _SELECTOR,
            "template": _TEMPLATE,
            "strategy": {
                "type": str,
                "rollingUpdate": {"maxSurge": _INT_OR_STRING, "maxUnavailable": _INT_OR_STRING},
            },
        }
    },
    "ReplicaSet": {
        "spec": {
            "replicas": int,
            "minReadySeconds": int,
            "selector": _SELECTOR,
            "template": _TEMPLATE,
        }
    },
    "Job": {
        "spec": {
            "parallelism": int,
            "completions": int,
            "backoffLimit": int,
            "activeDeadlineSeconds": int,
            "ttlSecondsAfterFinished": int,
            "suspend": bool,
            "manualSelector": bool,
            "selector": _SELECTOR,
            "template": _TEMPLATE,
        }
    },
    "CronJob": {
        "spec": {
            "schedule": str,
            "suspend": bool,
            "jobTemplate": {
                "metadata": _META,
                "spec": {"backoffLimit": int, "template": _TEMPLATE},
            },
        }
    },
    "Pod": {"spec": _POD_SPEC},
    "Service": {
        "spec": {
            "type": str,
            "clusterIP": str,
            "selector": _MAP,
            "ports": [
                {
                    "name": str,
                    "port": int,
                    "targetPort": _INT_OR_STRING,
                    "nodePort": int,
                    "protocol": str,
                }
            ],
        }
    },
    "ConfigMap": {"data": _MAP, "binaryData": _MAP, "immutable": bool},
    "Secret": {"data": _MAP, "stringData": _MAP, "type": str},
}

_GO_NAMES = {str: "string", int: "int32", bool: "bool"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _refuse(kind: str, path: str, value: Any, expected: str) -> None:
    raise bad_request(
        f"json: cannot unmarshal {_json_type(value)} into Go struct field {kind}.{path} "
        f"of type {expected}"
    )


def _check(kind: str, path: str, value: Any, shape: Any) -> None:
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            _refuse(kind, path, value, "struct")
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for key, inner in shape.items():
            if key in value:
                _check(kind, f"{path}.{key}" if path else key, value[key], inner)
    elif isinstance(shape, list):
        if not isinstance(value, list):
            _refuse(kind, path, value, "[]" + _GO_NAMES.get(shape[0], "struct"))
        for item in value:
            _check(kind, path, item, shape[0])
    elif shape == _MAP:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            _refuse(kind, path, value, _MAP)
    elif shape == _INT_OR_STRING:
        if isinstance(value, bool) or not isinstance(value, int | str):
            _refuse(kind, path, value, _INT_OR_STRING)
    elif shape is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _refuse(kind, path, value, "int32")
    elif shape is bool:
        if not isinstance(value, bool):
            _refuse(kind, path, value, "bool")
    elif shape is str and not isinstance(value, str):
        _refuse(kind, path, value, "string")


def check_types(kind: str, obj: dict[str, Any]) -> None:
    """Refuse (400) a body whose fields have the wrong JSON types; drop ``null`` fields."""
    if not isinstance(obj.get("metadata", {}), dict):
        _refuse(kind, "metadata", obj.get("metadata"), "v1.ObjectMeta")
    shape = {"metadata": _META, **_SHAPES.get(kind, {})}
    _check(kind, "", obj, shape)
