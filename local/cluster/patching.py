"""The three patch formats of the Kubernetes API: strategic merge, JSON merge and JSON patch.

Pure functions over JSON-shaped values. None of them mutates its inputs: the
API server applies a patch to a stored object and must be able to reject the
result (conflict, invalid object) without the stored copy having changed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["PatchError", "json_patch", "merge_patch", "strategic_merge"]


class PatchError(ValueError):
    """A patch that cannot be applied; the message says which part of it is wrong."""


# Strategic merge
# ---------------
# Kubernetes reads the merge strategy of each list from struct tags of the Go
# types. The emulator serves a handful of kinds, so the tags that matter for
# them are written out here by field name; every list not named is atomic.

_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})

_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    # Status conditions of pods, deployments and jobs are keyed by type upstream.
    "conditions": "type",
}

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ELEMENT_ORDER = "$setElementOrder/"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"
_PATCH_VALUES = frozenset({"replace", "merge", "delete"})

_Path = tuple[str, ...]


def strategic_merge(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to `original` and return the result.

    Maps merge recursively and `null` deletes a key. Lists that Kubernetes merges
    (containers, env, ports, volumes, volumeMounts, imagePullSecrets, ...) are
    merged element by element on their patch merge key; every other list is
    replaced. The directives `$patch` (replace / merge / delete),
    `$retainKeys`, `$setElementOrder/<field>` and
    `$deleteFromPrimitiveList/<field>` are honoured; any other `$` key is
    rejected with `PatchError`.
    """
    if not isinstance(original, Mapping):
        raise PatchError("strategic merge patch: the original object must be a JSON object")
    if not isinstance(patch, Mapping):
        raise PatchError("strategic merge patch: the patch must be a JSON object")
    merged = _merge_map(dict(original), patch, ())
    if merged is None:
        raise PatchError("strategic merge patch: $patch: delete cannot delete the whole object")
    return merged


def _where(path: _Path) -> str:
    return "/" + "/".join(path) if path else "the top level"


def _merge_key(path: _Path) -> str | None:
    field = path[-1]
    if field == "ports":
        # The same field name carries two different keys: a container's ports
        # are keyed by containerPort, a Service's by port.
        in_container = len(path) >= 2 and path[-2] in _CONTAINER_LISTS
        return "containerPort" if in_container else "port"
    return _MERGE_KEYS.get(field)


