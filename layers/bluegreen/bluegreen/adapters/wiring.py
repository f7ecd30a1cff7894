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

One stack serves a fleet. ``acting_for(app)`` scopes a request, a step or a push to one
application of the registry: inside it, ``settings()`` is that application's (the
stack's own settings, its spec for the rest) and every per-application factory
(``ledger``, ``cluster``, ``registry``, ``flow`` and what a module marks with
``per_app``) builds and keeps one adapter per application and spec version. Outside
any scope, and for the stack's default application, everything is as it was: the
stack's parameters and one adapter each.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bluegreen.config import EnvironmentPiece, Settings

if TYPE_CHECKING:
    from bluegreen.domain.apps import AppRecord
    from bluegreen.domain.ports import AppRegistry, Cluster, FlowStarter, ImageRegistry, Ledger

Environment = TypeVar("Environment", bound=EnvironmentPiece)
Factory = TypeVar("Factory", bound=Callable[..., Any])
Built = TypeVar("Built")

PER_APP_CACHE = 128
"""Applications whose adapters a warm function keeps at once (least recently used go)."""


@dataclass(frozen=True)
class Scope:
    """The application a call acts for: its settings, and the key its adapters are kept by
    (name and spec version, so a changed spec gets new adapters)."""

    key: str
    settings: Settings


_scope: ContextVar[Scope | None] = ContextVar("bluegreen_application", default=None)


def current_scope() -> Scope | None:
    """The application scope of this call; None for the stack's default application."""
    return _scope.get()


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
        def stack_settings() -> Settings:
            """The stack's settings (its default application's), from the environment model."""
            config: Settings = sibling("environment")().settings()
            return config

        def settings() -> Settings:
            """The settings the logic reads: the scoped application's, else the stack's."""
            scope = _scope.get()
            return scope.settings if scope is not None else stack_settings()

        settings.cache_clear = stack_settings.cache_clear  # type: ignore[attr-defined]
        settings.__module__ = module

        def per_app(build: Callable[[Settings], Built]) -> Callable[[], Built]:
            """A factory over the current application's settings, kept per application."""

            @lru_cache(maxsize=PER_APP_CACHE)
            def kept(key: str | None) -> Built:
                return build(sibling("settings")())

            def factory() -> Built:
                scope = _scope.get()
                return kept(None if scope is None else scope.key)

            factory.cache_clear = kept.cache_clear  # type: ignore[attr-defined]
            factory.__module__ = module
            factory.__name__ = factory.__qualname__ = build.__name__
            factory.__doc__ = build.__doc__
            return factory

        @owned(maxsize=8)
        def aws_client(service: str) -> Any:
            """A boto3 client for ``service`` in the application's region."""
            import boto3

            return boto3.client(service, region_name=sibling("stack_settings")().region)

        @per_app
        def ledger(config: Settings) -> Ledger:
            """The DynamoDB ledger, of the current application."""
            from bluegreen.adapters.ledger import DynamoLedger

            return DynamoLedger(
                config.ledger_table,
                sibling("aws_client")("dynamodb"),
                config.application,
                repository=config.repository,
            )

        @per_app
        def cluster(config: Settings) -> Cluster:
            """The application's namespace, through the Kubernetes API (EKS or a kubeconfig)."""
            from bluegreen.adapters.kube.cluster import KubernetesCluster

            seconds = float(config.traffic_confirm_seconds)
            if confirm_cap_seconds is not None:
                seconds = min(seconds, confirm_cap_seconds)
            return KubernetesCluster.from_settings(config, confirm_seconds=seconds)

        @per_app
        def registry(config: Settings) -> ImageRegistry:
            """The application's ECR repository: where a tag points, whether a digest exists."""
            from bluegreen.adapters.registry import EcrRegistry

            return EcrRegistry(config.repository, sibling("aws_client")("ecr"), config.registry)

        @per_app
        def flow(config: Settings) -> FlowStarter:
            """The deploy state machine, starting the current application's executions."""
            from bluegreen.adapters.stepfunctions import StepFunctionsFlow

            app = None if _scope.get() is None else config.application
            return StepFunctionsFlow(
                config.state_machine_arn, sibling("aws_client")("stepfunctions"), app
            )

        @owned(maxsize=1)
        def app_registry() -> AppRegistry:
            """The application registry (the ledger's table), the stack's default application
            registered in it on first use."""
            from bluegreen.adapters.apps import DynamoAppRegistry
            from bluegreen.logic.apps import register_default

            config: Settings = sibling("stack_settings")()
            found = DynamoAppRegistry(config.ledger_table, sibling("aws_client")("dynamodb"))
            register_default(found, config)
            return found

        @contextmanager
        def acting_for(app: str | AppRecord | None) -> Iterator[Settings]:
            """Scope the block to application ``app`` (None or the default: the stack's own;
            a record already read from the registry is not read again).

            ``AppNotFound`` when the registry holds no such application; ``InvalidInput``
            when the name is not one.
            """
            from bluegreen.domain.apps import AppRecord, app_settings
            from bluegreen.logic.apps import app as registered

            stack: Settings = sibling("stack_settings")()
            name = app.name if isinstance(app, AppRecord) else app
            if name is None or name == stack.application:
                token = _scope.set(None)
            else:
                record = app if isinstance(app, AppRecord) else None
                record = record or registered(sibling("app_registry")(), name)
                scoped = app_settings(stack, name, record.spec)
                token = _scope.set(Scope(f"{name}#{record.version}", scoped))
            try:
                yield sibling("settings")()
            finally:
                _scope.reset(token)

        self.environment: Callable[[], Environment] = environment
        self.stack_settings: Callable[[], Settings] = stack_settings
        self.settings: Callable[[], Settings] = settings
        self.per_app = per_app
        self.app_registry: Callable[[], AppRegistry] = app_registry
        self.acting_for = acting_for
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
