"""Images: every digest pushed, its tags and verdict, and where it runs now.

The route imports the logic it calls when it runs (see ``api.services``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from . import dependencies
from .responses import BAD_REQUEST, GATEWAY, INVALID, answer
from .schemas import (
    CURSOR_LIMIT,
    CURSOR_PATTERN,
    LIMIT_DESCRIPTION,
    ImageBody,
    ImagePageBody,
    PageLimit,
    Placement,
)

if TYPE_CHECKING:
    from bluegreen.logic import history

router = Router()  # type: ignore[no-untyped-call]


def image_body(view: history.ImageView) -> ImageBody:
    """The wire form of ``history.ImageView``."""
    record = view.record
    return ImageBody(
        digest=str(record.digest),
        repository=record.repository,
        tags=sorted(record.tags),
        pushed_at=record.pushed_at,
        verdict=record.verdict.value,
        verdict_reason=record.verdict_reason,
        running_on=(
            None
            if view.running_on is None
            else [Placement(colour=p.colour.value, role=p.role.value) for p in view.running_on]
        ),
    )


@router.get(
    "/images",
    summary="Images pushed, newest first, with tags, verdict and the colours running them",
    tags=["images"],
    responses={200: answer(ImagePageBody, "A page of images"), **BAD_REQUEST, **INVALID, **GATEWAY},
)
def get_images(
    limit: Annotated[PageLimit, Query(description=LIMIT_DESCRIPTION)] = 50,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=CURSOR_LIMIT, pattern=CURSOR_PATTERN)
    ] = None,
) -> ImagePageBody:
    """A page of the ledger's images; pass ``nextCursor`` back as ``cursor``."""
    from bluegreen.logic import history

    page = history.image_history(dependencies.release_ports(), limit, cursor)
    return ImagePageBody(
        images=[image_body(view) for view in page.images],
        next_cursor=page.next_cursor,
        cluster_error=page.cluster_error,
    )
