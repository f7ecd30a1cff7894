"""One stack, a hundred applications: the fleet view, pushes spread over the fleet, and
what the fleet costs.

Everything runs in-process on moto (tables from template.yaml), with 100 applications
registered in the registry (``PUT /apps/{app}``'s adapter), each naming a repository of
its own:

- ``GET /apps`` through the services API handler: warm latency per page and the
  DynamoDB requests one page makes (botocore's ``before-call`` hooks on the handler's
  own client). Each application of a page comes with where its releases stand, read
  from its ledger: the figures must not grow with the fleet, only with the page.
- ecr_push: the same stream of pushes (fresh digests, a tag each) to one repository of
  a one-application stack, then spread over the hundred repositories of the fleet;
  events per second, warm, and the DynamoDB requests per push.
- Cost, at AWS list prices (us-east-1, in ``PRICES``), of one deploy and one
  progressive promotion, counted from the real flow's executions
  (``bench.request_counts``: state transitions entered, Task invocations, their
  DynamoDB and EventBridge requests, the handlers' own time), and of a month of a stack
  whose 100 applications deploy ten times a day each, beside one always-on controller
  pod as the in-cluster tools run (Fargate, 0.25 vCPU and 0.5 GB). A Lambda
  invocation is billed its in-process time plus ``REQUEST_MS`` per request it makes
  (moto answers in microseconds; AWS and the Kubernetes API do not).

Reproduce: ``make bench`` or ``python -m bench fleet``
(``BENCH_APPS=500 python -m bench fleet`` for a bigger fleet).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import statistics
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import lambda_context

ROOT = Path(__file__).resolve().parent.parent
APPS = int(os.environ.get("BENCH_APPS", "100"))
PAGES = 20
"""Calls of each page size measured (after one warm call)."""
PUSHES = int(os.environ.get("BENCH_PUSHES", "300"))
DEPLOYS_PER_DAY = 10
DAYS_PER_MONTH = 30
REQUEST_MS = 10.0
"""Billed time a Lambda spends per AWS or Kubernetes request it makes, in AWS."""
DEPLOY_STEPS_GB = 0.5
"""Memory of the functions (template.yaml Globals MemorySize 512)."""

PRICES = {
    "step_functions_transition": 0.025 / 1000,
    "lambda_gb_second_arm": 0.0000133334,
    "lambda_request": 0.20 / 1_000_000,
    "dynamodb_write_request": 0.625 / 1_000_000,
    "dynamodb_read_request": 0.125 / 1_000_000,
    "api_gateway_rest_request": 3.50 / 1_000_000,
    "eventbridge_event": 1.00 / 1_000_000,
    "fargate_vcpu_hour": 0.04048,
    "fargate_gb_hour": 0.004445,
}
"""AWS list prices, us-east-1, on-demand (USD)."""
HOURS_PER_MONTH = 730
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})


@contextlib.contextmanager
def _counted(client: Any) -> Iterator[Counter[str]]:
    """DynamoDB operations ``client`` makes while the block runs."""
    seen: Counter[str] = Counter()

    def hook(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    client.meta.events.register("before-call.dynamodb", hook, unique_id="bench-fleet")
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-call.dynamodb", unique_id="bench-fleet")


def _register(count: int, spec: dict[str, Any], table: str, client: Any) -> list[str]:
    from bluegreen.adapters.apps import DynamoAppRegistry
    from bluegreen.domain.apps import AppSpec, Editor

    registry = DynamoAppRegistry(table, client)
    names = []
    for n in range(count):
        name = f"app-{n:03d}"
        scoped = copy.deepcopy(spec)
        scoped.update(namespace=name, repository=f"fleet/{name}")
        registry.put(name, AppSpec.parse(scoped), Editor(actor="bench"), None)
        names.append(name)
    return names


def _pages(limit: int) -> tuple[float, float, int]:
    """Median ms of ``GET /apps?limit=<limit>``, DynamoDB requests of a full page, pages."""
    from functions.services_api import app
    from functions.services_api.api import dependencies

    context = lambda_context("services-api")

    def call(cursor: str | None) -> dict[str, Any]:
        event = json.loads((ROOT / "events" / "services_api" / "get_apps.json").read_text())
        query = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
        answer = app.lambda_handler(event, context)
        if answer["statusCode"] != 200:
            raise SystemExit(f"GET /apps answered {answer['statusCode']}: {answer['body']}")
        body: dict[str, Any] = json.loads(answer["body"])
        return body

    call(None)  # warm
    samples: list[float] = []
    requests: list[int] = []
    pages = 0
    for _ in range(PAGES):
        cursor: str | None = None
        pages = 0
        while True:
            with _counted(dependencies.aws_client("dynamodb")) as seen:
                started = time.perf_counter()
                body = call(cursor)
                samples.append(time.perf_counter() - started)
            requests.append(sum(seen.values()))
            pages += 1
            cursor = body.get("nextCursor")
            if not cursor:
                break
    # A full page is the bound: 1 + 2 per application on it (its lock, its newest record).
    return statistics.median(samples) * 1000, max(requests), pages


def _pushes(repositories: list[str]) -> tuple[float, float, float]:
    """Events per second, DynamoDB reads and writes per push, pushes spread over
    ``repositories``."""
    from functions.ecr_push import app, dependencies

    template = json.loads((ROOT / "events" / "ecr_push" / "tagged_push.json").read_text())

    def event(n: int) -> dict[str, Any]:
        made: dict[str, Any] = copy.deepcopy(template)
        made["id"] = str(uuid.uuid4())
        made["detail"]["image-digest"] = f"sha256:{uuid.uuid4().int:064x}"[:71]
        made["detail"]["image-tag"] = f"build-{n}"
        made["detail"]["repository-name"] = repositories[n % len(repositories)]
        return made

    context = lambda_context("ecr-push", 256)
    app.lambda_handler(event(0), context)  # warm
    stream = [event(n) for n in range(1, PUSHES + 1)]
    with _counted(dependencies.aws_client("dynamodb")) as seen:
        started = time.perf_counter()
        for made in stream:
            answer = app.lambda_handler(made, context)
            if not answer.get("recorded"):
                raise SystemExit(f"a push was not recorded: {answer}")
        elapsed = time.perf_counter() - started
    reads = sum(n for op, n in seen.items() if op in DYNAMODB_READS)
    writes = sum(seen.values()) - reads
    return len(stream) / elapsed, reads / len(stream), writes / len(stream)


def _lambda_cost(tasks: list[Any]) -> float:
    seconds: float = sum(
        t.seconds
        + (t.kube_reads + t.kube_writes + sum(t.dynamodb.values()) + t.events) * REQUEST_MS / 1000
        for t in tasks
    )
    return float(
        seconds * DEPLOY_STEPS_GB * PRICES["lambda_gb_second_arm"]
        + len(tasks) * PRICES["lambda_request"]
    )


def _flow_cost(transitions: int, tasks: list[Any]) -> dict[str, float]:
    reads = sum(n for t in tasks for op, n in t.dynamodb.items() if op in DYNAMODB_READS)
    writes = sum(sum(t.dynamodb.values()) for t in tasks) - reads
    return {
        "Step Functions": transitions * PRICES["step_functions_transition"],
        "Lambda": _lambda_cost(tasks),
        "DynamoDB": reads * PRICES["dynamodb_read_request"]
        + writes * PRICES["dynamodb_write_request"],
        "EventBridge": sum(t.events for t in tasks) * PRICES["eventbridge_event"],
    }


def main() -> None:
    """Measure and print the tables."""
    from bench import on_moto

    on_moto()

    import boto3
    from moto import mock_aws

    from bluegreen.config import Settings
    from bluegreen.domain.apps import default_app_spec
    from local.aws import create_tables
    from local.dynamodb import atomic_dynamodb_requests

    atomic_dynamodb_requests()  # the fleet view reads ledgers from several threads
    quiet = io.StringIO()
    settings = Settings.from_env(os.environ)
    spec = default_app_spec(settings).to_json()

    @contextlib.contextmanager
    def fleet_of(count: int) -> Iterator[list[str]]:
        """A fresh moto account with ``count`` applications registered (moto's DynamoDB
        slows as a table grows: each measurement starts from the same table)."""
        with mock_aws(), contextlib.redirect_stdout(quiet), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = boto3.client("dynamodb", region_name=os.environ["AWS_DEFAULT_REGION"])
            create_tables(client)
            from functions.ecr_push import dependencies as push_dependencies
            from functions.services_api.api import dependencies as api_dependencies

            api_dependencies.reset()
            push_dependencies.reset()
            yield _register(count, spec, settings.ledger_table, client)

    with fleet_of(APPS):
        pages = {limit: _pages(limit) for limit in (10, 50, 100)}
    with fleet_of(APPS):
        one = _pushes([settings.repository])
    with fleet_of(APPS) as names:
        fleet = _pushes([f"fleet/{name}" for name in names])

    from bench import request_counts

    with contextlib.redirect_stdout(quiet):
        flows = request_counts.measure()

    print("$ make bench   # or: python -m bench fleet")
    print(f"GET /apps with {APPS} applications registered (warm, on moto, in-process)")
    header = (
        f"{'page size':>9} {'pages':>6} {'median ms/page':>15} {'DynamoDB requests, full page':>29}"
    )
    print(header)
    print("-" * len(header))
    for limit, (median, requests, count) in pages.items():
        print(f"{limit:>9} {count:>6} {median:>15.1f} {requests:>29.0f}")
    print()
    print(f"ecr_push, {PUSHES} tagged pushes (warm, on moto)")
    header = f"{'pushes spread over':<34} {'events/s':>9} {'DynamoDB reads/writes per push':>31}"
    print(header)
    print("-" * len(header))
    for label, (rate, reads, writes) in (
        ("1 repository, 1 application", one),
        (f"{APPS} repositories, {APPS} applications", fleet),
    ):
        print(f"{label:<34} {rate:>9.0f} {f'{reads:.1f} / {writes:.1f}':>31}")
    print()

    deploy = _flow_cost(len(flows.deploy_states), flows.deploy_tasks)
    promotion = _flow_cost(len(flows.promotion_states), flows.promotion_tasks)
    # A push: ecr_push (256 MB) for its in-process time and its requests; ECR's events on
    # the default bus cost nothing.
    rate, reads, writes = fleet
    push_seconds = 1 / rate + (reads + writes) * REQUEST_MS / 1000
    push_cost = (
        push_seconds * 0.25 * PRICES["lambda_gb_second_arm"]
        + PRICES["lambda_request"]
        + reads * PRICES["dynamodb_read_request"]
        + writes * PRICES["dynamodb_write_request"]
    )
    per_month = APPS * DEPLOYS_PER_DAY * DAYS_PER_MONTH
    month = {key: value * per_month for key, value in deploy.items()}
    month["pushes"] = push_cost * per_month
    deploy["pushes"] = promotion["pushes"] = 0.0
    pod = HOURS_PER_MONTH * (0.25 * PRICES["fargate_vcpu_hour"] + 0.5 * PRICES["fargate_gb_hour"])
    print(
        "cost in USD at list prices (us-east-1); Lambda billed in-process time + "
        f"{REQUEST_MS:.0f} ms per request, {DEPLOY_STEPS_GB * 1024:.0f} MB"
    )
    header = f"{'':<16} {'one deploy':>12} {'one promotion':>14} {'a month':>10}"
    print(header)
    print("-" * len(header))
    for key in deploy:
        print(f"{key:<16} {deploy[key]:>12.6f} {promotion[key]:>14.6f} {month[key]:>10.2f}")
    print(
        f"{'total':<16} {sum(deploy.values()):>12.6f} {sum(promotion.values()):>14.6f} "
        f"{sum(month.values()):>10.2f}"
    )
    print(
        f"a month: {APPS} applications x {DEPLOYS_PER_DAY} deploys a day x {DAYS_PER_MONTH} "
        f"days = {per_month} pushes, each deployed ({len(flows.deploy_states)} state "
        f"transitions, {len(flows.deploy_tasks)} Task invocations per deploy); API calls "
        f"are {PRICES['api_gateway_rest_request'] * 1e6:.2f} per million more"
    )
    print(
        f"beside it: one always-on controller pod (Fargate 0.25 vCPU, 0.5 GB): "
        f"{pod:.2f} a month, per cluster, idle or not"
    )


if __name__ == "__main__":
    main()
