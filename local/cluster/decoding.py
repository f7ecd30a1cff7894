"""Type checks a real API server gets for free by decoding JSON into Go structs.

A body whose fields have the wrong JSON type (``"replicas": "three"``) is refused with
400 BadRequest before anything is stored, with the message the API server sends:
``Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal
string into Go struct field DeploymentSpec.spec.replicas of type int32`` (the struct is
the Go type that owns the field, the path is the field's JSON path). ``null`` means
"unset" and is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from local.cluster.errors import bad_request


@dataclass(frozen=True)
class _Struct:
    """A Go struct: its type as the decoder names it (``v1.PodSpec``) and its fields."""

    type: str
    fields: dict[str, Any]

    @property
    def short(self) -> str:
        return self.type.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class _List:
    """A Go slice of ``item`` (a ``_Struct`` or a scalar type name)."""

    item: Any

    @property
    def type(self) -> str:
        return "[]" + (self.item.type if isinstance(self.item, _Struct) else self.item)


_MAP = "map[string]string"
_INT_OR_STRING = "intstr.IntOrString"

_META = _Struct(
    "v1.ObjectMeta",
    {
        "name": "string",
        "namespace": "string",
        "generateName": "string",
        "resourceVersion": "string",
        "uid": "string",
        "labels": _MAP,
        "annotations": _MAP,
        "finalizers": _List("string"),
    },
)
_SELECTOR = _Struct(
    "v1.LabelSelector",
    {
        "matchLabels": _MAP,
        "matchExpressions": _List(
            _Struct(
                "v1.LabelSelectorRequirement",
                {"key": "string", "operator": "string", "values": _List("string")},
            )
        ),
    },
)
_SECURITY_FIELDS: dict[str, Any] = {
    "runAsUser": "int64",
    "runAsGroup": "int64",
    "runAsNonRoot": "bool",
}
_CONTAINER = _Struct(
    "v1.Container",
    {
        "name": "string",
        "image": "string",
        "command": _List("string"),
        "args": _List("string"),
        "workingDir": "string",
        "imagePullPolicy": "string",
        "env": _List(_Struct("v1.EnvVar", {"name": "string", "value": "string"})),
        "ports": _List(
            _Struct(
                "v1.ContainerPort",
                {
                    "name": "string",
                    "containerPort": "int32",
                    "hostPort": "int32",
                    "protocol": "string",
                },
            )
        ),
        "volumeMounts": _List(
            _Struct(
                "v1.VolumeMount",
                {"name": "string", "mountPath": "string", "readOnly": "bool", "subPath": "string"},
            )
        ),
        "securityContext": _Struct(
            "v1.SecurityContext",
            {
                **_SECURITY_FIELDS,
                "privileged": "bool",
                "allowPrivilegeEscalation": "bool",
                "readOnlyRootFilesystem": "bool",
            },
        ),
    },
)
_POD_SPEC = _Struct(
    "v1.PodSpec",
    {
        "containers": _List(_CONTAINER),
        "initContainers": _List(_CONTAINER),
        "restartPolicy": "string",
        "terminationGracePeriodSeconds": "int64",
        "activeDeadlineSeconds": "int64",
        "serviceAccountName": "string",
        "nodeName": "string",
        "nodeSelector": _MAP,
        "securityContext": _Struct(
            "v1.PodSecurityContext", {**_SECURITY_FIELDS, "fsGroup": "int64"}
        ),
        "volumes": _List(_Struct("v1.Volume", {"name": "string"})),
    },
)
_TEMPLATE = _Struct("v1.PodTemplateSpec", {"metadata": _META, "spec": _POD_SPEC})
_JOB_SPEC = _Struct(
    "v1.JobSpec",
    {
        "parallelism": "int32",
        "completions": "int32",
        "backoffLimit": "int32",
        "activeDeadlineSeconds": "int64",
        "ttlSecondsAfterFinished": "int32",
        "suspend": "bool",
        "manualSelector": "bool",
        "selector": _SELECTOR,
        "template": _TEMPLATE,
    },
)
_KINDS: dict[str, dict[str, Any]] = {
    "Deployment": {
        "spec": _Struct(
            "v1.DeploymentSpec",
            {
                "replicas": "int32",
                "minReadySeconds": "int32",
                "revisionHistoryLimit": "int32",
                "progressDeadlineSeconds": "int32",
                "paused": "bool",
                "selector": _SELECTOR,
                "template": _TEMPLATE,
                "strategy": _Struct(
                    "v1.DeploymentStrategy",
                    {
                        "type": "string",
                        "rollingUpdate": _Struct(
                            "v1.RollingUpdateDeployment",
                            {"maxSurge": _INT_OR_STRING, "maxUnavailable": _INT_OR_STRING},
                        ),
                    },
                ),
            },
        )
    },
    "ReplicaSet": {
        "spec": _Struct(
            "v1.ReplicaSetSpec",
            {
                "replicas": "int32",
                "minReadySeconds": "int32",
                "selector": _SELECTOR,
                "template": _TEMPLATE,
            },
        )
    },
    "Job": {"spec": _JOB_SPEC},
    "CronJob": {
        "spec": _Struct(
            "v1.CronJobSpec",
            {
                "schedule": "string",
                "suspend": "bool",
                "jobTemplate": _Struct(
                    "v1.JobTemplateSpec", {"metadata": _META, "spec": _JOB_SPEC}
                ),
            },
        )
    },
    "Pod": {"spec": _POD_SPEC},
    "Service": {
        "spec": _Struct(
            "v1.ServiceSpec",
            {
                "type": "string",
                "clusterIP": "string",
                "selector": _MAP,
                "ports": _List(
                    _Struct(
                        "v1.ServicePort",
                        {
                            "name": "string",
                            "port": "int32",
                            "targetPort": _INT_OR_STRING,
                            "nodePort": "int32",
                            "protocol": "string",
                        },
                    )
                ),
            },
        )
    },
    "ConfigMap": {"data": _MAP, "binaryData": _MAP, "immutable": "bool"},
    "Secret": {"data": _MAP, "stringData": _MAP, "type": "string"},
}


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


class _Refused(Exception):
    def __init__(self, owner: str, path: str, value: Any, expected: str) -> None:
        super().__init__(
            f"json: cannot unmarshal {_json_type(value)} into Go struct field {owner}.{path} "
            f"of type {expected}"
        )


def _check(owner: str, path: str, value: Any, shape: Any) -> None:
    """Check ``value`` at ``path`` (a field of the Go struct ``owner``) against ``shape``."""
    if isinstance(shape, _Struct):
        if not isinstance(value, dict):
            raise _Refused(owner, path, value, shape.type)
        _check_fields(shape.short, path, value, shape.fields)
    elif isinstance(shape, _List):
        if not isinstance(value, list):
            raise _Refused(owner, path, value, shape.type)
        for item in value:
            _check(owner, path, item, shape.item)
    elif shape == _MAP:
        if not isinstance(value, dict):
            raise _Refused(owner, path, value, _MAP)
        for item in value.values():
            if not isinstance(item, str):
                raise _Refused(owner, path, item, "string")
    elif shape == _INT_OR_STRING:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _Refused(owner, path, value, _INT_OR_STRING)
    elif shape in {"int32", "int64"}:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Refused(owner, path, value, shape)
    elif shape == "bool":
        if not isinstance(value, bool):
            raise _Refused(owner, path, value, "bool")
    elif shape == "string" and not isinstance(value, str):
        raise _Refused(owner, path, value, "string")


def _check_fields(owner: str, path: str, value: dict[str, Any], fields: dict[str, Any]) -> None:
    for key in [k for k, v in value.items() if v is None]:
        del value[key]
    for key, inner in fields.items():
        if key in value:
            _check(owner, f"{path}.{key}" if path else key, value[key], inner)


def check_types(kind: str, obj: dict[str, Any], version: str = "v1") -> None:
    """Refuse (400) a body whose fields have the wrong JSON types; drop ``null`` fields."""
    try:
        if not isinstance(obj.get("metadata", {}), dict):
            raise _Refused(kind, "metadata", obj.get("metadata"), _META.type)
        _check_fields(kind, "", obj, {"metadata": _META, **_KINDS.get(kind, {})})
    except _Refused as refused:
        raise bad_request(
            f'{kind} in version "{version}" cannot be handled as a {kind}: {refused}'
        ) from None
