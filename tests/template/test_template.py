"""template.yaml says what the code and the design expect: each test breaks when the
template drifts from the settings the code reads, the flow definition it deploys, or
the tables, rule, API and runtime the design names."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from bluegreen.config import DEFAULT_HOOKS, EnvironmentPiece, Settings
from functions.deploy_steps.dependencies import DeployStepsEnvironment
from functions.ecr_push.dependencies import EcrPushEnvironment
from functions.services_api.api.dependencies import ServicesApiEnvironment
from local import aws as local_aws
from tests.template.cfn import (
    ACCOUNT,
    REGION,
    ROOT,
    function_environment,
    load_template,
    parameter_defaults,
    resolve,
    resources_of_type,
)

FUNCTIONS = ("EcrPushFunction", "DeployStepsFunction", "ServicesApiFunction")
# Read by Settings.from_env for runs outside Lambda (the cluster emulator, a cluster
# reached through a kubeconfig); deployed functions find their cluster through
# eks:DescribeCluster, so the template must not set them.
LOCAL_ONLY_SETTINGS = {"BG_KUBE_API_URL", "BG_KUBE_CONTEXT"}
# Only the functions that start executions know the state machine: DeployStepsFunction
# cannot, since the state machine's definition references it (a circular dependency).
STARTS_EXECUTIONS = {"EcrPushFunction", "ServicesApiFunction"}


class _RecordingEnviron(Mapping[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        self.names.add(name)
        return default

    def __contains__(self, name: object) -> bool:
        self.names.add(str(name))
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


ENVIRONMENTS: dict[str, type[EnvironmentPiece]] = {
    "EcrPushFunction": EcrPushEnvironment,
    "DeployStepsFunction": DeployStepsEnvironment,
    "ServicesApiFunction": ServicesApiEnvironment,
}
"""Each function's environment model."""


def settings_variables() -> set[str]:
    """The ``BG_*`` names ``Settings.from_env`` reads (every setting of the stack)."""
    environ = _RecordingEnviron()
    Settings.from_env(environ)
    return {name for name in environ.names if name.startswith("BG_")}


def model_variables(function: str) -> set[str]:
    """The ``BG_*`` names the function's environment model reads."""
    environ = _RecordingEnviron()
    ENVIRONMENTS[function].read(environ)
    return {name for name in environ.names if name.startswith("BG_")}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


# --- settings -------------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_gets_exactly_the_settings_the_code_reads(
    template: dict[str, Any], function: str
) -> None:
    # GIVEN the BG_* variables the function's environment model reads
    expected = model_variables(function) - LOCAL_ONLY_SETTINGS

    # WHEN the function's deployed environment is assembled (Globals + its own)
    environment = function_environment(template, function, parameter_defaults(template))
    variables = {name for name in environment if name.startswith("BG_")}

    # THEN none is missing and none is unknown to the code
    assert sorted(expected - variables) == [], "settings the template does not set"
    assert sorted(variables - expected) == [], "variables the code never reads"


def test_every_setting_of_the_stack_is_read_by_some_function() -> None:
    # GIVEN the variables each function's environment model reads
    read = set().union(*(model_variables(function) for function in FUNCTIONS))

    # THEN together they are every setting of the stack, and only the starters read the ARN
    assert read == settings_variables()
    for function in FUNCTIONS:
        assert ("BG_STATE_MACHINE_ARN" in model_variables(function)) == (
            function in STARTS_EXECUTIONS
        )


def test_the_state_machine_arn_is_only_given_to_the_functions_that_start_executions(
    template: dict[str, Any],
) -> None:
    # GIVEN the template
    resources = template["Resources"]

    # WHEN each function's own variables are read
    arns = {
        name: resources[name]["Properties"].get("Environment", {}).get("Variables", {})
        for name in FUNCTIONS
    }

    # THEN the two starters reference the deploy state machine, the steps function does not
    for name in STARTS_EXECUTIONS:
        assert arns[name]["BG_STATE_MACHINE_ARN"] == {"Ref": "DeployStateMachine"}
    assert "BG_STATE_MACHINE_ARN" not in arns["DeployStepsFunction"]
    assert "BG_STATE_MACHINE_ARN" not in template["Globals"]["Function"]["Environment"]["Variables"]


