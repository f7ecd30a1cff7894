"""Image references as the cluster holds them: ``<registry>/<repository>@sha256:<hex>``."""

from __future__ import annotations

from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import Digest


def digest_of_image(image: str) -> Digest | None:
    """The digest an image reference is pinned to (``None`` for a tag reference)."""
    _, sep, hex_part = image.partition("@sha256:")
    if not sep:
        return None
    try:
        return Digest.parse(hex_part)
    except InvalidInput:
        return None


def short_image(image: str) -> str:
    """``…@sha256:abcdef012345`` for messages: the digest is what people recognise."""
    repo, sep, digest = image.partition("@sha256:")
    return f"{repo.rsplit('/', 1)[-1]}@sha256:{digest[:12]}" if sep else image
