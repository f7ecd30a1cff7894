"""The services API: API Gateway REST (``AWS_IAM``) proxy to the release domain.

Thin by design: Powertools routes and validates the request, a router calls one
domain function with its adapters (from ``dependencies``, built on first use),
and every named error maps to one status with ``{"error": ..., "detail": ...}``.
Neither boto3 nor the Kubernetes client is imported here: a cold start pays for
them only when a request needs them.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from bluegreen.adapters.cluster import CanaryEnvMalformed
from bluegreen.domain.errors import (
    BlueGreenError,
    ClusterConflict,
    ClusterObjectMissing,
    ClusterUnavailable,
    InvalidInput,
    LockHeld,
    NotFound,
    NotPromotable,
    UnknownImage,
)
from bluegreen.logic import history
from bluegreen.observability import logger, metrics, tracer

if __package__:  # imported as functions.services_api.app (tests, the OpenAPI generator)
    from .api import deployments, images, services, timeline
else:  # the Lambda runtime loads this file as the top-level module ``app``
    from api import (  # type: ignore[import-not-found,no-redef]
        deployments,
        images,
        services,
        timeline,
    )


def _json_body(text: str) -> Any:
    """The request body as JSON, parsed once; nesting past Python's limit is malformed JSON.

    ``json.loads`` raises ``RecursionError`` on a body like ``[[[[...]]]]`` nested
    thousands deep; as a ``JSONDecodeError`` Powertools answers it like any other
    malformed body instead of failing the request.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=_json_body)
app.include_router(services.router)
app.include_router(images.router)
app.include_router(deployments.router)
app.include_router(timeline.router)

ErrorAnswer = TypeVar("ErrorAnswer", bound=Callable[..., Response[dict[str, str]]])
# Powertools leaves ``exception_handler`` unannotated; the cast keeps mypy strict
# checking the handlers below instead of treating them as untyped.
exception_handler = cast(
    Callable[[type[Exception]], Callable[[ErrorAnswer], ErrorAnswer]], app.exception_handler
)


def error_response(status: HTTPStatus, error: str, detail: str) -> Response[dict[str, str]]:
    """The one shape of every error answer."""
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"error": error, "detail": detail},
    )


def _rejected(status: HTTPStatus, exc: BlueGreenError) -> Response[dict[str, str]]:
    # A refused request is the caller's business, not an incident: info, not error.
    logger.info("request refused", extra={"error": exc.name, "detail": str(exc)})
    return error_response(status, exc.name, str(exc) or exc.name)


@exception_handler(InvalidInput)
def invalid_input(exc: InvalidInput) -> Response[dict[str, str]]:
    """A field with a bad value (digest, tag, colour, cursor, combination): 400."""
    return _rejected(HTTPStatus.BAD_REQUEST, exc)


@exception_handler(UnknownImage)
def unknown_image(exc: UnknownImage) -> Response[dict[str, str]]:
    """A tag or digest neither the ledger nor the repository knows: 404."""
    return _rejected(HTTPStatus.NOT_FOUND, exc)


@exception_handler(NotFound)
def not_found(exc: NotFound) -> Response[dict[str, str]]:
    """A deployment the ledger and Step Functions do not know: 404."""
    return _rejected(HTTPStatus.NOT_FOUND, exc)


@exception_handler(LockHeld)
def lock_held(exc: LockHeld) -> Response[dict[str, str]]:
    """A deployment holds the application's lock: 409."""
    return _rejected(HTTPStatus.CONFLICT, exc)


@exception_handler(NotPromotable)
def not_promotable(exc: NotPromotable) -> Response[dict[str, str]]:
    """The canary's image cannot be promoted as things stand: 409."""
    return _rejected(HTTPStatus.CONFLICT, exc)


@exception_handler(ClusterConflict)
def cluster_conflict(exc: ClusterConflict) -> Response[dict[str, str]]:
    """Writers kept racing past the adapter's retries; nothing half-done: 409, try again."""
    return _rejected(HTTPStatus.CONFLICT, exc)


@exception_handler(ClusterObjectMissing)
def cluster_object_missing(exc: ClusterObjectMissing) -> Response[dict[str, str]]:
    """The cluster lacks an object the configuration names: the upstream is wrong, 502."""
    logger.error("cluster object missing", extra={"detail": str(exc)})
    return error_response(HTTPStatus.BAD_GATEWAY, exc.name, str(exc))