def test_parameter_defaults_give_the_original_systems_settings(template: dict[str, Any]) -> None:
    # GIVEN the environments a stack deployed with every default gives its functions
    environment: dict[str, str] = {}
    for function in FUNCTIONS:
        environment.update(function_environment(template, function, parameter_defaults(template)))

    # WHEN the code reads its settings from it
    settings = Settings.from_env(environment)

    # THEN they are the original system's names and the documented defaults
    defaults = Settings()
    for name in (
        "application",
        "cluster_name",
        "namespace",
        "repository",
        "configmap_name",
        "configmap_key",
        "container_name",
        "deployment_name_pattern",
        "canary_service_name",
        "production_service_name",
        "auto_deploy_tags",
        "event_bus_name",
        "event_source",
        "lock_lease_seconds",
        "bake_seconds",
        "health_url",
        "alarm_names",
    ):
        assert getattr(settings, name) == getattr(defaults, name), name
    assert settings.hooks == DEFAULT_HOOKS
    assert settings.hooks[0].command[-1] == "--allow-root"
    assert settings.registry == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
    assert settings.ledger_table == "LedgerTable-physical"
    assert settings.idempotency_table == "IdempotencyTable-physical"


def test_every_parameter_is_described_constrained_grouped_and_valid_by_default(
    template: dict[str, Any],
) -> None:
    # GIVEN the parameters and the console's parameter groups
    parameters = template["Parameters"]
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [name for group in interface["ParameterGroups"] for name in group["Parameters"]]

    # THEN each has a description and a constraint its default satisfies, and appears
    # exactly once in the groups
    for name, parameter in parameters.items():
        assert parameter.get("Description"), f"{name} has no Description"
        default = str(parameter.get("Default", ""))
        if "AllowedPattern" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], default), (name, default)
        else:
            assert "AllowedValues" in parameter, f"{name} has no AllowedPattern/AllowedValues"
        if "AllowedValues" in parameter:
            assert default in [str(v) for v in parameter["AllowedValues"]], (name, default)
        assert name in interface["ParameterLabels"], f"{name} has no label"
    assert sorted(grouped) == sorted(parameters)


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("DeploymentNamePattern", "blue-deployment"),
        ("Namespace", "WP_Platform"),
        ("AutoDeployTags", "dev,"),
        ("Hooks", '{"name": "x"}'),
        ("HealthUrl", "ftp://example.com"),
        ("BakeSeconds", "-1"),
    ],
)
def test_parameter_patterns_refuse_values_the_code_cannot_use(
    template: dict[str, Any], parameter: str, value: str
) -> None:
    # GIVEN a value the product could not work with
    pattern = template["Parameters"][parameter]["AllowedPattern"]

    # WHEN / THEN CloudFormation refuses it before anything is deployed
    assert re.fullmatch(pattern, value) is None


# --- runtime and layer ------------------------------------------------------------------


