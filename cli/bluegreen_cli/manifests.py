"""What an application's namespace needs for eks-bluegreen: its Role, its RoleBinding and,
for a namespace that has none yet, the objects the product reads from the first request.

The Role's rules live here once, as data, each with why the product needs it.
``bluegreen manifests APP`` renders them for one application of the fleet from its
spec (``GET /apps/{app}``): a Role and RoleBinding named after the application in its
namespace, naming its ConfigMap and router object, with the rule of its router only.
``deploy/kubernetes/rbac.yaml`` is their rendering for the stack's default application
with both routers' rules (``make rbac``; a test fails when the committed file differs).

The YAML is written here rather than by a YAML library, so that every rule carries its
comment; it reads back (``yaml.safe_load_all``) as exactly the objects built here.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bluegreen_cli.errors import EXIT_UNAVAILABLE, CliError

GROUP = "eks-bluegreen"
"""The Kubernetes group the stack's access entries give the functions' roles (template
parameter KubernetesGroup, default)."""

ROLE = "eks-bluegreen"
"""The Role's and RoleBinding's name in the shipped file; an application's adds its name."""

ROUTERS = ("selector", "alb", "gateway")
"""The application spec's ``router.kind``."""

RBAC_FILE = "deploy/kubernetes/rbac.yaml"
WIDTH = 90
"""The longest line of the rendering's comments."""


@dataclass(frozen=True)
class AppObjects:
    """The names in an application's spec that its namespace's objects carry."""

    namespace: str
    router: str
    config_map: str
    config_map_key: str
    canary_service: str
    production_service: str
    colour_service_pattern: str
    colour_service_port: str
    ingress: str
    http_route: str

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> AppObjects:
        """The names of a complete spec, as ``GET /apps/{app}`` answers it (defaults filled in).

        A spec without one of them, or with one that is not a string, is an answer the
        command line cannot use: a ``CliError`` naming the field.
        """

        def text(*path: str) -> str:
            value: Any = spec
            for key in path:
                value = value.get(key) if isinstance(value, Mapping) else None
            if not isinstance(value, str) or not value:
                raise CliError(
                    f"the application's spec has no {'.'.join(path)}: the API's answer "
                    "is not an application",
                    EXIT_UNAVAILABLE,
                )
            return value

        port = text("router", "colourServicePort")
        if not port.isdigit():
            raise CliError(
                f"the application's router.colourServicePort {port!r} is not a port",
                EXIT_UNAVAILABLE,
            )
        router = text("router", "kind")
        if router not in ROUTERS:
            raise CliError(
                f"the application's router.kind {router!r} is not one of {', '.join(ROUTERS)}",
                EXIT_UNAVAILABLE,
            )
        return cls(
            namespace=text("namespace"),
            router=router,
            config_map=text("objects", "configMap"),
            config_map_key=text("objects", "configMapKey"),
            canary_service=text("objects", "canaryService"),
            production_service=text("objects", "productionService"),
            colour_service_pattern=text("router", "colourServicePattern"),
            colour_service_port=port,
            ingress=text("router", "ingress", "name"),
            http_route=text("router", "httpRoute", "name"),
        )

    def colour_service(self, colour: str) -> str:
        """The ``alb`` and ``gateway`` routers' Service of one colour."""
        return self.colour_service_pattern.replace("{colour}", colour)


STACK_DEFAULTS = AppObjects(
    namespace="wp-platform",
    router="selector",
    config_map="canary-env",
    config_map_key="canaryEnv",
    canary_service="canary-service",
    production_service="production-service",
    colour_service_pattern="{colour}-service",
    colour_service_port="80",
    ingress="web",
    http_route="web",
)
"""The stack's default application, as the template's parameters name it by default."""


STACK_APP = "wp-platform"
"""The stack's default application's name when the template's AppName is left as is."""


# -------------------------------------------------------------------------- the Role


