"""Domain types of a blue/green + canary release.

Plain dataclasses and enums only: this module is imported by every function at
cold start, so it must stay free of boto3, pydantic and the Kubernetes client.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bluegreen.domain.errors import InvalidInput

if TYPE_CHECKING:
    from bluegreen.domain.traffic import Weights

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ANY_CASE_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# Docker's grammar for a tag, which is what ECR accepts: ASCII only, so ``dév`` is no tag.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

TAG_GRAMMAR = "letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-'"
"""The tag grammar in words, for messages that refuse a tag."""


def is_tag(value: str) -> bool:
    """True when ``value`` is an image tag by Docker's grammar (what ECR accepts).

    The one definition of a tag: the services API refuses any other ``imageTag``
    and ``ecr_push`` ignores an event that reports one.
    """
    return bool(_TAG.fullmatch(value))


@dataclass(frozen=True, order=True)
class Digest:
    """An image content digest, always sha256.

    Accepts ``sha256:<64 hex>`` and bare ``<64 hex>`` (what the original
    ``imageTag`` field carried); ``str()`` gives the canonical ``sha256:`` form.
    """

    hex: str

    @classmethod
    def parse(cls, value: object, *, field_name: str = "digest") -> Digest:
        """Parse a digest, raising ``InvalidInput`` with a message that says what is wrong."""
        if not isinstance(value, str):
            raise InvalidInput(field_name, f"must be a string, got {type(value).__name__}")
        text = value.strip()
        if "@" in text:
            raise InvalidInput(
                field_name,
                f"{value!r} is an image reference: pass the digest (sha256:<hex>), not the "
                f"image reference (the part after '@' is the digest)",
            )
        algorithm, sep, rest = text.partition(":")
        if sep:
            if algorithm.lower() == "sha256" and algorithm != "sha256":
                raise InvalidInput(
                    field_name,
                    f"{value!r} is not a sha256 digest: digests are lowercase ('sha256:')",
                )
            if algorithm != "sha256":
                raise InvalidInput(
                    field_name,
                    f"{value!r} uses algorithm {algorithm!r}; only sha256 digests are accepted",
                )
            text = rest
        if _ANY_CASE_HEX64.fullmatch(text) and not _HEX64.fullmatch(text):
            raise InvalidInput(
                field_name,
                f"{value!r} is not a sha256 digest: digests are lowercase "
                f"(expected 64 lowercase hex characters)",
            )
        if not _HEX64.fullmatch(text):
            raise InvalidInput(
                field_name,
                f"{value!r} is not a sha256 digest: expected 64 lowercase hex characters, "
                f"optionally prefixed with 'sha256:' (got {len(text)} characters)",
            )
        return cls(text)

    @classmethod
    def looks_like(cls, value: str) -> bool:
        """True when ``value`` can only be meant as a digest, so it is never a tag.

        A tag holds neither ``:`` nor ``@``, so anything with one of them is a
        digest or an image reference (``sha512:…``, ``SHA256:…``, ``repo@sha256:…``)
        and ``parse`` says what is wrong with it; 64 hex characters in any case
        are a digest too, whatever a registry would accept as a tag.
        """
        text = value.strip()
        return ":" in text or "@" in text or bool(_ANY_CASE_HEX64.fullmatch(text))

    @property
    def short(self) -> str:
        """First 12 hex characters, as people quote digests."""
        return self.hex[:12]

    def __str__(self) -> str:
        return f"sha256:{self.hex}"


class Colour(enum.StrEnum):
    """The two colours; constants of the original system."""

    BLUE = "blue"
    GREEN = "green"

    @property
    def other(self) -> Colour:
        return Colour.GREEN if self is Colour.BLUE else Colour.BLUE

    @classmethod
    def parse(cls, value: object, *, field_name: str = "selector") -> Colour:
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise InvalidInput(field_name, f"{value!r} is not a colour: expected 'blue' or 'green'")


INITIAL_CANARY = Colour.BLUE
"""The canary colour when the ConfigMap has no ``canaryEnv`` key (original system)."""


class Role(enum.StrEnum):
    """What a colour serves: the canary or production."""

    CANARY = "canary"
    PRODUCTION = "production"

    @classmethod
    def parse(cls, value: object, *, field_name: str = "service") -> Role:
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise InvalidInput(
            field_name, f"{value!r} is not a service: expected 'canary' or 'production'"
        )


class Verdict(enum.StrEnum):
    """Health verdict of a digest for the application."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    FAILED = "failed"