def test_runtime_architecture_and_layer_build_agree(template: dict[str, Any]) -> None:
    # GIVEN the function globals and the shared layer
    function = template["Globals"]["Function"]
    layer = template["Resources"]["BlueGreenLayer"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())

    # THEN every function runs the layer's runtime on arm64, with tracing, and mypy checks
    # the code against that same Python version
    runtime = function["Runtime"]
    assert re.fullmatch(r"python3\.\d+", runtime)
    assert function["Architectures"] == ["arm64"]
    assert function["Tracing"] == "Active"
    assert function["Layers"] == [{"Ref": "BlueGreenLayer"}]
    assert layer["Metadata"] == {"BuildMethod": runtime, "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/bluegreen/"
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert f"python{pyproject['tool']['mypy']['python_version']}" == runtime
    variables = function["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "EksBlueGreen"
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"} <= set(variables)


@pytest.mark.parametrize(
    ("function", "code"),
    [
        ("EcrPushFunction", "functions/ecr_push/"),
        ("DeployStepsFunction", "functions/deploy_steps/"),
        ("ServicesApiFunction", "functions/services_api/"),
    ],
)
def test_each_function_points_at_its_handler(
    template: dict[str, Any], function: str, code: str
) -> None:
    # GIVEN a function of the template
    properties = template["Resources"][function]["Properties"]

    # THEN its code folder holds app.py with the lambda_handler it names
    assert properties["CodeUri"] == code
    assert properties["Handler"] == "app.lambda_handler"
    source = (ROOT / code / "app.py").read_text()
    assert re.search(r"^def lambda_handler\(", source, re.MULTILINE), f"{code}app.py"


# --- tables -----------------------------------------------------------------------------


def test_ledger_table_is_on_demand_with_two_indexes_ttl_and_point_in_time_recovery(
    template: dict[str, Any],
) -> None:
    # GIVEN the ledger table as declared
    table = template["Resources"]["LedgerTable"]

    # THEN it is exactly the key design the ledger adapter queries
    def key(hash_key: str, range_key: str) -> list[dict[str, str]]:
        return [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ]

    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["AttributeDefinitions"] == [
        {"AttributeName": name, "AttributeType": "S"}
        for name in ("PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")
    ]
    assert properties["KeySchema"] == key("PK", "SK")
    assert properties["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "GSI1",
            "KeySchema": key("GSI1PK", "GSI1SK"),
            "Projection": {"ProjectionType": "ALL"},
        },
        {
            "IndexName": "GSI2",
            "KeySchema": key("GSI2PK", "GSI2SK"),
            "Projection": {"ProjectionType": "ALL"},
        },
    ]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert "TableName" not in properties, "a fixed name would block a second stack"
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_the_ledger_cannot_be_deleted_while_protected(template: dict[str, Any]) -> None:
    # GIVEN the ledger table: its verdicts are what rollbacks choose from
    properties = template["Resources"]["LedgerTable"]["Properties"]
    # THEN DynamoDB refuses DeleteTable on it, by hand or through a stack update
    assert properties["DeletionProtectionEnabled"] is True


def test_idempotency_table_has_the_powertools_shape(template: dict[str, Any]) -> None:
    # GIVEN the idempotency table as declared
    properties = template["Resources"]["IdempotencyTable"]["Properties"]

    # THEN it is what Powertools' DynamoDBPersistenceLayer expects by default
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": "expiration",
        "Enabled": True,
    }


# --- ECR push rule ----------------------------------------------------------------------


def test_the_ecr_rule_matches_exactly_successful_pushes_to_the_fleets_repositories(
    template: dict[str, Any],
) -> None:
    # GIVEN the events of the ecr_push function
    events = template["Resources"]["EcrPushFunction"]["Properties"]["Events"]

    # WHEN the EventBridge rules among them are taken
    rules = [event for event in events.values() if event["Type"] == "EventBridgeRule"]

    # THEN there is one, with exactly the pattern of an ECR Image Action PUSH SUCCESS
    assert len(rules) == 1
    assert len(events) == 1
    properties = rules[0]["Properties"]
    assert properties["Pattern"] == {
        "source": ["aws.ecr"],
        "detail-type": ["ECR Image Action"],
        "detail": {
            "action-type": ["PUSH"],
            "result": ["SUCCESS"],
            "repository-name": [
                {"Ref": "RepositoryName"},
                {"prefix": {"Ref": "FleetRepositoryPrefix"}},
            ],
        },
    }
    assert "EventBusName" not in properties, "ECR publishes on the default bus"
    # an undeliverable push is parked in the dead-letter queue, not dropped
    assert properties["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": ["EcrPushDeadLetterQueue", "Arn"]}
    }
    assert properties["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_a_push_waiting_in_the_dead_letter_queue_raises_an_alarm(template: dict[str, Any]) -> None:
    # GIVEN the alarm on the dead-letter queue
    alarm = template["Resources"]["EcrPushDeadLetterQueueAlarm"]
    properties = alarm["Properties"]
    # THEN it watches that queue's visible messages and fires on the first one
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    assert (properties["Namespace"], properties["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert properties["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["EcrPushDeadLetterQueue", "QueueName"]}}
    ]
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["Threshold"] == 0
    assert properties["Statistic"] == "Maximum"
    assert properties["EvaluationPeriods"] == 1
    # AND an empty queue (no data points) is not an alarm
    assert properties["TreatMissingData"] == "notBreaching"
    assert template["Outputs"]["EcrPushDeadLetterQueueAlarmName"]["Value"] == {
        "Ref": "EcrPushDeadLetterQueueAlarm"
    }


