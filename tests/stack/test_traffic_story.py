"""``make demo ROUTER=alb|gateway``: the traffic story on the local stack, re-checked
from outside.

The demo verifies its steps itself; these run its story (``local.demo.Story``) on a
stack with a weighted router and its traffic simulator (the alb router on the
emulator; the gateway and alb routers on the real control plane, RBAC on, at the
demo's x10, with their real data plane), then look again through the Kubernetes API,
moto's CloudWatch and ELBv2, the proxy and the ledger, independently of the demo's code.

On the real control plane a recorder runs beside the whole story:

- ``gateway``: the canaries are judged from the Prometheus that scrapes Traefik; the
  demo's traffic steps (flip, promotion, flip-back, failed
  promotion) send real requests through Traefik (``local.load``, from inside the pod
  network) and record the weights Traefik routes by over time; from those records:
  under each weight, each colour's share is the weight within ``SHARE_TOLERANCE``; no
  request failed; after the back-out the bad colour answered none. (One client
  only: Traefik balances across all its clients, so a second one beside it would
  see a share off by several points, as a first attempt here did: 6.4 % at 10 %.)
- ``alb``: the weights the product wrote into the Ingress and those the listener rule
  in moto's ELBv2 holds, over time: every write is held by the rule within
  ``RULE_DEADLINE`` (the product does not wait for it yet; the deadline bounds the
  controller's reconcile).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from kubernetes import client as k8s

from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.adapters.promotions import DynamoPromotions
from bluegreen.config import Settings
from bluegreen.domain.models import Digest, Outcome, Verdict
from local.demo import KUBE_SPEED, StepResult, Story
from local.load import LoadGenerator, WeightTimeline, by_weights
from local.stack import (
    LOCAL_TARGET_GROUPS,
    PROMETHEUS_SCRAPE_SECONDS,
    PROMETHEUS_SCRAPES_PER_WINDOW,
    LocalStack,
    StackOptions,
)
from tests.stack.admin import admin_client
from tests.waiting import eventually

PRODUCTION_ACTION = "alb.ingress.kubernetes.io/actions.production-weights"

pytestmark = [
    pytest.mark.stack,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("emulator", "alb", 120.0), id="emulator-alb"),
        pytest.param(("kube", "gateway", KUBE_SPEED), id="kube-gateway", marks=pytest.mark.kube),
        pytest.param(("kube", "alb", KUBE_SPEED), id="kube-alb", marks=pytest.mark.kube),
    ],
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    cluster, router, speed = request.param
    options = StackOptions.ephemeral(
        tmp_path_factory.mktemp(f"traffic-stack-{cluster}"),
        speed=speed,
        cluster=cluster,
        router=router,
        traffic_rate=400,
    )
    with LocalStack(options) as running:
        yield running


def _production_weights(stack: LocalStack) -> dict[str, int]:
    """The router object's production weights per Service, as stored."""
    assert stack.state is not None
    with admin_client(stack) as api:
        if stack.options.router == "alb":
            ingress = k8s.NetworkingV1Api(api).read_namespaced_ingress("web", "wp-platform")
            groups = json.loads(ingress.metadata.annotations[PRODUCTION_ACTION])
            return {g["serviceName"]: g["weight"] for g in groups["forwardConfig"]["targetGroups"]}
        route = k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", "wp-platform", "httproutes", "web"
        )
        (rule,) = [r for r in route["spec"]["rules"] if r.get("name") == "production"]
        return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


def _selectors(stack: LocalStack) -> dict[str, dict[str, str]]:
    with admin_client(stack) as api:
        core = k8s.CoreV1Api(api)
        return {
            colour: core.read_namespaced_service(f"{colour}-service", "wp-platform").spec.selector
            for colour in ("blue", "green")
        }


SHARE_TOLERANCE = 3.0
"""Percentage points: Traefik's weighted round robin is exact over a cycle; what is left
is the ends of a stretch of constant weights, seen up to one poll late."""
SHARE_MINIMUM = 100
RULE_DEADLINE = 60.0
"""Seconds the listener rule may take to hold a write (the controller's reconcile)."""
TRAFFIC_STEPS = range(8, 12)


@dataclass
class Recording:
    """What was recorded beside the story on the real control plane."""

    told: Story | None = None
    written: WeightTimeline | None = None
    """The production weights the Ingress's annotation holds (alb)."""
    held: WeightTimeline | None = None
    """The production weights the listener rule in moto's ELBv2 holds (alb)."""
    ended: float = 0.0


def _colours(weights: dict[str, int] | None) -> dict[str, int] | None:
    if weights is None:
        return None
    return {k.removesuffix("-service"): v for k, v in weights.items()}