@dataclass(frozen=True)
class Rule:
    """One rule of the Role, with why the product needs it."""

    why: str
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    named: str = ""
    """The ``AppObjects`` field naming the one object the rule is limited to (none: all)."""
    router: str = ""
    """The router kind the rule is for (none: every application)."""

    def applies(self, routers: Collection[str]) -> bool:
        """Whether the rule belongs to a Role serving these router kinds."""
        return not self.router or self.router in routers

    def render(self, objects: AppObjects) -> dict[str, Any]:
        """The rule as the Role holds it."""
        rule: dict[str, Any] = {
            "apiGroups": list(self.api_groups),
            "resources": list(self.resources),
        }
        if self.named:
            rule["resourceNames"] = [getattr(objects, self.named)]
        rule["verbs"] = list(self.verbs)
        return rule


RULES = (
    Rule(
        "canaryEnv (objects.configMap; the stack's ConfigMapName): read which colour is the "
        "canary (every operation); replace it, guarded by its resourceVersion, on a selector "
        "switch and when a deploy to the canary succeeds.",
        ("",),
        ("configmaps",),
        ("get", "update"),
        named="config_map",
    ),
    Rule(
        "Canary and production Services: list both selectors in one request (GET /services, "
        "the switch's careful path) and patch spec.selector.app on a switch (a JSON patch "
        "that tests the switch generation, or a strategic merge carrying the "
        "resourceVersion).",
        ("",),
        ("services",),
        ("list", "patch"),
    ),
    Rule(
        "Each colour's Deployment: read its image and rollout status (get; list reads both "
        "in one request for GET /services), patch the container image to a digest (deploy, "
        "rollback); hook Jobs copy its pod template.",
        ("apps",),
        ("deployments",),
        ("get", "list", "patch"),
    ),
    Rule(
        "Pods, listed by label: a rollout's new pods (a crash loop, an image that cannot be "
        "pulled, a pod no node takes fail it before the deadline) and a hook Job's pods.",
        ("",),
        ("pods",),
        ("list",),
    ),
    Rule(
        "The log tail of a hook's pod (kept in the deployment record), and the previous log "
        "of a crashing new pod (in the rollout's Cause).",
        ("",),
        ("pods/log",),
        ("get",),
    ),
    Rule(
        "router.kind selector: a switch counts as applied once the production Service's "
        "EndpointSlices list ready endpoints of the colour it selects (listed by the "
        "kubernetes.io/service-name label).",
        ("discovery.k8s.io",),
        ("endpointslices",),
        ("list",),
    ),
    Rule(
        "Warning Events of a rollout's pods that are not ready: what they wait for.",
        ("",),
        ("events",),
        ("list",),
    ),
    Rule(
        "Hooks run as Jobs built from the colour's pod template: create one, read how it "
        "ends; ttlSecondsAfterFinished removes it, activeDeadlineSeconds stops one that "
        "hangs.",
        ("batch",),
        ("jobs",),
        ("create", "get"),
    ),
    Rule(
        "router.kind alb: the one Ingress (router.ingress.name; the stack's IngressName): "
        "read its rules and action annotations (every operation reads where traffic goes), "
        "patch the two action annotations on a flip (a JSON merge patch carrying the "
        "resourceVersion).",
        ("networking.k8s.io",),
        ("ingresses",),
        ("get", "patch"),
        named="ingress",
        router="alb",
    ),
    Rule(
        "router.kind gateway: the one HTTPRoute (router.httpRoute.name; the stack's "
        "HttpRouteName): read its rules, patch "
        "the weights of the production and canary rules' backendRefs on a flip (merge "
        "patch, with the resourceVersion).",
        ("gateway.networking.k8s.io",),
        ("httproutes",),
        ("get", "patch"),
        named="http_route",
        router="gateway",
    ),
)
"""Everything the product does in an application's namespace, and nothing more (the real
authorizer proves it: tests/kube/test_rbac.py)."""


class Commented(dict[str, Any]):
    """A mapping written with a comment above it (a rule of the Role: why it is there)."""

    def __init__(self, comment: str, mapping: Mapping[str, Any]) -> None:
        super().__init__(mapping)
        self.comment = comment


def _labels(app: str | None) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": "eks-bluegreen"}
    if app:
        labels["app.kubernetes.io/instance"] = app
    return labels


