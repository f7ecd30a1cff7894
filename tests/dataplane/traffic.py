"""The gateway router's HTTPRoute as the data-plane tests drive it; requests through Traefik."""

from __future__ import annotations

import copy
import http.client
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from local.kube.controlplane import ControlPlane
from local.kube.dataplane import GATEWAY_CONTROLLER, GatewayProxy, PodNetwork
from tests.dataplane.support import seeded_namespace

GROUP, VERSION = "gateway.networking.k8s.io", "v1"
HOST = "www.example.com"
PRODUCTION_RULE = 1
"""The seed's HTTPRoute: rule 0 is the canary's (header ``x-canary: true``), 1 production."""


@dataclass
class Tally:
    """What the clients saw: answers per colour, and requests that got no 200."""

    colours: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.colours.values()) + len(self.failures)


@dataclass
class Route:
    """The seed's HTTPRoute ``web`` in ``namespace``, served by ``proxy``."""

    plane: ControlPlane
    proxy: GatewayProxy
    network: PodNetwork
    namespace: str
    name: str = "web"

    def read(self) -> dict[str, Any]:
        from kubernetes.client import CustomObjectsApi

        with self.plane.admin_client() as client:
            route: dict[str, Any] = CustomObjectsApi(client).get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "httproutes", self.name
            )
        return route

    def set_weights(self, blue: int, green: int) -> int:
        """What the gateway router writes: the production rule's two weights. The generation."""
        from kubernetes.client import CustomObjectsApi
        from kubernetes.client.exceptions import ApiException

        for _ in range(10):
            route = copy.deepcopy(self.read())
            for ref in route["spec"]["rules"][PRODUCTION_RULE]["backendRefs"]:
                ref["weight"] = blue if ref["name"] == "blue-service" else green
            try:
                with self.plane.admin_client() as client:
                    done = CustomObjectsApi(client).replace_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, "httproutes", self.name, route
                    )
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise
            return int(done["metadata"]["generation"])
        raise AssertionError("the HTTPRoute kept changing")

    def confirmed(self) -> dict[str, Any] | None:
        """The route when its status says the proxy took its current generation, else None."""
        route = self.read()
        generation = route["metadata"]["generation"]
        for parent in (route.get("status") or {}).get("parents") or []:
            if parent.get("controllerName") != GATEWAY_CONTROLLER:
                continue
            conditions = {c["type"]: c for c in parent.get("conditions") or []}
            if all(
                conditions.get(kind, {}).get("status") == "True"
                and conditions[kind].get("observedGeneration") == generation
                for kind in ("Accepted", "ResolvedRefs")
            ):
                return route
        return None

    def serving(self, blue: int, green: int) -> bool:
        """Whether Traefik routes the production rule by these weights right now."""
        rules = self.proxy.serving_weights(self.namespace, self.name)
        wanted = {"blue-service": blue, "green-service": green}
        return len(rules) > PRODUCTION_RULE and rules[PRODUCTION_RULE] == wanted

    def send(self, requests: int) -> Tally:
        """``requests`` requests to production through Traefik, from inside the pod network."""
        tally = Tally()
        # One kept-alive connection, as a browser holds one: Traefik balances each request.
        connection = self.network.connection("127.0.0.1", self.proxy.web_port)
        for _ in range(requests):
            try:
                answer = self.network.request(
                    self.proxy.url + "/", headers={"Host": HOST}, connection=connection
                )
            except (OSError, http.client.HTTPException) as exc:
                tally.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if answer.status != 200:
                tally.failures.append(f"{answer.status}: {answer.body[:80]!r}")
                continue
            tally.colours[str(answer.json()["colour"])] += 1
        connection.close()
        return tally


@contextmanager
def gateway_route(
    plane: ControlPlane, proxy: GatewayProxy, network: PodNetwork, prefix: str
) -> Iterator[Route]:
    """A seeded namespace with its own Gateway on ``proxy``; its routes leave the proxy after."""
    with seeded_namespace(plane, prefix) as namespace, proxy.gateway_for(namespace):
        yield Route(plane, proxy, network, namespace)
