"""The resource types the emulator serves, and the discovery documents that describe them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    """One REST resource: where it lives, what it is called, what it supports."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    # Kinds whose spec and status are written through separate endpoints.
    has_status: bool = False
    # Kinds whose metadata.generation counts spec changes.
    generation: bool = False
    list_kind: str = ""
    # Served from a CustomResourceDefinition on a real cluster (no strategic merge patch).
    custom: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def singular(self) -> str:
        """The lower-case kind, as discovery reports it."""
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        """``apps/v1`` or ``v1``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Store key: the group-qualified plural."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def base_path(self, namespace: str | None) -> str:
        """The collection URL, e.g. ``/apis/apps/v1/namespaces/x/deployments``."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"


_ALL = ("all",)

BUILTIN: tuple[Resource, ...] = (
    Resource(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        subresources=("status",),
        has_status=True,
    ),
    Resource("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    Resource(
        "",
        "v1",
        "services",
        "Service",
        short_names=("svc",),
        categories=_ALL,
        subresources=("status",),
        has_status=True,
    ),
    Resource("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    Resource(
        "",
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        categories=_ALL,
        subresources=("status", "log"),
        has_status=True,
        generation=True,
    ),
    Resource("", "v1", "events", "Event", short_names=("ev",)),
    Resource(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        categories=_ALL,
        subresources=("status", "scale"),
        has_status=True,
        generation=True,
    ),
    Resource(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        categories=_ALL,
        subresources=("status", "scale"),
        has_status=True,
        generation=True,
    ),
    Resource(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        short_names=("sts",),
        categories=_ALL,
        subresources=("status", "scale"),
        has_status=True,
        generation=True,
    ),
    Resource(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        short_names=("ds",),
        categories=_ALL,
        subresources=("status",),
        has_status=True,
        generation=True,
    ),
    Resource("apps", "v1", "controllerrevisions", "ControllerRevision"),
    Resource(
        "batch",
        "v1",
        "jobs",
        "Job",
        categories=_ALL,
        subresources=("status",),
        has_status=True,
        generation=True,
    ),
    Resource(
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        short_names=("cj",),
        categories=_ALL,
        subresources=("status",),
        has_status=True,
        generation=True,
    ),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    Resource(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
    ),
    Resource("coordination.k8s.io", "v1", "leases", "Lease"),
    Resource(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        short_names=("pdb",),
        subresources=("status",),
        has_status=True,
        generation=True,
    ),
    Resource(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=("hpa",),
        categories=_ALL,
        subresources=("status",),
        has_status=True,
    ),
    Resource(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        short_names=("ing",),
        subresources=("status",),
        has_status=True,
        generation=True,
    ),
    # Gateway API (a CRD on a real cluster: sigs.k8s.io/gateway-api's standard channel).
    Resource(
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        "HTTPRoute",
        categories=("gateway-api",),
        subresources=("status",),
        has_status=True,
        generation=True,
        custom=True,
    ),
)

# Preferred order of groups in discovery, as a real server lists them.
_GROUP_ORDER = [
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "gateway.networking.k8s.io",
]


