"""The services API: API Gateway REST (``AWS_IAM``) proxy to the release domain.

Thin by design: Powertools routes and validates the request, a router calls one
domain function with its adapters (from ``dependencies``, built on first use),
and every named error maps to one status with ``{"error": ..., "detail": ...}``.
Neither boto3 nor the Kubernetes client is imported here: a cold start pays for
them only when a request needs them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from http import HTTPStatus
from typing import Any, TypeVar, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from bluegreen.domain.apps import APP_NAME_PATTERN, APP_NAME_RULE, PATTERN_RULES
from bluegreen.domain.errors import BlueGreenError
from bluegreen.observability import logger, metrics, tracer

if __package__:  # imported as functions.services_api.app (tests, the OpenAPI generator)
    from .api import admission, apps, dependencies, deployments, fleet, images, services, timeline
    from .api.errors import answer_error, error_response
    from .api.schemas import CURSOR_PATTERN, DEPLOYMENT_ID_PATTERN, TRIMMED, TRIMMED_RULE
else:  # the Lambda runtime loads this file as the top-level module ``app``
    from api import (  # type: ignore[import-not-found,no-redef]
        admission,
        apps,
        dependencies,
        deployments,
        fleet,
        images,
        services,
        timeline,
    )
    from api.errors import (  # type: ignore[import-not-found,no-redef]
        answer_error,
        error_response,
    )
    from api.schemas import (  # type: ignore[import-not-found,no-redef]
        CURSOR_PATTERN,
        DEPLOYMENT_ID_PATTERN,
        TRIMMED,
        TRIMMED_RULE,
    )


app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=admission.parse_json)
app.include_router(services.router)
app.include_router(images.router)
app.include_router(deployments.router)
app.include_router(timeline.router)
app.include_router(apps.router)


_requested_app: ContextVar[str | None] = ContextVar("requested_app", default=None)
"""The application an ``/apps/{app}/...`` request names (``fleet.split``); None otherwise."""


def environment_checked(
    resolver: APIGatewayRestResolver, next_middleware: NextMiddleware
) -> Response[Any]:
    """The function's environment model, read and validated before a route runs, and the
    request scoped to the application it names.

    Inside the resolver rather than around the handler: a bad variable, a name that is
    no application's or an application the registry does not hold is an answer
    (``InvalidInput``, 422, ``AppNotFound``), like every other refusal.
    """
    dependencies.environment()
    requested = _requested_app.get()
    if requested is not None and not re.fullmatch(APP_NAME_PATTERN, requested):
        return error_response(
            HTTPStatus.UNPROCESSABLE_ENTITY, "ValidationError", f"path.app: {APP_NAME_RULE}"
        )
    with dependencies.acting_for(requested):
        try:
            return next_middleware(resolver)
        except BlueGreenError as exc:
            # Answered inside the scope: the answer may depend on whose request it was.
            return answer_error(exc)


app.use(middlewares=[environment_checked])

Handled = TypeVar("Handled", bound=Callable[..., Response[dict[str, str]]])
# Powertools leaves ``exception_handler`` unannotated; the cast keeps mypy strict
# checking the handlers below instead of treating them as untyped.
exception_handler = cast(
    Callable[[type[Exception]], Callable[[Handled], Handled]], app.exception_handler
)


@exception_handler(BlueGreenError)
def domain_error(exc: BlueGreenError) -> Response[dict[str, str]]:
    """Every named error of the domain: its status and log level from ``ERROR_ANSWERS``."""
    return answer_error(exc)


_PATTERN_RULES = {
    TRIMMED: TRIMMED_RULE,
    CURSOR_PATTERN: "is not a cursor this API handed out; pass nextCursor from a previous page",
    DEPLOYMENT_ID_PATTERN: "is not a deployment id: letters, digits, '-' and '_' only",
    **PATTERN_RULES,
}
"""What a refusal says for each pattern the request models use."""


def _where(loc: Any) -> str:
    parts = [str(part) for part in loc if part != "body"] if isinstance(loc, tuple) else []
    return ".".join(parts) or "body"


@exception_handler(RequestValidationError)
def request_invalid(exc: RequestValidationError) -> Response[dict[str, str]]:
    """Powertools' validation: malformed JSON is 400, a wrong field or type is 422."""
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        reason = next(
            (e.get("ctx", {}).get("error") for e in errors if e.get("type") == "json_invalid"),
            "",
        )
        detail = f"the body is not valid JSON ({reason})" if reason else "the body is not JSON"
        return error_response(HTTPStatus.BAD_REQUEST, "MalformedJson", detail)
    problems = []
    for error in errors:
        where = _where(error.get("loc", ()))
        if error.get("type") == "extra_forbidden":
            problems.append(f"{where}: is not a field this request accepts")
        elif error.get("type") == "missing" and where == "body":
            problems.append("body: a JSON object is required")
        elif error.get("type") == "string_pattern_mismatch":
            pattern = error.get("ctx", {}).get("pattern")
            problems.append(f"{where}: {_PATTERN_RULES.get(pattern, error.get('msg'))}")
        else:
            message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
    return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, "ValidationError", "; ".join(problems))