@pytest.mark.parametrize(("value", "reserved"), [("5", True), ("0", False), ("40", True)])
def test_ecr_push_has_reserved_concurrency_unless_told_none(
    template: dict[str, Any], value: str, reserved: bool
) -> None:
    # GIVEN the parameter (5 by default) and the condition that reads it
    parameter = template["Parameters"]["EcrPushReservedConcurrency"]
    assert parameter["Default"] == "5"
    assert re.fullmatch(parameter["AllowedPattern"], value)
    condition = template["Conditions"]["ReservesEcrPushConcurrency"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "EcrPushReservedConcurrency"}, "0"]}]}
    # WHEN the function's concurrency is resolved for that value
    setting = template["Resources"]["EcrPushFunction"]["Properties"]["ReservedConcurrentExecutions"]
    when, if_true, if_false = setting["Fn::If"]
    assert when == "ReservesEcrPushConcurrency"
    chosen = if_true if value != "0" else if_false
    # THEN it reserves that many, or (0) reserves none rather than throttling every push
    if reserved:
        assert resolve(chosen, {"EcrPushReservedConcurrency": value}) == value
    else:
        assert chosen == {"Ref": "AWS::NoValue"}


def test_the_dead_letter_queue_accepts_only_the_push_rule(template: dict[str, Any]) -> None:
    # GIVEN the queue policy and the rule's name
    parameters = parameter_defaults(template)
    statement = template["Resources"]["EcrPushDeadLetterQueuePolicy"]["Properties"][
        "PolicyDocument"
    ]["Statement"][0]
    rule = template["Resources"]["EcrPushFunction"]["Properties"]["Events"]["EcrImagePushed"]
    rule_name = resolve(rule["Properties"]["RuleName"], parameters)

    # THEN EventBridge may send to it only on behalf of that rule
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    source = resolve(statement["Condition"]["ArnEquals"]["aws:SourceArn"], parameters)
    assert source == f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule_name}"


# --- state machine ----------------------------------------------------------------------


def test_definition_substitutions_cover_every_placeholder_of_the_flow(
    template: dict[str, Any],
) -> None:
    # GIVEN each state machine and the definition file it deploys
    machines = resources_of_type(template, "AWS::Serverless::StateMachine")
    assert list(machines) == ["DeployStateMachine"]
    for machine in machines.values():
        properties = machine["Properties"]
        definition = ROOT / properties["DefinitionUri"]
        placeholders = set(re.findall(r"\$\{([^}]+)\}", definition.read_text()))
        substitutions = properties["DefinitionSubstitutions"]

        # THEN every ${...} is substituted and every substitution is used
        assert placeholders == set(substitutions)
        # and each names a resource of this template
        for value in substitutions.values():
            ((function, argument),) = value.items()
            target = argument[0] if function == "Fn::GetAtt" else argument
            assert target in template["Resources"], value
        json.loads(definition.read_text())


def test_the_flow_is_standard_logged_and_traced(template: dict[str, Any]) -> None:
    # GIVEN the deploy state machine
    properties = template["Resources"]["DeployStateMachine"]["Properties"]

    # THEN it keeps history (STANDARD), logs to its own log group, and traces
    assert properties["Type"] == "STANDARD"
    assert properties["DefinitionUri"] == "statemachine/deploy.asl.json"
    assert properties["DefinitionSubstitutions"]["DeployStepsFunctionArn"] == {
        "Fn::GetAtt": ["DeployStepsFunction", "Arn"]
    }
    logging = properties["Logging"]
    assert logging["Level"] in ("ALL", "ERROR")
    assert logging["IncludeExecutionData"] is True
    assert logging["Destinations"] == [
        {
            "CloudWatchLogsLogGroup": {
                "LogGroupArn": {"Fn::GetAtt": ["DeployStateMachineLogGroup", "Arn"]}
            }
        }
    ]
    assert properties["Tracing"] == {"Enabled": True}


# --- API --------------------------------------------------------------------------------

ROUTES = {
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
    ("PUT", "/apps/{app}"),
    ("DELETE", "/apps/{app}"),
}
RELEASE_ROUTES = {route for route in ROUTES if not route[1].startswith("/apps")}
ROUTES |= {(method, f"/apps/{{app}}{path}") for method, path in RELEASE_ROUTES}
"""Each release operation also acts for one application of the fleet, under /apps/{app}."""


