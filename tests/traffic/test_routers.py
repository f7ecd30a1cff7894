"""The alb and gateway routers: a flip is one write of the weights and one of canaryEnv.

Each test runs on the emulator and on the real control plane (``backend``), with
both weighted routers. What the router object holds is read as stored. The
invariant: production traffic only reaches a colour canaryEnv gives a weight,
or, mid-move, the colour it was on.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.domain.errors import RolesDisagree, RouterObjectInvalid
from bluegreen.domain.models import Colour, Role
from bluegreen.domain.traffic import RouterKind, Weights
from bluegreen.logic import roles, services
from tests.backends import Backend
from tests.cluster.conftest import intercept
from tests.traffic.conftest import (
    CANARY_ACTION,
    OBJECT,
    PRODUCTION_ACTION,
    WEIGHTED,
    colour_selectors,
    stored_canary_env,
    stored_object,
    stored_weights,
)

BLUE, GREEN = Colour.BLUE, Colour.GREEN
GREEN_IMAGE = (
    "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud@sha256:"
    "216c0204fa1e71f93603c0d5087ef16d6b2ba5bce9084874bf9b2aebcddebc77"
)


@pytest.mark.parametrize("kind", WEIGHTED)
def test_a_switch_moves_the_weights_and_canary_env_and_never_a_selector(
    backend: Backend, make_routed: Callable[..., KubernetesCluster], kind: RouterKind
) -> None:
    # GIVEN the seed: blue the canary, production all on green, under a weighted router
    cluster = make_routed(kind)
    selectors_before = colour_selectors(backend)

    # WHEN green is made the canary
    changed = cluster.switch_roles(GREEN)

    # THEN production is all on blue and the canary rule on green, in the object as stored
    assert changed is True
    assert stored_weights(backend, kind) == ({"blue": 100, "green": 0}, {"blue": 0, "green": 100})
    # AND canaryEnv says the same, with the weights and what green runs
    assert stored_canary_env(backend) == {
        "selector": "green",
        "image": GREEN_IMAGE,
        "weights": {"blue": 100, "green": 0},
    }
    # AND no Service's selector moved: neither the colours' nor the legacy ones
    assert colour_selectors(backend) == selectors_before
    assert backend.stored("services", "production-service")["spec"]["selector"]["app"] == "green"
    # AND the adapter reads back what it wrote, in agreement
    traffic = cluster.traffic()
    assert (traffic.production, traffic.canary) == (Weights(100, 0), GREEN)
    assert roles.traffic_disagreements(cluster.canary_env(), traffic) == ()


@pytest.mark.parametrize("kind", WEIGHTED)
def test_a_share_of_production_lands_in_the_object_and_in_canary_env(
    backend: Backend, make_routed: Callable[..., KubernetesCluster], kind: RouterKind
) -> None:
    # GIVEN the seed (blue canary, production on green)
    cluster = make_routed(kind)

    # WHEN 10 % of production is given to the canary colour
    assert cluster.shift_traffic(Weights(blue=10, green=90)) is True

    # THEN the object's production rule holds 10/90, the canary rule still all on blue
    assert stored_weights(backend, kind) == ({"blue": 10, "green": 90}, {"blue": 100, "green": 0})
    assert stored_canary_env(backend)["weights"] == {"blue": 10, "green": 90}
    assert stored_canary_env(backend)["selector"] == "blue"
    # AND asking again writes nothing
    assert cluster.shift_traffic(Weights(blue=10, green=90)) is False


@pytest.mark.parametrize("kind", WEIGHTED)
def test_what_is_not_ours_in_the_object_is_left_as_it_was(
    backend: Backend, make_routed: Callable[..., KubernetesCluster], kind: RouterKind
) -> None:
    # GIVEN an object with things of its owner's: an annotation, another rule, another target
    def add_theirs(obj: dict[str, object]) -> None:
        metadata = obj["metadata"]
        assert isinstance(metadata, dict)
        metadata.setdefault("annotations", {})["team.example.com/owner"] = "web-team"
        spec = obj["spec"]
        assert isinstance(spec, dict)
        if kind is RouterKind.ALB:
            action = json.loads(metadata["annotations"][PRODUCTION_ACTION])
            action["forwardConfig"]["targetGroupStickinessConfig"] = {"enabled": True}
            action["forwardConfig"]["targetGroups"].append(
                {"serviceName": "maintenance", "servicePort": "80", "weight": 0}
            )
            metadata["annotations"][PRODUCTION_ACTION] = json.dumps(action)
            spec["rules"].append(
                {
                    "host": "static.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "static", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            )
        else:
            spec["rules"].append(
                {
                    "name": "static",
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    # A Service that exists: a Gateway resolves every ref of the route
                    # before it reports the route's refs resolved.
                    "backendRefs": [{"name": "production-service", "port": 80}],
                }
            )

    backend.mutate(OBJECT[kind], "web", add_theirs)
    before = stored_object(backend, kind)
    cluster = make_routed(kind)

    # WHEN the roles are switched
    cluster.switch_roles(GREEN)

    # THEN their annotation and rule are exactly as they were
    after = stored_object(backend, kind)
    assert after["metadata"]["annotations"]["team.example.com/owner"] == "web-team"
    assert after["spec"]["rules"][2:] == before["spec"]["rules"][2:]
    if kind is RouterKind.ALB:
        assert after["spec"] == before["spec"]
        forward = json.loads(after["metadata"]["annotations"][PRODUCTION_ACTION])["forwardConfig"]
        assert forward["targetGroupStickinessConfig"] == {"enabled": True}
        assert {"serviceName": "maintenance", "servicePort": "80", "weight": 0} in forward[
            "targetGroups"
        ]
        # AND only our two annotations changed
        changed = {
            key
            for key in after["metadata"]["annotations"]
            if after["metadata"]["annotations"][key] != before["metadata"]["annotations"].get(key)
        }
        assert changed == {PRODUCTION_ACTION, CANARY_ACTION}
    assert stored_weights(backend, kind)[0] == {"blue": 100, "green": 0}


@pytest.mark.parametrize("kind", WEIGHTED)
def test_a_write_that_loses_the_race_rereads_and_keeps_the_other_writers_change(
    backend: Backend, make_routed: Callable[..., KubernetesCluster], kind: RouterKind
) -> None:
    # GIVEN another writer that annotates the object right after the product has read it
    cluster = make_routed(kind)
    plural = OBJECT[kind]

    def annotate() -> None:
        def change(obj: dict[str, object]) -> None:
            obj["metadata"].setdefault("annotations", {})["other/writer"] = "was-here"  # type: ignore[attr-defined]

        backend.mutate(plural, "web", change)

    seen = intercept(
        cluster, lambda method, url: method == "GET" and f"/{plural}/web" in url, annotate
    )

    # WHEN the product shifts production (its write carries the version it read)
    cluster.shift_traffic(Weights(blue=50, green=50))

    # THEN its first write was refused (409: not among the answered requests), it read the
    # object again, wrote once more, and both changes are there
    # (reads after the write are the data plane's report being read back)
    ours = [method for method, url in seen if f"/{plural}/web" in url]
    patched = ours.index("PATCH")
    assert (ours[:patched], ours.count("PATCH")) == (["GET", "GET"], 1)
    assert stored_object(backend, kind)["metadata"]["annotations"]["other/writer"] == "was-here"
    assert stored_weights(backend, kind)[0] == {"blue": 50, "green": 50}


@pytest.mark.parametrize("kind", WEIGHTED)
def test_an_object_without_the_production_rule_is_refused_by_name_and_nothing_changes(
    backend: Backend, make_routed: Callable[..., KubernetesCluster], kind: RouterKind
) -> None:
    # GIVEN an object whose production rule forwards somewhere else (renamed by hand)
    def break_rule(obj: dict[str, object]) -> None:
        spec = obj["spec"]
        assert isinstance(spec, dict)
        if kind is RouterKind.ALB:
            spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "elsewhere"
        else:
            next(r for r in spec["rules"] if r["name"] == "production")["name"] = "main"

    backend.mutate(OBJECT[kind], "web", break_rule)
    canary_env_before = backend.stored("configmaps", "canary-env")["metadata"]["resourceVersion"]
    object_before = stored_object(backend, kind)["metadata"]["resourceVersion"]
    cluster = make_routed(kind)

    # WHEN the product reads it, and when it tries a switch
    with pytest.raises(RouterObjectInvalid) as read:
        cluster.traffic()
    with pytest.raises(RouterObjectInvalid) as switched:
        cluster.switch_roles(GREEN)

    # THEN the error names the object, the missing rule and what it has instead
    for error in (read.value, switched.value):
        text = str(error)
        assert 'web" in namespace' in text
        assert "has no production rule" in text
        assert ("production-weights" in text) if kind is RouterKind.ALB else ("'main'" in text)
    # AND nothing was written
    assert backend.stored("configmaps", "canary-env")["metadata"]["resourceVersion"] == (
        canary_env_before
    )
    assert stored_object(backend, kind)["metadata"]["resourceVersion"] == object_before


@pytest.mark.parametrize("kind", WEIGHTED)
def test_get_services_shows_the_live_weights_and_flags_a_hand_edit(
    backend: Backend, make_routed: Callable[..., KubernetesCluster], kind: RouterKind
) -> None:
    # GIVEN a promotion's 10 % step, then someone moving production to 50/50 by hand
    cluster = make_routed(kind)
    cluster.shift_traffic(Weights(blue=10, green=90))

    def by_hand(obj: dict[str, object]) -> None:
        if kind is RouterKind.ALB:
            annotations = obj["metadata"]["annotations"]  # type: ignore[index]
            action = json.loads(annotations[PRODUCTION_ACTION])
            for group in action["forwardConfig"]["targetGroups"]:
                group["weight"] = 50
            annotations[PRODUCTION_ACTION] = json.dumps(action)
        else:
            rule = next(r for r in obj["spec"]["rules"] if r["name"] == "production")  # type: ignore[index]
            for ref in rule["backendRefs"]:
                ref["weight"] = 50

    # WHEN the release is read before and after the hand edit
    agreed = services.service_status(cluster)
    backend.mutate(OBJECT[kind], "web", by_hand)
    edited = services.service_status(cluster)

    # THEN the live weights are shown, and the disagreement is named in words
    assert agreed.traffic is not None
    assert agreed.traffic.production == Weights(10, 90)
    assert agreed.in_agreement
    assert edited.traffic is not None
    assert edited.traffic.production == Weights(50, 50)
    assert edited.canary_env.weights == Weights(10, 90)
    assert not edited.in_agreement
    (problem,) = edited.disagreements
    assert "gives production blue 50 %, green 50 %" in problem
    assert "canaryEnv gives it blue 10 %, green 90 %" in problem


@pytest.mark.parametrize("kind", WEIGHTED)
def test_canary_work_is_refused_while_production_reaches_the_canary_colour(
    backend: Backend, make_routed: Callable[..., KubernetesCluster], kind: RouterKind
) -> None:
    # GIVEN 10 % of production on the canary colour (blue), everything in agreement
    cluster = make_routed(kind)
    cluster.shift_traffic(Weights(blue=10, green=90))

    # WHEN a canary deploy and a production deploy check whether they may go ahead
    with pytest.raises(RolesDisagree) as refused:
        roles.check_may_touch(cluster, "deploy", Role.CANARY)
    production = roles.check_may_touch(cluster, "deploy", Role.PRODUCTION)

    # THEN the canary deploy is refused: production traffic reaches blue
    assert "production traffic reaches the canary colour blue" in str(refused.value)
    assert "nothing was changed" in str(refused.value)
    # AND production work may touch green, the colour canaryEnv calls production
    assert production is GREEN


@pytest.mark.parametrize("kind", WEIGHTED)
def test_a_switch_cut_short_after_canary_env_leaves_production_where_it_was(
    backend: Backend, make_routed: Callable[..., KubernetesCluster], kind: RouterKind
) -> None:
    # GIVEN a switch to green that dies right after its canaryEnv write
    cluster = make_routed(kind)

    class Died(BaseException):
        pass

    def die() -> None:
        raise Died

    intercept(cluster, lambda method, url: method == "PUT" and "configmaps" in url, die)

    # WHEN it runs
    with pytest.raises(Died):
        cluster.switch_roles(GREEN)

    # THEN production is still all on green, where it was, though canaryEnv calls green canary
    assert stored_weights(backend, kind)[0] == {"blue": 0, "green": 100}
    assert stored_canary_env(backend)["selector"] == "green"
    # AND the roles rule refuses canary work on green: the router object disagrees
    fresh = make_routed(kind)
    with pytest.raises(RolesDisagree, match="disagree"):
        roles.check_may_touch(fresh, "deploy", Role.CANARY)
    # AND repeating the switch completes it
    assert fresh.switch_roles(GREEN) is True
    assert stored_weights(backend, kind)[0] == {"blue": 100, "green": 0}
