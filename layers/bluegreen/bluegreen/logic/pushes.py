"""ECR pushes: which ECR Image Action events are pushes of ours, and recording them.

``image_push`` decides, from an event's envelope and detail, whether it is a
successful push of a well-formed digest, with a tag the API would accept (one
grammar, ``bluegreen.domain.models.is_tag``), to the application's repository
in the stack's own account and region; any other event becomes an
``IgnoredEvent`` with a reason code, never an exception.

``record_image_push`` records one push in the ledger and then calls the
``on_recorded`` seam; what it reaches comes in one ``PushPorts``. Wrapped by
``idempotent_recorder`` it runs once per push event, even when EventBridge
delivers the event twice: the second delivery gets the stored result back and
``on_recorded`` is not called again. That is where the auto-deploy plugs in
(see ``OnRecorded``), so a duplicate delivery can never start a second
deployment.

The repository, not the order of events, says where a tag points. Event times
have one-second resolution, so two pushes of a tag within one second cannot be
ordered by them; before recording a tagged push, ``record_image_push`` asks
the repository (``ImageRegistry.tag_points_at``) where the tag points now:

- at the pushed digest: the push is recorded as confirmed, and the ledger's
  tag moves to it even when its push time ties with another push's;
- at another digest: the event is stale (a later push of the tag has already
  landed). The image is recorded without the tag, the tag stays where it is,
  and ``on_recorded`` is not called, so no deployment starts for an image the
  tag has already left; the later push's own event moves the tag and deploys;
- no answer (the tag or repository is gone, or the registry failed): the push
  is recorded all the same, ordered by push time as before, and the reason is
  logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bluegreen.domain.errors import InvalidInput, TagUnreadable
from bluegreen.domain.models import TAG_GRAMMAR, Digest, ImageRecord, Verdict, is_tag
from bluegreen.observability import logger

if TYPE_CHECKING:  # typing only: importing these costs cold-start time before any push
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.base import (
        BasePersistenceLayer,
    )

    from bluegreen.domain.ports import ImageRegistry, Ledger

ECR_SOURCE = "aws.ecr"
IMAGE_ACTION = "ECR Image Action"

IDEMPOTENCY_KEY = "[application, repository, digest.hex, tag, event_id]"
"""What makes two deliveries the same push: the event id and what it says was pushed, for
the application it is recorded for (one push of a shared repository is one per application)."""

IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600
"""EventBridge retries a delivery for up to 24 hours; duplicates within it are one push."""

OnRecorded = Callable[[ImageRecord, "str | None"], None]
"""Called once per recorded push with the record and the pushed tag (None if untagged).

The seam for the auto-deploy: the deploy flow passes a function that starts a
deployment when the tag matches the auto-deploy policy. It runs inside the
idempotent section, so it runs once per push; if it raises, the push is not
marked done and the retried delivery records (harmlessly, again) and retries it.
"""


@dataclass(frozen=True)
class ImagePush:
    """A successful push of a digest (with its tag, if any) to the application's repository."""

    repository: str
    digest: Digest
    tag: str | None
    pushed_at: datetime
    event_id: str
    application: str = ""
    """The application of the fleet it is recorded for (its ledger, its auto-deploy)."""


@dataclass(frozen=True)
class IgnoredEvent:
    """An event that is not a push to record, with a reason code and what showed it."""

    reason: str
    facts: dict[str, str] = field(default_factory=dict)


