"""OpenAPI descriptions of the error answers the routes can give."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from .schemas import ErrorBody, GatewayMessage


def answer(model: Any, description: str) -> OpenAPIResponse:
    """A response whose JSON body is ``model``."""
    return {"description": description, "content": {"application/json": {"model": model}}}


def _error(description: str) -> OpenAPIResponse:
    return answer(ErrorBody, description)


BAD_REQUEST = {400: _error("Malformed JSON, a bad digest, tag, cursor, id or field combination")}
NOT_FOUND = {404: _error("Unknown tag, digest or deployment")}
CONFLICT = {
    409: _error(
        "A deployment holds the lock, the digest was judged failed or is being deployed "
        "already, or the request conflicts with the state"
    )
}
UNSUPPORTED = {415: _error("The body is not sent as application/json")}
INVALID = {422: _error("A field has the wrong type or value, or is not one the API knows")}
CLUSTER = {
    502: _error("The cluster or an AWS service answered with an error"),
    503: _error("The cluster could not be reached or refused the function's credentials"),
}
GATEWAY = {
    403: answer(
        GatewayMessage,
        "API Gateway refused the request: no SigV4 signature (`Missing Authentication "
        "Token`), a wrong one, an unknown access key, or no `execute-api:Invoke` permission",
    ),
    429: answer(GatewayMessage, "API Gateway throttled the request (stage throttling)"),
}
"""What API Gateway itself answers on every route, before the function sees the request."""