class Registry:
    """Every resource type the server knows, including kinds first seen in a manifest."""

    def __init__(self) -> None:
        self._by_path: dict[tuple[str, str, str], Resource] = {}
        self._by_kind: dict[tuple[str, str], Resource] = {}
        for resource in BUILTIN:
            self.add(resource)
        self.builtin = frozenset(BUILTIN)

    def add(self, resource: Resource) -> Resource:
        """Register a resource type (idempotent)."""
        self._by_path[(resource.group, resource.version, resource.plural)] = resource
        self._by_kind[(resource.api_version, resource.kind)] = resource
        return resource

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        """The resource served at ``/apis/<group>/<version>/<plural>``."""
        return self._by_path.get((group, version, plural))

    def for_kind(self, api_version: str, kind: str, *, learn: bool = False) -> Resource | None:
        """The resource of a manifest's ``apiVersion``/``kind``; ``learn`` adds unknown kinds."""
        found = self._by_kind.get((api_version, kind))
        if found or not learn or not kind:
            return found
        group, _, version = api_version.rpartition("/")
        plural = kind.lower()
        plural = plural + ("es" if plural.endswith(("s", "x", "ch", "sh")) else "s")
        if plural.endswith("ys") and len(plural) > 2 and plural[-3] not in "aeiou":
            plural = plural[:-2] + "ies"
        return self.add(Resource(group, version, plural, kind, custom=True))

    def find(self, name: str) -> Resource | None:
        """A resource by plural, singular, short name or kind (case-insensitive)."""
        wanted = name.lower()
        for resource in self._by_path.values():
            names = {resource.plural, resource.singular, resource.key, *resource.short_names}
            if wanted in names:
                return resource
        return None

    def all(self) -> list[Resource]:
        """Every registered resource, in registration order."""
        return list(self._by_path.values())

    def groups(self) -> list[tuple[str, str]]:
        """``(group, version)`` pairs in discovery order."""
        seen: list[tuple[str, str]] = []
        for resource in self._by_path.values():
            pair = (resource.group, resource.version)
            if pair not in seen:
                seen.append(pair)

        def order(pair: tuple[str, str]) -> tuple[int, str]:
            group = pair[0]
            rank = _GROUP_ORDER.index(group) if group in _GROUP_ORDER else len(_GROUP_ORDER)
            return (rank, group)

        return sorted(seen, key=order)

    # Discovery documents --------------------------------------------------------------

    def api_versions(self, address: str) -> dict[str, Any]:
        """``GET /api``."""
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }

    def api_group(self, group: str) -> dict[str, Any] | None:
        """``GET /apis/<group>``."""
        versions = [v for g, v in self.groups() if g == group]
        if not group or not versions:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }

    def api_group_list(self) -> dict[str, Any]:
        """``GET /apis``."""
        groups = []
        for group in dict.fromkeys(g for g, _ in self.groups() if g):
            described = self.api_group(group)
            if described:
                described.pop("kind")
                described.pop("apiVersion")
                groups.append(described)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        """``GET /api/v1`` or ``GET /apis/<group>/<version>``."""
        members = [r for r in self._by_path.values() if (r.group, r.version) == (group, version)]
        if not members:
            return None
        entries: list[dict[str, Any]] = []
        for resource in members:
            entry: dict[str, Any] = {
                "name": resource.plural,
                "singularName": resource.singular,
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": list(_VERBS),
            }
            if resource.short_names:
                entry["shortNames"] = list(resource.short_names)
            if resource.categories:
                entry["categories"] = list(resource.categories)
            entry["storageVersionHash"] = _storage_hash(resource)
            entries.append(entry)
            for sub in resource.subresources:
                sub_entry: dict[str, Any] = {
                    "name": f"{resource.plural}/{sub}",
                    "singularName": "",
                    "namespaced": resource.namespaced,
                    "kind": resource.kind,
                    "verbs": ["get", "patch", "update"],
                }
                if sub == "scale":
                    sub_entry.update(group="autoscaling", version="v1", kind="Scale")
                if sub == "log":
                    sub_entry.update(kind="Pod", verbs=["get"])
                entries.append(sub_entry)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": entries,
        }

    def aggregated(self, legacy: bool) -> dict[str, Any]:
        """Aggregated discovery (``apidiscovery.k8s.io/v2``) for ``/api`` or ``/apis``."""
        items: list[dict[str, Any]] = []
        groups = [g for g in dict.fromkeys(g for g, _ in self.groups()) if (g == "") == legacy]
        for group in groups:
            versions = []
            for g, version in self.groups():
                if g != group:
                    continue
                resources = []
                for resource in self._by_path.values():
                    if (resource.group, resource.version) != (group, version):
                        continue
                    described: dict[str, Any] = {
                        "resource": resource.plural,
                        "responseKind": {"group": group, "version": version, "kind": resource.kind},
                        "scope": "Namespaced" if resource.namespaced else "Cluster",
                        "singularResource": resource.singular,
                        "verbs": list(_VERBS),
                    }
                    if resource.short_names:
                        described["shortNames"] = list(resource.short_names)
                    if resource.categories:
                        described["categories"] = list(resource.categories)
                    subs = []
                    for sub in resource.subresources:
                        kind = {"scale": ("autoscaling", "v1", "Scale")}.get(
                            sub, (group, version, resource.kind if sub != "log" else "Pod")
                        )
                        subs.append(
                            {
                                "subresource": sub,
                                "responseKind": {
                                    "group": kind[0],
                                    "version": kind[1],
                                    "kind": kind[2],
                                },
                                "verbs": ["get"] if sub == "log" else ["get", "patch", "update"],
                            }
                        )
                    if subs:
                        described["subresources"] = subs
                    resources.append(described)
                versions.append(
                    {"version": version, "resources": resources, "freshness": "Current"}
                )
            items.append(
                {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}
            )
        return {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        }


def _storage_hash(resource: Resource) -> str:
    import hashlib

    digest = hashlib.sha256(f"{resource.api_version}/{resource.kind}".encode()).digest()
    import base64

    return base64.b64encode(digest[:8]).decode().rstrip("=")
