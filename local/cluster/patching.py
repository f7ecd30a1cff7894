"""The three patch formats of the Kubernetes API: strategic merge, JSON merge and JSON patch.

Each follows the code the API server runs, including its quirks, so that a
patch does on the emulator what it does on a real cluster:

- strategic merge: ``k8s.io/apimachinery/pkg/util/strategicpatch`` (``mergeMap``,
  ``mergeSlice``, ``normalizeElementOrder``), with the patch strategies of the
  fields of the kinds the emulator serves written out below;
- JSON merge patch: ``evanphx/json-patch`` v4's ``MergePatch`` (RFC 7386);
- JSON patch: ``evanphx/json-patch`` v4's ``Patch.Apply`` (RFC 6902, plus its
  leniencies: a ``replace`` of a missing key adds it, ``add`` without a value
  adds null, indices are parsed like Go's ``strconv.Atoi`` and may be negative,
  ``test`` compares numbers by their JSON text).

None of them mutates its inputs: the API server applies a patch to a stored
object and must be able to reject the result (conflict, invalid object)
without the stored copy having changed. A patch that cannot be applied raises
``PatchError`` carrying the HTTP status and message the API server answers.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["PatchError", "go_value", "json_patch", "merge_patch", "strategic_merge"]

UNPROCESSABLE = "the server rejected our request due to an error in our request"
"""The message of the API server's 422 for a patch that does not apply (the cause is not sent)."""


class PatchError(ValueError):
    """A patch the API server refuses: its HTTP ``status`` (400, 422 or 500) and message."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def go_value(value: Any) -> str:
    """``value`` as Go's ``fmt`` prints a decoded JSON value with ``%v``.

    Maps print as ``map[k:v ...]`` with sorted keys, lists as ``[a b]``, strings
    bare, numbers as float64 (``80``, ``1.5``, ``1e+21``), null as ``<nil>``.
    """
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_float(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_value(item) for item in value) + "]"
    return str(value)


def _go_float(number: float) -> str:
    """Go's ``strconv.FormatFloat(f, 'g', -1, 64)``: shortest form, exponent from 1e21."""
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number == int(number) and abs(number) < 1e21:
        return str(int(number))
    text = repr(number)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        digits = exponent.lstrip("+-").lstrip("0").rjust(2, "0")
        return f"{mantissa}e{sign}{digits}"
    return text


# Strategic merge
# ---------------
# The API server reads each field's patch strategy and merge key from struct
# tags of the Go types. The emulator serves a handful of kinds, so the tags
# that matter for them are written out here by field name; every list not
# named is atomic (replaced by the patch's).

_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "ownerReferences": "uid",
    # Status conditions of pods, deployments, jobs and nodes; a node's addresses.
    "conditions": "type",
    "addresses": "type",
}
_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_MERGED_PRIMITIVE_LISTS = frozenset({"finalizers"})
"""Lists of scalars with patch strategy merge: the union, deduplicated."""

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ELEMENT_ORDER = "$setElementOrder"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"

_Path = tuple[str, ...]


def _strategy(path: _Path) -> tuple[bool, str]:
    """(whether the list at ``path`` is merged, its merge key or "" for scalars)."""
    field = path[-1]
    if field == "ports":
        # The same field name carries two different keys: a container's ports
        # are keyed by containerPort, a Service's by port.
        in_container = len(path) >= 2 and path[-2] in _CONTAINER_LISTS
        return True, "containerPort" if in_container else "port"
    if field in _MERGE_KEYS:
        return True, _MERGE_KEYS[field]
    if field == "finalizers" and len(path) >= 2 and path[-2] == "metadata":
        return True, ""
    return False, ""


