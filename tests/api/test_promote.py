"""``POST /promote`` with a strategy, refusals during a promotion, ``POST /rollback``'s flip-back.

Through the real handler. The state machine is created but not executed here: these
tests assert what the API starts, records and refuses (the flow itself is
``tests/flow/test_promotion_flow.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bluegreen.domain.models import Colour, Deployment, Outcome, Role
from bluegreen.domain.promotion import FlipBack
from functions.services_api.api import dependencies
from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import KNOWN, OLDER, Stack, call, event, pinned

ALICE = "arn:aws:sts::123456789012:assumed-role/release-engineer/alice"


@pytest.fixture
def promoting(monkeypatch: pytest.MonkeyPatch, alb: Stack) -> Stack:
    """The stack with the alb router, its steps pausing two minutes by default."""
    monkeypatch.setenv("BG_PROMOTION_PAUSE_SECONDS", "120")
    dependencies.reset(clients=False)
    return alb


def promote(body: dict[str, Any]) -> Any:
    return call(event("promote", body=body))


def test_a_promotion_with_a_strategy_starts_the_flows_promotion_with_it(
    promoting: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN the alb router; blue (the canary) runs OLDER, pinned
    # WHEN blue is promoted 10 % (300 s) -> 50 % (no pause given) -> 100 %
    answer = promote(
        {"strategy": {"steps": [{"weight": 10, "pause": 300}, {"weight": 50}, {"weight": 100}]}}
    )

    # THEN the flow's promotion was started with the strategy, the stack's pause filled in
    assert answer.status == 202, answer.body
    assert answer.body["action"] == "promote"
    assert answer.body["service"] == "production"
    assert answer.body["digest"] == str(OLDER)
    flow_input = promoting.execution_input(answer.body["executionArn"])
    assert flow_input["action"] == "promote"
    assert flow_input["strategy"] == {
        "steps": [
            {"weight": 10, "pause": 300},
            {"weight": 50, "pause": 120},
            {"weight": 100, "pause": 0},
        ]
    }
    # AND the request was recorded with who asked, before the start
    record = ledger.deployment(answer.body["deploymentId"])
    assert (record.action, record.role, record.actor) == ("promote", Role.PRODUCTION, ALICE)
    assert record.to_digest == OLDER
    assert record.seen_image == pinned(KNOWN)


def test_a_promotion_without_a_strategy_runs_the_stacks(
    promoting: Stack, ledger: Any, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack whose default strategy is 25 % for a minute, then 100 %
    monkeypatch.setenv("BG_PROMOTION_STEPS", '[{"weight": 25, "pause": 60}, {"weight": 100}]')
    dependencies.reset(clients=False)

    # WHEN the canary is promoted with no body
    answer = call(event("promote"))

    # THEN the stack's strategy is what the flow runs
    assert answer.status == 202, answer.body
    assert promoting.execution_input(answer.body["executionArn"])["strategy"]["steps"] == [
        {"weight": 25, "pause": 60},
        {"weight": 100, "pause": 0},
    ]


@pytest.mark.parametrize(
    ("strategy", "status", "said"),
    [
        ({"steps": [{"weight": 10}, {"weight": 50}]}, 400, "must end at 100 (the roles swap"),
        ({"steps": [{"weight": 50}, {"weight": 10}, {"weight": 100}]}, 400, "more than the step"),
        ({"steps": [{"weight": 150}]}, 422, "strategy.steps.0.weight"),
        ({"steps": [{"weight": 10, "pause": "later"}, {"weight": 100}]}, 422, "pause"),
        ({"steps": [{"weight": 10, "pause": -5}, {"weight": 100}]}, 422, "pause"),
        ({"steps": []}, 422, "strategy.steps"),
        ({"steps": [{"weight": 100, "wait": 3}]}, 422, "is not a field"),
    ],
    ids=["not-to-100", "decreasing", "over-100", "pause-word", "negative-pause", "empty", "field"],
)
def test_a_strategy_of_the_wrong_shape_is_refused_naming_what_is_wrong(
    promoting: Stack, ledger: Any, emu: ClusterEmulator, strategy: Any, status: int, said: str
) -> None:
    # WHEN a promotion with that strategy is asked for
    answer = promote({"strategy": strategy})

    # THEN a clear 4xx that names the problem, and nothing was started or recorded
    assert answer.status == status, answer.body
    assert said in answer.body["detail"]
    assert promoting.executions() == []


def test_a_strategy_under_the_selector_router_is_refused(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN the default (selector) router
    # WHEN a progressive promotion is asked for
    answer = promote({"strategy": {"steps": [{"weight": 10, "pause": 60}, {"weight": 100}]}})

    # THEN 409 TrafficNotWeighted, saying what would work, and nothing was started
    assert answer.status == 409
    assert answer.body["error"] == "TrafficNotWeighted"
    assert "POST /promote without a strategy" in answer.body["detail"]
    assert stack.executions() == []


def _running_promotion(ledger: Any, stack: Stack) -> str:
    promotion_id = f"{stack.application}-promote-1"
    ledger.put_deployment(
        Deployment(
            id=promotion_id,
            application=stack.application,
            action="promote",
            role=Role.PRODUCTION,
            colour=Colour.BLUE,
            to_digest=OLDER,
            from_digest=KNOWN,
            trigger="api",
            actor=ALICE,
            started_at=datetime.now(UTC),
        )
    )
    assert ledger.acquire_lock(promotion_id, 900)
    return promotion_id


@pytest.mark.parametrize(
    "request_event", ["deploy_to_production", "rollback_canary", "rollback_production"]
)
def test_a_deploy_or_rollback_during_a_promotion_is_refused_naming_it(
    promoting: Stack, ledger: Any, emu: ClusterEmulator, request_event: str
) -> None:
    # GIVEN a progressive promotion that holds the lock
    promotion_id = _running_promotion(ledger, promoting)

    # WHEN a deploy or a rollback arrives
    answer = call(event(request_event))

    # THEN 409 naming the running promotion and how to follow or stop it; nothing started
    assert answer.status == 409, answer.body
    assert answer.body["error"] == "PromotionInProgress"
    assert promotion_id in answer.body["detail"]
    assert f"/deployments/{promotion_id}/abort" in answer.body["detail"]
    assert promoting.executions() == []


def test_a_switch_during_a_promotion_is_refused_naming_it(
    promoting: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    promotion_id = _running_promotion(ledger, promoting)
    answer = call(event("switch_to_green"))
    assert answer.status == 409
    assert answer.body["error"] == "LockHeld"
    assert promotion_id in answer.body["detail"]


def _after_a_promotion(emu: ClusterEmulator, until: datetime) -> None:
    """The state a promotion of blue leaves: blue production at 100 %, green the canary
    (still running what production ran), and the flip-back window kept."""
    dependencies.cluster().switch_roles(Colour.GREEN)
    dependencies.promotions().keep_flip_back(
        FlipBack(
            promotion_id="p-1",
            production="blue",
            previous="green",
            previous_image=pinned(KNOWN),
            promoted_digest=str(OLDER),
            until=until,
        )
    )


def test_a_rollback_of_production_within_the_window_flips_back_at_once(
    promoting: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN blue was just promoted, and green still runs what production ran
    _after_a_promotion(emu, datetime.now(UTC) + timedelta(hours=1))

    # WHEN production is rolled back
    answer = call(event("rollback_production"))

    # THEN it is done at once (200): production all on green again, blue the canary; no flow
    assert answer.status == 200, answer.body
    assert answer.body["flippedBack"] is True
    assert (answer.body["production"], answer.body["canary"]) == ("green", "blue")
    assert answer.body["weights"] == {"blue": 0, "green": 100}
    assert promoting.executions() == []
    traffic = dependencies.cluster().traffic()
    assert traffic.production is not None
    assert traffic.production.to_json() == {"blue": 0, "green": 100}
    assert traffic.canary is Colour.BLUE
    # AND it is recorded with the caller, and the promoted digest is marked failed
    record = ledger.deployment(answer.body["recordId"])
    assert (record.action, record.outcome, record.actor) == ("rollback", Outcome.SUCCEEDED, ALICE)
    assert "instant flip-back of promotion p-1" in record.cause
    assert ledger.verdict(OLDER).value == "failed"
    # AND the window is used up: a second rollback goes through the flow
    again = call(event("rollback_production"))
    assert again.status == 202
    assert again.body["action"] == "rollback"


def test_a_rollback_after_the_window_goes_through_the_flow(
    promoting: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a promotion whose flip-back window has passed
    _after_a_promotion(emu, datetime.now(UTC) - timedelta(seconds=1))

    # WHEN production is rolled back
    answer = call(event("rollback_production"))

    # THEN the flow's rollback is started; the weights are untouched
    assert answer.status == 202
    assert answer.body["action"] == "rollback"
    traffic = dependencies.cluster().traffic()
    assert traffic.production is not None
    assert traffic.production.to_json() == {"blue": 100, "green": 0}


def test_a_rollback_once_the_old_colour_runs_something_else_goes_through_the_flow(
    promoting: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a promotion within its window, but the canary (green) was deployed since
    _after_a_promotion(emu, datetime.now(UTC) + timedelta(hours=1))
    dependencies.cluster().set_deployment_image(Colour.GREEN, pinned(OLDER))

    # WHEN production is rolled back
    answer = call(event("rollback_production"))

    # THEN no flip-back to an image production never ran: the flow's rollback
    assert answer.status == 202
    assert answer.body["action"] == "rollback"


# --- gates: resume, abort, and what GET /deployments/{id} shows ------------------------


class Tokens:
    """Step Functions' callbacks, kept in memory: which token got what."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def succeed(self, token: str, output: Any) -> bool:
        self.sent.append(("success", token))
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        self.sent.append((error, token))
        return True

    def heartbeat(self, token: str) -> bool:
        self.sent.append(("heartbeat", token))
        return True


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch, promoting: Stack) -> Tokens:
    fake = Tokens()
    monkeypatch.setattr(dependencies, "task_tokens", lambda: fake)
    return fake