def rbac(
    objects: AppObjects, *, app: str | None, group: str, routers: Collection[str]
) -> list[dict[str, Any]]:
    """The Role and the RoleBinding to ``group``, in the application's namespace.

    Named ``eks-bluegreen-<app>`` (two applications sharing a namespace keep one each),
    or ``eks-bluegreen`` without ``app``; with the rules of every router in ``routers``.
    """
    name = f"{ROLE}-{app}" if app else ROLE

    def metadata() -> dict[str, Any]:
        labels = {**_labels(app), "app.kubernetes.io/component": "rbac"}
        return {"name": name, "namespace": objects.namespace, "labels": labels}

    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(),
        "rules": [Commented(r.why, r.render(objects)) for r in RULES if r.applies(routers)],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }
    return [role, binding]


# -------------------------------------------------------- a namespace that has none yet

COLOURS = ("blue", "green")
FIRST_CANARY, FIRST_PRODUCTION = COLOURS
"""A namespace's first state: blue is the canary, green production (the product's own
initial canary, the one it assumes while canaryEnv is missing)."""
FIRST_CANARY_ENV = json.dumps({"selector": FIRST_CANARY, "image": ""}, separators=(",", ":"))
"""canaryEnv before any deploy: blue is the canary, no image recorded yet."""
SERVICE_PORT = 80
TARGET_PORT = 8080
"""The Services' port and the containers' port they send to (the seed's, and WordPress')."""


def namespace_objects(objects: AppObjects, app: str) -> list[dict[str, Any]]:
    """The Namespace, the canaryEnv ConfigMap and the Services, in their first state.

    Under ``alb`` and ``gateway`` the colour Services too. Not the Deployments (the
    team's own) nor the Ingress or HTTPRoute (the team's routing).
    """
    labels = _labels(app)

    def service(name: str, colour: str, port: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": objects.namespace, "labels": labels},
            "spec": {
                "selector": {"app": colour},
                "ports": [{"name": "http", "port": port, "targetPort": TARGET_PORT}],
            },
        }

    found: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": objects.namespace}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": objects.config_map,
                "namespace": objects.namespace,
                "labels": labels,
            },
            "data": {objects.config_map_key: FIRST_CANARY_ENV},
        },
        service(objects.canary_service, FIRST_CANARY, SERVICE_PORT),
        service(objects.production_service, FIRST_PRODUCTION, SERVICE_PORT),
    ]
    if objects.router != "selector":
        port = int(objects.colour_service_port)
        found += [service(objects.colour_service(c), c, port) for c in COLOURS]
    return found


# ---------------------------------------------------------------------------- renderings


def documents(
    spec: Mapping[str, Any], *, app: str, group: str = GROUP, with_objects: bool = False
) -> list[dict[str, Any]]:
    """The application's Role and RoleBinding, with its router's rule only; with
    ``with_objects``, after the Namespace and before the objects it lacks at first."""
    objects = AppObjects.of(spec)
    found = rbac(objects, app=app, group=group, routers=(objects.router,))
    if with_objects:
        first, *rest = namespace_objects(objects, app)
        found = [first, *found, *rest]
    return found


def render(
    spec: Mapping[str, Any], *, app: str, group: str = GROUP, with_objects: bool = False
) -> str:
    """``bluegreen manifests APP``: ``documents`` as YAML, after comments saying what they
    are, how to apply them and (``with_objects``) for which namespace only."""
    objects = AppObjects.of(spec)
    command = f"bluegreen manifests {app}" + (f" --group {group}" if group != GROUP else "")
    header = [
        f"What eks-bluegreen may do for application {app} in namespace {objects.namespace}, "
        "and nothing more: its Role, bound to the Kubernetes group the stack's access "
        f"entries give the functions' roles ({group}; template parameter KubernetesGroup).",
        f"Rendered from the application's spec (GET /apps/{app}, router.kind "
        f"{objects.router}) by `bluegreen manifests`; apply it with",
        f"  {command} | kubectl apply -f -",
        "and again after a change of the spec's namespace, object names or router.",
    ]
    if with_objects:
        header += [
            "",
            "--with-objects: the Namespace, the canaryEnv ConfigMap (blue the canary, no image "
            "yet) and the Services (canary: blue, production: green; under alb and gateway "
            "each colour's too), FOR A NAMESPACE THAT HAS NONE YET. Applied over existing "
            "ones they reset canaryEnv and the Services' selectors: which colour is the "
            "canary and what it runs. The Deployments (the Services select pods labelled "
            f"app: blue and app: green, port {TARGET_PORT}) and the Ingress or HTTPRoute are "
            "the team's own.",
        ]
    return to_yaml(documents(spec, app=app, group=group, with_objects=with_objects), header)


