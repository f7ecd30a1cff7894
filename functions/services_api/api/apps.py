"""The application registry: ``PUT``, ``GET`` and ``DELETE /apps/{app}``, ``GET /apps``.

The body of ``PUT`` is the application's spec (``AppSpec``, the schema in
``docs/openapi.json``). Versions follow HTTP's conditional requests: every answer
carries the version as ``ETag: "<version>"``; a ``PUT`` that replaces an application
sends the version it read as ``If-Match`` (a ``PUT`` without it only creates), and a
``DELETE`` may send one. A version that is not the one there now is a 409
(``AppVersionConflict``) and nothing is written.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from pydantic import Field

from bluegreen.domain.apps import APP_NAME_PATTERN, VERSION_PATTERN, AppRecord, AppSpec, Editor
from bluegreen.domain.models import Deployment
from bluegreen.observability import logger

from . import dependencies
from .caller import caller_of
from .deployments import deployment_body
from .responses import BAD_REQUEST, GATEWAY, INVALID, UNSUPPORTED, answer
from .schemas import (
    CURSOR_LIMIT,
    CURSOR_PATTERN,
    LIMIT_DESCRIPTION,
    DeploymentBody,
    ErrorBody,
    PageLimit,
    WireBody,
)

router = Router()  # type: ignore[no-untyped-call]

APP = Path(
    pattern=APP_NAME_PATTERN,
    description="The application's name: lowercase letters, digits and '-' (a DNS label of "
    "at most 40 characters)",
)
"""The ``{app}`` of every ``/apps/{app}`` route."""

IF_MATCH = Header(
    alias="If-Match",
    pattern=VERSION_PATTERN,
    description='The version the change was based on, as the ETag answered it (`"3"`; a bare '
    "3 is read alike).",
)

NO_APP = {
    404: answer(
        ErrorBody,
        "`AppNotFound`: no application of that name (never registered, or deleted); "
        "`RouteNotFound`: the name is not a path segment the API routes",
    )
}
NO_ROUTE = {
    404: answer(ErrorBody, "`RouteNotFound`: the name is not a path segment the API routes")
}
VERSION_CONFLICT = {
    409: answer(
        ErrorBody,
        "`AppVersionConflict`: the application changed since that version was read, exists "
        "already (send If-Match to replace it), or no longer exists; `AppInUse`: a "
        "deployment of it runs; `AppManagedByStack`: it is the stack's default application, "
        "whose spec is the stack's parameters. Nothing was written.",
    )
}


class AppBody(WireBody):
    """An application: its spec, its version, and who changed it when."""

    name: str
    version: int = Field(description="Send it back as If-Match to change the application.")
    spec: AppSpec
    changed_by: str
    changed_at: datetime
    created_by: str
    created_at: datetime
    source_ip: str = Field(default="", description="Where the last change came from.")


class ReleaseBody(WireBody):
    """Where an application's releases stand, as its ledger says (no cluster read)."""

    running: str | None = Field(description="The deployment holding the lock; null: none runs.")
    latest: DeploymentBody | None = Field(
        description="Its newest deployment, switch or rollback, with how it ended."
    )


class FleetAppBody(AppBody):
    """An application of the fleet, with where its releases stand."""

    release: ReleaseBody


class AppPageBody(WireBody):
    """``GET /apps``."""

    apps: list[FleetAppBody]
    next_cursor: str | None


def app_body(record: AppRecord) -> AppBody:
    """The wire form of a registry record."""
    return AppBody(
        name=record.name,
        version=record.version,
        spec=record.spec,
        changed_by=record.changed_by,
        changed_at=record.changed_at,
        created_by=record.created_by,
        created_at=record.created_at,
        source_ip=record.source_ip,
    )