def _gate_event(action: str, promotion_id: str, body: Any = None) -> dict[str, Any]:
    loaded = event(f"{action}_promotion")
    loaded["path"] = f"/deployments/{promotion_id}/{action}"
    loaded["pathParameters"] = {"id": promotion_id}
    if body is not None:
        import json

        loaded["body"] = json.dumps(body)
    return loaded


def _at_a_gate(ledger: Any, stack: Stack, *, waiting: bool) -> str:
    promotion_id = _running_promotion(ledger, stack)
    store = dependencies.promotions()
    store.save(
        promotion_id,
        {
            "status": "gate",
            "step": 1,
            "steps": [
                {"weight": 10, "pause": 60},
                {"weight": 50, "pause": "manual"},
                {"weight": 100},
            ],
            "weights": {"blue": 50, "green": 50},
            "canary": "blue",
            "production": "green",
            "analyses": [{"finding": "passed", "requests": 812, "errorPercent": 0.0}],
        },
    )
    if waiting:
        assert store.open_gate(promotion_id, "token-1", "step 2 (50 % on blue) pauses for a person")
    return promotion_id


def test_get_deployment_shows_the_step_weights_readings_and_that_it_waits(
    promoting: Stack, ledger: Any, emu: ClusterEmulator, tokens: Tokens
) -> None:
    # GIVEN a promotion at its 50 % gate
    promotion_id = _at_a_gate(ledger, promoting, waiting=True)

    # WHEN it is looked at
    answer = call(
        event(
            "get_deployment",
            path=f"/deployments/{promotion_id}",
            pathParameters={"id": promotion_id},
        )
    )

    # THEN the step, the weights, the readings so far and the wait are shown; no token
    assert answer.status == 200, answer.body
    promotion = answer.body["promotion"]
    assert (promotion["step"], promotion["weights"]) == (2, {"blue": 50, "green": 50})
    assert promotion["waitingForPerson"] is True
    assert "pauses for a person" in promotion["waitingFor"]
    assert promotion["analyses"][0]["requests"] == 812
    assert "token-1" not in str(answer.body)


