"""How the API answers a named error of the domain: one table, most specific class first.

A refusal (4xx) is the caller's business, not an incident: logged at info. A
failure of what the API stands on (the cluster, a switch that could not
complete) is a 5xx, logged at warning or error so that an operator sees it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response, content_types

from bluegreen.adapters.wiring import current_scope
from bluegreen.domain.canary_env import CanaryEnvMalformed
from bluegreen.domain.errors import (
    AppInUse,
    AppManagedByStack,
    AppNotFound,
    AppVersionConflict,
    BlueGreenError,
    ClusterConflict,
    ClusterObjectMissing,
    ClusterUnavailable,
    InvalidInput,
    LockHeld,
    NotFound,
    NotPromotable,
    RolesDisagree,
    SwitchIncomplete,
    SwitchRestored,
    TrafficNotConfirmed,
    UnknownImage,
)
from bluegreen.observability import logger


@dataclass(frozen=True)
class ErrorAnswer:
    """The status an error is answered with, and the level it is logged at."""

    status: HTTPStatus
    level: int = logging.INFO


ERROR_ANSWERS: dict[type[BlueGreenError], ErrorAnswer] = {
    # A field with a bad value (digest, tag, colour, cursor, combination, a setting).
    InvalidInput: ErrorAnswer(HTTPStatus.BAD_REQUEST),
    # A tag or digest neither the ledger nor the repository knows.
    UnknownImage: ErrorAnswer(HTTPStatus.NOT_FOUND),
    # A deployment the ledger and Step Functions do not know.
    NotFound: ErrorAnswer(HTTPStatus.NOT_FOUND),
    # The registry holds no application of that name.
    AppNotFound: ErrorAnswer(HTTPStatus.NOT_FOUND),
    # An application's spec is not at the version its editor read: nothing written.
    AppVersionConflict: ErrorAnswer(HTTPStatus.CONFLICT),
    # The default application belongs to the stack's parameters.
    AppManagedByStack: ErrorAnswer(HTTPStatus.CONFLICT),
    # A deployment of the application runs: it cannot be deleted now.
    AppInUse: ErrorAnswer(HTTPStatus.CONFLICT),
    # A deployment holds the application's lock.
    LockHeld: ErrorAnswer(HTTPStatus.CONFLICT),
    # The canary's image cannot be promoted as things stand.
    NotPromotable: ErrorAnswer(HTTPStatus.CONFLICT),
    # canaryEnv and the Services disagree: no deploy, rollback or promotion may start.
    RolesDisagree: ErrorAnswer(HTTPStatus.CONFLICT),
    # Writers kept racing past the adapter's retries; nothing half-done: try again.
    ClusterConflict: ErrorAnswer(HTTPStatus.CONFLICT),
    # A switch could not complete and the previous roles were put back: try again.
    SwitchRestored: ErrorAnswer(HTTPStatus.SERVICE_UNAVAILABLE, logging.WARNING),
    TrafficNotConfirmed: ErrorAnswer(HTTPStatus.GATEWAY_TIMEOUT, logging.WARNING),
    # A switch could neither complete nor be put back; the detail names the state left.
    SwitchIncomplete: ErrorAnswer(HTTPStatus.SERVICE_UNAVAILABLE, logging.ERROR),
    # The cluster lacks an object the configuration names (or the router object is
    # unusable): the upstream is wrong.
    ClusterObjectMissing: ErrorAnswer(HTTPStatus.BAD_GATEWAY, logging.ERROR),
    # The ConfigMap's canaryEnv cannot be read as roles: the upstream is wrong.
    CanaryEnvMalformed: ErrorAnswer(HTTPStatus.BAD_GATEWAY, logging.ERROR),
    # The Kubernetes API is unreachable or refused the function's credentials.
    ClusterUnavailable: ErrorAnswer(HTTPStatus.SERVICE_UNAVAILABLE, logging.ERROR),
    # Any other named error of the domain is a refusal with its reason.
    BlueGreenError: ErrorAnswer(HTTPStatus.CONFLICT),
}
"""Each named error's answer; an error takes the entry of its most specific class listed."""

_EMPTY_DETAIL = {ClusterUnavailable: "the cluster could not be reached"}


def error_response(status: HTTPStatus, error: str, detail: str) -> Response[dict[str, str]]:
    """The one shape of every error answer."""
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"error": error, "detail": detail},
    )


def answer_error(exc: BlueGreenError) -> Response[dict[str, str]]:
    """The answer to ``exc`` by ``ERROR_ANSWERS``, logged at its level with its name."""
    cls = next(c for c in type(exc).__mro__ if c in ERROR_ANSWERS)
    answer = ERROR_ANSWERS[cls]
    detail = str(exc) or next(
        (text for kind, text in _EMPTY_DETAIL.items() if isinstance(exc, kind)), exc.name
    )
    scope = current_scope()
    if isinstance(exc, ClusterObjectMissing) and scope is not None:
        # The stack's own objects missing is the stack's fault (502); an application of the
        # registry whose namespace lacks them is that application not set up yet.
        app = scope.settings.application
        answer = ErrorAnswer(HTTPStatus.CONFLICT)
        detail = (
            detail.replace("the BG_* settings of the stack", f"application {app}'s spec")
            + f"; `bluegreen manifests {app} --with-objects` prints what a new namespace needs"
        )
    what = (
        "request refused" if answer.status < HTTPStatus.INTERNAL_SERVER_ERROR else "request failed"
    )
    log = {logging.WARNING: logger.warning, logging.ERROR: logger.error}.get(
        answer.level, logger.info
    )
    log(what, extra={"error": exc.name, "detail": detail})
    return error_response(answer.status, exc.name, detail)
