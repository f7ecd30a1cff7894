"""Least privilege: each role may do what its code does, on the one resource it does it
to, and nothing else. A permission added, widened or lost breaks one of these tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.template.cfn import (
    as_list,
    load_template,
    managed_policies,
    own_role,
    policies,
    statements,
)

# SAM policy templates allowed, with the one action each grants and the template
# argument that names its single resource.
POLICY_TEMPLATES = {
    "StepFunctionsExecutionPolicy": ("states:StartExecution", "StateMachineName"),
    "EventBridgePutEventsPolicy": ("events:PutEvents", "EventBusName"),
    "LambdaInvokePolicy": ("lambda:InvokeFunction", "FunctionName"),
}
# Statements whose Resource must be "*", and why AWS requires it.
UNSCOPABLE = {
    "VendedLogDelivery": "CloudWatch Logs' log-delivery actions accept no resource ARN",
    "ReadHealthAlarms": "cloudwatch:DescribeAlarms has no resource-level permissions, and "
    "returns composite alarms only when granted on every alarm",
    "ReadTargetGroupMetrics": "cloudwatch:GetMetricData has no resource-level permissions",
    "ReadTheLoadBalancers": "ELBv2's Describe actions have no resource-level permissions",
    "ResumeOrAbortGates": "task-token callbacks name a token, not a resource ARN",
}
LEDGER = [{"Fn::GetAtt": ["LedgerTable", "Arn"]}, {"Fn::Sub": "${LedgerTable.Arn}/index/*"}]
LEDGER_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
}
REPOSITORY = {
    "Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}"
    ":repository/${RepositoryName}"
}
FLEET_REPOSITORIES = {
    "Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}"
    ":repository/${FleetRepositoryPrefix}*"
}
"""The repositories the fleet's applications may name (FleetRepositoryPrefix)."""
CLUSTER = {
    "Fn::Sub": "arn:${AWS::Partition}:eks:${AWS::Region}:${AWS::AccountId}:cluster/${ClusterName}"
}
FLEET_CLUSTERS = {"Fn::Sub": "arn:${AWS::Partition}:eks:${AWS::Region}:${AWS::AccountId}:cluster/*"}
"""Describing the fleet's other clusters: only with FleetClusterNames given (see below)."""


ELBV2_READS = {
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetHealth",
}
"""What the alb router reads to confirm a move (read-only, on "*": no resource scoping)."""


def grants(resource: dict[str, Any]) -> dict[str, list[Any]]:
    """Every action the resource's policies grant, with the resources it is granted on."""
    granted: dict[str, list[Any]] = {}
    for policy in policies(resource):
        assert isinstance(policy, dict), f"managed policy {policy!r}: not scoped to a resource"
        if "Statement" in policy:
            continue
        ((name, arguments),) = policy.items()
        if name == "VPCAccessPolicy":
            # Network interfaces of a function in a VPC cannot be scoped (AWS requires "*");
            # granted only when SubnetIds are given.
            assert arguments == {}
            continue
        assert name in POLICY_TEMPLATES, f"policy template {name} is not reviewed for scope"
        action, argument = POLICY_TEMPLATES[name]
        granted.setdefault(action, []).append(arguments[argument])
    for statement in statements(resource):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    return granted


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(load_template()["Resources"])


def test_ecr_push_records_pushes_reads_tags_and_starts_the_flow_nothing_more(
    resources: dict[str, Any],
) -> None:
    # GIVEN / WHEN the ecr_push role's grants
    granted = grants(resources["EcrPushFunction"])

    # THEN it reads and writes the two tables, asks the one repository where a tag points
    # and starts the one state machine; it never reaches the cluster
    assert set(granted) == LEDGER_ACTIONS | {"states:StartExecution", "ecr:DescribeImages"}
    assert granted["ecr:DescribeImages"] == [REPOSITORY, FLEET_REPOSITORIES]
    for action in LEDGER_ACTIONS - {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }:
        assert granted[action] == LEDGER, action
    for action in (
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ):
        assert granted[action] == [*LEDGER, {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}], action
    assert granted["states:StartExecution"] == [{"Fn::GetAtt": ["DeployStateMachine", "Name"]}]


