"""Label and field selectors as the Kubernetes API server parses, validates and matches them.

`label_selector` and `field_selector` turn the `labelSelector` / `fieldSelector`
query parameters into predicates, with the parsers of ``k8s.io/apimachinery``
(``labels.Parse``, ``fields.ParseSelector``) ported with their messages;
`validate_label_selector` and `label_selector_matches` check and evaluate the
structured `LabelSelector` of a Deployment, ReplicaSet or Job spec.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.cluster.errors import FieldError, Rendered

__all__ = [
    "SelectorError",
    "field_selector",
    "field_selector_paths",
    "label_selector",
    "label_selector_matches",
    "selector_json",
    "validate_label_selector",
]


class SelectorError(ValueError):
    """A selector that cannot be parsed or is invalid; the message is the API server's."""


# Label keys and values (k8s.io/apimachinery/pkg/util/validation)
# ----------------------------------------------------------------

_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(_NAME_FMT)
_VALUE_FMT = f"({_NAME_FMT})?"
_VALUE_RE = re.compile(_VALUE_FMT)
_DNS_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS_SUBDOMAIN_RE = re.compile(_DNS_SUBDOMAIN_FMT)
_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character"
)


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    shown = ",  or ".join(f"'{e}'" for e in examples)
    return f"{message} (e.g. {shown}, regex used for validation is '{fmt}')"


