"""The factories every function's ``dependencies`` module builds the same way.

A function's ``dependencies`` module makes one ``Wiring`` over its environment model
and its own namespace (``globals()``), and takes from it, as attributes of that module,
the factories it needs: ``environment``, ``settings``, ``aws_client``, ``ledger``,
``cluster``, ``registry``, ``flow``. Each is ``lru_cache``d, so a warm Lambda reuses
what it built, and each belongs to that module (its ``__module__``), as if the module
had written it.

The factories reach one another through that namespace, on each call: a test that
replaces ``dependencies.settings`` or ``dependencies.aws_client``
(``monkeypatch.setattr``) changes what the ledger, the cluster and the rest are built
from. ``forget`` clears the caches of the factories a ``reset()`` names.

Nothing heavy is imported here: boto3, and the adapters over it or over the Kubernetes
client, are imported by the factory that first builds one (cold start matters).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bluegreen.config import EnvironmentPiece, Settings

if TYPE_CHECKING:
    from bluegreen.domain.ports import Cluster, FlowStarter, ImageRegistry, Ledger

Environment = TypeVar("Environment", bound=EnvironmentPiece)
Factory = TypeVar("Factory", bound=Callable[..., Any])


class Wiring(Generic[Environment]):
    """One function's cached factories, over its environment model and its module's namespace.

    ``namespace`` is the ``dependencies`` module's ``globals()``: where the factories
    find each other, and the module they are attributes of.
    """

    def __init__(
        self,
        model: type[Environment],
        namespace: Mapping[str, Any],
        *,
        confirm_cap_seconds: float | None = None,
    ) -> None:
        """``confirm_cap_seconds`` bounds how long a move waits for the data plane in this
        function, below ``Settings.traffic_confirm_seconds`` (an API request has 29 s)."""
        module = str(namespace["__name__"])

        def owned(maxsize: int) -> Callable[[Factory], Factory]:
            """``lru_cache(maxsize)``, the factory attributed to the function's module."""

            def decorate(factory: Factory) -> Factory:
                factory.__module__ = module
                factory.__qualname__ = factory.__name__
                return lru_cache(maxsize=maxsize)(factory)  # type: ignore[return-value]

            return decorate

        def sibling(name: str) -> Callable[..., Any]:
            # Looked up when called, not bound here: a test may have replaced it.
            factory: Callable[..., Any] = namespace[name]
            return factory

        @owned(maxsize=1)
        def environment() -> Environment:
            """The function's environment model, read from ``os.environ`` once."""
            return model.read(os.environ)

        @owned(maxsize=1)
        def settings() -> Settings:
            """The settings the logic reads, from the environment model."""
            config: Settings = sibling("environment")().settings()
            return config

        @owned(maxsize=8)
        def aws_client(service: str) -> Any:
            """A boto3 client for ``service`` in the application's region."""
            import boto3

            return boto3.client(service, region_name=sibling("settings")().region)

        @owned(maxsize=1)
        def ledger() -> Ledger:
            """The DynamoDB ledger."""
            from bluegreen.adapters.ledger import DynamoLedger

            config: Settings = sibling("settings")()
            return DynamoLedger(
                config.ledger_table,
                sibling("aws_client")("dynamodb"),
                config.application,
                repository=config.repository,
            )

        @owned(maxsize=1)
        def cluster() -> Cluster:
            """The application's namespace, through the Kubernetes API (EKS or a kubeconfig)."""
            from bluegreen.adapters.kube.cluster import KubernetesCluster

            config: Settings = sibling("settings")()
            seconds = float(config.traffic_confirm_seconds)
            if confirm_cap_seconds is not None:
                seconds = min(seconds, confirm_cap_seconds)
            return KubernetesCluster.from_settings(config, confirm_seconds=seconds)

        @owned(maxsize=1)
        def registry() -> ImageRegistry:
            """The application's ECR repository: where a tag points, whether a digest exists."""
            from bluegreen.adapters.registry import EcrRegistry

            config: Settings = sibling("settings")()
            return EcrRegistry(config.repository, sibling("aws_client")("ecr"), config.registry)

        @owned(maxsize=1)
        def flow() -> FlowStarter:
            """The deploy state machine."""
            from bluegreen.adapters.stepfunctions import StepFunctionsFlow

            config: Settings = sibling("settings")()
            return StepFunctionsFlow(
                config.state_machine_arn, sibling("aws_client")("stepfunctions")
            )

        self.environment: Callable[[], Environment] = environment
        self.settings: Callable[[], Settings] = settings
        self.aws_client: Callable[[str], Any] = aws_client
        self.ledger: Callable[[], Ledger] = ledger
        self.cluster: Callable[[], Cluster] = cluster
        self.registry: Callable[[], ImageRegistry] = registry
        self.flow: Callable[[], FlowStarter] = flow


def forget(*factories: Callable[..., Any]) -> None:
    """Clear the caches of ``factories``, in order.

    A test may have swapped a factory for a plain function: nothing to forget there.
    """
    for factory in factories:
        clear = getattr(factory, "cache_clear", None)
        if clear is not None:
            clear()