@exception_handler(ClusterUnavailable)
def cluster_unavailable(exc: ClusterUnavailable) -> Response[dict[str, str]]:
    """The Kubernetes API is unreachable or refused the function's credentials: 503."""
    logger.error("cluster unavailable", extra={"detail": str(exc)})
    return error_response(
        HTTPStatus.SERVICE_UNAVAILABLE, exc.name, str(exc) or "the cluster could not be reached"
    )


@exception_handler(CanaryEnvMalformed)
def canary_env_malformed(exc: CanaryEnvMalformed) -> Response[dict[str, str]]:
    """The ConfigMap's canaryEnv cannot be read as roles: the upstream is wrong, 502."""
    logger.error("canaryEnv malformed", extra={"detail": str(exc)})
    return error_response(HTTPStatus.BAD_GATEWAY, exc.name, str(exc))


@exception_handler(BlueGreenError)
def other_domain_error(exc: BlueGreenError) -> Response[dict[str, str]]:
    """Any other named error of the domain is a refusal with its reason: 409."""
    return _rejected(HTTPStatus.CONFLICT, exc)


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
        else:
            problems.append(f"{where}: {error.get('msg', 'is not valid')}")
    return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, "ValidationError", "; ".join(problems))


@exception_handler(binascii.Error)
def body_not_base64(exc: binascii.Error) -> Response[dict[str, str]]:
    """``isBase64Encoded`` with a body that is not base64: 400."""
    return error_response(
        HTTPStatus.BAD_REQUEST,
        "MalformedBody",
        f"the body is marked base64-encoded but cannot be decoded ({exc})",
    )


@exception_handler(UnicodeDecodeError)
def body_not_text(exc: UnicodeDecodeError) -> Response[dict[str, str]]:
    """A base64 body whose bytes are not UTF-8 text: 400."""
    return error_response(
        HTTPStatus.BAD_REQUEST,
        "MalformedBody",
        f"the body is not UTF-8 text (byte {exc.start} cannot be decoded)",
    )


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

    ``GET /deployments/<id>`` only matches ids of word characters: any other id
    (``/deployments/%E2%9C%93``) is a bad id, a 400, not a missing route.
    """
    event = app.current_event
    deployment_id = event.path.removeprefix(_DEPLOYMENT_PATH)
    one_segment = bool(deployment_id) and "/" not in deployment_id
    if event.http_method == "GET" and event.path.startswith(_DEPLOYMENT_PATH) and one_segment:
        try:
            history.check_deployment_id(deployment_id)
        except InvalidInput as bad_id:
            return _rejected(HTTPStatus.BAD_REQUEST, bad_id)
    return error_response(
        HTTPStatus.NOT_FOUND,
        "RouteNotFound",
        f"no route {event.http_method} {event.path}; the API serves GET /services, "
        "POST /services, GET /images, GET /deployments, GET /deployments/{id}, "
        "GET /deployments/{id}/timeline, POST /rollback, POST /promote",
    )


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
    return app.resolve(_as_json_request(event), context)


_FORM = "application/x-www-form-urlencoded"


def _as_json_request(event: dict[str, Any]) -> dict[str, Any]:
    """Read a body sent as a form (``curl -d`` without a Content-Type) as the JSON it is.

    Every body this API takes is JSON; the original system was driven with plain
    ``curl -d '{"selector": "green"}'``, which labels the body as a form.
    """
    if not event.get("body") or not isinstance(event.get("headers"), dict):
        return event
    headers = {k: v for k, v in event["headers"].items() if k.lower() != "content-type"}
    content_type = next(
        (str(v) for k, v in event["headers"].items() if k.lower() == "content-type"), ""
    )
    if content_type and not content_type.lower().startswith(_FORM):
        return event
    headers["Content-Type"] = content_types.APPLICATION_JSON
    fixed = dict(event, headers=headers)
    if isinstance(event.get("multiValueHeaders"), dict):
        multi = {k: v for k, v in event["multiValueHeaders"].items() if k.lower() != "content-type"}
        fixed["multiValueHeaders"] = dict(multi, **{"Content-Type": [headers["Content-Type"]]})
    return fixed
