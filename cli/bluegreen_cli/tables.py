"""Plain-text tables for people (``--json`` prints the API's answer instead)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, a rule under the header."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for index, value in enumerate(row[: len(widths)]):
            widths[index] = max(widths[index], len(value))
    lines = [
        "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    for row in cells:
        padded = list(row) + [""] * (len(widths) - len(row))
        lines.append("  ".join(v.ljust(w) for v, w in zip(padded, widths, strict=False)).rstrip())
    return "\n".join(lines)


def pairs(items: Iterable[tuple[str, object]]) -> str:
    """A two-column ``key  value`` block, keys aligned."""
    rows = [(key, _cell(value)) for key, value in items]
    width = max((len(key) for key, _ in rows), default=0)
    return "\n".join(f"{key.ljust(width)}  {value}".rstrip() for key, value in rows)


def short_digest(value: object) -> str:
    """``sha256:abcdef123456`` (12 hex) for a digest or an image reference; else as given."""
    if not isinstance(value, str) or not value:
        return "-"
    _, at, after = value.rpartition("@")
    text = after if at else value
    algorithm, colon, hex_part = text.partition(":")
    if colon and algorithm == "sha256":
        return f"sha256:{hex_part[:12]}"
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return f"sha256:{text[:12]}"
    return value


def _cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(_cell(v) for v in value) or "-"
    return " ".join(str(value).split())
