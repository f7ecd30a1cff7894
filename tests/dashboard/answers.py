"""Answers of the services API, shaped as the real one gives them (docs/openapi.json),
for the tests that put the dashboard in front of a fake API."""

from __future__ import annotations

from typing import Any

from tests.fake_api import FakeApi

REGISTRY = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud"
BLUE = "sha256:" + "1274e8bc4d963536e88265781170e72a2939caae25127cd9d400ab124393f946"
GREEN = "sha256:" + "216c0204fa1e71f93603c0d5087ef16d6b2ba5bce9084874bf9b2aebcddebc77"
NEW = "sha256:" + "ab" * 32
DEPLOYMENT_ID = "wp-platform-deploy-abab"


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


def serve_release(api: FakeApi, **service_changes: Any) -> None:
    """The read routes of a release with one deployment running on production."""
    path = f"/v1/deployments/{DEPLOYMENT_ID}"
    api.routes.update(
        {
            ("GET", "/v1/services"): (200, services(**service_changes)),
            ("GET", "/v1/images"): (200, images()),
            ("GET", "/v1/deployments"): (200, {"deployments": [record()], "nextCursor": None}),
            ("GET", path): (200, deployment()),
            ("GET", f"{path}/timeline"): (200, timeline()),
        }
    )