def version_of(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header names (``"3"``, ``W/"3"`` or ``3``)."""
    if if_match is None:
        return None
    found = re.search(r"[0-9]+", if_match)
    return int(found.group()) if found else None


def _answer(record: AppRecord, status: int = 200) -> Response[AppBody]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=app_body(record),
        headers={"ETag": f'"{record.version}"'},
    )


def _editor() -> Editor:
    caller = caller_of(router.current_event.raw_event)
    return Editor(actor=caller.actor, source_ip=caller.source_ip, request_id=caller.request_id)


@router.get(
    "/apps",
    summary="The applications of the stack, by name",
    tags=["apps"],
    responses={
        200: answer(AppPageBody, "A page of applications"),
        **BAD_REQUEST,
        **INVALID,
        **GATEWAY,
    },
)
def get_apps(
    limit: Annotated[
        PageLimit, Query(description=LIMIT_DESCRIPTION.replace("newest first", "by name"))
    ] = 50,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=CURSOR_LIMIT, pattern=CURSOR_PATTERN)
    ] = None,
) -> AppPageBody:
    """A page of the registry, each application with where its releases stand (two ledger
    reads each, no cluster read); pass ``nextCursor`` back as ``cursor``."""
    from bluegreen.logic import apps

    records, next_cursor = apps.apps(dependencies.app_registry(), limit, cursor)
    found = apps.releases(records, dependencies.ledger_of)
    return AppPageBody(
        apps=[
            FleetAppBody(
                **dict(app_body(record)),
                release=ReleaseBody(
                    running=found[record.name].running,
                    latest=_latest(found[record.name].latest),
                ),
            )
            for record in records
        ],
        next_cursor=next_cursor,
    )


def _latest(deployment: Deployment | None) -> DeploymentBody | None:
    return None if deployment is None else deployment_body(deployment)


@router.get(
    "/apps/<app>",
    summary="One application: its spec, version, and who changed it when",
    tags=["apps"],
    responses={
        200: answer(AppBody, "The application (ETag: its version)"),
        **NO_APP,
        **INVALID,
        **GATEWAY,
    },
)
def get_app(app: Annotated[str, APP]) -> Response[AppBody]:
    """The application as the registry holds it now."""
    from bluegreen.logic import apps

    return _answer(apps.app(dependencies.app_registry(), app))


@router.put(
    "/apps/<app>",
    summary="Register an application, or replace its spec at the version read",
    tags=["apps"],
    responses={
        200: answer(AppBody, "The spec was replaced (ETag: the new version)"),
        201: answer(
            AppBody,
            "The application was registered (ETag: version 1, or the next "
            "version of a name deleted before)",
        ),
        **BAD_REQUEST,
        **NO_ROUTE,
        **VERSION_CONFLICT,
        **UNSUPPORTED,
        **INVALID,
        **GATEWAY,
    },
)
def put_app(
    app: Annotated[str, APP],
    spec: Annotated[AppSpec, Body(embed=False)],
    if_match: Annotated[str | None, IF_MATCH] = None,
) -> Response[AppBody]:
    """Without If-Match: create (409 if it exists). With it: replace that version."""
    from bluegreen.logic import apps

    editor = _editor()
    stack_app = dependencies.stack_settings().application
    record, created = apps.put_app(
        dependencies.app_registry(), app, spec, editor, version_of(if_match), stack_app
    )
    logger.info(
        "application registered" if created else "application changed",
        extra={"app": app, "version": record.version, "actor": editor.actor},
    )
    return _answer(record, 201 if created else 200)


@router.delete(
    "/apps/<app>",
    summary="Delete an application (refused while a deployment of it runs)",
    tags=["apps"],
    responses={
        200: answer(AppBody, "The application as it was; its ledger history is kept"),
        **NO_APP,
        **VERSION_CONFLICT,
        **INVALID,
        **GATEWAY,
    },
)
def delete_app(
    app: Annotated[str, APP], if_match: Annotated[str | None, IF_MATCH] = None
) -> AppBody:
    """Remove the application from the registry; images, verdicts and deployments stay."""
    from bluegreen.logic import apps

    editor = _editor()
    stack_app = dependencies.stack_settings().application
    record = apps.delete_app(
        dependencies.app_registry(), app, editor, version_of(if_match), stack_app
    )
    logger.info(
        "application deleted", extra={"app": app, "version": record.version, "actor": editor.actor}
    )
    return app_body(record)
