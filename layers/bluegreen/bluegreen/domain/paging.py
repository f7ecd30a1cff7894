"""Pages of history: how many items a caller may ask for, and what a cursor looks like.

The ledger pages with an opaque cursor; a page size or cursor is checked here
before it reaches the ledger, so a bad one is a clear ``InvalidInput``.
"""

from __future__ import annotations

import re

from bluegreen.domain.errors import InvalidInput

MAX_PAGE = 100
"""Largest page a caller may ask for; DynamoDB pages are bounded anyway."""

_CURSOR = re.compile(r"[A-Za-z0-9_\-=.~+/:]{1,2048}")


def check_page(limit: int, cursor: str | None) -> None:
    """Reject a page size or cursor the ledger should never see."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}, got {limit}")
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        raise InvalidInput(
            "cursor", "is not a cursor this API handed out; pass nextCursor from a previous page"
        )