def test_resume_at_a_gate_sends_its_token_and_records_who(
    promoting: Stack, ledger: Any, emu: ClusterEmulator, tokens: Tokens
) -> None:
    promotion_id = _at_a_gate(ledger, promoting, waiting=True)

    answer = call(_gate_event("resume", promotion_id))

    assert answer.status == 200, answer.body
    assert answer.body == {"deploymentId": promotion_id, "decision": "resume", "step": 2}
    assert tokens.sent == [("success", "token-1")]
    record = dependencies.promotions().record(promotion_id)
    assert record is not None
    assert record.waiting == ""
    (gate,) = record.gates
    assert (gate.decision, gate.actor) == ("resume", ALICE)
    assert gate.reason == "50 % looks good on the dashboards"
    # AND a second resume finds nothing waiting: 409, no second token sent
    again = call(_gate_event("resume", promotion_id))
    assert again.status == 409
    assert again.body["error"] == "NotWaiting"
    assert tokens.sent == [("success", "token-1")]


def test_abort_at_a_gate_fails_its_token_with_promotion_aborted(
    promoting: Stack, ledger: Any, emu: ClusterEmulator, tokens: Tokens
) -> None:
    promotion_id = _at_a_gate(ledger, promoting, waiting=True)
    answer = call(_gate_event("abort", promotion_id))
    assert answer.status == 200, answer.body
    assert answer.body["decision"] == "abort"
    assert tokens.sent == [("PromotionAborted", "token-1")]


