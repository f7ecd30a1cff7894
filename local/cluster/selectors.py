"""Label and field selectors as the Kubernetes API server parses and matches them.

`label_selector` and `field_selector` turn the `labelSelector` / `fieldSelector`
query parameters into predicates; `match_label_selector_object` evaluates the
structured `LabelSelector` of a Deployment or Job spec.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SelectorError",
    "field_selector",
    "field_selector_paths",
    "label_selector",
    "match_label_selector_object",
]


class SelectorError(ValueError):
    """A selector that cannot be parsed or is invalid; the message says what is wrong."""


_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(_NAME)
_VALUE_RE = re.compile(rf"({_NAME})?")
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
    f"regex used for validation is '{_NAME}')"
)
_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '({_NAME})?')"
)


def _validate_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            raise SelectorError(f"key: Invalid value: {key!r}: prefix part must be non-empty")
        if len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.fullmatch(prefix):
            raise SelectorError(
                f"key: Invalid value: {key!r}: prefix part a lowercase RFC 1123 subdomain "
                "must consist of lower case alphanumeric characters, '-' or '.', and must "
                "start and end with an alphanumeric character"
            )
    if not name:
        raise SelectorError(f"key: Invalid value: {key!r}: name part must be non-empty")
    if len(name) > 63:
        raise SelectorError(
            f"key: Invalid value: {key!r}: name part must be no more than 63 characters"
        )
    if not _NAME_RE.fullmatch(name):
        raise SelectorError(f"key: Invalid value: {key!r}: {_NAME_MESSAGE}")


def _validate_value(key: str, index: int, value: str) -> None:
    if len(value) > 63:
        raise SelectorError(
            f"values[{index}][{key}]: Invalid value: {value!r}: must be no more than 63 characters"
        )
    if not _VALUE_RE.fullmatch(value):
        raise SelectorError(f"values[{index}][{key}]: Invalid value: {value!r}: {_VALUE_MESSAGE}")


@dataclass(frozen=True)
class _Requirement:
    key: str
    operator: str  # in, notin, exists, !, gt, lt (= and == are in, != is notin)
    values: tuple[str, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator == "in":
            return present and labels[self.key] in self.values
        if self.operator == "notin":
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        try:
            actual = int(labels[self.key])
        except ValueError:
            return False
        limit = int(self.values[0])
        return actual > limit if self.operator == "gt" else actual < limit


def _build_requirement(key: str, operator: str, values: list[str]) -> _Requirement:
    _validate_key(key)
    if operator in ("in", "notin") and not values:
        raise SelectorError(
            "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
        )
    if operator in ("gt", "lt"):
        if len(values) != 1 or not re.fullmatch(r"-?[0-9]+", values[0]):
            raise SelectorError(
                f"values[0]: Invalid value: {values!r}: for 'Gt', 'Lt' operators, "
                "the value must be a single integer"
            )
    else:
        for index, value in enumerate(values):
            _validate_value(key, index, value)
    return _Requirement(key, operator, tuple(values))


# Tokens of the label selector language. Anything that is not whitespace or one
# of these characters is part of an identifier, as in the API server's lexer.
_SPECIALS = "!=,()<>"
_OPERATOR_TOKENS = ("==", "!=", "=", "<", ">")


def _tokens(expr: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(expr):
        char = expr[position]
        if char.isspace():
            position += 1
        elif expr.startswith(("==", "!="), position):
            tokens.append(expr[position : position + 2])
            position += 2
        elif char in _SPECIALS:
            tokens.append(char)
            position += 1
        else:
            end = position
            while end < len(expr) and not expr[end].isspace() and expr[end] not in _SPECIALS:
                end += 1
            tokens.append(expr[position:end])
            position = end
    return tokens


def _is_identifier(lexeme: str | None) -> bool:
    return lexeme is not None and lexeme[0] not in _SPECIALS


class _LabelParser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = _tokens(expr)
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str | None:
        lexeme = self.peek()
        self.position += 1
        return lexeme

    def fail(self, found: str | None, expected: str) -> SelectorError:
        shown = "" if found is None else found
        return SelectorError(
            f"unable to parse requirement: found '{shown}', expected: {expected} "
            f"(selector {self.expr!r})"
        )

    def parse(self) -> list[_Requirement]:
        requirements: list[_Requirement] = []
        if self.peek() is None:
            return requirements
        while True:
            requirements.append(self.requirement())
            lexeme = self.take()
            if lexeme is None:
                return requirements
            if lexeme != ",":
                raise self.fail(lexeme, "',' or 'end of string'")

    def requirement(self) -> _Requirement:
        lexeme = self.take()
        if lexeme == "!":
            key = self.take()
            if not _is_identifier(key) or key in ("in", "notin"):
                raise self.fail(key, "identifier")
            assert key is not None
            return _build_requirement(key, "!", [])
        if not _is_identifier(lexeme) or lexeme in ("in", "notin"):
            raise self.fail(lexeme, "identifier")
        assert lexeme is not None
        key = lexeme
        operator = self.peek()
        if operator is None or operator == ",":
            return _build_requirement(key, "exists", [])
        self.take()
        if operator in ("=", "=="):
            return _build_requirement(key, "in", [self.single_value()])
        if operator == "!=":
            return _build_requirement(key, "notin", [self.single_value()])
        if operator in (">", "<"):
            return _build_requirement(key, "gt" if operator == ">" else "lt", [self.single_value()])
        if operator in ("in", "notin"):
            return _build_requirement(key, operator, self.value_set())
        raise self.fail(
            operator, "'=', '==', '!=', 'in', 'notin', '>', '<', ',' or 'end of string'"
        )

    def single_value(self) -> str:
        lexeme = self.peek()
        if lexeme is None or lexeme == ",":
            return ""  # "app=" selects objects whose label app is the empty string
        if not _is_identifier(lexeme):
            raise self.fail(lexeme, "identifier")
        self.take()
        return lexeme

    def value_set(self) -> list[str]:
        lexeme = self.take()
        if lexeme != "(":
            raise self.fail(lexeme, "'('")
        values: list[str] = []
        if self.peek() == ")":
            self.take()
            return values
        while True:
            lexeme = self.peek()
            if lexeme in (",", ")"):
                values.append("")  # an empty value between commas, as upstream allows
            elif _is_identifier(lexeme):
                assert lexeme is not None
                values.append(lexeme)
                self.take()
            else:
                raise self.fail(lexeme, "identifier, ',' or ')'")
            lexeme = self.take()
            if lexeme == ")":
                return values
            if lexeme != ",":
                raise self.fail(lexeme, "',' or ')'")


def label_selector(expr: str) -> Callable[[Mapping[str, str]], bool]:
    """Parse a `labelSelector` query string into a predicate over an object's labels.

    Supports equality (`app=blue`, `app==blue`, `app!=blue`), sets
    (`env in (a,b)`, `env notin (a)`), existence (`tier`, `!tier`), the integer
    comparisons `>` / `<`, and comma-joined combinations of them. An empty
    string selects everything. Raises `SelectorError` for invalid syntax, keys
    or values, with the API server's wording.
    """
    requirements = _LabelParser(expr).parse()

    def matches(labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in requirements)

    return matches


def match_label_selector_object(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Evaluate a structured `LabelSelector` (`matchLabels` and `matchExpressions`).

    All conditions must hold; an empty selector matches everything. Raises
    `SelectorError` for a malformed selector (unknown operator, values given to
    Exists / DoesNotExist, empty values for In / NotIn).
    """
    if not isinstance(selector, Mapping):
        raise SelectorError(f"selector: Invalid value: {selector!r}: must be an object")
    requirements: list[_Requirement] = []
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise SelectorError("selector.matchLabels: Invalid value: must be a map of strings")
    for key, value in match_labels.items():
        if not isinstance(value, str):
            raise SelectorError(f"selector.matchLabels[{key}]: Invalid value: must be a string")
        requirements.append(_build_requirement(str(key), "in", [value]))
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise SelectorError("selector.matchExpressions: Invalid value: must be a list")
    for index, expression in enumerate(expressions):
        requirements.append(_expression_requirement(index, expression))
    return all(requirement.matches(labels) for requirement in requirements)