def strategic_merge(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a strategic merge patch to ``original`` and return the result.

    Maps merge recursively and ``null`` deletes a key. Lists that Kubernetes
    merges (containers, env, ports, volumes, volumeMounts, imagePullSecrets,
    hostAliases, finalizers, ...) are merged element by element on their merge
    key, the patch's elements first and the others kept in their old order
    around them; every other list is replaced. The directives ``$patch``
    (replace / delete), ``$retainKeys``, ``$setElementOrder/<field>`` and
    ``$deleteFromPrimitiveList/<field>`` are honoured. Keys starting with ``$``
    that are left over are dropped, as decoding into the Go type drops them.
    """
    if patch is None:
        return copy.deepcopy(original)
    if not isinstance(patch, Mapping):
        raise PatchError(
            f"json: cannot unmarshal {_json_kind(patch)} into Go value of type "
            "map[string]interface {}",
            400,
        )
    merged = _merge_map(copy.deepcopy(dict(original)), copy.deepcopy(dict(patch)), ())
    cleaned = _drop_directive_keys(merged)
    assert isinstance(cleaned, dict)
    return cleaned


def _json_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "null"
    return "number"


def _merge_map(original: dict[str, Any], patch: dict[str, Any], path: _Path) -> dict[str, Any]:
    """``mergeMap``: merge ``patch`` into ``original`` (both owned, both changed)."""
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            del patch[_DIRECTIVE]
            return patch
        if directive == "delete":
            return {}
        raise PatchError(_bad_patch_type(directive, patch), 500)
    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, path)

    # $deleteFromPrimitiveList first, so that a patch naming a value both to keep
    # and to delete ends the same way every time (Go visits keys in random order).
    keys = sorted(patch, key=lambda k: not k.startswith(_DELETE_FROM_PRIMITIVE_LIST + "/"))
    for key in keys:
        value = patch[key]
        deleting = False
        field = key
        if key.startswith(_DELETE_FROM_PRIMITIVE_LIST):
            field = _directive_field(key, _DELETE_FROM_PRIMITIVE_LIST, PRIMITIVE_LIST_FORMAT)
            deleting = True
        if value is None:
            original.pop(field, None)
            continue
        if field not in original:
            if not deleting:
                _discard_nulls(value)
                kept, keep = _remove_directives(value)
                if keep:
                    original[field] = kept
            continue
        current = original[field]
        if _json_type(current) != _json_type(value):
            if not deleting:
                _discard_nulls(value)
                kept, keep = _remove_directives(value)
                if keep:
                    original[field] = kept
                else:
                    del original[field]
            continue
        if isinstance(current, dict):
            original[field] = _merge_map(current, value, (*path, field))
        elif isinstance(current, list):
            merged, key_name = _strategy((*path, field))
            if merged or deleting:
                original[field] = _merge_slice(
                    current, value, (*path, field), key_name, deleting=deleting
                )
            else:
                original[field] = value
        else:
            kept, keep = _remove_directives(value)
            if keep:
                original[field] = kept
            else:
                del original[field]
    return original


PRIMITIVE_LIST_FORMAT = "invalid patch format of primitive list"
SET_ELEMENT_ORDER_FORMAT = "invalid patch format of setElementOrder list"
RETAIN_KEYS_FORMAT = "invalid patch format of retainKeys"


def _directive_field(key: str, prefix: str, error: str) -> str:
    head, _, field = key.partition("/")
    if head != prefix or not key.count("/"):
        raise PatchError(error, 400)
    return field


def _bad_patch_type(directive: Any, patch: Mapping[str, Any]) -> str:
    return f"unknown patch type: {go_value(directive)} in map: {go_value(patch)}"


def _no_merge_key(item: Mapping[str, Any], key: str) -> str:
    return f"map: {go_value(item)} does not contain declared merge key: {key}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def _discard_nulls(value: Any) -> None:
    """``discardNullValuesFromPatch``: drop every null-valued key, at any depth."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for item in value.values():
            _discard_nulls(item)
    elif isinstance(value, list):
        for item in value:
            _discard_nulls(item)


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """``removeDirectives``: a map carrying ``$patch`` is dropped, at any depth."""
    if isinstance(value, dict):
        if _DIRECTIVE in value:
            return None, False
        for key in list(value):
            kept, keep = _remove_directives(value[key])
            if keep:
                value[key] = kept
            else:
                del value[key]
        return value, True
    if isinstance(value, list):
        result = []
        for item in value:
            kept, keep = _remove_directives(item)
            if keep:
                result.append(kept)
        return result, True
    return value, True


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list):
        raise PatchError(RETAIN_KEYS_FORMAT, 400)
    retained = [r for r in retain]
    for key, value in patch.items():
        if value is None or key.startswith(
            (_DELETE_FROM_PRIMITIVE_LIST + "/", _SET_ELEMENT_ORDER + "/")
        ):
            continue
        if key not in retained:
            raise PatchError(RETAIN_KEYS_FORMAT, 400)
    for key in list(original):
        if key not in retained:
            del original[key]