@pytest.fixture(scope="module")
def recording(stack: LocalStack) -> Iterator[Recording]:
    recording = Recording()
    if stack.load_balancers is not None:
        recording.written = WeightTimeline(lambda: _colours(_production_weights(stack))).start()
        recording.held = WeightTimeline(lambda: _colours(stack.listener_weights())).start()
    yield recording
    for timeline in (recording.written, recording.held):
        if timeline is not None:
            timeline.stop()


@pytest.fixture(scope="module")
def story(stack: LocalStack, recording: Recording) -> list[StepResult]:
    recording.told = Story(stack, io.StringIO())
    results = recording.told.run()
    if recording.held is not None:
        # The last write may still be on its way to the load balancer.
        _wait_held(recording, time.monotonic() + RULE_DEADLINE)
    recording.ended = time.monotonic()
    return results


def _real_records(
    stack: LocalStack, recording: Recording
) -> list[tuple[LoadGenerator, WeightTimeline]]:
    assert stack.proxy is not None, "the real proxy runs under gateway on the real control plane"
    assert recording.told is not None
    records = list(recording.told.real_records.values())
    assert len(records) == len(TRAFFIC_STEPS), recording.told.real_records.keys()
    return records


def _wait_held(recording: Recording, deadline: float) -> None:
    assert recording.written is not None
    assert recording.held is not None
    held, written = recording.held.changes, recording.written.changes
    eventually(
        "the listener rule holding the last weights written",
        lambda: bool(held and written and held[-1][1] == written[-1][1]),
        max(0.0, deadline - time.monotonic()),
    )


def _aws(stack: LocalStack, service: str) -> Any:
    assert stack.state is not None
    return boto3.client(
        service,
        endpoint_url=stack.state.moto_url,
        region_name=stack.state.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _ledger(stack: LocalStack) -> DynamoLedger:
    assert stack.state is not None
    settings = Settings.from_env(stack.state.environment)
    return DynamoLedger(
        settings.ledger_table,
        _aws(stack, "dynamodb"),
        settings.application,
        repository=settings.repository,
    )


def test_every_step_of_the_traffic_story_is_verified(story: list[StepResult]) -> None:
    assert [r.number for r in story] == list(range(2, 13))
    assert all(r.verified for r in story), [r.problem for r in story if not r.verified]


def test_the_router_ends_with_production_all_on_green_and_no_selector_moved(
    stack: LocalStack, story: list[StepResult]
) -> None:
    # GIVEN the story ran (its last promotion was backed out)
    # THEN production is all on green in the router object, as stored
    assert _production_weights(stack) == {"blue-service": 0, "green-service": 100}
    # AND the per-colour Services still select their own colour
    assert _selectors(stack) == {"blue": {"app": "blue"}, "green": {"app": "green"}}


def test_the_simulated_traffic_reached_moto_cloudwatch_per_target_group(
    stack: LocalStack, story: list[StepResult]
) -> None:
    # WHEN blue's target group is read back for the last ten minutes
    cloudwatch = _aws(stack, "cloudwatch")
    now = datetime.now(UTC)
    assert stack.state is not None
    load_balancer = stack.state.environment["BG_ANALYSIS_LOAD_BALANCER"]
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "errors",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/ApplicationELB",
                        "MetricName": "HTTPCode_Target_5XX_Count",
                        "Dimensions": [
                            {"Name": "TargetGroup", "Value": LOCAL_TARGET_GROUPS["blue"]},
                            {
                                "Name": "LoadBalancer",
                                "Value": load_balancer,
                            },
                        ],
                    },
                    "Period": 600,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
    )
    # THEN the errors image's 5xx are there, as an ALB would have published them
    (result,) = answer["MetricDataResults"]
    assert sum(result["Values"]) >= 1


def test_the_ledger_holds_the_promotions_and_the_flip_back(
    stack: LocalStack, story: list[StepResult]
) -> None:
    ledger = _ledger(stack)
    promoted, flip_back, failed = story[7], story[8], story[9]
    passed_record = ledger.deployment(promoted.facts["deploymentId"])
    failed_record = ledger.deployment(failed.facts["deploymentId"])
    flip_record = ledger.deployment(flip_back.facts["recordId"])
    assert passed_record is not None
    assert failed_record is not None
    assert flip_record is not None
    assert (passed_record.action, passed_record.outcome) == ("promote", Outcome.SUCCEEDED)
    assert (failed_record.action, failed_record.outcome) == ("promote", Outcome.FAILED)
    assert failed_record.cause.startswith("AnalysisFailed: ")
    assert (flip_record.action, flip_record.outcome) == ("rollback", Outcome.SUCCEEDED)
    # the flipped-back digest and the failing one are judged failed
    assert ledger.verdict(Digest.parse(promoted.facts["digest"])) is Verdict.FAILED
    assert ledger.verdict(Digest.parse(failed.facts["digest"])) is Verdict.FAILED