def test_deploy_steps_reach_the_ledger_the_one_cluster_alarms_and_the_bus(
    resources: dict[str, Any],
) -> None:
    # GIVEN / WHEN the deploy_steps role's grants
    granted = grants(resources["DeployStepsFunction"])

    # THEN exactly these, each on its one resource
    assert (
        set(granted)
        == LEDGER_ACTIONS
        | {
            "eks:DescribeCluster",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:GetMetricData",
            "events:PutEvents",
            "aps:QueryMetrics",
        }
        | ELBV2_READS
    )
    assert all(granted[action] == LEDGER for action in LEDGER_ACTIONS)
    assert granted["aps:QueryMetrics"] == [{"Ref": "PrometheusWorkspaceArn"}]
    assert granted["eks:DescribeCluster"] == [CLUSTER, FLEET_CLUSTERS]
    # The alb router's confirmation reads ELBv2, whose Describe actions cannot be scoped
    assert all(granted[action] == ["*"] for action in ELBV2_READS)
    assert granted["events:PutEvents"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}"
            ":event-bus/${EventBusName}"
        }
    ]
    # DescribeAlarms cannot be scoped (and composite alarms need "*"): read-only, on "*"
    assert granted["cloudwatch:DescribeAlarms"] == ["*"]
    # GetMetricData (a promotion's analysis) cannot be scoped either: read-only, on "*"
    assert granted["cloudwatch:GetMetricData"] == ["*"]


def test_services_api_reaches_the_ledger_the_flow_the_repository_and_the_cluster(
    resources: dict[str, Any],
) -> None:
    # GIVEN / WHEN the services_api role's grants
    granted = grants(resources["ServicesApiFunction"])

    # THEN exactly these, each on its one resource
    assert (
        set(granted)
        == LEDGER_ACTIONS
        | {
            "states:StartExecution",
            "states:DescribeExecution",
            "states:GetExecutionHistory",
            "states:SendTaskSuccess",
            "states:SendTaskFailure",
            "states:SendTaskHeartbeat",
            "ecr:DescribeImages",
            "eks:DescribeCluster",
        }
        | ELBV2_READS
    )
    assert all(granted[action] == LEDGER for action in LEDGER_ACTIONS)
    assert granted["states:StartExecution"] == [{"Ref": "DeployStateMachine"}]
    assert granted["states:DescribeExecution"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
            ":execution:${DeployStateMachine.Name}:*"
        }
    ]
    # The dashboard's timeline reads the histories of the same executions, no others.
    assert granted["states:GetExecutionHistory"] == granted["states:DescribeExecution"]
    assert granted["ecr:DescribeImages"] == [REPOSITORY, FLEET_REPOSITORIES]
    assert granted["eks:DescribeCluster"] == [CLUSTER, FLEET_CLUSTERS]
    assert all(granted[action] == ["*"] for action in ELBV2_READS)
    # a gate's callbacks name a task token, which IAM cannot scope
    for action in ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"):
        assert granted[action] == ["*"], action


def test_the_flow_invokes_only_the_deploy_steps(resources: dict[str, Any]) -> None:
    # GIVEN / WHEN the state machine role's grants
    granted = grants(resources["DeployStateMachine"])

    # THEN it invokes the one function; the rest is log delivery, which AWS cannot scope
    assert granted.pop("lambda:InvokeFunction") == [{"Ref": "DeployStepsFunction"}]
    assert all(action.startswith("logs:") for action in granted)
    assert all(targets == ["*"] for targets in granted.values())


