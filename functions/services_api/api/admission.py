"""What a request body must be before any route reads it: one JSON object, sent as JSON.

Every body this API takes is a JSON object. Checking that here, before the
Powertools resolver sees the event, keeps the resolver's own readings out of
the way: it would read a ``multipart/form-data`` body as a form (a JSON body
so labelled became an empty form), fail on one without a boundary, compare
media types case-sensitively, and validate a JSON array as if it were its
first element.

The rules:

- no body (``null`` or empty): admitted as it is; routes whose body is optional
  (``POST /rollback``, ``POST /promote``) take their defaults;
- the media type, compared case-insensitively and without its parameters, is
  ``application/json``, or absent, or ``application/x-www-form-urlencoded``
  (what ``curl -d`` labels any body with: the original system was driven that
  way); a ``charset`` parameter, if any, is UTF-8. Anything else is 415;
- the body is UTF-8 JSON whose top level is an object; else 400.

An admitted event carries ``Content-Type: application/json`` and its body as
text, so the resolver reads it one way only.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

JSON_MEDIA_TYPE = "application/json"
CURL_DEFAULT_MEDIA_TYPE = "application/x-www-form-urlencoded"
READ_AS_JSON = frozenset({JSON_MEDIA_TYPE, CURL_DEFAULT_MEDIA_TYPE})
_UTF8 = frozenset({"utf-8", "utf8"})
BODY_METHODS = frozenset({"POST", "PUT"})
"""The methods whose routes read a body (``PUT /apps/{app}`` among them)."""


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused before routing: the status and the error body."""

    status: HTTPStatus
    error: str
    detail: str


def parse_json(text: str) -> Any:
    """``json.loads``, with nesting past Python's limit reported as malformed JSON.

    ``json.loads`` raises ``RecursionError`` on a body like ``[[[[...]]]]`` nested
    thousands deep; as a ``JSONDecodeError`` it is answered like any other
    malformed body instead of failing the request.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def media_type(value: str) -> tuple[str, dict[str, str]]:
    """``"Application/JSON; Charset=UTF-8"`` -> ``("application/json", {"charset": "UTF-8"})``."""
    kind, *parameters = value.split(";")
    found: dict[str, str] = {}
    for parameter in parameters:
        name, _, text = parameter.partition("=")
        if name.strip():
            found[name.strip().lower()] = text.strip().strip('"')
    return kind.strip().lower(), found


def _header(headers: object, name: str) -> str | None:
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name:
            if isinstance(value, list):
                return str(value[-1]) if value else None
            return None if value is None else str(value)
    return None


def _content_type(event: Mapping[str, Any]) -> str | None:
    found = _header(event.get("headers"), "content-type")
    return found if found is not None else _header(event.get("multiValueHeaders"), "content-type")


def _text_of(event: Mapping[str, Any]) -> str | Refusal:
    body = event.get("body")
    if not isinstance(body, str):
        return Refusal(HTTPStatus.BAD_REQUEST, "MalformedBody", "the body is not text")
    if not event.get("isBase64Encoded"):
        return body
    try:
        raw = base64.b64decode(body, validate=True)
    except ValueError as exc:  # binascii.Error, or text that is not ASCII
        return Refusal(
            HTTPStatus.BAD_REQUEST,
            "MalformedBody",
            f"the body is marked base64-encoded but cannot be decoded ({exc})",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Refusal(
            HTTPStatus.BAD_REQUEST,
            "MalformedBody",
            f"the body is not UTF-8 text (byte {exc.start} cannot be decoded)",
        )


def _unsupported(label: str) -> Refusal:
    return Refusal(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedContentType",
        f"the body is sent as {label!r}: send it as application/json (one JSON object)",
    )


def admit(event: dict[str, Any]) -> dict[str, Any] | Refusal:
    """The event as the resolver should read it, or why it is refused.

    Events without a body, or of a method that reads none, pass unchanged but
    for a ``Content-Type`` that no longer applies.
    """
    body = event.get("body")
    has_body = body is not None and body != ""
    if str(event.get("httpMethod", "")).upper() not in BODY_METHODS:
        return event
    if not has_body:
        return _with_json_type(event, body=None)
    label = _content_type(event)
    if label is not None and label.strip():
        kind, parameters = media_type(label)
        if kind not in READ_AS_JSON:
            return _unsupported(label)
        charset = parameters.get("charset")
        if charset is not None and charset.lower() not in _UTF8:
            return _unsupported(label)
    text = _text_of(event)
    if isinstance(text, Refusal):
        return text
    try:
        parsed = parse_json(text)
    except json.JSONDecodeError as exc:
        return Refusal(
            HTTPStatus.BAD_REQUEST, "MalformedJson", f"the body is not valid JSON ({exc.msg})"
        )
    if not isinstance(parsed, dict):
        got = "an array" if isinstance(parsed, list) else f"JSON {json.dumps(parsed)[:40]}"
        return Refusal(
            HTTPStatus.BAD_REQUEST,
            "MalformedBody",
            f"the body must be one JSON object ({{...}}), got {got}",
        )
    return _with_json_type(event, body=text)


def _with_json_type(event: dict[str, Any], *, body: str | None) -> dict[str, Any]:
    """``event`` with its body as text and ``Content-Type: application/json`` (or none)."""
    fixed = dict(event, body=body, isBase64Encoded=False)
    for key in ("headers", "multiValueHeaders"):
        headers = event.get(key)
        if not isinstance(headers, Mapping):
            continue
        kept = {k: v for k, v in headers.items() if str(k).lower() != "content-type"}
        if body is not None:
            kept["Content-Type"] = JSON_MEDIA_TYPE if key == "headers" else [JSON_MEDIA_TYPE]
        fixed[key] = kept
    return fixed