@exception_handler(RequestUnsupportedContentType)
def unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[dict[str, str]]:
    """Only JSON bodies are accepted: 415."""
    return error_response(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedContentType",
        "send the body as application/json",
    )


@exception_handler(NotFoundError)
def route_not_found(exc: NotFoundError) -> Response[dict[str, str]]:
    """No route for this method and path: 404 listing what exists.

    ``GET /deployments/<id>`` only matches ids of the characters a URL path
    segment keeps: any other id (``/deployments/%E2%9C%93``) is a bad id, the
    same 422 as an id the route matches but the schema's pattern refuses.
    """
    event = app.current_event
    deployment_id = event.path.removeprefix(_DEPLOYMENT_PATH)
    one_segment = bool(deployment_id) and "/" not in deployment_id
    bad_id = one_segment and not re.fullmatch(DEPLOYMENT_ID_PATTERN, deployment_id)
    if event.http_method == "GET" and event.path.startswith(_DEPLOYMENT_PATH) and bad_id:
        return error_response(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "ValidationError",
            f"path.id: {_PATTERN_RULES[DEPLOYMENT_ID_PATTERN]}",
        )
    return error_response(
        HTTPStatus.NOT_FOUND,
        "RouteNotFound",
        f"no route {event.http_method} {event.path}; the API serves {', '.join(served())}",
    )


@lru_cache(maxsize=1)
def served() -> tuple[str, ...]:
    """Every route the resolver has, as ``METHOD /path/{parameter}``, by path then method.

    Read from the OpenAPI document the resolver generates from its own routes (the
    same one ``docs/openapi.json`` is), so the answer never drifts from what is served.
    Built on the first unknown route only, and kept.
    """
    paths = fleet.fleet_paths(app.get_openapi_schema().paths or {}, {})
    return tuple(
        f"{method.upper()} {path}"
        for path, item in sorted(paths.items())
        for method in _METHODS
        if (item.get(method) if isinstance(item, dict) else getattr(item, method, None)) is not None
    )


_METHODS = ("delete", "get", "head", "options", "patch", "post", "put")


_DEPLOYMENT_PATH = "/deployments/"


@exception_handler(Exception)
def unexpected(exc: Exception) -> Response[dict[str, str]]:
    """AWS service failures are 502; anything else is a bug of this code: logged, 500."""
    if type(exc).__module__.startswith(("botocore", "boto3", "urllib3")):
        logger.error("AWS service error", extra={"error": type(exc).__name__})
        return error_response(
            HTTPStatus.BAD_GATEWAY, "AwsServiceError", f"{type(exc).__name__}: {exc}"
        )
    logger.exception("unhandled error")
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "InternalError",
        "the request failed unexpectedly; it has been logged with its correlation id",
    )


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway REST proxy entry point."""
    admitted = admission.admit(event)
    if isinstance(admitted, admission.Refusal):
        logger.info("request refused", extra={"error": admitted.error, "detail": admitted.detail})
        return {
            "statusCode": admitted.status.value,
            "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
            "body": json.dumps({"error": admitted.error, "detail": admitted.detail}),
            "isBase64Encoded": False,
        }
    routed, requested = fleet.split(admitted)
    token = _requested_app.set(requested)
    try:
        return app.resolve(routed, context)
    finally:
        _requested_app.reset(token)
