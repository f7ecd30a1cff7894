"""The application registry's use cases: read, list, write and delete applications.

The stack's own parameters describe its default application; it is registered
the first time the registry is used (``register_default``), once: a default
application someone deleted stays deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bluegreen.domain.apps import (
    NEVER_USED,
    AppRecord,
    AppSpec,
    Editor,
    check_app_name,
    default_app_spec,
)
from bluegreen.domain.errors import AppManagedByStack, AppNotFound, AppVersionConflict
from bluegreen.domain.paging import check_page

if TYPE_CHECKING:
    from bluegreen.config import Settings
    from bluegreen.domain.models import Deployment
    from bluegreen.domain.ports import AppRegistry, Ledger

STACK = "stack parameters"
"""Who registered the default application: the stack's parameters said what it is."""


def register_default(registry: AppRegistry, settings: Settings) -> bool:
    """Register the stack's default application unless its name was ever registered;
    True when this call did. The change is recorded as made by ``STACK``: the spec came
    from the stack's parameters, not from whoever's request happened to come first."""
    if registry.get(settings.application) is not None:
        return False
    try:
        registry.put(
            settings.application, default_app_spec(settings), Editor(actor=STACK), NEVER_USED
        )
    except AppVersionConflict:  # registered meanwhile, or deleted since: left as it is
        return False
    return True


def app(registry: AppRegistry, name: str) -> AppRecord:
    """The application ``name``; ``AppNotFound`` when the registry holds none."""
    record = registry.get(check_app_name(name))
    if record is None:
        raise AppNotFound(f"no application {name!r}; PUT /apps/{name} registers it")
    return record


def apps(
    registry: AppRegistry, limit: int = 50, cursor: str | None = None
) -> tuple[list[AppRecord], str | None]:
    """A page of the applications, by name."""
    check_page(limit, cursor)
    return registry.apps(limit, cursor)


def _not_the_stacks(name: str, stack_app: str | None) -> str:
    if check_app_name(name) == stack_app:
        raise AppManagedByStack(
            f"{name!r} is the stack's default application: its spec is the stack's "
            "parameters (AppName and the rest); change them with a stack deployment"
        )
    return name


def put_app(
    registry: AppRegistry,
    name: str,
    spec: AppSpec,
    editor: Editor,
    expected_version: int | None,
    stack_app: str | None = None,
) -> tuple[AppRecord, bool]:
    """Create (no ``expected_version``) or replace the application at the version its
    editor read; the record and whether it was created. ``stack_app``, the stack's
    default application, is refused (``AppManagedByStack``)."""
    return registry.put(_not_the_stacks(name, stack_app), spec, editor, expected_version)


def delete_app(
    registry: AppRegistry,
    name: str,
    editor: Editor,
    expected_version: int | None = None,
    stack_app: str | None = None,
) -> AppRecord:
    """Delete the application (its ledger history stays); the record it had. ``stack_app``
    is refused, as by ``put_app``."""
    return registry.delete(_not_the_stacks(name, stack_app), editor, expected_version)


def applications_for(
    registry: AppRegistry, stack: Settings, repository: str
) -> list[AppRecord | None]:
    """The applications a push to ``repository`` is recorded for: the stack's default one
    (None) when its parameters name it, then every registered application whose spec
    names it, by name, as the registry holds them. One Query of its repository index."""
    found: list[AppRecord | None] = [None] if stack.repository == repository else []
    found += [r for r in registry.by_repository(repository) if r.name != stack.application]
    return found


FLEET_READERS = 8
"""Applications of a page whose ledgers are read at once."""


@dataclass(frozen=True)
class Release:
    """Where an application's releases stand, from its ledger: the deployment holding its
    lock (None: none runs) and its latest deployment, switch or rollback."""

    running: str | None
    latest: Deployment | None


def releases(
    records: list[AppRecord], ledger_for: Callable[[AppRecord], Ledger]
) -> dict[str, Release]:
    """Each application's ``Release``: two ledger reads per application (its lock and its
    newest record), whatever the size of the fleet, in parallel for a page."""

    def read(record: AppRecord) -> Release:
        ledger = ledger_for(record)
        newest, _ = ledger.deployments(1)
        return Release(running=ledger.lock_holder(), latest=newest[0] if newest else None)

    with ThreadPoolExecutor(max_workers=FLEET_READERS) as pool:
        return dict(zip((r.name for r in records), pool.map(read, records), strict=True))
