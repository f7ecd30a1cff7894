"""Warm ecr_push throughput against moto: events per second, duplicates included.

The handler runs in-process on moto's DynamoDB (tables from template.yaml),
warmed by one event first. The stream is the sample tagged push re-addressed
to fresh digests and event ids; every fourth event is a redelivery of an
earlier one (answered from the idempotency table), and every fifth is ignored
(another repository). Figures measure the code path, not DynamoDB: moto has no
network round trip.

Reproduce: ``make bench`` or ``python -m bench ecr_push_throughput``
(``BENCH_EVENTS=2000 python -m bench ecr_push_throughput`` for a longer run).
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
from pathlib import Path
from typing import Any

from bench import lambda_context

ROOT = Path(__file__).resolve().parent.parent
EVENTS = int(os.environ.get("BENCH_EVENTS", "400"))


def _stream(template: dict[str, Any], count: int) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    for n in range(count):
        if n % 4 == 3 and events:
            kind, earlier = events[n // 2]
            events.append(("duplicate", earlier))
            continue
        event = copy.deepcopy(template)
        event["id"] = str(uuid.uuid4())
        event["time"] = f"2026-11-16T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
        event["detail"]["image-digest"] = f"sha256:{n:064x}"
        event["detail"]["image-tag"] = f"build-{n % 7}"
        kind = "push"
        if n % 5 == 4:
            event["detail"]["repository-name"] = "some-other-service"
            kind = "ignored"
        events.append((kind, event))
    return events


def main() -> None:
    """Measure and print the table."""
    from bench import on_moto

    on_moto()

    import boto3
    from moto import mock_aws

    from local.aws import create_tables

    template = json.loads((ROOT / "events" / "ecr_push" / "tagged_push.json").read_text())
    context = lambda_context("ecr-push", 256)
    # The handler's log lines and metric flushes are not the figures: keep them off the table.
    quiet = io.StringIO()
    with mock_aws(), contextlib.redirect_stdout(quiet), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        create_tables(boto3.client("dynamodb", region_name=os.environ["AWS_DEFAULT_REGION"]))
        from functions.ecr_push import app, dependencies

        dependencies.reset()
        app.lambda_handler(_stream(template, 1)[0][1], context)  # warm: clients, tracer, models
        stream = _stream(template, EVENTS)
        per_kind: dict[str, list[float]] = {"push": [], "duplicate": [], "ignored": []}
        started = time.perf_counter()
        for kind, event in stream:
            before = time.perf_counter()
            app.lambda_handler(event, context)
            per_kind[kind].append(time.perf_counter() - before)
        elapsed = time.perf_counter() - started

    print("$ make bench   # or: python -m bench ecr_push_throughput")
    header = f"{'events':<12} {'count':>6} {'median ms':>10} {'p95 ms':>8}"
    print(header)
    print("-" * len(header))
    for kind, samples in per_kind.items():
        if not samples:
            continue
        p95 = sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]
        print(
            f"{kind:<12} {len(samples):>6} {statistics.median(samples) * 1000:>10.2f} "
            f"{p95 * 1000:>8.2f}"
        )
    print(f"{'all':<12} {len(stream):>6}   {len(stream) / elapsed:.0f} events/s (warm, on moto)")


if __name__ == "__main__":
    main()