def label_key_errors(key: str) -> list[str]:
    """``IsQualifiedName``: what is wrong with a label key (empty when it is valid)."""
    errors: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        elif len(prefix) > 253:
            errors.append("prefix part must be no more than 253 bytes")
        elif not _DNS_SUBDOMAIN_RE.fullmatch(prefix):
            errors.append(
                "prefix part "
                + _regex_error(
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                    "characters, '-' or '.', and must start and end with an alphanumeric "
                    "character",
                    _DNS_SUBDOMAIN_FMT,
                    "example.com",
                )
            )
    else:
        return [
            "a qualified name "
            + _regex_error(_NAME_MSG, _NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name.encode()) > 63:
        errors.append("name part must be no more than 63 bytes")
    if not _NAME_RE.fullmatch(name):
        errors.append(
            "name part " + _regex_error(_NAME_MSG, _NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


def label_value_errors(value: str) -> list[str]:
    """``IsValidLabelValue``: what is wrong with a label value (empty when it is valid)."""
    errors: list[str] = []
    if len(value.encode()) > 63:
        errors.append("must be no more than 63 bytes")
    if not _VALUE_RE.fullmatch(value):
        errors.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errors


def _quoted(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


# labelSelector query strings (labels.Parse)
# -------------------------------------------

_IN, _NOT_IN, _EQUALS, _DOUBLE_EQUALS, _NOT_EQUALS = "in", "notin", "=", "==", "!="
_GT, _LT, _EXISTS, _DOES_NOT_EXIST = "gt", "lt", "exists", "!"
_BINARY = (_IN, _NOT_IN, _EQUALS, _DOUBLE_EQUALS, _NOT_EQUALS, _GT, _LT)

# Tokens: (kind, literal). Kinds are the literal of a keyword or symbol, or these.
_ID, _END = "identifier", "end"
_SYMBOLS = {")", ",", "!", "==", "=", ">", "<", "!=", "("}
_KEYWORDS = {"in", "notin"}
_SPECIAL = "=!(),><"
_WHITESPACE = " \t\r\n"


def _lex(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while True:
        while position < len(text) and text[position] in _WHITESPACE:
            position += 1
        if position >= len(text):
            tokens.append((_END, ""))
            return tokens
        if text[position] in _SPECIAL:
            # The longest run of symbols that is still a token.
            end = position + 1
            while (
                end < len(text) and text[end] in _SPECIAL and text[position : end + 1] in _SYMBOLS
            ):
                end += 1
            literal = text[position:end]
            tokens.append((literal, literal))
            position = end
            continue
        end = position
        while end < len(text) and text[end] not in _SPECIAL and text[end] not in _WHITESPACE:
            end += 1
        literal = text[position:end]
        tokens.append((literal if literal in _KEYWORDS else _ID, literal))
        position = end


@dataclass(frozen=True)
class Requirement:
    """One requirement of a selector: a key, an operator and its values."""

    key: str
    operator: str
    values: tuple[str, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator in (_IN, _EQUALS, _DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if self.operator in (_NOT_IN, _NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if self.operator == _EXISTS:
            return present
        if self.operator == _DOES_NOT_EXIST:
            return not present
        if not present or len(self.values) != 1:
            return False
        actual, limit = _int64(labels[self.key]), _int64(self.values[0])
        if actual is None or limit is None:
            return False
        return actual > limit if self.operator == _GT else actual < limit


def _int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def _requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """``NewRequirement``, with the path a query string's selector has (none)."""
    errors: list[str] = []
    key_errors = label_key_errors(key)
    if key_errors:
        errors.append(f"key: Invalid value: {_quoted(key)}: {'; '.join(key_errors)}")
    if operator in (_GT, _LT):
        for index, value in enumerate(values):
            if _int64(value) is None:
                errors.append(
                    f"values[{index}]: Invalid value: {_quoted(value)}: for 'Gt', 'Lt' "
                    "operators, the value must be an integer"
                )
    for index, value in enumerate(values):
        value_errors = label_value_errors(value)
        if value_errors:
            errors.append(
                f"values[{index}][{key}]: Invalid value: {_quoted(value)}: "
                + "; ".join(value_errors)
            )
    if errors:
        raise SelectorError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
    return Requirement(key, operator, tuple(values))


class _LabelParser:
    """``labels.Parser``: a recursive descent over the lexer's tokens."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.position = 0

    def _token(self, values: bool) -> tuple[str, str]:
        kind, literal = self.tokens[self.position]
        if values and kind in _KEYWORDS:
            kind = _ID  # in a value position, "in" and "notin" are identifiers
        return kind, literal

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        return self._token(values)

    def consume(self, values: bool = True) -> tuple[str, str]:
        token = self._token(values)
        self.position += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.lookahead()
            if kind in (_ID, "!"):
                try:
                    requirements.append(self.requirement())
                except SelectorError as error:
                    raise SelectorError(f"unable to parse requirement: {error}") from None
                kind, literal = self.consume()
                if kind == _END:
                    return requirements
                if kind == ",":
                    after, shown = self.lookahead()
                    if after not in (_ID, "!"):
                        raise SelectorError(f"found '{shown}', expected: identifier after ','")
                    continue
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            if kind == _END:
                return requirements
            raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        key, operator = self.key_and_operator()
        if operator in (_EXISTS, _DOES_NOT_EXIST):
            return _requirement(key, operator, [])
        operator = self.operator()
        values = self.value_set() if operator in (_IN, _NOT_IN) else self.exact_value()
        return _requirement(key, operator, sorted(values))

    def key_and_operator(self) -> tuple[str, str]:
        operator = ""
        kind, literal = self.consume()
        if kind == "!":
            operator = _DOES_NOT_EXIST
            kind, literal = self.consume()
        if kind != _ID:
            raise SelectorError(f"found '{literal}', expected: identifier")
        errors = label_key_errors(literal)
        if errors:
            raise SelectorError(f"<nil>: Invalid value: {_quoted(literal)}: {'; '.join(errors)}")
        following, _ = self.lookahead()
        if following in (_END, ",") and operator != _DOES_NOT_EXIST:
            operator = _EXISTS
        return literal, operator

    def operator(self) -> str:
        kind, literal = self.consume(values=False)
        operators = {
            "in": _IN,
            "notin": _NOT_IN,
            "=": _EQUALS,
            "==": _DOUBLE_EQUALS,
            "!=": _NOT_EQUALS,
            ">": _GT,
            "<": _LT,
        }
        if kind not in operators:
            raise SelectorError(f"found '{literal}', expected: {', '.join(_BINARY)}")
        return operators[kind]

    def value_set(self) -> set[str]:
        kind, literal = self.consume()
        if kind != "(":
            raise SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self.lookahead()
        if kind in (_ID, ","):
            values = self.identifiers()
            if self.consume()[0] != ")":
                raise SelectorError(f"found '{literal}', expected: ')'")
            return values
        if kind == ")":
            self.consume()
            return {""}
        raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            kind, literal = self.consume()
            if kind == _ID:
                values.add(literal)
                following, shown = self.lookahead()
                if following == ",":
                    continue
                if following == ")":
                    return values
                raise SelectorError(f"found '{shown}', expected: ',' or ')'")
            if kind == ",":
                if not values:
                    values.add("")
                following, _ = self.lookahead()
                if following == ")":
                    values.add("")
                    return values
                if following == ",":
                    values.add("")
                continue
            raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        kind, _ = self.lookahead()
        if kind in (_END, ","):
            return {""}
        kind, literal = self.consume()
        if kind == _ID:
            return {literal}
        raise SelectorError(f"found '{literal}', expected: identifier")


def label_selector(expr: str) -> Callable[[Mapping[str, str]], bool]:
    """Parse a `labelSelector` query string into a predicate over an object's labels.

    Supports equality (`app=blue`, `app==blue`, `app!=blue`), sets
    (`env in (a,b)`, `env notin (a)`, where `()` is the set of the empty
    value), existence (`tier`, `!tier`), the integer comparisons `>` / `<`,
    and comma-joined combinations of them. An empty string selects everything.
    Raises `SelectorError` with the API server's message for anything else.
    """
    requirements = _LabelParser(expr).parse()

    def matches(labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in requirements)

    return matches


# Structured LabelSelector (spec.selector of Deployments, ReplicaSets and Jobs)
# ----------------------------------------------------------------------------

_EXPRESSION_OPERATORS = {
    "In": _IN,
    "NotIn": _NOT_IN,
    "Exists": _EXISTS,
    "DoesNotExist": _DOES_NOT_EXIST,
}


def selector_json(selector: Mapping[str, Any]) -> str:
    """The selector as Go encodes a ``v1.LabelSelector``: fields in order, empty ones left out."""
    encoded: dict[str, Any] = {}
    labels = selector.get("matchLabels") or {}
    if labels:
        encoded["matchLabels"] = {k: labels[k] for k in sorted(labels)}
    expressions = []
    for expression in selector.get("matchExpressions") or []:
        item: dict[str, Any] = {
            "key": expression.get("key") or "",
            "operator": expression.get("operator") or "",
        }
        if expression.get("values"):
            item["values"] = expression["values"]
        expressions.append(item)
    if expressions:
        encoded["matchExpressions"] = expressions
    return json.dumps(encoded, separators=(",", ":"), ensure_ascii=False)


def validate_label_selector(selector: Mapping[str, Any], path: str) -> list[FieldError]:
    """``ValidateLabelSelector``: one error per thing wrong, then the selector as a whole."""
    errors: list[FieldError] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        errors += [
            FieldError(f"{path}.matchLabels", "Invalid", message, key)
            for message in label_key_errors(key)
        ]
        errors += [
            FieldError(f"{path}.matchLabels", "Invalid", message, value)
            for message in label_value_errors(value)
        ]
    for index, expression in enumerate(selector.get("matchExpressions") or []):
        where = f"{path}.matchExpressions[{index}]"
        operator = expression.get("operator") or ""
        values = expression.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                errors.append(
                    FieldError(
                        f"{where}.values",
                        "Required",
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    )
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errors.append(
                    FieldError(
                        f"{where}.values",
                        "Forbidden",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            errors.append(
                FieldError(
                    f"{where}.operator", "Invalid", "not a valid selector operator", operator
                )
            )
        key = expression.get("key") or ""
        errors += [
            FieldError(f"{where}.key", "Invalid", message, key) for message in label_key_errors(key)
        ]
        for value_index, value in enumerate(values):
            errors += [
                FieldError(f"{where}.values[{value_index}]", "Invalid", message, value)
                for message in label_value_errors(value)
            ]
    if errors:
        errors.append(
            FieldError(path, "Invalid", "invalid label selector", Rendered(selector_json(selector)))
        )
    return errors


def label_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """``LabelSelectorAsSelector(selector).Matches(labels)`` for a valid selector.

    Every condition must hold; an empty selector matches everything.
    """
    requirements = [
        Requirement(key, _EQUALS, (value,))
        for key, value in (selector.get("matchLabels") or {}).items()
    ]
    for expression in selector.get("matchExpressions") or []:
        operator = _EXPRESSION_OPERATORS[expression["operator"]]
        requirements.append(
            Requirement(expression["key"], operator, tuple(expression.get("values") or ()))
        )
    return all(requirement.matches(labels) for requirement in requirements)


# fieldSelector query strings (fields.ParseSelector)
# ---------------------------------------------------


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


def _split_terms(expr: str) -> list[str]:
    """``splitTerms``: split on commas a backslash does not escape (escapes kept)."""
    if not expr:
        return []
    terms: list[str] = []
    start = 0
    escaped = False
    for index, char in enumerate(expr):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(expr[start:index])
            start = index + 1
    terms.append(expr[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """``splitTerm``: the first operator (``!=``, ``==``, ``=``) splits field from value."""
    for index in range(len(term)):
        for operator in ("!=", "==", "="):
            if term.startswith(operator, index):
                return term[:index], operator, term[index + len(operator) :]
    return None


def _unescape(value: str) -> str:
    """``UnescapeValue``: ``\\\\``, ``\\,`` and ``\\=`` are the only escapes."""
    result: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            result.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise SelectorError(
                f"invalid field selector: unescaped character in value: {ord(char)}"
            )
        else:
            result.append(char)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(result)


def _parse_field_terms(expr: str) -> list[_FieldTerm]:
    terms: list[_FieldTerm] = []
    for part in sorted(_split_terms(expr)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{expr}'; can't understand '{part}'")
        field, operator, value = split
        terms.append(_FieldTerm(field, _unescape(value), operator == "!="))
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