def _merge_map(
    original: Mapping[str, Any], patch: Mapping[str, Any], path: _Path
) -> dict[str, Any] | None:
    """Merge `patch` into a copy of `original`; None means the map is deleted."""
    directive = patch.get(_PATCH)
    if directive is not None and directive not in _PATCH_VALUES:
        raise PatchError(
            f"strategic merge patch: unknown $patch value {directive!r} at {_where(path)}"
        )
    if directive == "delete":
        return None
    if directive == "replace":
        return _strip_directives(patch, path)

    result: dict[str, Any] = {key: copy.deepcopy(value) for key, value in original.items()}

    retain = patch.get(_RETAIN_KEYS)
    if retain is not None:
        retained = _retained_keys(retain, patch, path)
        result = {key: value for key, value in result.items() if key in retained}

    # Deletions from primitive lists apply to the original value before the
    # patch's own value for that field is merged, as the API server does.
    for key, values in patch.items():
        if key.startswith(_DELETE_FROM_PRIMITIVE_LIST):
            field = key[len(_DELETE_FROM_PRIMITIVE_LIST) :]
            result_value = _delete_from_primitive_list(result.get(field), values, (*path, field))
            if result_value is not None:
                result[field] = result_value

    for key, value in patch.items():
        if key.startswith("$"):
            _check_directive(key, path)
            continue
        field_path = (*path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            current = result.get(key)
            merged = _merge_map(current if isinstance(current, Mapping) else {}, value, field_path)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            current = result.get(key)
            result[key] = _merge_list(
                current if isinstance(current, list) else [], value, field_path
            )
        else:
            result[key] = value

    for key, order in patch.items():
        if key.startswith(_SET_ELEMENT_ORDER):
            field = key[len(_SET_ELEMENT_ORDER) :]
            if field in result:
                result[field] = _set_element_order(result[field], order, (*path, field))
    return result


def _check_directive(key: str, path: _Path) -> None:
    if key in (_PATCH, _RETAIN_KEYS):
        return
    for prefix in (_SET_ELEMENT_ORDER, _DELETE_FROM_PRIMITIVE_LIST):
        if key.startswith(prefix) and len(key) > len(prefix):
            return
    raise PatchError(f"strategic merge patch: unknown directive {key!r} at {_where(path)}")


def _retained_keys(retain: Any, patch: Mapping[str, Any], path: _Path) -> set[str]:
    if not isinstance(retain, list) or not all(isinstance(key, str) for key in retain):
        raise PatchError(
            f"strategic merge patch: $retainKeys at {_where(path)} must be a list of strings"
        )
    retained = set(retain)
    for key in patch:
        if not key.startswith("$") and key not in retained:
            raise PatchError(
                f"strategic merge patch: key {key!r} at {_where(path)} "
                "is not present in $retainKeys"
            )
    return retained


def _delete_from_primitive_list(current: Any, values: Any, path: _Path) -> list[Any] | None:
    if not isinstance(values, list):
        raise PatchError(
            f"strategic merge patch: $deleteFromPrimitiveList for {_where(path)} must be a list"
        )
    if current is None:
        return None
    if not isinstance(current, list):
        raise PatchError(f"strategic merge patch: {_where(path)} is not a list")
    return [item for item in current if not any(_json_equal(item, value) for value in values)]


def _merge_list(original: list[Any], patch: list[Any], path: _Path) -> list[Any]:
    key = _merge_key(path)
    if any(_is_list_directive(item, "replace") for item in patch):
        # `{"$patch": "replace"}` as an element means "the list is exactly the other elements".
        rest = [item for item in patch if not _is_list_directive(item, "replace")]
        return [_given_in_full(item, path) for item in rest]
    if key is None:
        for item in patch:
            if isinstance(item, Mapping) and _PATCH in item:
                raise PatchError(
                    f"strategic merge patch: $patch: {item[_PATCH]} in {_where(path)}, "
                    "a list that is replaced, not merged"
                )
        return [_given_in_full(item, path) for item in patch]

    result: list[Any] = [copy.deepcopy(item) for item in original]
    for index, item in enumerate(patch):
        if not isinstance(item, Mapping):
            raise PatchError(
                f"strategic merge patch: element {index} of {_where(path)} must be an object "
                f"with merge key {key!r}"
            )
        if key not in item:
            raise PatchError(
                f"strategic merge patch: element {index} of {_where(path)} "
                f"does not contain merge key {key!r}"
            )
        directive = item.get(_PATCH)
        if directive is not None and directive not in _PATCH_VALUES:
            raise PatchError(
                f"strategic merge patch: unknown $patch value {directive!r} "
                f"in element {index} of {_where(path)}"
            )
        position = _find(result, key, item[key])
        if directive == "delete":
            # Every element with that key goes: duplicates must not survive a delete.
            result = [
                entry
                for entry in result
                if not (isinstance(entry, Mapping) and _json_equal(entry.get(key), item[key]))
            ]
            continue
        if position is None:
            added = _merge_map({}, item, path)
            if added is not None:
                result.append(added)
            continue
        current = result[position]
        merged = _merge_map(current if isinstance(current, Mapping) else {}, item, path)
        if merged is not None:
            result[position] = merged
    return result


def _is_list_directive(item: Any, directive: str) -> bool:
    """True for an element that is only `{"$patch": directive}`, a directive for the whole list."""
    return isinstance(item, Mapping) and set(item) == {_PATCH} and item[_PATCH] == directive


def _find(items: list[Any], key: str, value: Any) -> int | None:
    for position, entry in enumerate(items):
        if isinstance(entry, Mapping) and key in entry and _json_equal(entry[key], value):
            return position
    return None


def _set_element_order(current: Any, order: Any, path: _Path) -> Any:
    """Reorder `current` so the elements named in `order` appear in that order.

    Elements the order does not name (added by the server or by another writer)
    keep their slots; the named ones fill the remaining slots in the given order.
    """
    if not isinstance(order, list):
        raise PatchError(
            f"strategic merge patch: $setElementOrder for {_where(path)} must be a list"
        )
    if not isinstance(current, list):
        return current
    key = _merge_key(path)

    def identity(item: Any) -> Any:
        if key is None:
            return item
        if not isinstance(item, Mapping) or key not in item:
            raise PatchError(
                f"strategic merge patch: $setElementOrder for {_where(path)} "
                f"must list objects with merge key {key!r}"
            )
        return item[key]

    wanted = [identity(item) for item in order]

    def rank(item: Any) -> int | None:
        value = item.get(key) if key is not None and isinstance(item, Mapping) else item
        for position, name in enumerate(wanted):
            if _json_equal(name, value):
                return position
        return None

    ranked = sorted(
        (item for item in current if rank(item) is not None),
        key=lambda item: rank(item) or 0,
    )
    queue = iter(ranked)
    return [item if rank(item) is None else next(queue) for item in current]


def _given_in_full(value: Any, path: _Path) -> Any:
    """A copy of a value the patch gives whole, so the result never aliases the patch."""
    if isinstance(value, Mapping):
        return _strip_directives(value, path)
    return copy.deepcopy(value)


def _strip_directives(value: Mapping[str, Any], path: _Path) -> dict[str, Any]:
    """Copy a map given in full (replace / new element), dropping directives and nulls."""
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key.startswith("$"):
            _check_directive(key, path)
            continue
        if item is None:
            continue
        if isinstance(item, Mapping):
            result[key] = _strip_directives(item, (*path, key))
        elif isinstance(item, list):
            result[key] = [
                _given_in_full(entry, (*path, key))
                for entry in item
                if not (isinstance(entry, Mapping) and set(entry) == {_PATCH})
            ]
        else:
            result[key] = copy.deepcopy(item)
    return result


# JSON merge patch (RFC 7386)
# ---------------------------


def merge_patch(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply an RFC 7386 JSON merge patch: objects merge, `null` deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        raise PatchError("merge patch: the patch must be a JSON object")
    if not isinstance(original, Mapping):
        raise PatchError("merge patch: the original object must be a JSON object")
    return _merge_patch_object(original, patch)


def _merge_patch_object(original: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    result = {key: copy.deepcopy(value) for key, value in original.items()}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            current = result.get(key)
            result[key] = _merge_patch_object(
                current if isinstance(current, Mapping) else {}, value
            )
        else:
            result[key] = copy.deepcopy(value)
    return result


# JSON patch (RFC 6902)
# ---------------------

_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "add": ("path", "value"),
    "remove": ("path",),
    "replace": ("path", "value"),
    "move": ("from", "path"),
    "copy": ("from", "path"),
    "test": ("path", "value"),
}


class _OperationFailed(Exception):
    """Raised inside one operation; json_patch adds which operation it was."""


def json_patch(original: dict[str, Any], operations: list[Any]) -> dict[str, Any]:
    """Apply an RFC 6902 JSON patch and return the patched copy of `original`.

    Operations run in order on a copy; the first one that fails (including a
    failed `test`) raises `PatchError` naming the operation by its index in the
    list (counting from 0), its op and path, so nothing is half-applied.
    """
    if not isinstance(operations, list):
        raise PatchError("json patch: the patch must be a JSON array of operations")
    if not isinstance(original, Mapping):
        raise PatchError("json patch: the original object must be a JSON object")
    document: Any = copy.deepcopy(dict(original))
    for index, operation in enumerate(operations):
        if not isinstance(operation, Mapping):
            raise PatchError(f"json patch op {index}: must be a JSON object, got {operation!r}")
        op = operation.get("op")
        label = f"json patch op {index} ({op} {operation.get('path', '')})"
        if op not in _REQUIRED_FIELDS:
            raise PatchError(f"json patch op {index}: unknown or missing op {op!r}")
        for field in _REQUIRED_FIELDS[op]:
            if field not in operation:
                raise PatchError(f"{label}: missing {field!r}")
        for field in ("path", "from"):
            if field in operation and not isinstance(operation[field], str):
                raise PatchError(f"{label}: {field!r} must be a string")
        try:
            document = _apply_operation(document, operation)
        except _OperationFailed as failure:
            raise PatchError(f"{label}: {failure}") from None
    if not isinstance(document, dict):
        raise PatchError("json patch: the result must be a JSON object")
    return document


def _apply_operation(document: Any, operation: Mapping[str, Any]) -> Any:
    op = operation["op"]
    path = _parse_pointer(operation["path"])
    if op == "add":
        return _add(document, path, copy.deepcopy(operation["value"]))
    if op == "remove":
        _, document = _remove(document, path)
        return document
    if op == "replace":
        _get(document, path)
        _, document = _remove(document, path)
        return _add(document, path, copy.deepcopy(operation["value"]))
    if op == "test":
        if not _json_equal(_get(document, path), operation["value"]):
            raise _OperationFailed("test failed: value differs")
        return document
    source = _parse_pointer(operation["from"])
    if op == "move":
        if source == path:
            return document
        if path[: len(source)] == source:
            raise _OperationFailed("cannot move a value into one of its own children")
        value, document = _remove(document, source)
        return _add(document, path, value)
    # copy
    return _add(document, path, copy.deepcopy(_get(document, source)))


def _parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise _OperationFailed(f"invalid JSON pointer {pointer!r}: must start with '/'")
    tokens = []
    for raw in pointer[1:].split("/"):
        stripped = raw.replace("~0", "").replace("~1", "")
        if "~" in stripped:
            raise _OperationFailed(f"invalid JSON pointer {pointer!r}: '~' must be escaped as '~0'")
        # ~1 first, then ~0, so that "~01" decodes to "~1" and not to "/".
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _array_index(container: list[Any], segment: str, *, allow_end: bool) -> int:
    if segment == "-" and allow_end:
        return len(container)
    leading_zero = len(segment) > 1 and segment.startswith("0")
    if not (segment.isascii() and segment.isdigit()) or leading_zero:
        raise _OperationFailed(f"invalid array index {segment!r}")
    index = int(segment)
    limit = len(container) if allow_end else len(container) - 1
    if index > limit:
        raise _OperationFailed(f"array index {index} out of range")
    return index


def _get(document: Any, path: list[str]) -> Any:
    current = document
    for token in path:
        if isinstance(current, dict):
            if token not in current:
                raise _OperationFailed("path not found")
            current = current[token]
        elif isinstance(current, list):
            try:
                current = current[_array_index(current, token, allow_end=False)]
            except _OperationFailed:
                raise _OperationFailed("path not found") from None
        else:
            raise _OperationFailed("path not found")
    return current


def _add(document: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _get(document, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(parent, token, allow_end=True), value)
    else:
        raise _OperationFailed("parent of the path is not an object or array")
    return document


def _remove(document: Any, path: list[str]) -> tuple[Any, Any]:
    """Remove the value at `path`; return it and the resulting document."""
    if not path:
        return document, None
    parent = _get(document, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise _OperationFailed("path not found")
        return parent.pop(token), document
    if isinstance(parent, list):
        try:
            index = _array_index(parent, token, allow_end=False)
        except _OperationFailed:
            raise _OperationFailed("path not found") from None
        return parent.pop(index), document
    raise _OperationFailed("path not found")


def _json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON sees it: true is not 1, and 1 equals 1.0."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            _json_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    return type(left) is type(right) and bool(left == right)
