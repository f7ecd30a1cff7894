"""Kubernetes ``Status`` failures: every error the emulator answers is one of these."""

from __future__ import annotations

import json
from typing import Any


class ApiError(Exception):
    """A request the API server refuses; rendered as a ``Status`` object with ``code``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """The ``Status`` body a real API server sends for this failure."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def qualified(plural: str, group: str) -> str:
    """``deployments.apps`` / ``configmaps``: how the server names a resource in messages."""
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    """404 for a missing object."""
    return ApiError(
        404,
        "NotFound",
        f'{qualified(plural, group)} "{name}" not found',
        _details(name, group, plural),
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    """409 for a create whose name is taken."""
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(plural, group)} "{name}" already exists',
        _details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str, why: str | None = None) -> ApiError:
    """409 for a write that carried a stale resourceVersion (optimistic concurrency)."""
    why = why or (
        "the object has been modified; please apply your changes to the latest version "
        "and try again"
    )
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {why}',
        _details(name, group, plural),
    )


class Rendered(str):
    """A value already written the way Go prints it in a field error (JSON of a struct)."""


def _shown(value: object) -> str:
    """A bad value as ``field.Error`` prints it: strings quoted, simple types bare, else JSON."""
    if isinstance(value, Rendered):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class FieldError:
    """One validation failure, as the API server lists it in ``details.causes``."""

    def __init__(self, field: str, kind: str, detail: str = "", value: object = None) -> None:
        self.field = field
        self.kind = kind  # Required | Invalid | Unsupported | Forbidden | Duplicate
        self.detail = detail
        self.value = value

    _REASONS = {
        "Required": ("FieldValueRequired", "Required value"),
        "Invalid": ("FieldValueInvalid", "Invalid value"),
        "Unsupported": ("FieldValueNotSupported", "Unsupported value"),
        "Forbidden": ("FieldValueForbidden", "Forbidden"),
        "Duplicate": ("FieldValueDuplicate", "Duplicate value"),
    }

    def message(self) -> str:
        """``Required value`` / ``Invalid value: "x": why`` as Go's field.Error prints it."""
        _, label = self._REASONS[self.kind]
        text = label
        if self.kind in {"Invalid", "Unsupported", "Duplicate"} and self.value is not None:
            text = f"{label}: {_shown(self.value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def cause(self) -> dict[str, str]:
        """The ``StatusCause`` entry."""
        reason, _ = self._REASONS[self.kind]
        return {"reason": reason, "message": self.message(), "field": self.field}


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    """422 for an object that fails validation; lists every field at fault."""
    qualified_kind = f"{kind}.{group}" if group else kind
    joined = ", ".join(f"{e.field}: {e.message()}" for e in errors)
    if len(errors) > 1:
        joined = f"[{joined}]"
    details = _details(name, group, kind)
    details["causes"] = [e.cause() for e in errors]
    return ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> ApiError:
    """400 for a request the server cannot make sense of."""
    return ApiError(400, "BadRequest", message)