def test_every_route_is_on_the_iam_authenticated_api(template: dict[str, Any]) -> None:
    # GIVEN every Api event of every function
    routes: set[tuple[str, str]] = set()
    for name, function in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "Api":
                continue
            properties = event["Properties"]
            # THEN it belongs to ServicesApi (an implicit API would have no authorizer)
            assert properties["RestApiId"] == {"Ref": "ServicesApi"}, name
            # and does not switch authorization off
            assert properties.get("Auth", {}).get("Authorizer", "AWS_IAM") == "AWS_IAM"
            routes.add((properties["Method"].upper(), properties["Path"]))
            assert name == "ServicesApiFunction"

    # THEN the routes are exactly the documented ones
    assert routes == ROUTES


def test_the_api_authorizes_with_iam_and_logs_who_called(template: dict[str, Any]) -> None:
    # GIVEN the services API
    properties = template["Resources"]["ServicesApi"]["Properties"]

    # THEN IAM is the default authorizer, invoked through the function's resource policy
    assert properties["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert properties["Auth"]["InvokeRole"] == "NONE"
    assert properties["TracingEnabled"] is True
    # and every request is logged as JSON with who called from where and what came back
    access = properties["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ServicesApiAccessLogGroup", "Arn"]}
    fields = json.loads(access["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert fields["caller"] == "$context.identity.caller"
    assert fields["sourceIp"] == "$context.identity.sourceIp"
    assert fields["status"] == "$context.status"
    assert fields["userArn"] == "$context.identity.userArn"
    # and throttling comes from the parameters, on every method
    (method,) = properties["MethodSettings"]
    assert (method["ResourcePath"], method["HttpMethod"]) == ("/*", "*")
    assert method["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRate"}
    assert method["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurst"}


# --- cluster access ---------------------------------------------------------------------


def test_the_functions_that_talk_to_the_cluster_have_access_entries_and_only_they(
    template: dict[str, Any],
) -> None:
    # GIVEN the EKS access entries
    entries = resources_of_type(template, "AWS::EKS::AccessEntry")

    # WHEN the role each maps is read
    mapped = {entry["Properties"]["PrincipalArn"]["Fn::GetAtt"][0] for entry in entries.values()}

    # THEN the API and the deploy steps are mapped to the RBAC group; ecr_push is not
    assert mapped == {"ServicesApiFunctionRole", "DeployStepsFunctionRole"}
    for entry in entries.values():
        properties = entry["Properties"]
        assert properties["KubernetesGroups"] == [{"Ref": "KubernetesGroup"}]
        assert properties["Type"] == "STANDARD"
        assert "AccessPolicies" not in properties, "cluster-wide policies bypass the Role"
    # AND in the stack's own cluster always; in the fleet's others (Fn::ForEach over
    # FleetClusterNames, made here with its default: none) only when some are named
    own = {
        n for n, e in entries.items() if e["Properties"]["ClusterName"] == {"Ref": "ClusterName"}
    }
    assert own == {"ServicesApiAccessEntry", "DeployStepsAccessEntry"}
    for name in set(entries) - own:
        assert entries[name]["Condition"] == "HasFleetClusters"
        assert entries[name]["Properties"]["ClusterName"] == ""


def test_the_fleets_clusters_get_the_same_access_entries_one_per_cluster() -> None:
    # GIVEN the template as written, its Fn::ForEach made with two more clusters
    raw = local_aws.load_template(expand=False)
    raw["Parameters"]["FleetClusterNames"]["Default"] = "shop-east,payments_2"
    entries = {
        name: resource
        for name, resource in local_aws.expand_for_each(raw).items()
        if resource.get("Type") == "AWS::EKS::AccessEntry"
    }
    # THEN each function's role has an entry in each named cluster, with its own logical id
    clusters = {
        (e["Properties"]["PrincipalArn"]["Fn::GetAtt"][0], str(e["Properties"]["ClusterName"]))
        for name, e in entries.items()
        if e.get("Condition") == "HasFleetClusters"
    }
    assert clusters == {
        (role, cluster)
        for role in ("ServicesApiFunctionRole", "DeployStepsFunctionRole")
        for cluster in ("shop-east", "payments_2")
    }
    assert "ServicesApiFleetAccessshopeast" in entries
    assert "DeployStepsFleetAccesspayments2" in entries
    assert raw["Transform"][0] == "AWS::LanguageExtensions"


@pytest.mark.parametrize("function", ["DeployStepsFunction", "ServicesApiFunction"])
def test_cluster_facing_functions_join_the_vpc_only_when_subnets_are_given(
    template: dict[str, Any], function: str
) -> None:
    # GIVEN the condition that says whether subnets were given
    condition = template["Conditions"]["InVpc"]

    # WHEN the function's network settings and policies are read
    properties = template["Resources"][function]["Properties"]

    # THEN it joins the VPC under that condition (and gets the ENI permissions with it);
    # with the default (no subnets) it stays outside, as a public endpoint needs
    assert condition == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "SubnetIds"}]}, ""]}]
    }
    when, in_vpc, outside = properties["VpcConfig"]["Fn::If"]
    assert when == "InVpc"
    assert in_vpc == {
        "SubnetIds": {"Ref": "SubnetIds"},
        "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
    }
    assert outside == {"Ref": "AWS::NoValue"}
    # (the network-interface permissions follow the same condition: test_policies)
    assert template["Parameters"]["SubnetIds"]["Default"] == ""