class Outcome(enum.StrEnum):
    """Where a deployment ended (or that it has not ended yet)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    NO_OP = "no_op"
    """A queued action found the state its caller saw gone, and changed nothing."""
    INTERRUPTED = "interrupted"
    """Stopped by something other than a judgement of the digest (a step that died, a
    cluster out of reach, a lost lock): put back where it could be, the digest unjudged."""


@dataclass(frozen=True)
class ImageRecord:
    """One digest pushed to the application's repository."""

    repository: str
    digest: Digest
    tags: frozenset[str]
    pushed_at: datetime
    event_id: str = ""
    verdict: Verdict = Verdict.UNKNOWN
    verdict_reason: str = ""


@dataclass(frozen=True)
class Roles:
    """Which colour is the canary; the other one is production."""

    canary: Colour

    @property
    def production(self) -> Colour:
        return self.canary.other

    def colour_of(self, role: Role) -> Colour:
        return self.canary if role is Role.CANARY else self.production


@dataclass(frozen=True)
class CanaryEnv:
    """The ``canaryEnv`` value of the ConfigMap, with the version it was read at.

    ``weights`` (``bluegreen.domain.traffic.Weights``) are production's shares per colour,
    which the ``alb`` and ``gateway`` routers keep there; None when the key is absent
    (the selector router's, and the original system's, canaryEnv).
    """

    selector: Colour
    image: str
    resource_version: str | None = None
    present: bool = True
    weights: Weights | None = None


@dataclass(frozen=True)
class RolloutState:
    """A colour's Deployment as the rollout controller reports it."""

    colour: Colour
    image: str
    desired: int
    updated: int
    ready: int
    available: int
    generation: int
    observed_generation: int
    complete: bool
    stalled: bool
    message: str = ""
    progress_deadline_seconds: int = 600

    @property
    def digest(self) -> Digest | None:
        _, _, hex_part = self.image.partition("@sha256:")
        return Digest(hex_part) if _HEX64.fullmatch(hex_part) else None


@dataclass(frozen=True)
class Hook:
    """A post-deploy hook: a Job built from the colour's pod template."""

    name: str
    command: tuple[str, ...]
    on_failure: str = "rollback"  # "rollback" | "continue"
    timeout_seconds: int = 300


@dataclass(frozen=True)
class HookRun:
    """A hook Job as it stands: running, succeeded or failed, with its log tail."""

    job_name: str
    finished: bool
    succeeded: bool
    log_tail: str = ""
    reason: str = ""


@dataclass
class Deployment:
    """One deployment (or rollback) of the application, as the ledger records it.

    Written by whoever starts the execution, before starting it (the API, the ECR
    auto-deploy), or by the execution's first step when nobody did (a console run),
    so ``trigger``, ``actor`` and ``source_ip`` say what really started it.
    ``reason`` is the caller's own words and stays on every outcome; ``cause`` says
    how it ended. ``seen_image`` is what the service's colour ran when the request
    was made and ``waits_behind`` the deployment that held the lock then: a queued
    action acts only on that state. ``colour`` and ``from_digest`` are filled in
    when the execution takes the lock; until then the request is waiting.
    """

    id: str
    application: str
    action: str  # "deploy" | "rollback"
    role: Role
    colour: Colour | None
    to_digest: Digest | None
    from_digest: Digest | None
    trigger: str
    actor: str
    started_at: datetime
    outcome: Outcome = Outcome.RUNNING
    execution_arn: str = ""
    source_ip: str = ""
    tag: str = ""
    finished_at: datetime | None = None
    reason: str = ""
    rolled_back_to: Digest | None = None
    hook_logs: dict[str, str] = field(default_factory=dict)
    force: bool = False
    seen_image: str = ""
    waits_behind: str = ""
    cause: str = ""


@dataclass(frozen=True)
class AlarmStates:
    """What CloudWatch says of the named alarms: which are in ALARM, which do not exist."""

    alarming: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
