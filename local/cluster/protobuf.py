"""Decoding of request bodies kubectl sends as ``application/vnd.kubernetes.protobuf``.

kubectl's typed clients (``create job``, ``create deployment``, ``create configmap``, ...)
write protobuf. The server turns those bodies into the JSON shape it stores, using the field
numbers of the Kubernetes API types listed below (only the kinds and fields those commands
send; an unknown field is dropped, as an older server would).
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"

# message -> field number -> (json name, type); a leading "*" marks a repeated field.
_S = "string"
_I = "int"
_B = "bool"
_SCHEMA: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {
        1: ("typeMeta", "TypeMeta"),
        2: ("raw", "bytes"),
        3: ("contentEncoding", _S),
        4: ("contentType", _S),
    },
    "TypeMeta": {1: ("apiVersion", _S), 2: ("kind", _S)},
    "ObjectMeta": {
        1: ("name", _S),
        2: ("generateName", _S),
        3: ("namespace", _S),
        5: ("uid", _S),
        6: ("resourceVersion", _S),
        7: ("generation", _I),
        11: ("labels", "map"),
        12: ("annotations", "map"),
        13: ("ownerReferences", "*OwnerReference"),
        14: ("finalizers", "*string"),
    },
    "OwnerReference": {
        1: ("kind", _S),
        3: ("name", _S),
        4: ("uid", _S),
        5: ("apiVersion", _S),
        6: ("controller", _B),
        7: ("blockOwnerDeletion", _B),
    },
    "LabelSelector": {
        1: ("matchLabels", "map"),
        2: ("matchExpressions", "*LabelSelectorRequirement"),
    },
    "LabelSelectorRequirement": {1: ("key", _S), 2: ("operator", _S), 3: ("values", "*string")},
    "IntOrString": {},  # handled specially
    # batch/v1
    "Job": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec")},
    "JobSpec": {
        1: ("parallelism", _I),
        2: ("completions", _I),
        3: ("activeDeadlineSeconds", _I),
        4: ("selector", "LabelSelector"),
        5: ("manualSelector", _B),
        6: ("template", "PodTemplateSpec"),
        7: ("backoffLimit", _I),
        8: ("ttlSecondsAfterFinished", _I),
        9: ("completionMode", _S),
        10: ("suspend", _B),
        14: ("podReplacementPolicy", _S),
        15: ("managedBy", _S),
    },
    "CronJob": {1: ("metadata", "ObjectMeta"), 2: ("spec", "CronJobSpec")},
    "CronJobSpec": {
        1: ("schedule", _S),
        2: ("startingDeadlineSeconds", _I),
        3: ("concurrencyPolicy", _S),
        4: ("suspend", _B),
        5: ("jobTemplate", "JobTemplateSpec"),
        6: ("successfulJobsHistoryLimit", _I),
        7: ("failedJobsHistoryLimit", _I),
        8: ("timeZone", _S),
    },
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec")},
    # apps/v1
    "Deployment": {1: ("metadata", "ObjectMeta"), 2: ("spec", "DeploymentSpec")},
    "DeploymentSpec": {
        1: ("replicas", _I),
        2: ("selector", "LabelSelector"),
        3: ("template", "PodTemplateSpec"),
        4: ("strategy", "DeploymentStrategy"),
        5: ("minReadySeconds", _I),
        6: ("revisionHistoryLimit", _I),
        7: ("paused", _B),
        9: ("progressDeadlineSeconds", _I),
    },
    "DeploymentStrategy": {1: ("type", _S), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {
        1: ("maxUnavailable", "IntOrString"),
        2: ("maxSurge", "IntOrString"),
    },
    # core/v1
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "Pod": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {
        1: ("volumes", "*Volume"),
        2: ("containers", "*Container"),
        3: ("restartPolicy", _S),
        4: ("terminationGracePeriodSeconds", _I),
        5: ("activeDeadlineSeconds", _I),
        6: ("dnsPolicy", _S),
        7: ("nodeSelector", "map"),
        8: ("serviceAccountName", _S),
        9: ("serviceAccount", _S),
        10: ("nodeName", _S),
        11: ("hostNetwork", _B),
        14: ("securityContext", "PodSecurityContext"),
        15: ("imagePullSecrets", "*LocalObjectReference"),
        16: ("hostname", _S),
        17: ("subdomain", _S),
        19: ("schedulerName", _S),
        20: ("initContainers", "*Container"),
        21: ("automountServiceAccountToken", _B),
        24: ("priorityClassName", _S),
        25: ("priority", _I),
        30: ("enableServiceLinks", _B),
    },
    "Container": {
        1: ("name", _S),
        2: ("image", _S),
        3: ("command", "*string"),
        4: ("args", "*string"),
        5: ("workingDir", _S),
        6: ("ports", "*ContainerPort"),
        7: ("env", "*EnvVar"),
        8: ("resources", "ResourceRequirements"),
        9: ("volumeMounts", "*VolumeMount"),
        13: ("terminationMessagePath", _S),
        14: ("imagePullPolicy", _S),
        15: ("securityContext", "SecurityContext"),
        16: ("stdin", _B),
        17: ("stdinOnce", _B),
        18: ("tty", _B),
        20: ("terminationMessagePolicy", _S),
    },
    "ContainerPort": {
        1: ("name", _S),
        2: ("hostPort", _I),
        3: ("containerPort", _I),
        4: ("protocol", _S),
        5: ("hostIP", _S),
    },
    "EnvVar": {1: ("name", _S), 2: ("value", _S)},
    "ResourceRequirements": {1: ("limits", "map"), 2: ("requests", "map")},
    "VolumeMount": {1: ("name", _S), 2: ("readOnly", _B), 3: ("mountPath", _S), 4: ("subPath", _S)},
    "Volume": {1: ("name", _S), 2: ("", "VolumeSource")},
    "VolumeSource": {
        2: ("emptyDir", "EmptyDirVolumeSource"),
        6: ("secret", "SecretVolumeSource"),
        19: ("configMap", "ConfigMapVolumeSource"),
    },
    "EmptyDirVolumeSource": {1: ("medium", _S)},
    "SecretVolumeSource": {1: ("secretName", _S), 3: ("defaultMode", _I), 4: ("optional", _B)},
    "ConfigMapVolumeSource": {
        1: ("", "LocalObjectReference"),
        3: ("defaultMode", _I),
        4: ("optional", _B),
    },
    "LocalObjectReference": {1: ("name", _S)},
    "SecurityContext": {
        2: ("privileged", _B),
        4: ("runAsUser", _I),
        5: ("runAsNonRoot", _B),
        6: ("readOnlyRootFilesystem", _B),
        7: ("allowPrivilegeEscalation", _B),
        8: ("runAsGroup", _I),
    },
    "PodSecurityContext": {
        2: ("runAsUser", _I),
        3: ("runAsNonRoot", _B),
        4: ("supplementalGroups", "*int"),
        5: ("fsGroup", _I),
        6: ("runAsGroup", _I),
    },
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map"),
        3: ("binaryData", "map:bytes"),
        4: ("immutable", _B),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map:bytes"),
        3: ("type", _S),
        4: ("stringData", "map"),
        5: ("immutable", _B),
    },
    "Namespace": {1: ("metadata", "ObjectMeta")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec")},
    "ServiceSpec": {
        1: ("ports", "*ServicePort"),
        2: ("selector", "map"),
        3: ("clusterIP", _S),
        4: ("type", _S),
        5: ("externalIPs", "*string"),
        7: ("sessionAffinity", _S),
        10: ("externalName", _S),
        18: ("clusterIPs", "*string"),
    },
    "ServicePort": {
        1: ("name", _S),
        2: ("protocol", _S),
        3: ("port", _I),
        4: ("targetPort", "IntOrString"),
        5: ("nodePort", _I),
        6: ("appProtocol", _S),
    },
}


# Go pointer fields: a zero value sent for them is meaningful (``suspend: false``); every
# other zero scalar is just protobuf's encoding of "unset" and is dropped.
_POINTERS = {
    "JobSpec": {
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "manualSelector",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "suspend",
    },
    "CronJobSpec": {
        "startingDeadlineSeconds",
        "suspend",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    },
    "DeploymentSpec": {"replicas", "revisionHistoryLimit", "progressDeadlineSeconds"},
    "PodSpec": {
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "automountServiceAccountToken",
        "priority",
        "enableServiceLinks",
    },
    "SecurityContext": {
        "privileged",
        "runAsUser",
        "runAsNonRoot",
        "readOnlyRootFilesystem",
        "allowPrivilegeEscalation",
        "runAsGroup",
    },
    "PodSecurityContext": {"runAsUser", "runAsNonRoot", "fsGroup", "runAsGroup"},
    "SecretVolumeSource": {"defaultMode", "optional"},
    "ConfigMapVolumeSource": {"defaultMode", "optional"},
    "ConfigMap": {"immutable"},
    "Secret": {"immutable"},
}


class ProtobufError(ValueError):
    """A body that is not a Kubernetes protobuf envelope the server can read."""


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    fields = []
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 2:
            length, position = _varint(data, position)
            value = data[position : position + length]
            position += length
        elif wire == 1:
            value, position = data[position : position + 8], position + 8
        elif wire == 5:
            value, position = data[position : position + 4], position + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        fields.append((number, wire, value))
    return fields


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: str, value: Any) -> Any:
    if kind == "string":
        return bytes(value).decode("utf-8")
    if kind == "int":
        return _signed(value)
    if kind == "bool":
        return bool(value)
    if kind == "bytes":
        return bytes(value)
    raise ProtobufError(f"unknown scalar {kind}")


def _int_or_string(data: bytes) -> int | str:
    parts = {number: value for number, _, value in _fields(data)}
    if parts.get(1, 0) == 1:
        return bytes(parts.get(3, b"")).decode()
    return _signed(parts.get(2, 0))


def _message(name: str, data: bytes) -> dict[str, Any]:
    schema = _SCHEMA[name]
    result: dict[str, Any] = {}
    for number, _, value in _fields(data):
        if number not in schema:
            continue
        field, kind = schema[number]
        repeated = kind.startswith("*")
        kind = kind.lstrip("*")
        if kind.startswith("map"):
            entry = {n: v for n, _, v in _fields(value)}
            key = bytes(entry.get(1, b"")).decode()
            raw = bytes(entry.get(2, b""))
            if kind == "map:bytes":
                mapped: Any = base64.b64encode(raw).decode()
            elif name == "ResourceRequirements":
                mapped = bytes({n: v for n, _, v in _fields(raw)}.get(1, b"")).decode()
            else:
                mapped = raw.decode()
            result.setdefault(field, {})[key] = mapped
            continue
        if kind == "IntOrString":
            decoded: Any = _int_or_string(value)
        elif kind in _SCHEMA:
            decoded = _message(kind, value)
        elif repeated and kind == "int" and isinstance(value, bytes):
            position, numbers = 0, []
            while position < len(value):
                item, position = _varint(value, position)
                numbers.append(_signed(item))
            result.setdefault(field, []).extend(numbers)
            continue
        else:
            decoded = _scalar(kind, value)
            unset = decoded in ("", b"") or (
                decoded in (0, False) and field not in _POINTERS.get(name, set())
            )
            if unset and not repeated:
                continue
        if field == "":  # an embedded struct whose fields JSON inlines
            result.update(decoded)
        elif repeated:
            result.setdefault(field, []).append(decoded)
        else:
            result[field] = decoded
    return result


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a ``k8s\\x00``-prefixed protobuf object (kinds listed above)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the protobuf body lacks the k8s envelope prefix")
    envelope = _message("Unknown", body[len(MAGIC) :])
    type_meta = envelope.get("typeMeta", {})
    kind = type_meta.get("kind", "")
    if kind not in _SCHEMA or "metadata" not in {f for f, _ in _SCHEMA[kind].values()}:
        raise ProtobufError(f"protobuf bodies of kind {kind or '?'} are not understood; send JSON")
    obj = _message(kind, envelope.get("raw", b""))
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}
