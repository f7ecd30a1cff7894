"""Which colour an action may touch, given what canaryEnv says and what the Services select.

The rule behind "a canary deploy never touches what production selects". A deploy,
rollback, promotion or hook acts on the colour its role (canary or production) has
in canaryEnv. That is only safe while both Services agree with canaryEnv: in the
middle of a switch, or after a hand edit, the production Service can select the
colour canaryEnv calls the canary, and canary work there would reach production
traffic. So:

* while canaryEnv and the Services disagree, nothing may touch either colour
  (the refusal names the disagreement; a switch of the canary colour completes
  or repairs it);
* an action may touch only the colour its role has now: a canary action whose
  colour has become production (the production Service selects it) is refused,
  and so is a production action whose colour has become the canary. A deploy
  that targets production by name touches production: that is what it is for.

The API checks this before it starts the deploy flow, and the flow checks it again
right before each cluster write to a colour, because an execution can start long
after the request that started it, or from the console.
"""

from __future__ import annotations

from collections.abc import Mapping

from bluegreen.domain.errors import RolesDisagree
from bluegreen.domain.models import Colour, Role
from bluegreen.domain.ports import Cluster

REPAIR = (
    'switching the canary colour (POST /services {"selector": ...}, `bluegreen switch '
    "<colour>`) completes or repairs it"
)


def disagreements(canary: Colour, selectors: Mapping[Role, Colour | None]) -> tuple[str, ...]:
    """Each Service that does not select what ``canary`` (canaryEnv.selector) makes it, in words."""
    problems = []
    for role in Role:
        expected = canary if role is Role.CANARY else canary.other
        actual = selectors.get(role)
        if actual is not expected:
            shown = actual.value if actual is not None else "nothing"
            problems.append(
                f"the {role.value} Service selects {shown} but canaryEnv.selector makes "
                f"{expected.value} the {role.value}"
            )
    return tuple(problems)


def refusal(
    canary: Colour,
    selectors: Mapping[Role, Colour | None],
    action: str,
    role: Role,
    colour: Colour | None = None,
) -> str | None:
    """Why ``action`` for ``role`` must not touch ``colour`` (default: the role's colour) now.

    ``canary`` is what canaryEnv.selector says, ``selectors`` what each Service selects.
    None when the action may go ahead.
    """
    problems = disagreements(canary, selectors)
    if problems:
        return (
            f"{action} for the {role.value} refused: canaryEnv and the Services disagree "
            f"({'; '.join(problems)}), so either colour may be serving production; "
            f"nothing was changed. A switch in progress settles this in seconds; otherwise "
            f"{REPAIR}"
        )
    now = canary if role is Role.CANARY else canary.other
    if colour is not None and colour is not now:
        other = Role.PRODUCTION if role is Role.CANARY else Role.CANARY
        return (
            f"{action} for the {role.value} on {colour.value} refused: {colour.value} is the "
            f"{other.value} now (the {other.value} Service selects it; the {role.value} is "
            f"{now.value}), the roles changed after this {action} chose its colour; "
            "nothing was changed"
        )
    return None


def check_may_touch(
    cluster: Cluster, action: str, role: Role, colour: Colour | None = None
) -> Colour:
    """Read canaryEnv and both Services; ``RolesDisagree`` unless the action may go ahead.

    Returns the colour the action may touch (``colour``, or the role's colour).
    """
    canary = cluster.canary_env().selector
    why = refusal(canary, cluster.service_selectors(), action, role, colour)
    if why is not None:
        raise RolesDisagree(why)
    return canary if role is Role.CANARY else canary.other
