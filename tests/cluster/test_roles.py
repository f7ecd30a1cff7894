"""The rule of ``bluegreen.logic.roles``: which colour an action may touch, and when none."""

from __future__ import annotations

import itertools

import pytest

from bluegreen.domain.errors import RolesDisagree
from bluegreen.domain.models import CanaryEnv, Colour, Role
from bluegreen.logic import roles

BLUE, GREEN = Colour.BLUE, Colour.GREEN


class RolesSeen:
    """The part of the ``Cluster`` port the rule reads: canaryEnv and both selectors."""

    def __init__(self, canary: Colour, canary_app: Colour | None, production: Colour | None):
        self.canary = canary
        self.selectors = {Role.CANARY: canary_app, Role.PRODUCTION: production}
        self.reads = 0

    def canary_env(self) -> CanaryEnv:
        self.reads += 1
        return CanaryEnv(self.canary, "repo@sha256:" + "a" * 64)

    def service_selectors(self) -> dict[Role, Colour | None]:
        self.reads += 1
        return dict(self.selectors)


EVERY_STATE = list(itertools.product(Colour, [BLUE, GREEN, None], [BLUE, GREEN, None]))


@pytest.mark.parametrize(("canary", "canary_app", "production"), EVERY_STATE)
@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("colour", list(Colour))
def test_no_action_touches_a_colour_a_production_service_selects_unless_it_is_for_production(
    canary: Colour,
    canary_app: Colour | None,
    production: Colour | None,
    role: Role,
    colour: Colour,
) -> None:
    # GIVEN any combination of canaryEnv and Service selectors
    selectors = {Role.CANARY: canary_app, Role.PRODUCTION: production}

    # WHEN an action for ``role`` asks to touch ``colour``
    why = roles.refusal(canary, selectors, "deploy", role, colour)

    # THEN it may go ahead only when everything agrees and the colour is the role's own;
    # in particular never a canary action on what the production Service selects
    agree = canary_app is canary and production is canary.other
    own = colour is (canary if role is Role.CANARY else canary.other)
    assert (why is None) == (agree and own)
    if role is Role.CANARY and colour is production:
        assert why is not None


def test_a_disagreement_is_refused_naming_each_service_and_the_repair() -> None:
    # GIVEN a switch to green cut short after canaryEnv was written: both Services on green
    seen = RolesSeen(GREEN, GREEN, GREEN)

    # WHEN a canary deploy checks before touching green
    with pytest.raises(RolesDisagree) as refused:
        roles.check_may_touch(seen, "deploy", Role.CANARY, GREEN)  # type: ignore[arg-type]

    # THEN the refusal names the Service that disagrees, says nothing changed, and how to settle
    message = str(refused.value)
    assert "the production Service selects green but canaryEnv.selector makes blue" in message
    assert "nothing was changed" in message
    assert "bluegreen switch" in message


def test_a_canary_action_whose_colour_became_production_is_refused() -> None:
    # GIVEN the roles agree, but the canary moved to green after a deploy chose blue
    seen = RolesSeen(GREEN, GREEN, BLUE)

    # WHEN that deploy's hook checks before touching blue
    with pytest.raises(RolesDisagree, match="blue is the production now"):
        roles.check_may_touch(seen, "hook 'cache-flush'", Role.CANARY, BLUE)  # type: ignore[arg-type]


def test_an_agreeing_state_gives_the_colour_of_each_role() -> None:
    # GIVEN blue canary, green production, everywhere
    seen = RolesSeen(BLUE, BLUE, GREEN)

    # WHEN each role asks which colour it may touch
    # THEN canary work goes to blue, production work (by name) to green, in two reads each
    assert roles.check_may_touch(seen, "deploy", Role.CANARY) is BLUE  # type: ignore[arg-type]
    assert roles.check_may_touch(seen, "deploy", Role.PRODUCTION) is GREEN  # type: ignore[arg-type]
    assert seen.reads == 4
