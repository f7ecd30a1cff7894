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

Under the ``alb`` and ``gateway`` routers the Services' selectors never change; the
router object (an Ingress, an HTTPRoute) says where traffic goes, and canaryEnv
carries production's weights. There "production selects a colour" means a
production weight above 0: the router object must give production the weights
canaryEnv gives and send the canary to canaryEnv's canary colour, and a canary
action is refused on a colour production traffic reaches (as it does while a
progressive promotion has shifted a share to the canary).
"""

from __future__ import annotations

from collections.abc import Mapping

from bluegreen.domain.errors import RolesDisagree
from bluegreen.domain.models import CanaryEnv, Colour, Role
from bluegreen.domain.ports import Cluster
from bluegreen.domain.traffic import RouterKind, Traffic, Weights

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


def expected_production(env: CanaryEnv) -> Weights:
    """Production's weights as canaryEnv says them: its ``weights``, else all on production."""
    return env.weights if env.weights is not None else Weights.all_on(env.selector.other)


def traffic_disagreements(env: CanaryEnv, traffic: Traffic) -> tuple[str, ...]:
    """Where the router object does not send traffic as canaryEnv says, in words."""
    if traffic.router is RouterKind.SELECTOR:
        production = traffic.production.sole if traffic.production is not None else None
        return disagreements(
            env.selector, {Role.CANARY: traffic.canary, Role.PRODUCTION: production}
        )
    problems = []
    expected = expected_production(env)
    if traffic.production != expected:
        shown = (
            traffic.production.describe()
            if traffic.production is not None
            else f"no weights this product can read ({traffic.problem})"
        )
        problems.append(
            f"{traffic.where} gives production {shown} but canaryEnv gives it {expected.describe()}"
        )
    if traffic.canary is not env.selector:
        shown = traffic.canary.value if traffic.canary is not None else "no single colour"
        problems.append(
            f"{traffic.where} sends the canary to {shown} but canaryEnv.selector makes "
            f"{env.selector.value} the canary"
        )
    return tuple(problems)


def traffic_refusal(
    env: CanaryEnv, traffic: Traffic, action: str, role: Role, colour: Colour | None = None
) -> str | None:
    """``refusal`` for any router: why ``action`` for ``role`` must not touch ``colour`` now."""
    if traffic.router is RouterKind.SELECTOR:
        production = traffic.production.sole if traffic.production is not None else None
        return refusal(
            env.selector,
            {Role.CANARY: traffic.canary, Role.PRODUCTION: production},
            action,
            role,
            colour,
        )
    problems = traffic_disagreements(env, traffic)
    if problems:
        return (
            f"{action} for the {role.value} refused: canaryEnv and {traffic.where} disagree "
            f"({'; '.join(problems)}), so either colour may be serving production; nothing "
            f"was changed. A move in progress settles this in seconds; otherwise {REPAIR}"
        )
    now = env.selector if role is Role.CANARY else env.selector.other
    if colour is not None and colour is not now:
        other = Role.PRODUCTION if role is Role.CANARY else Role.CANARY
        return (
            f"{action} for the {role.value} on {colour.value} refused: {colour.value} is the "
            f"{other.value} now (the {role.value} is {now.value}), the roles changed after "
            f"this {action} chose its colour; nothing was changed"
        )
    if role is Role.CANARY and traffic.serves_production(now):
        assert traffic.production is not None
        return (
            f"{action} for the canary refused: production traffic reaches the canary colour "
            f"{now.value} ({traffic.where} gives production {traffic.production.describe()}), "
            "as it does during a progressive promotion; nothing was changed"
        )
    return None


def _traffic(cluster: Cluster) -> Traffic:
    """The router object's traffic; from the Services' selectors for a cluster without one."""
    reader = getattr(cluster, "traffic", None)
    if callable(reader):
        found = reader()
        if isinstance(found, Traffic):
            return found
    selectors = cluster.service_selectors()
    production = selectors.get(Role.PRODUCTION)
    return Traffic(
        router=RouterKind.SELECTOR,
        production=Weights.all_on(production) if production is not None else Weights(0, 0),
        canary=selectors.get(Role.CANARY),
        where="the canary and production Services",
    )


def check_may_touch(
    cluster: Cluster, action: str, role: Role, colour: Colour | None = None
) -> Colour:
    """Read canaryEnv and the router object; ``RolesDisagree`` unless the action may go ahead.

    Returns the colour the action may touch (``colour``, or the role's colour).
    """
    env = cluster.canary_env()
    why = traffic_refusal(env, _traffic(cluster), action, role, colour)
    if why is not None:
        raise RolesDisagree(why)
    return env.selector if role is Role.CANARY else env.selector.other