def image_push(
    *,
    event_id: str,
    source: str,
    detail_type: str,
    time: str,
    detail: Mapping[str, Any],
    repository: str,
    account: str = "",
    region: str = "",
    expected_account: str = "",
    expected_region: str = "",
    application: str = "",
) -> ImagePush | IgnoredEvent:
    """The push an ECR Image Action event reports, or why the event is not one to record.

    ``account`` and ``region`` are the event's; ``expected_account`` and
    ``expected_region`` the stack's (the account is left unchecked when the
    stack's registry is not an ECR host and so names none). Reasons:
    ``not-an-ecr-image-action``, ``other-account``, ``other-region``,
    ``other-repository``, ``not-a-push`` (e.g. DELETE), ``no-result``,
    ``push-failed``, ``malformed-digest``, ``malformed-tag`` (not a string, or
    not a tag by the API's grammar), ``malformed-event`` (no id, account or
    region, or an unreadable time).
    """
    facts = {
        "event_id": str(event_id),
        "repository": str(detail.get("repository-name", "")),
        "action": str(detail.get("action-type", "")),
        "result": str(detail.get("result", "")),
    }
    if source != ECR_SOURCE or detail_type != IMAGE_ACTION:
        return IgnoredEvent(
            "not-an-ecr-image-action", {**facts, "source": source, "detail_type": detail_type}
        )
    for name, value, expected in (
        ("account", account, expected_account),
        ("region", region, expected_region),
    ):
        if expected and not value:
            return IgnoredEvent("malformed-event", {**facts, "problem": f"the event has no {name}"})
    if expected_account and account != expected_account:
        return IgnoredEvent(
            "other-account", {**facts, "account": account, "expected": expected_account}
        )
    if expected_region and region != expected_region:
        return IgnoredEvent(
            "other-region", {**facts, "region": region, "expected": expected_region}
        )
    if detail.get("repository-name") != repository:
        return IgnoredEvent("other-repository", {**facts, "expected": repository})
    if detail.get("action-type") != "PUSH":
        return IgnoredEvent("not-a-push", facts)
    if detail.get("result") in (None, ""):
        return IgnoredEvent(
            "no-result",
            {**facts, "problem": "the event says neither SUCCESS nor FAILURE: not a push to judge"},
        )
    if detail.get("result") != "SUCCESS":
        return IgnoredEvent("push-failed", facts)
    try:
        digest = Digest.parse(detail.get("image-digest"), field_name="image-digest")
    except InvalidInput as exc:
        return IgnoredEvent("malformed-digest", {**facts, "problem": exc.problem})
    raw_tag = detail.get("image-tag")
    if raw_tag is not None and not isinstance(raw_tag, str):
        return IgnoredEvent("malformed-tag", {**facts, "problem": "image-tag is not a string"})
    if raw_tag and not is_tag(raw_tag):
        return IgnoredEvent(
            "malformed-tag", {**facts, "problem": f"{raw_tag!r} is not a tag ({TAG_GRAMMAR})"}
        )
    try:
        pushed_at = datetime.fromisoformat(time)
    except (TypeError, ValueError):
        return IgnoredEvent("malformed-event", {**facts, "problem": f"time {time!r} is unreadable"})
    if not event_id:
        return IgnoredEvent("malformed-event", {**facts, "problem": "the event has no id"})
    if pushed_at.tzinfo is None:
        pushed_at = pushed_at.replace(tzinfo=UTC)
    return ImagePush(
        repository=repository,
        digest=digest,
        tag=raw_tag or None,
        pushed_at=pushed_at.astimezone(UTC),
        event_id=event_id,
        application=application,
    )


@dataclass(frozen=True)
class RecordedPush:
    """A push as the ledger recorded it, and why its tag was left off when it was."""

    image: ImageRecord
    tag: str | None
    tag_left_off: str = ""


@dataclass(frozen=True)
class PushPorts:
    """What recording a push reaches: the ledger, the registry's answer on a tag, and the
    seam a recorded push is handed to (the auto-deploy)."""

    ledger: Ledger
    registry: ImageRegistry | None = None
    on_recorded: OnRecorded | None = None


def record_image_push(*, push: ImagePush, ports: PushPorts) -> RecordedPush:
    """Record ``push`` in the ledger (tags merge), then hand the record to ``on_recorded``.

    With a ``registry``, a tagged push is first checked against it
    (see the module docstring): confirmed, stale (recorded untagged, no
    ``on_recorded``), or unknown (ordered by push time). Without it, every
    push is ordered by push time. When the tag is not attached, the result
    says why (``tag_left_off``).
    """
    ledger, registry, on_recorded = ports.ledger, ports.registry, ports.on_recorded
    tag, confirmed_at = push.tag, None
    if tag is not None and registry is not None:
        # Stamped before asking: if the answer still shows this digest, the lookup began
        # before any later push of the tag landed, and that push's own lookup (caused by
        # its event) begins after it, so the later push always holds the later stamp.
        asked_at = datetime.now(UTC)
        try:
            current = registry.tag_points_at(tag)
        except TagUnreadable as exc:
            current = None
            logger.warning(
                "registry unreadable; ordering the tag by push time",
                extra={"tag": tag, "digest": str(push.digest), "problem": str(exc)},
            )
        else:
            if current is None:
                logger.warning(
                    "registry knows no such tag; ordering the tag by push time",
                    extra={"tag": tag, "digest": str(push.digest)},
                )
        if current == push.digest:
            confirmed_at = asked_at
        elif current is not None:
            logger.info(
                "stale push: the tag has moved on; image recorded without it, no auto-deploy",
                extra={"tag": tag, "digest": str(push.digest), "tag_points_at": str(current)},
            )
            image = ledger.record_push(push.digest, None, push.pushed_at, push.event_id)
            return RecordedPush(
                image,
                tag,
                f"the registry points {tag} at {current}, pushed later: this image is "
                "recorded without the tag and not deployed (that push's own event moves the "
                "tag and deploys it)",
            )
    record = ledger.record_push(
        push.digest, tag, push.pushed_at, push.event_id, confirmed_at=confirmed_at
    )
    left_off = ""
    if tag is not None and tag not in record.tags:
        left_off = (
            f"the ledger holds a newer push of {tag} ({ledger.digest_for_tag(tag)}): this "
            "image is recorded without the tag"
        )
    if on_recorded is not None:
        on_recorded(record, tag)
    return RecordedPush(record, tag, left_off)


