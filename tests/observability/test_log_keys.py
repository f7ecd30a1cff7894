"""Handlers share one Powertools logger per process; a step's keys stay with its step."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bluegreen.domain.errors import InvalidInput
from bluegreen.observability import logger
from functions.deploy_steps import app as deploy_steps
from functions.deploy_steps import dependencies


@dataclass
class _Context:
    function_name: str = "deploy-steps"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-west-2:123456789012:function:deploy-steps"
    aws_request_id: str = "request-1"


def test_a_deploy_step_leaves_no_step_key_on_the_shared_logger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the steps function with its ports stubbed out (the step name is checked first)
    monkeypatch.setattr(dependencies, "deploy_ports", lambda: None)

    # WHEN it runs a step, here one that does not exist and fails
    with pytest.raises(InvalidInput, match="not a step of the deploy flow"):
        deploy_steps.lambda_handler({"step": "no-such-step"}, _Context())

    # THEN the next handler's lines (services_api, ecr_push in the same process) do not
    # carry this step's key
    assert "step" not in logger.get_current_keys()
