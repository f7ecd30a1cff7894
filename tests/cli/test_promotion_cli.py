"""``bluegreen promote --steps``, ``resume``, ``abort``, and ``show`` of a promotion."""

from __future__ import annotations

from collections.abc import Callable

from tests.cli.conftest import Run
from tests.fake_api import FakeApi

PROMOTION = "wp-platform-promote-abc"
STARTED = {
    "deploymentId": PROMOTION,
    "executionArn": f"arn:aws:states:us-west-2:123456789012:execution:deploy:{PROMOTION}",
    "consoleUrl": "https://console.aws.amazon.com/states/home",
    "action": "promote",
    "service": "production",
}


def test_promote_with_steps_sends_the_strategy(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN the API accepts a promotion
    api.routes[("POST", "/promote")] = (202, STARTED)

    # WHEN the canary is promoted 10 -> 50 (manual) -> 100, 300 s at 10
    run = bluegreen("--endpoint", api.url, "promote", "--steps", "10:300,50:manual,100")

    # THEN the steps are the API's strategy, as written
    assert run.code == 0, run.err
    assert api.seen[0].body == {
        "strategy": {
            "steps": [
                {"weight": 10, "pause": 300},
                {"weight": 50, "pause": "manual"},
                {"weight": 100},
            ]
        }
    }
    assert PROMOTION in run.out


def test_steps_of_the_wrong_shape_are_a_usage_error_and_call_nothing(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    run = bluegreen("--endpoint", api.url, "promote", "--steps", "10,half,100")
    assert run.code == 2
    assert "'half' is not WEIGHT[:SECONDS|manual]" in run.err
    assert api.seen == []


def test_resume_and_abort_post_to_the_promotions_gate(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    # GIVEN the API takes both decisions
    api.routes[("POST", f"/deployments/{PROMOTION}/resume")] = (
        200,
        {"deploymentId": PROMOTION, "decision": "resume", "step": 2},
    )
    api.routes[("POST", f"/deployments/{PROMOTION}/abort")] = (
        200,
        {"deploymentId": PROMOTION, "decision": "abort", "step": 2},
    )

    # WHEN a person resumes, holds and aborts
    resumed = bluegreen("--endpoint", api.url, "resume", PROMOTION, "--reason", "dashboards ok")
    held = bluegreen("--endpoint", api.url, "resume", PROMOTION, "--hold")
    aborted = bluegreen("--endpoint", api.url, "abort", PROMOTION)

    # THEN each is one POST with its body, and says what was decided
    assert (resumed.code, held.code, aborted.code) == (0, 0, 0)
    assert [(s.path, s.body) for s in api.seen] == [
        (f"/deployments/{PROMOTION}/resume", {"reason": "dashboards ok"}),
        (f"/deployments/{PROMOTION}/resume", {"hold": True}),
        (f"/deployments/{PROMOTION}/abort", {}),
    ]
    assert "resume" in resumed.out


def test_a_resume_refused_by_the_api_exits_2_with_its_words(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    api.routes[("POST", f"/deployments/{PROMOTION}/resume")] = (
        409,
        {"error": "NotWaiting", "detail": f"promotion {PROMOTION} waits for no person"},
    )
    run = bluegreen("--endpoint", api.url, "resume", PROMOTION)
    assert run.code == 2
    assert "waits for no person" in run.err


def test_show_of_a_promotion_says_where_it_is_and_that_it_waits(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    # GIVEN a promotion waiting at its 50 % gate, two readings so far
    api.routes[("GET", f"/deployments/{PROMOTION}")] = (
        200,
        {
            "id": PROMOTION,
            "record": {"id": PROMOTION, "action": "promote", "outcome": "running"},
            "executionArn": STARTED["executionArn"],
            "execution": {"status": "RUNNING"},
            "consoleUrl": None,
            "promotion": {
                "status": "waiting",
                "step": 2,
                "steps": [
                    {"weight": 10, "pause": 300},
                    {"weight": 50, "pause": "manual"},
                    {"weight": 100},
                ],
                "weights": {"blue": 50, "green": 50},
                "canary": "blue",
                "production": "green",
                "waitingForPerson": True,
                "waitingFor": "step 2 (50 % on blue) pauses for a person",
                "analyses": [
                    {
                        "weight": 10,
                        "finding": "passed",
                        "requests": 812,
                        "errorPercent": 0.1,
                        "p99Seconds": 0.08,
                    },
                    {
                        "weight": 50,
                        "finding": "passed",
                        "requests": 4020,
                        "errorPercent": 0.2,
                        "p99Seconds": 0.09,
                    },
                ],
                "gates": [],
            },
        },
    )

    # WHEN it is shown
    run = bluegreen("--endpoint", api.url, "show", PROMOTION)

    # THEN the step, the weights, the wait and each reading are printed
    assert run.code == 0, run.err
    assert "2 of 3: 10 % (300) -> 50 % (manual) -> 100 %" in run.out
    assert "blue 50 %, green 50 %" in run.out
    assert "for a person: step 2 (50 % on blue) pauses for a person" in run.out
    assert "4020" in run.out