def test_a_hold_is_a_heartbeat_and_the_gate_keeps_waiting(
    promoting: Stack, ledger: Any, emu: ClusterEmulator, tokens: Tokens
) -> None:
    promotion_id = _at_a_gate(ledger, promoting, waiting=True)
    answer = call(_gate_event("resume", promotion_id, {"hold": True}))
    assert answer.status == 200, answer.body
    assert answer.body["decision"] == "hold"
    assert tokens.sent == [("heartbeat", "token-1")]
    record = dependencies.promotions().record(promotion_id)
    assert record is not None
    assert record.waiting


def test_a_resume_of_a_promotion_that_waits_for_nothing_is_409_and_changes_nothing(
    promoting: Stack, ledger: Any, emu: ClusterEmulator, tokens: Tokens
) -> None:
    # GIVEN a promotion analysing its step, at no gate
    promotion_id = _at_a_gate(ledger, promoting, waiting=False)

    # WHEN someone resumes it
    answer = call(_gate_event("resume", promotion_id))

    # THEN 409 NotWaiting saying where it is; nothing sent, nothing recorded
    assert answer.status == 409
    assert answer.body["error"] == "NotWaiting"
    assert (
        "waits for no person (step 2 of 3, production blue 50 %, green 50 %"
        in answer.body["detail"]
    )
    assert tokens.sent == []
    record = dependencies.promotions().record(promotion_id)
    assert record is not None
    assert record.gates == ()


@pytest.mark.parametrize("action", ["resume", "abort"])
def test_a_decision_about_what_is_not_a_running_promotion_is_refused(
    promoting: Stack, ledger: Any, emu: ClusterEmulator, tokens: Tokens, action: str
) -> None:
    # GIVEN a deploy (not a promotion), and an id nobody knows
    deployed = call(event("deploy_to_production"))
    assert deployed.status == 202

    # WHEN a person resumes or aborts them
    not_a_promotion = call(_gate_event(action, deployed.body["deploymentId"]))
    unknown = call(_gate_event(action, "wp-platform-promote-nobody"))

    # THEN 409 NotWaiting and 404 NotFound, and nothing was sent
    assert not_a_promotion.status == 409
    assert "not a progressive promotion" in not_a_promotion.body["detail"]
    assert unknown.status == 404
    assert tokens.sent == []


def test_an_abort_while_analysing_is_kept_for_the_promotions_next_step(
    promoting: Stack, ledger: Any, emu: ClusterEmulator, tokens: Tokens
) -> None:
    promotion_id = _at_a_gate(ledger, promoting, waiting=False)
    answer = call(_gate_event("abort", promotion_id))
    assert answer.status == 200, answer.body
    record = dependencies.promotions().record(promotion_id)
    assert record is not None
    assert (record.abort_requested_by, record.abort_reason) == (ALICE, "checkout latency up")
    assert tokens.sent == []
    # AND a second abort is refused: one was asked already
    assert call(_gate_event("abort", promotion_id)).status == 409