_EXPRESSION_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def _expression_requirement(index: int, expression: Any) -> _Requirement:
    where = f"selector.matchExpressions[{index}]"
    if not isinstance(expression, Mapping):
        raise SelectorError(f"{where}: Invalid value: must be an object")
    key = expression.get("key")
    if not isinstance(key, str):
        raise SelectorError(f"{where}.key: Required value")
    operator = expression.get("operator")
    if operator not in _EXPRESSION_OPERATORS:
        raise SelectorError(
            f'{where}.operator: Unsupported value: {operator!r}: supported values: "In", '
            '"NotIn", "Exists", "DoesNotExist"'
        )
    values = expression.get("values") or []
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise SelectorError(f"{where}.values: Invalid value: must be a list of strings")
    if operator in ("Exists", "DoesNotExist") and values:
        raise SelectorError(
            f"{where}.values: Forbidden: may not be specified when `operator` is 'Exists' "
            "or 'DoesNotExist'"
        )
    if operator in ("In", "NotIn") and not values:
        raise SelectorError(
            f"{where}.values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        )
    return _build_requirement(key, _EXPRESSION_OPERATORS[operator], values)


# Field selectors
# ---------------


@dataclass(frozen=True)
class _FieldTerm:
    path: str
    value: str
    negated: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        equal = _field_value(obj, self.path) == self.value
        return not equal if self.negated else equal


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    """The field as the API server's field sets show it: absent fields read as ""."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    if isinstance(current, str | int | float):
        return str(current)
    return ""


def _split_unescaped(text: str, separator: str) -> list[str]:
    """Split on `separator` except where a backslash escapes it."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape_field_value(expr: str, value: str) -> str:
    result: list[str] = []
    position = 0
    while position < len(value):
        char = value[position]
        if char == "\\":
            if position + 1 >= len(value) or value[position + 1] not in "\\,=":
                raise SelectorError(
                    f"invalid field selector: {expr!r}: invalid escape sequence in {value!r}"
                )
            result.append(value[position + 1])
            position += 2
            continue
        if char in ",=":
            raise SelectorError(
                f"invalid field selector: {expr!r}: unescaped {char!r} in value {value!r}"
            )
        result.append(char)
        position += 1
    return "".join(result)


def _split_field_term(expr: str, raw: str) -> tuple[str, bool, str]:
    for operator in ("!=", "==", "="):
        key, found, value = raw.partition(operator)
        if found and "\\" not in key and "=" not in key and "!" not in key:
            return key, operator == "!=", value
    raise SelectorError(f"invalid selector: {expr!r}; can't understand {raw!r}")


def _parse_field_terms(expr: str) -> list[_FieldTerm]:
    terms: list[_FieldTerm] = []
    if not expr.strip():
        return terms
    for raw in _split_unescaped(expr, ","):
        key, negated, value = _split_field_term(expr, raw)
        key = key.strip()
        if not key:
            raise SelectorError(f"invalid selector: {expr!r}; field name is empty in {raw!r}")
        terms.append(_FieldTerm(key, _unescape_field_value(expr, value), negated))
    return terms


def field_selector(expr: str) -> Callable[[Mapping[str, Any]], bool]:
    """Parse a `fieldSelector` query string into a predicate over a whole object.

    Terms are `path=value`, `path==value` or `path!=value`, comma-joined; the
    path is dotted into the object (`metadata.name`, `status.phase`,
    `spec.nodeName`) and a missing field compares as "". `\\,`, `\\=` and `\\\\`
    escape those characters in values. Which fields a resource supports is the
    server's decision (see `field_selector_paths`).
    """
    terms = _parse_field_terms(expr)

    def matches(obj: Mapping[str, Any]) -> bool:
        return all(term.matches(obj) for term in terms)

    return matches


def field_selector_paths(expr: str) -> list[str]:
    """The field paths a `fieldSelector` refers to, so the server can reject unsupported ones."""
    return [term.path for term in _parse_field_terms(expr)]