def test_deploy_steps_query_prometheus_only_when_it_is_the_metric_provider(
    resources: dict[str, Any],
) -> None:
    # GIVEN the deploy_steps role's inline policies, as written
    role = own_role(resources["DeployStepsFunction"])
    assert role is not None
    conditional = [p["Fn::If"] for p in role["Properties"]["Policies"] if "Fn::If" in p]

    # THEN aps:QueryMetrics comes in one policy, on the workspace alone, and only under the
    # condition that the stack reads Prometheus from a workspace
    ((condition, policy, otherwise),) = conditional
    assert condition == "QueriesManagedPrometheus"
    assert otherwise == {"Ref": "AWS::NoValue"}
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "aps:QueryMetrics"
    assert statement["Resource"] == {"Ref": "PrometheusWorkspaceArn"}
    assert load_template()["Conditions"]["QueriesManagedPrometheus"] == {
        "Fn::And": [
            {"Fn::Equals": [{"Ref": "MetricProvider"}, "prometheus"]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "PrometheusWorkspaceArn"}, ""]}]},
        ]
    }


@pytest.mark.parametrize(
    "name", ["EcrPushFunction", "DeployStepsFunction", "ServicesApiFunction", "DeployStateMachine"]
)
def test_no_wildcard_resource_or_action_without_a_reason_aws_imposes(
    resources: dict[str, Any], name: str
) -> None:
    # GIVEN every inline statement of the role
    for statement in statements(resources[name]):
        actions = as_list(statement["Action"])
        targets = as_list(statement["Resource"])

        # THEN no action is a wildcard, and "*" appears only where AWS requires it
        assert not any(action == "*" or action.endswith(":*") for action in actions), actions
        if "*" in targets:
            assert statement.get("Sid") in UNSCOPABLE, f"{name}: Resource '*' in {statement}"
            assert targets == ["*"]
        # and no statement can read the ledger wholesale
        assert "dynamodb:Scan" not in actions, "the ledger is read through its keys only"


