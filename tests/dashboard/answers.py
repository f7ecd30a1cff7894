"""Answers of the services API, shaped as the real one gives them (docs/openapi.json),
for the tests that put the dashboard in front of a fake API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bluegreen.domain.promotion import AnalysisPolicy, TargetGroupMetrics
from bluegreen.logic.analysis import judge
from tests.fake_api import FakeApi

REGISTRY = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud"
BLUE = "sha256:" + "1274e8bc4d963536e88265781170e72a2939caae25127cd9d400ab124393f946"
GREEN = "sha256:" + "216c0204fa1e71f93603c0d5087ef16d6b2ba5bce9084874bf9b2aebcddebc77"
NEW = "sha256:" + "ab" * 32
DEPLOYMENT_ID = "wp-platform-deploy-abab"
DEFAULT_APP = "wp-platform"


def colour(name: str, role: str, digest: str, **extra: Any) -> dict[str, Any]:
    return {
        "colour": name,
        "role": role,
        "image": f"{REGISTRY}@{digest}",
        "digest": digest,
        "replicas": {"desired": 2, "updated": 2, "ready": 2, "available": 2},
        "rollout": "complete",
        "message": f'deployment "{name}-deployment" successfully rolled out',
        **extra,
    }


def services(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "canary": "blue",
        "production": "green",
        "colours": {
            "blue": colour("blue", "canary", BLUE),
            "green": colour("green", "production", GREEN),
        },
        "canaryEnv": {"selector": "blue", "image": f"{REGISTRY}@{BLUE}", "present": True},
        "services": {"canary": "blue", "production": "green"},
        "inAgreement": True,
        "disagreements": [],
    }
    body.update(changes)
    return body


def images() -> dict[str, Any]:
    return {
        "images": [
            {
                "digest": NEW,
                "repository": "rezfusion-cloud",
                "tags": ["dev"],
                "pushedAt": "2026-12-01T10:00:00Z",
                "verdict": "unknown",
                "verdictReason": "",
                "runningOn": [],
            }
        ],
        "nextCursor": None,
        "clusterError": "",
    }


def record(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": DEPLOYMENT_ID,
        "application": "wp-platform",
        "action": "deploy",
        "service": "production",
        "colour": "green",
        "toDigest": NEW,
        "fromDigest": GREEN,
        "trigger": "api",
        "actor": "arn:aws:iam::123456789012:user/alice",
        "sourceIp": "127.0.0.1",
        "tag": "",
        "startedAt": "2026-12-01T10:01:00Z",
        "finishedAt": None,
        "outcome": "running",
        "reason": "promotion of the checkout fix",
        "rolledBackTo": None,
        "executionArn": f"arn:aws:states:us-west-2:123456789012:execution:deploy:{DEPLOYMENT_ID}",
        "hookLogs": {},
    }
    body.update(changes)
    return body


def deployment(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": DEPLOYMENT_ID,
        "record": record(),
        "executionArn": record()["executionArn"],
        "execution": {"status": "RUNNING", "startDate": "2026-12-01T10:01:00Z"},
        "consoleUrl": "https://us-west-2.console.aws.amazon.com/states/home#/v2/executions/x",
    }
    body.update(changes)
    return body


def timeline() -> dict[str, Any]:
    return {
        "id": DEPLOYMENT_ID,
        "executionArn": record()["executionArn"],
        "status": "RUNNING",
        "steps": [
            {
                "phase": "lock",
                "title": "Lock",
                "status": "succeeded",
                "startedAt": "2026-12-01T10:01:00Z",
                "endedAt": "2026-12-01T10:01:01Z",
                "detail": "taken",
                "hooks": [],
            }
        ],
        "error": "",
        "cause": "",
        "truncated": False,
    }


def app(name: str, created_by: str = "arn:aws:iam::123456789012:user/admin") -> dict[str, Any]:
    """An application as ``GET /apps`` lists it (``AppBody``)."""
    return {
        "name": name,
        "version": 1,
        "spec": {"cluster": "shop", "namespace": name, "repository": f"shop/{name}"},
        "changedBy": created_by,
        "changedAt": "2026-11-30T09:00:00Z",
        "createdBy": created_by,
        "createdAt": "2026-11-30T09:00:00Z",
        "sourceIp": "127.0.0.1",
    }


def serve_release(api: FakeApi, **service_changes: Any) -> None:
    """The read routes of a release with one deployment running on production, the stack's
    default application: in the registry too, and under its /apps/{app} routes."""
    path = f"/v1/deployments/{DEPLOYMENT_ID}"
    registry = {"apps": [app(DEFAULT_APP, created_by="stack parameters")], "nextCursor": None}
    api.routes.update(
        {
            ("GET", "/v1/apps"): (200, registry),
            ("GET", f"/v1/apps/{DEFAULT_APP}/services"): (200, services(**service_changes)),
            ("GET", "/v1/services"): (200, services(**service_changes)),
            ("GET", "/v1/images"): (200, images()),
            ("GET", "/v1/deployments"): (200, {"deployments": [record()], "nextCursor": None}),
            ("GET", path): (200, deployment()),
            ("GET", f"{path}/timeline"): (200, timeline()),
        }
    )


def traffic(**changes: Any) -> dict[str, Any]:
    """``traffic`` of ``GET /services`` for the ``alb`` router, the move confirmed."""
    body: dict[str, Any] = {
        "router": "alb",
        "object": "Ingress production/www",
        "weights": {"blue": 10, "green": 90},
        "canary": "blue",
        "problem": "",
        "confirmed": True,
        "dataPlane": "listener rule arn:aws:elasticloadbalancing:rule/www/1 forwards blue 10 %, "
        "green 90 %; every registered target healthy",
        "heldWeights": {"blue": 10, "green": 90},
    }
    body.update(changes)
    return body


# -- a progressive promotion that failed its analysis at its second step -------------------

PROMOTION_ID = "wp-platform-promote-cdcd"
POLICY = AnalysisPolicy(max_error_percent=2.5, max_p99_seconds=0.8, min_requests=50)
"""Limits unlike the defaults (1 %, 1 s): a page that drew the defaults would be caught."""
PROMOTION_START = datetime.fromisoformat("2026-12-01T10:01:00+00:00")
STEP_TWO_AT = PROMOTION_START + timedelta(seconds=195)
BACKED_OUT_AT = STEP_TWO_AT + timedelta(seconds=61)
FINISHED_AT = BACKED_OUT_AT + timedelta(seconds=4)
READINGS = (
    # (weight, window start, seconds, requests, 5xx, p99): 0.5 % then no traffic at all,
    # then 2 % (under the limit), then 4 % and a p99 of 1.2 s at 50 % (both over it).
    (10, PROMOTION_START + timedelta(seconds=10), 60, 400, 2, 0.3),
    (10, PROMOTION_START + timedelta(seconds=70), 60, 0, 0, None),
    (10, PROMOTION_START + timedelta(seconds=130), 60, 500, 10, 0.45),
    (50, STEP_TWO_AT, 60, 1000, 40, 1.2),
)


def readings() -> list[dict[str, Any]]:
    """Each reading as the flow records it: judged by the product's own ``judge``, so the
    page reads the limits from the reasons that code writes."""
    found = []
    for weight, start, seconds, requests, errors, p99 in READINGS:
        judged = judge(
            TargetGroupMetrics("targetgroup/blue/1", requests, errors, p99),
            (),
            (),
            POLICY,
            start=start,
            end=start + timedelta(seconds=seconds),
            weight=weight,
        )
        found.append({**judged.to_json(), "step": 0 if weight == 10 else 1})
    return found


def promotion_progress() -> dict[str, Any]:
    """``promotion`` of ``GET /deployments/{id}``: backed out after its failing reading."""
    analyses = readings()
    return {
        "status": "backed_out",
        "step": 2,
        "steps": [{"weight": 10, "pause": 180}, {"weight": 50, "pause": 180}, {"weight": 100}],
        "weights": {"blue": 0, "green": 100},
        "canary": "blue",
        "production": "green",
        "waitingForPerson": False,
        "waitingFor": "",
        "analyses": analyses,
        "gates": [],
        "abortRequestedBy": "",
        "cause": "the canary blue failed its analysis at 50 %",
        "stepStartedAt": STEP_TWO_AT.isoformat(),
        "failedAt": analyses[-1]["end"],
        "backedOutAt": BACKED_OUT_AT.isoformat(),
    }


def serve_promotion(api: FakeApi) -> None:
    """The read routes of a release whose last deployment is that promotion."""
    promoted = record(
        id=PROMOTION_ID,
        action="promote",
        colour="blue",
        startedAt=PROMOTION_START.isoformat(),
        finishedAt=FINISHED_AT.isoformat(),
        outcome="failed",
        reason="the canary blue failed its analysis at 50 %",
    )
    path = f"/v1/deployments/{PROMOTION_ID}"
    execution = {
        "status": "FAILED",
        "startDate": PROMOTION_START.isoformat(),
        "stopDate": FINISHED_AT.isoformat(),
        "error": "AnalysisFailed",
        "cause": promoted["reason"],
    }
    serve_release(api, traffic=traffic(weights={"blue": 0, "green": 100}, heldWeights=None))
    api.routes.update(
        {
            ("GET", "/v1/deployments"): (200, {"deployments": [promoted], "nextCursor": None}),
            ("GET", path): (
                200,
                deployment(
                    id=PROMOTION_ID,
                    record=promoted,
                    execution=execution,
                    promotion=promotion_progress(),
                ),
            ),
            ("GET", f"{path}/timeline"): (200, {**timeline(), "id": PROMOTION_ID}),
        }
    )