@pytest.mark.kube
@pytest.mark.only_on("kube-gateway")
def test_real_requests_split_by_the_weights_traefik_routes_by(
    stack: LocalStack, story: list[StepResult], recording: Recording
) -> None:
    records = _real_records(stack, recording)
    # THEN Traefik routed by several weights during the traffic steps
    spans = [span for load, timeline in records for span in by_weights(load, timeline)]
    judged = [(w, t) for w, t in spans if sum(t.served.values()) >= SHARE_MINIMUM]
    seen = {(w["blue"], w["green"]) for w, _ in judged}
    assert {(0, 100), (10, 90), (50, 50)} <= seen, spans
    # AND under each, each colour answered its weight's share of the real requests
    for weights, tally in judged:
        total = sum(weights.values())
        for colour, weight in weights.items():
            assert abs(tally.share(colour) - 100.0 * weight / total) <= SHARE_TOLERANCE, (
                weights,
                tally,
            )
    print(
        "real requests by weight:", [(f"{w['blue']}/{w['green']}", t.to_json()) for w, t in spans]
    )


@pytest.mark.kube
@pytest.mark.only_on("kube-gateway")
def test_no_real_request_failed_through_the_flips_promotions_and_back_out(
    stack: LocalStack, story: list[StepResult], recording: Recording
) -> None:
    records = _real_records(stack, recording)
    # GIVEN every request the traffic steps sent
    tallies = [load.tally() for load, _ in records]
    # THEN many were sent, each answered by a pod
    sent = sum(t.sent for t in tallies)
    assert sent >= 1000, tallies
    assert [t.failed for t in tallies] == [0, 0, 0, 0], tallies
    # AND the image answering 5 % 500s was the only source of 5xx, on blue, in the last step
    assert [set(t.errors) for t in tallies] == [set(), set(), set(), {"blue"}], tallies
    print("real requests per traffic step:", [t.to_json() for t in tallies])


@pytest.mark.kube
@pytest.mark.only_on("kube-gateway")
def test_the_back_out_takes_every_real_request_off_the_bad_colour(
    stack: LocalStack, story: list[StepResult], recording: Recording
) -> None:
    load, timeline = _real_records(stack, recording)[-1]
    # GIVEN the failed promotion put 10 % on blue, then backed out to 0
    changes = timeline.changes
    assert [w for _, w in changes][-2:] == [
        {"blue": 10, "green": 90},
        {"blue": 0, "green": 100},
    ], changes
    backed_out = changes[-1][0]
    # THEN blue answered real requests (some of them its own 500s) while at 10 %
    at_ten = load.tally(changes[-2][0], backed_out)
    assert at_ten.served["blue"] > 0, at_ten
    assert at_ten.errors["blue"] >= 1, at_ten
    # AND none once Traefik routed by the back-out
    after = load.tally(backed_out)
    assert after.sent > 0
    assert after.served["blue"] == 0, after
    assert after.failed == 0, after


def _promotion(stack: LocalStack, promotion_id: str) -> dict[str, Any]:
    """A promotion's progress (its readings among it), as the flow stored it."""
    assert stack.state is not None
    settings = Settings.from_env(stack.state.environment)
    record = DynamoPromotions(
        settings.ledger_table, _aws(stack, "dynamodb"), settings.application
    ).record(promotion_id)
    assert record is not None, promotion_id
    return dict(record.progress)