RecordImagePush = Callable[[ImagePush, PushPorts], RecordedPush]
"""``record_image_push`` as ``idempotent_recorder`` hands it out: push, then ports."""


def idempotency_config() -> IdempotencyConfig:
    """How duplicates are recognised: by ``IDEMPOTENCY_KEY``, within a day."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(
        event_key_jmespath=IDEMPOTENCY_KEY,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_WINDOW_SECONDS,
    )


def idempotent_recorder(
    persistence_store: BasePersistenceLayer, config: IdempotencyConfig | None = None
) -> RecordImagePush:
    """``record_image_push`` under Powertools ``@idempotent_function``.

    Applied here rather than at import because the persistence store needs the
    idempotency table's name and a client, which only the handler knows
    (nothing below a handler reads the environment) and which a cold start
    should not pay for before the first event.
    """
    from aws_lambda_powertools.utilities.idempotency import idempotent_function
    from aws_lambda_powertools.utilities.idempotency.serialization.custom_dict import (
        CustomDictSerializer,
    )

    idempotent = idempotent_function(
        record_image_push,
        data_keyword_argument="push",
        persistence_store=persistence_store,
        config=config or idempotency_config(),
        output_serializer=CustomDictSerializer(
            to_dict=recorded_push_to_dict, from_dict=recorded_push_from_dict
        ),
    )

    def record(push: ImagePush, ports: PushPorts) -> RecordedPush:
        # Powertools finds the idempotency key in the keyword argument it was told of.
        recorded: RecordedPush = idempotent(push=push, ports=ports)
        return recorded

    return record


def recorded_push_to_dict(recorded: RecordedPush) -> dict[str, Any]:
    """A ``RecordedPush`` as JSON-ready data (the idempotency store keeps this)."""
    return {
        "image": image_record_to_dict(recorded.image),
        "tag": recorded.tag,
        "tag_left_off": recorded.tag_left_off,
    }


def recorded_push_from_dict(data: Mapping[str, Any]) -> RecordedPush:
    """The inverse of ``recorded_push_to_dict``; also reads a bare image record."""
    if "image" not in data:  # stored before the result said why a tag was left off
        image = image_record_from_dict(data)
        return RecordedPush(image, None)
    tag = data.get("tag")
    return RecordedPush(
        image_record_from_dict(data["image"]),
        str(tag) if tag else None,
        str(data.get("tag_left_off", "")),
    )


def image_record_to_dict(record: ImageRecord) -> dict[str, Any]:
    """An ``ImageRecord`` as JSON-ready data (the idempotency store keeps this)."""
    return {
        "repository": record.repository,
        "digest": str(record.digest),
        "tags": sorted(record.tags),
        "pushed_at": record.pushed_at.isoformat(),
        "event_id": record.event_id,
        "verdict": record.verdict.value,
        "verdict_reason": record.verdict_reason,
    }


def image_record_from_dict(data: Mapping[str, Any]) -> ImageRecord:
    """The inverse of ``image_record_to_dict``."""
    return ImageRecord(
        repository=str(data["repository"]),
        digest=Digest.parse(data["digest"]),
        tags=frozenset(str(tag) for tag in data.get("tags", [])),
        pushed_at=datetime.fromisoformat(str(data["pushed_at"])),
        event_id=str(data.get("event_id", "")),
        verdict=Verdict(data.get("verdict", Verdict.UNKNOWN.value)),
        verdict_reason=str(data.get("verdict_reason", "")),
    )