def _merge_ordered_lists(original: dict[str, Any], patch: dict[str, Any], path: _Path) -> None:
    """``mergePatchIntoOriginal``: each ``$setElementOrder/<field>`` with its field."""
    for key in [k for k in patch if k.startswith(_SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise PatchError(f"expected a []interface {{}}, but received a {_go_type(order)}", 500)
        field = _directive_field(key, _SET_ELEMENT_ORDER, SET_ELEMENT_ORDER_FORMAT)
        found_original = field in original
        found_patch = field in patch
        original_list = original.get(field)
        patch_list = patch.get(field)
        if found_original and not isinstance(original_list, list):
            raise PatchError(
                f"expected a []interface {{}}, but received a {_go_type(original_list)}", 500
            )
        if found_patch and not isinstance(patch_list, list):
            raise PatchError(
                f"expected a []interface {{}}, but received a {_go_type(patch_list)}", 500
            )
        merged_strategy, merge_key = _strategy((*path, field))
        _check_order(patch_list if found_patch else None, order, merge_key)
        if found_original and not found_patch:
            merged = list(original_list or [])
        elif found_patch and not found_original:
            merged = _remove_directives(patch_list)[0]
        elif found_original and found_patch:
            assert isinstance(original_list, list)
            assert isinstance(patch_list, list)
            if merged_strategy:
                merged = _merge_slice(
                    list(original_list), patch_list, (*path, field), merge_key, deleting=False
                )
            else:
                merged = patch_list
        else:
            continue
        if merge_key:
            inside, server_only = _partition_maps(merged, order, merge_key)
        else:
            inside, server_only = _partition_primitives(merged, order)
        kind_is_map = _element_kind_is_map(original_list or [], patch_list or [])
        original[field] = _normalize_order(
            inside, server_only, order, list(original_list or []), merge_key, kind_is_map
        )
        patch.pop(field, None)


def _go_type(value: Any) -> str:
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "%!s(<nil>)"
    return "float64"


def _check_order(patch_list: list[Any] | None, order: list[Any], key: str) -> None:
    """``validatePatchWithSetOrderList``: the patch's elements appear in the order's order."""
    if not order or not patch_list:
        return
    kept = [item for item in patch_list if not _is_delete(item)] if key else list(patch_list)
    p = o = 0
    while p < len(kept) and o < len(order):
        if isinstance(kept[p], Mapping) and _DIRECTIVE in kept[p]:
            p += 1
            continue
        if _merge_key_equal(kept[p], order[o], key):
            p += 1
        o += 1
    if p < len(kept) and o >= len(order):
        raise PatchError(
            f"The order in patch list:\n{go_value(patch_list)}\n doesn't match "
            f"{_SET_ELEMENT_ORDER} list:\n{go_value(order)}\n",
            500,
        )


def _is_delete(item: Any) -> bool:
    if not isinstance(item, Mapping):
        raise PatchError(
            f"expected a map[string]interface {{}}, but received a {_go_type(item)}", 500
        )
    return item.get(_DIRECTIVE) == "delete"


def _merge_key_equal(left: Any, right: Any, key: str) -> bool:
    if not key:
        return bool(_same_scalar(left, right))
    for item in (left, right):
        if not isinstance(item, Mapping):
            raise PatchError(
                f"expected a map[string]interface {{}}, but received a {_go_type(item)}", 500
            )
        if key not in item:
            raise PatchError(_no_merge_key(item, key), 500)
    return bool(_same_scalar(left[key], right[key]))


def _same_scalar(left: Any, right: Any) -> bool:
    """Go's ``==`` on two decoded JSON scalars (a map or list never equals anything)."""
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return False
    return _json_type(left) == _json_type(right) and left == right


def _element_kind_is_map(*lists: list[Any]) -> bool:
    """``sliceElementType``: whether the elements are maps; they must all be of one type."""
    kind: str | None = None
    for items in lists:
        for item in items:
            current = "map" if isinstance(item, Mapping) else _json_type(item)
            if isinstance(item, list):
                raise PatchError("lists of lists are not supported", 422)
            if kind is None:
                kind = current
            elif kind != current:
                raise PatchError(
                    "list element types are not identical: "
                    + go_value([list(items) for items in lists]),
                    500,
                )
    if kind is None:
        raise PatchError("no elements in any of the given slices", 500)
    return kind == "map"


def _merge_slice(
    original: list[Any], patch: list[Any], path: _Path, key: str, *, deleting: bool
) -> list[Any]:
    """``mergeSlice``: merge two lists of one field, then put them in order."""
    if not original and not patch:
        return original
    is_map = _element_kind_is_map(original, patch)
    if not is_map:
        if deleting:
            return [item for item in original if not any(_same_scalar(item, d) for d in patch)]
        merged = _deduplicate_scalars(original + patch)
    else:
        if not key:
            raise PatchError(f"cannot merge lists without merge key for {path[-1]}", 500)
        original, patch = _special_elements(original, patch, key)
        merged = _merge_without_special_elements(original, patch, path, key)
    if key:
        inside, server_only = _partition_maps(merged, patch, key)
    else:
        inside, server_only = _partition_primitives(merged, patch)
    return _normalize_order(inside, server_only, patch, original, key, is_map)


def _deduplicate_scalars(items: list[Any]) -> list[Any]:
    """Go's ``deduplicateScalars``, which fills a duplicate's place with the last element."""
    items = list(items)
    length = len(items) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if _same_scalar(items[i], items[j]):
                items[j] = items[length]
                items = items[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return items


def _special_elements(
    original: list[Any], patch: list[Any], key: str
) -> tuple[list[Any], list[Any]]:
    """``mergeSliceWithSpecialElements``: apply elements carrying ``$patch``."""
    rest: list[Any] = []
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            rest.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            if key not in item:
                raise PatchError(_no_merge_key(item, key), 500)
            original = [
                entry
                for entry in original
                if not (isinstance(entry, Mapping) and _same_scalar(entry.get(key), item[key]))
            ]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch", 500)
        else:
            raise PatchError(_bad_patch_type(directive, item), 500)
    if replace:
        return rest, []
    return original, rest


def _merge_without_special_elements(
    original: list[Any], patch: list[Any], path: _Path, key: str
) -> list[Any]:
    """``mergeSliceWithoutSpecialElements``: merge by key, append what is new."""
    result = list(original)
    for item in patch:
        if key not in item:
            raise PatchError(_no_merge_key(item, key), 500)
        position = next(
            (
                i
                for i, entry in enumerate(result)
                if isinstance(entry, Mapping)
                and key in entry
                and _same_scalar(entry[key], item[key])
            ),
            None,
        )
        if position is None:
            result.append(item)
        else:
            result[position] = _merge_map(result[position], item, path)
    return result


def _partition_maps(merged: list[Any], by: list[Any], key: str) -> tuple[list[Any], list[Any]]:
    inside: list[Any] = []
    server_only: list[Any] = []
    for item in merged:
        if not isinstance(item, Mapping):
            raise PatchError(
                f"expected a map[string]interface {{}}, but received a {_go_type(item)}", 500
            )
        if key not in item:
            raise PatchError(_no_merge_key(item, key), 500)
        found = any(
            isinstance(other, Mapping) and key in other and _same_scalar(other[key], item[key])
            for other in by
        )
        (inside if found else server_only).append(item)
    return inside, server_only


def _partition_primitives(merged: list[Any], by: list[Any]) -> tuple[list[Any], list[Any]]:
    inside = [item for item in merged if any(_same_scalar(item, other) for other in by)]
    server_only = [item for item in merged if not any(_same_scalar(item, o) for o in by)]
    return inside, server_only


def _index(items: list[Any], value: Any, key: str, is_map: bool) -> int:
    def of(item: Any) -> Any:
        if is_map:
            return item.get(key) if isinstance(item, Mapping) else None
        return item

    wanted = of(value)
    for position, item in enumerate(items):
        if _same_scalar(of(item), wanted) or (of(item) is None and wanted is None):
            return position
    return -1


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    key: str,
    is_map: bool,
) -> list[Any]:
    """``normalizeElementOrder``: the patch's items in the patch's order, the server's own
    items in their old order, the two interleaved by the old order where both are known."""
    patch_items = _sort_by(patch_items, patch_order, key, is_map)
    server_only = _sort_by(server_only, server_order, key, is_map)
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if i >= len(server_only):
            result.append(patch_items[j])
            j += 1
        elif j >= len(patch_items):
            result.append(server_only[i])
            i += 1
        else:
            left = _index(server_order, server_only[i], key, is_map)
            right = _index(server_order, patch_items[j], key, is_map)
            if left >= 0 and right >= 0 and left < right:
                result.append(server_only[i])
                i += 1
            else:
                result.append(patch_items[j])
                j += 1
    return result


def _sort_by(items: list[Any], order: list[Any], key: str, is_map: bool) -> list[Any]:
    """``normalizeSliceOrder``: a stable sort by position in ``order``; deletions last."""
    to_delete: list[Any] = []
    if is_map:
        for item in [*items, *order]:
            if not isinstance(item, Mapping) or key not in item:
                raise PatchError(_no_merge_key(item if isinstance(item, Mapping) else {}, key), 500)
        to_delete = [item for item in items if item.get(_DIRECTIVE) == "delete"]
        items = [item for item in items if item.get(_DIRECTIVE) != "delete"]
    # Go's sort.SliceStable with a "less" that is true whenever either item is not in
    # the order: an insertion sort reproduces what it does with that relation.
    result = list(items)
    for start in range(1, len(result)):
        position = start
        while position > 0 and _less(result[position], result[position - 1], order, key, is_map):
            result[position], result[position - 1] = result[position - 1], result[position]
            position -= 1
    return result + to_delete


def _less(left: Any, right: Any, order: list[Any], key: str, is_map: bool) -> bool:
    i = _index(order, left, key, is_map)
    if i >= 0:
        j = _index(order, right, key, is_map)
        if j >= 0:
            return i < j
    return True


def _drop_directive_keys(value: Any) -> Any:
    """Keys starting with ``$`` are no field of any kind: decoding drops them."""
    if isinstance(value, dict):
        return {
            key: _drop_directive_keys(item)
            for key, item in value.items()
            if not (isinstance(key, str) and key.startswith("$"))
        }
    if isinstance(value, list):
        return [_drop_directive_keys(item) for item in value]
    return value


# JSON merge patch (RFC 7386, as evanphx/json-patch v4 applies it)
# -----------------------------------------------------------------


def merge_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a JSON merge patch: objects merge, ``null`` deletes, anything else replaces.

    A value that lands where there was nothing (or no object) has its nulls
    pruned at any depth, inside lists too.
    """
    if patch is None:
        raise PatchError("Invalid JSON Patch", 400)
    if not isinstance(patch, Mapping):
        raise PatchError(
            "error decoding patch: json: cannot unmarshal "
            f"{_json_kind(patch)} into Go value of type map[string]interface {{}}",
            400,
        )
    if not isinstance(original, Mapping):
        raise PatchError("Invalid JSON Document", 400)
    result = copy.deepcopy(dict(original))
    _merge_docs(result, copy.deepcopy(dict(patch)))
    return result


def _merge_docs(document: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            document.pop(key, None)
            continue
        current = document.get(key)
        if current is None:
            _prune_nulls(value)
            document[key] = value
        elif isinstance(current, dict) and isinstance(value, dict):
            _merge_docs(current, value)
        elif isinstance(current, dict):
            document[key] = value
        else:
            _prune_nulls(value)
            document[key] = value


def _prune_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for item in value.values():
            _prune_nulls(item)
    elif isinstance(value, list):
        for item in value:
            if item is not None:
                _prune_nulls(item)


# JSON patch (RFC 6902, as evanphx/json-patch v4 applies it)
# -----------------------------------------------------------

_OPERATION_FIELDS = {"op": "string", "path": "string", "from": "string"}


def json_patch(original: dict[str, Any], operations: Any) -> Any:
    """Apply a JSON patch and return the patched copy of ``original``.

    The operations run in order on a copy; the first that fails raises
    ``PatchError`` (422, with the API server's message, which does not say
    which operation failed), so nothing is half-applied. A body that is not a
    list of operations is a 400, as the API server's decoder answers.
    """
    if operations is None:
        return copy.deepcopy(original)
    if not isinstance(operations, list):
        raise PatchError(
            f"error decoding patch: json: cannot unmarshal {_json_kind(operations)} into Go "
            "value of type []handlers.jsonPatchOp",
            400,
        )
    for operation in operations:
        if operation is not None and not isinstance(operation, Mapping):
            raise PatchError(
                f"error decoding patch: json: cannot unmarshal {_json_kind(operation)} into Go "
                "value of type handlers.jsonPatchOp",
                400,
            )
        for name, _ in _OPERATION_FIELDS.items():
            value = (operation or {}).get(name)
            if value is not None and not isinstance(value, str):
                raise PatchError(
                    f"error decoding patch: json: cannot unmarshal {_json_kind(value)} into Go "
                    f"struct field jsonPatchOp.{name} of type string",
                    400,
                )
    document: Any = copy.deepcopy(original)
    for operation in operations:
        document = _apply(document, operation or {})
    return document


class _Failed(Exception):
    """One operation does not apply."""


def _apply(document: Any, operation: Mapping[str, Any]) -> Any:
    try:
        op = operation.get("op")
        if op == "add":
            _add(document, _path(operation), _value(operation))
        elif op == "remove":
            container, key = _find(document, _path(operation))
            _remove(container, key)
        elif op == "replace":
            return _replace(document, operation)
        elif op == "move":
            source, key = _find(document, _from(operation))
            value = _get(source, key)
            _remove(source, key)
            _add(document, _path(operation), value)
        elif op == "test":
            _test(document, operation)
        elif op == "copy":
            source, key = _find(document, _from(operation))
            _add(document, _path(operation), copy.deepcopy(_get(source, key)))
        else:
            raise _Failed(f"Unexpected kind: {op or 'unknown'}")
    except _Failed:
        raise PatchError(UNPROCESSABLE, 422) from None
    return document


_MISSING_VALUE = object()


def _path(operation: Mapping[str, Any]) -> str:
    path = operation.get("path")
    if path is None:
        raise _Failed("operation missing path field")
    return str(path)


def _from(operation: Mapping[str, Any]) -> str:
    source = operation.get("from")
    if source is None:
        raise _Failed("operation, missing from field")
    return str(source)


def _value(operation: Mapping[str, Any]) -> Any:
    return copy.deepcopy(operation.get("value"))


def _decode_key(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _find(document: Any, path: str) -> tuple[Any, str]:
    """``findObject``: the container holding the last token of ``path``, and that token."""
    parts = path.split("/")
    if len(parts) < 2:
        raise _Failed(f"doc is missing path: {path}")
    current = document
    for token in parts[1:-1]:
        current = _get(current, _decode_key(token))
        if not isinstance(current, dict | list):
            raise _Failed(f"doc is missing path: {path}")
    return current, _decode_key(parts[-1])


def _atoi(token: str) -> int:
    """Go's ``strconv.Atoi``: an optional sign, then decimal digits (leading zeros allowed)."""
    digits = token[1:] if token[:1] in "+-" else token
    if not digits or not digits.isascii() or not digits.isdigit():
        raise _Failed(f"invalid index {token!r}")
    return int(token)


def _get(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key)
    if isinstance(container, list):
        index = _atoi(key)
        if index < 0:
            if index < -len(container):
                raise _Failed("invalid index")
            index += len(container)
        if index >= len(container):
            raise _Failed("invalid index")
        return container[index]
    raise _Failed("not a container")


def _add(document: Any, path: str, value: Any) -> None:
    container, key = _find(document, path)
    if isinstance(container, dict):
        container[key] = value
        return
    if key == "-":
        container.append(value)
        return
    index = _atoi(key)
    size = len(container) + 1
    if index >= size or index < -size:
        raise _Failed("invalid index")
    if index < 0:
        index += size
    container.insert(index, value)


def _remove(container: Any, key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise _Failed(f"Unable to remove nonexistent key: {key}")
        del container[key]
        return
    index = _atoi(key)
    if index >= len(container) or index < -len(container):
        raise _Failed("invalid index")
    del container[index]


def _replace(document: Any, operation: Mapping[str, Any]) -> Any:
    path = _path(operation)
    value = _value(operation)
    if path == "":
        if not isinstance(value, dict | list):
            raise _Failed("replace operation value must be object or array")
        return value
    container, key = _find(document, path)
    _get(container, key)  # an array index must exist; a missing object key may not
    if isinstance(container, dict):
        container[key] = value
    else:
        index = _atoi(key)
        container[index + len(container) if index < 0 else index] = value
    return document


def _test(document: Any, operation: Mapping[str, Any]) -> None:
    path = _path(operation)
    expected = operation.get("value", _MISSING_VALUE)
    if path == "":
        actual: Any = document
    else:
        container, key = _find(document, path)
        actual = _get(container, key)
        if actual is None:
            if expected is _MISSING_VALUE or expected is None:
                return
            raise _Failed("test failed")
    if expected is _MISSING_VALUE or not _equal(actual, expected):
        raise _Failed("test failed")


def _equal(left: Any, right: Any) -> bool:
    """evanphx's ``lazyNode.equal``: objects and arrays by structure, scalars by JSON text."""
    if isinstance(left, dict):
        if not isinstance(right, dict) or left.keys() != right.keys():
            return False
        return all(
            (left[k] is None) == (right[k] is None)
            and (left[k] is None or _equal(left[k], right[k]))
            for k in left
        )
    if isinstance(left, list):
        if not isinstance(right, list) or len(left) != len(right):
            return False
        return all(_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(right, dict | list):
        return False
    return json.dumps(left) == json.dumps(right)