def render_shipped() -> str:
    """``deploy/kubernetes/rbac.yaml``: the stack's default application, every router."""
    header = [
        "What eks-bluegreen may do in the application's namespace, and nothing more.",
        "",
        "The stack's EKS access entries map the IAM roles of the services_api and "
        'deploy_steps functions to the Kubernetes group "eks-bluegreen" (template parameter '
        "KubernetesGroup); this Role, bound to that group, is all they are granted. Apply "
        "it in the namespace of the stack's default application:",
        f"  kubectl apply -f {RBAC_FILE}",
        "The names below are the template's defaults (Namespace, ConfigMapName, "
        "IngressName, HttpRouteName). The Role holds both the Ingress rule "
        "(TrafficRouter=alb) and the HTTPRoute rule (gateway), so that this one file "
        "serves every router. For an application of the fleet, or a stack that overrides "
        "those names, render the Role from its spec instead (named after it, its router's "
        "rule only):",
        "  bluegreen manifests <app> | kubectl apply -f -",
        "",
        "Generated from cli/bluegreen_cli/manifests.py by `make rbac`: edit the rules there.",
    ]
    return to_yaml(rbac(STACK_DEFAULTS, app=None, group=GROUP, routers=ROUTERS), header)


# ---------------------------------------------------------------------------- YAML


def to_yaml(documents: Iterable[Mapping[str, Any]], header: Sequence[str] = ()) -> str:
    """Documents separated by ``---``, after ``header`` as comment lines (wrapped)."""
    lines = [line for paragraph in header for line in _comment(paragraph, 0)]
    for index, document in enumerate(documents):
        if index:
            lines.append("---")
        lines += _block(document, 0)
    return "\n".join(lines) + "\n"


def _comment(text: str, indent: int) -> list[str]:
    pad = " " * indent
    if not text:
        return [f"{pad}#"]
    if text.startswith("  "):  # a command line: never wrapped
        return [f"{pad}# {text}"]
    width = WIDTH - indent - 2
    return [f"{pad}# {line}" for line in textwrap.wrap(text, width, break_on_hyphens=False)]


def _block(mapping: Mapping[str, Any], indent: int) -> Iterator[str]:
    pad = " " * indent
    for key, value in mapping.items():
        name = _scalar(key)
        if isinstance(value, Mapping):
            if value:
                yield f"{pad}{name}:"
                yield from _block(value, indent + 2)
            else:
                yield f"{pad}{name}: {{}}"
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            yield f"{pad}{name}:"
            for item in value:
                if isinstance(item, Commented):
                    yield from _comment(item.comment, indent + 2)
                first, *rest = _block(item, indent + 4)
                yield f"{pad}  - {first.lstrip()}"
                yield from rest
        elif isinstance(value, list):
            yield f"{pad}{name}: [{', '.join(_scalar(v) for v in value)}]"
        else:
            yield f"{pad}{name}: {_scalar(value)}"


_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9._/-]*$")
_NOT_STRINGS = frozenset(
    {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
)  # YAML 1.1 reads these (in any case) as booleans or null


def _scalar(value: object) -> str:
    """A scalar as YAML reads it back unchanged: plain when it is safe, else quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _NOT_STRINGS:
        return text
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def main() -> None:
    """``python -m bluegreen_cli.manifests``: write ``deploy/kubernetes/rbac.yaml``'s text."""
    print(render_shipped(), end="")


if __name__ == "__main__":
    main()