@pytest.mark.kube
@pytest.mark.only_on("kube-gateway")
def test_the_failing_canary_is_backed_out_on_prometheus_counts_of_the_real_requests(
    stack: LocalStack, story: list[StepResult], recording: Recording
) -> None:
    load, timeline = _real_records(stack, recording)[-1]
    assert stack.state is not None
    environment = stack.state.environment
    # GIVEN a stack whose canaries are judged from the Prometheus scraping Traefik, each
    # window spanning several of its scrapes on the wall clock
    assert environment["BG_METRIC_PROVIDER"] == "prometheus"
    assert environment["BG_PROMETHEUS_URL"] == stack.state.data_plane["prometheus_url"]
    window = int(environment["BG_ANALYSIS_INTERVAL_SECONDS"]) / stack.options.speed
    assert window >= PROMETHEUS_SCRAPES_PER_WINDOW * PROMETHEUS_SCRAPE_SECONDS
    # WHEN the failed promotion's readings are read back
    progress = _promotion(stack, story[9].facts["deploymentId"])
    failing = progress["analyses"][-1]
    # THEN the failing reading is Prometheus' figures of blue's backend, no target group's
    assert failing["finding"] == "failed", progress["analyses"]
    assert failing["reasons"][0] == "Service wp-platform/blue-service (blue) in Prometheus"
    assert not any("target group" in reason for reason in failing["reasons"]), failing
    assert failing["errorPercent"] > 1.0, failing
    # AND its count is the real requests blue answered in its window (Prometheus'
    # extrapolation aside), not the simulator's, which sends blue four times as many
    offset = time.time() - time.monotonic()
    start = datetime.fromisoformat(failing["start"]).timestamp() - offset
    end = datetime.fromisoformat(failing["end"]).timestamp() - offset
    real = load.tally(start, end).served["blue"]
    assert real > 0
    assert 0.5 * real <= failing["requests"] <= 1.5 * real + 10, (failing, real)
    # AND once Traefik routed by the back-out, blue answered no real request
    backed_out = timeline.changes[-1]
    assert backed_out[1] == {"blue": 0, "green": 100}, timeline.changes
    after = load.tally(backed_out[0])
    assert after.sent > 0
    assert after.served["blue"] == 0, after
    confirmed = datetime.fromisoformat(progress["backedOutAt"]).timestamp() - offset
    print(
        f"failing reading: {failing['requests']:.0f} requests, {failing['errorPercent']:.2f} % "
        f"5xx in Prometheus; blue answered {real} real requests in that window; after the "
        f"back-out was confirmed: {load.tally(confirmed).served['blue']} on blue, after "
        f"Traefik routed by it: {after.served['blue']}"
    )


@pytest.mark.kube
@pytest.mark.only_on("kube-alb")
def test_every_weight_the_product_wrote_is_held_by_the_listener_rule(
    stack: LocalStack, story: list[StepResult], recording: Recording
) -> None:
    assert stack.load_balancers is not None
    assert recording.written is not None
    assert recording.held is not None
    written, held = recording.written.changes, recording.held.changes
    # THEN the product wrote flips and promotion steps
    values = [(w["blue"], w["green"]) for _, w in written]
    assert {(100, 0), (0, 100), (10, 90), (50, 50)} <= set(values), written
    # AND each write was held by the listener rule in moto, within the deadline
    delays = []
    for index, (at, weights) in enumerate(written):
        later = written[index + 1][0] if index + 1 < len(written) else None
        match = next((t for t, w in held if w == weights and t >= at - 0.2), None)
        assert match is not None, (weights, written, held)
        assert match - at <= RULE_DEADLINE, (weights, match - at)
        # held before the next write came (the rule never skipped one)
        if later is not None:
            assert match <= later + RULE_DEADLINE, (weights, written, held)
        delays.append(max(0.0, match - at))
    # AND the rule never held weights the product had not written
    assert {tuple(sorted(w.items())) for _, w in held} <= {
        tuple(sorted(w.items())) for _, w in written
    }, (held, written)
    median = sorted(delays)[len(delays) // 2]
    longest = max(delays)
    print(f"write -> listener rule: {len(delays)} writes, median {median:.2f}s, max {longest:.2f}s")


@pytest.mark.kube
@pytest.mark.only_on("kube-gateway")
def test_the_state_file_says_how_to_reach_the_proxy_and_prometheus(
    stack: LocalStack, story: list[StepResult]
) -> None:
    import shlex
    import subprocess
    import urllib.parse
    import urllib.request

    assert stack.proxy is not None
    # GIVEN what stack.json publishes
    state = json.loads((stack.options.state_dir / "stack.json").read_text())
    plane = state["data_plane"]
    assert plane["pod_network"].startswith("/proc/")
    assert plane["pod_network"] in plane["try"]
    assert stack.banner().count(plane["try"]) == 1
    # WHEN its command line is run as printed
    argv = shlex.split(plane["try"])
    answer = subprocess.run(argv, capture_output=True, timeout=20, check=True)
    # THEN a pod of production's colour answers through the proxy
    assert json.loads(answer.stdout)["colour"] == "green"
    # AND Prometheus, at the published URL, has counted the proxy's requests per service
    query = 'sum by (service) (traefik_service_requests_total{service=~".*green-service.*"})'
    url = f"{plane['prometheus_url']}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as reply:
        result = json.load(reply)["data"]["result"]
    assert result
    assert float(result[0]["value"][1]) > 1000
