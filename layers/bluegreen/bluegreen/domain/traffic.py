"""Where traffic goes: the router a stack uses, production's weights per colour, the canary.

Three routers move traffic between the colours (``RouterKind``):

``selector``
    the original system's: the canary and production Services' ``spec.selector.app``
    follow the roles; all of production's traffic is on one colour at a time.
``alb``
    an Ingress of the AWS Load Balancer Controller whose production rule forwards,
    through the ``alb.ingress.kubernetes.io/actions.<name>`` annotation, to the two
    per-colour Services with weights.
``gateway``
    a Gateway API HTTPRoute whose production rule has a weighted ``backendRef`` per
    colour.

``Weights`` are production's shares per colour, in percent, as ``canaryEnv`` carries
them (``{"blue": 90, "green": 10}``); ``Traffic`` is what a router object says now.
Plain types, no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import Colour

PERCENT = 100
"""What the weights of ``canaryEnv`` and of a strategy add up to."""

ROUTER_WEIGHT_MAX = 999
"""The largest weight the Load Balancer Controller accepts for a target group."""


class RouterKind(enum.StrEnum):
    """How a stack moves traffic between the colours (the ``TrafficRouter`` parameter)."""

    SELECTOR = "selector"
    ALB = "alb"
    GATEWAY = "gateway"

    @property
    def weighted(self) -> bool:
        """Whether a share of production traffic can go to each colour (alb, gateway)."""
        return self is not RouterKind.SELECTOR

    @classmethod
    def parse(cls, value: object, *, field_name: str = "router") -> RouterKind:
        """A router name; ``InvalidInput`` names the three that exist."""
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        names = ", ".join(kind.value for kind in cls)
        raise InvalidInput(
            field_name, f"{value!r} is not a traffic router: expected one of {names}"
        )


def _whole(value: object, where: str, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(where, f"must be a whole number from 0 to {top}, got {value!r}")
    if not 0 <= value <= top:
        raise InvalidInput(where, f"must be from 0 to {top}, got {value}")
    return value


@dataclass(frozen=True)
class Weights:
    """Production's share of traffic per colour.

    In ``canaryEnv`` and a strategy they are percentages adding up to 100
    (``parse``); read back from a router object they are whatever it holds (0-999
    each for the Load Balancer Controller), compared as they are.
    """

    blue: int
    green: int

    @classmethod
    def all_on(cls, colour: Colour) -> Weights:
        """Every request of production on ``colour``."""
        return cls.split(colour, PERCENT)

    @classmethod
    def split(cls, colour: Colour, share: int) -> Weights:
        """``share`` percent on ``colour``, the rest on the other colour."""
        share = _whole(share, "weight", PERCENT)
        values = {colour: share, colour.other: PERCENT - share}
        return cls(blue=values[Colour.BLUE], green=values[Colour.GREEN])

    @classmethod
    def parse(cls, value: object, *, field_name: str = "weights") -> Weights:
        """``{"blue": 90, "green": 10}``: both colours, whole percentages adding up to 100."""
        if not isinstance(value, Mapping):
            raise InvalidInput(
                field_name, f'must be an object like {{"blue": 90, "green": 10}}, got {value!r}'
            )
        unknown = sorted(str(key) for key in value if key not in {c.value for c in Colour})
        if unknown:
            raise InvalidInput(
                f"{field_name}.{unknown[0]}", "is not a colour: expected 'blue' and 'green'"
            )
        missing = [c.value for c in Colour if c.value not in value]
        if missing:
            raise InvalidInput(f"{field_name}.{missing[0]}", "is required (a weight per colour)")
        blue = _whole(value["blue"], f"{field_name}.blue", PERCENT)
        green = _whole(value["green"], f"{field_name}.green", PERCENT)
        if blue + green != PERCENT:
            raise InvalidInput(field_name, f"must add up to {PERCENT}, got {blue} + {green}")
        return cls(blue=blue, green=green)

    def of(self, colour: Colour) -> int:
        """The weight of ``colour``."""
        return self.blue if colour is Colour.BLUE else self.green

    def serves(self, colour: Colour) -> bool:
        """Whether any of production's traffic goes to ``colour``."""
        return self.of(colour) > 0

    @property
    def serving(self) -> frozenset[Colour]:
        """The colours that receive some of production's traffic."""
        return frozenset(colour for colour in Colour if self.serves(colour))

    @property
    def sole(self) -> Colour | None:
        """The colour that has all of production's traffic, if one has."""
        serving = self.serving
        return next(iter(serving)) if len(serving) == 1 else None

    def to_json(self) -> dict[str, int]:
        """``{"blue": 90, "green": 10}``."""
        return {"blue": self.blue, "green": self.green}

    def describe(self) -> str:
        """``blue 90, green 10`` (percent when they add up to 100)."""
        unit = " %" if self.blue + self.green == PERCENT else ""
        return f"blue {self.blue}{unit}, green {self.green}{unit}"


@dataclass(frozen=True)
class Traffic:
    """Where the router object sends each role's traffic now.

    ``production`` is None when the router object holds no weights this product can
    read (a missing or malformed action annotation); ``canary`` is None when the
    canary endpoint reaches no single colour. ``where`` names the object, for messages.
    """

    router: RouterKind
    production: Weights | None
    canary: Colour | None
    where: str = ""
    problem: str = ""
    """Why ``production`` or ``canary`` could not be read, in words (empty when they were)."""

    def serves_production(self, colour: Colour) -> bool:
        """Whether production traffic reaches ``colour`` (a weight above 0)."""
        return self.production is not None and self.production.serves(colour)


@dataclass(frozen=True)
class Confirmation:
    """Whether the data plane applies what a router object says.

    ``written`` is what the router's object says (``Traffic``); ``confirmed`` whether
    what carries the requests (the Services' endpoints, the load balancer's listener
    rules, the proxy's accepted route) is known to apply it; ``applied`` says what the
    data plane reports, in words, for a person and for an error's Cause.
    """

    written: Traffic
    confirmed: bool
    applied: str = ""
    observed: Weights | None = None
    """Production's weights as the data plane holds them, where it says them (the load
    balancer's listener rule); None where it only says whether it applies the object."""

    @classmethod
    def as_written(cls, written: Traffic) -> Confirmation:
        """What the object says, taken as applied: a data plane nobody waits for."""
        readable = not written.problem and written.production is not None
        return cls(
            written=written,
            confirmed=readable,
            applied="as its object says (not checked)" if readable else written.problem,
        )

    def describe(self) -> str:
        """``HTTPRoute "web" … sends production blue 90 %, green 10 %; the data plane: …``."""
        production = (
            self.written.production.describe() if self.written.production else "no readable weights"
        )
        return f"{self.written.where} sends production {production}; the data plane: {self.applied}"


@dataclass(frozen=True)
class ForwardRule:
    """A listener rule of a load balancer that forwards requests by weight.

    ``weights`` are per Kubernetes Service (the target group the controller made for
    it, told apart by the controller's tags); ``hosts`` and ``paths`` are the rule's
    conditions, which tie it to the Ingress rule it was made from.
    """

    hosts: tuple[str, ...]
    paths: tuple[str, ...]
    weights: Mapping[str, int]


@dataclass(frozen=True)
class ProgrammedBalancer:
    """What a load balancer made for an Ingress holds: its forwarding rules and, per
    Service, the health of each target registered in that Service's target group.

    ``problem`` says why nothing could be read (no load balancer carries the Ingress's
    tags yet, no listener), in words; ``where`` names the load balancer.
    """

    where: str
    rules: tuple[ForwardRule, ...] = ()
    targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    problem: str = ""