def test_ecr_push_never_joins_the_vpc(template: dict[str, Any]) -> None:
    # GIVEN / WHEN the function that never talks to the cluster
    properties = template["Resources"]["EcrPushFunction"]["Properties"]

    # THEN it has no network settings: it needs only AWS APIs
    assert "VpcConfig" not in properties


# --- outputs ----------------------------------------------------------------------------


def test_the_start_execution_example_is_an_input_the_flow_accepts(
    template: dict[str, Any],
) -> None:
    # GIVEN the console/CLI example of the outputs
    from bluegreen.domain.flow_input import parse_request

    command = resolve(
        template["Outputs"]["StartExecutionExample"]["Value"], parameter_defaults(template)
    )

    # WHEN its --input is read
    match = re.search(r"--input '([^']+)'", command)
    assert match, command
    request = parse_request(json.loads(match.group(1)))

    # THEN the flow accepts it as a deploy to the canary, on this stack's state machine
    # (the ledger records such a run as a console run: the input says nothing of who)
    assert (request.action, request.service.value) == ("deploy", "canary")
    assert "--state-machine-arn DeployStateMachine-physical" in command
    assert {
        "ServicesApiUrl",
        "DeployStateMachineArn",
        "LedgerTableName",
        "IdempotencyTableName",
        "EcrPushFunctionArn",
        "DeployStepsFunctionArn",
        "ServicesApiFunctionArn",
    } <= set(template["Outputs"])


def test_log_groups_keep_logs_for_the_configured_retention(template: dict[str, Any]) -> None:
    # GIVEN the log groups of the stack
    groups = resources_of_type(template, "AWS::Logs::LogGroup")
    names = {json.dumps(g["Properties"]["LogGroupName"]) for g in groups.values()}

    # THEN each function, the flow and the API access log has one, with the retention parameter
    for function in FUNCTIONS:
        assert json.dumps({"Fn::Sub": f"/aws/lambda/${{{function}}}"}) in names, function
    assert len(groups) == len(FUNCTIONS) + 2
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def _task_states(states: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every Task state of a definition, including those inside Map and Parallel states."""
    for state in states.values():
        if state.get("Type") == "Task":
            yield state
        for nested in (state.get("ItemProcessor"), state.get("Iterator")):
            if nested:
                yield from _task_states(nested["States"])
        for branch in state.get("Branches", []):
            yield from _task_states(branch["States"])


def test_the_steps_function_finishes_before_the_flow_gives_up_on_a_task(
    template: dict[str, Any],
) -> None:
    # GIVEN the deploy steps function's timeout and the flow's tasks that invoke it
    timeout = template["Resources"]["DeployStepsFunction"]["Properties"].get(
        "Timeout", template["Globals"]["Function"]["Timeout"]
    )
    definition = json.loads((ROOT / "statemachine" / "deploy.asl.json").read_text())
    tasks = [
        state
        for state in _task_states(definition["States"])
        if "${DeployStepsFunctionArn}" in json.dumps(state)
    ]

    # THEN no task times out while the function may still be changing the cluster
    assert tasks
    for task in tasks:
        # (a task without TimeoutSeconds waits as long as the execution may run)
        assert timeout <= task.get("TimeoutSeconds", 99_999_999), task.get("Comment", task)