VPC_ACCESS = {
    "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}
BASIC = [
    {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
    {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"},
]


@pytest.mark.parametrize("name", ["DeployStepsFunction", "ServicesApiFunction"])
def test_the_vpc_permissions_come_only_with_the_vpc(resources: dict[str, Any], name: str) -> None:
    # GIVEN a function that joins the VPC when SubnetIds are given
    function = resources[name]
    # WHEN its role is read: its own, since SAM's would carry AWSLambdaVPCAccessExecutionRole
    # whenever VpcConfig is present, whatever the condition says
    role = own_role(function)
    assert role is not None, f"{name} needs its own role"
    assert "Policies" not in function["Properties"], "SAM ignores Policies beside a Role"
    managed = role["Properties"]["ManagedPolicyArns"]
    # THEN it has the logs and X-Ray policies SAM would give, and the VPC one only InVpc
    assert managed == [
        *BASIC,
        {"Fn::If": ["InVpc", VPC_ACCESS, {"Ref": "AWS::NoValue"}]},
    ]
    assert function["Properties"]["VpcConfig"]["Fn::If"][0] == "InVpc"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]


def test_ecr_push_never_gets_vpc_permissions(resources: dict[str, Any]) -> None:
    function = resources["EcrPushFunction"]
    assert "VpcConfig" not in function["Properties"]
    assert VPC_ACCESS not in managed_policies(function)
    assert all("VPCAccessPolicy" not in str(policy) for policy in policies(function))


ROUTES = [
    ("GET", "/services"),
    ("POST", "/services"),
    ("POST", "/rollback"),
    ("POST", "/promote"),
    ("GET", "/images"),
    ("GET", "/deployments"),
    ("GET", "/deployments/{id}"),
    ("GET", "/deployments/{id}/timeline"),
    ("POST", "/deployments/{id}/resume"),
    ("POST", "/deployments/{id}/abort"),
    ("GET", "/apps"),
    ("GET", "/apps/{app}"),
]
"""What reading and operating releases takes: every route but the registry's changes."""
FLEET_ROUTES = [
    (method, f"/apps/{{app}}{path}") for method, path in ROUTES if not path.startswith("/apps")
]
"""The same operations for one application of the fleet."""
FLEET_OPERATIONS = [("POST", "/apps/{app}/*")]
"""Every application's operations, as the fleet-wide operator's policy grants them."""
REGISTRY_CHANGES = [("PUT", "/apps/{app}"), ("DELETE", "/apps/{app}")]
"""What only an administrator of the applications may do."""
METHOD_ARN = (
    "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}"
    ":${ServicesApi}/${ApiStageName}"
)


def method_arns(routes: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The method ARNs of routes on this API and stage (a path parameter is "*")."""
    return [
        {"Fn::Sub": f"{METHOD_ARN}/{method}{path.replace('{id}', '*').replace('{app}', '*')}"}
        for method, path in routes
    ]


def api_routes(resources: dict[str, Any]) -> list[tuple[str, str]]:
    events = resources["ServicesApiFunction"]["Properties"]["Events"].values()
    return [(e["Properties"]["Method"].upper(), e["Properties"]["Path"]) for e in events]


@pytest.mark.parametrize(
    ("policy", "output", "routes"),
    [
        (
            "ServicesApiReadOnlyPolicy",
            "ServicesApiReadOnlyPolicyArn",
            [route for route in ROUTES if route[0] == "GET"],
        ),
        ("ServicesApiOperatorPolicy", "ServicesApiOperatorPolicyArn", ROUTES + FLEET_OPERATIONS),
        (
            "ServicesApiAdministratorPolicy",
            "ServicesApiAdministratorPolicyArn",
            [route for route in ROUTES if route[1].startswith("/apps")] + REGISTRY_CHANGES,
        ),
    ],
)
def test_callers_get_invoke_on_the_methods_of_this_api_and_stage_only(
    resources: dict[str, Any], policy: str, output: str, routes: list[tuple[str, str]]
) -> None:
    # GIVEN the template's routes (the policies must follow them)
    assert sorted(api_routes(resources)) == sorted(ROUTES + FLEET_ROUTES + REGISTRY_CHANGES)
    # WHEN the managed policy for callers is read
    managed = resources[policy]
    assert managed["Type"] == "AWS::IAM::ManagedPolicy"
    (statement,) = managed["Properties"]["PolicyDocument"]["Statement"]
    # THEN it is execute-api:Invoke on exactly those methods of this API's stage
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "execute-api:Invoke"
    assert statement["Resource"] == method_arns(routes)
    # AND the stack outputs it for attaching to people's and pipelines' roles
    assert load_template()["Outputs"][output]["Value"] == {"Ref": policy}


def test_read_only_callers_cannot_change_anything(resources: dict[str, Any]) -> None:
    (statement,) = resources["ServicesApiReadOnlyPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert all("/GET/" in arn["Fn::Sub"] for arn in statement["Resource"])


@pytest.mark.parametrize("role", ["ServicesApiFunctionRole", "DeployStepsFunctionRole"])
def test_other_clusters_are_described_only_when_the_fleet_names_some(
    resources: dict[str, Any], role: str
) -> None:
    # GIVEN the role's inline statements as written (both branches of a condition apart)
    conditional = [
        s["Fn::If"]
        for policy in resources[role]["Properties"]["Policies"]
        for s in policy.get("PolicyDocument", {}).get("Statement", [])
        if set(s) == {"Fn::If"}
    ]
    # THEN the statement on every cluster of the account is there only under
    # HasFleetClusters, and is eks:DescribeCluster alone (the access entries grant access)
    fleet = [
        branches
        for branches in conditional
        if branches[1].get("Sid") == "DescribeTheFleetsClusters"
    ]
    ((condition, statement, otherwise),) = fleet
    assert condition == "HasFleetClusters"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == "eks:DescribeCluster"
    assert statement["Resource"] == FLEET_CLUSTERS
