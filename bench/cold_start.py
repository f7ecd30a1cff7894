"""Cold import of each function module, next to the floor, measured side by side.

Each sample imports one module in a fresh interpreter and times the import
alone (interpreter start-up excluded), as CPU time of the process and as wall
time. The floor is a bare handler module that imports Powertools ``Logger`` and
boto3, the least any function here imports. Samples of all modules are
interleaved, so that a busy machine slows all of them alike; the ratio to the
floor is taken on CPU time, which other processes on a shared machine disturb
far less than wall time (the import itself is CPU-bound once files are cached).

Rows "+ first call" add what a module builds lazily on its first event (for
ecr_push: its environment model, boto3's DynamoDB client, the idempotency layer,
the ledger, the registry, the tracer), compared with the floor plus a DynamoDB
client: what any handler that records something pays before its first write.
Children run with
``LAMBDA_TASK_ROOT`` set, as in Lambda.

Reproduce: ``make bench`` or ``python -m bench cold_start``
(``BENCH_RUNS=15 python -m bench cold_start`` for more samples).
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("functions.ecr_push.app", "functions.services_api.app", "functions.deploy_steps.app")
FLOOR = "floor_handler"
TARGETS = {"functions.ecr_push.app": 1.2, "functions.services_api.app": 1.5}
RUNS = max(7, int(os.environ.get("BENCH_RUNS", "9")))

FLOOR_SOURCE = '''"""The floor: a bare handler importing Powertools Logger and boto3."""
import boto3
from aws_lambda_powertools import Logger

logger = Logger()


def lambda_handler(event, context):
    return {}
'''

FIRST_CALL = {
    # The floor's first call creates the client a handler needs to record anything.
    FLOOR: "m.boto3.client('dynamodb', region_name='us-west-2')",
    # What ecr_push defers to its first push: its environment model, boto3 + its DynamoDB
    # client, the idempotency layer, the ledger, the registry, and the X-Ray tracer.
    # Building them needs no network.
    "functions.ecr_push.app": (
        "m.dependencies.environment(); m.dependencies.recorder(); "
        "m.dependencies.push_ports(); m.tracer.provider"
    ),
}
"""Rows 'module + first call': the import plus what the module builds on first use."""

CHILD = """
import importlib, json, sys, time
wall, cpu = time.perf_counter(), time.process_time()
m = importlib.import_module(sys.argv[1])
if len(sys.argv) > 2:
    exec(sys.argv[2])
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(json.dumps({"cpu": cpu, "wall": wall, "kubernetes": "kubernetes" in sys.modules}))
"""


def _exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    return path.is_file()


def _sample(row: str, env: dict[str, str]) -> tuple[float, float, bool]:
    module, _, first_call = row.partition(" + ")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, module, *([FIRST_CALL[module]] if first_call else [])],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {row} failed:\n{done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["cpu"]), float(result["wall"]), bool(result["kubernetes"])


Samples = tuple[list[float], list[float], bool]


def measure(modules: list[str], runs: int = RUNS) -> dict[str, Samples]:
    """CPU and wall import times (seconds) per module, and whether Kubernetes got loaded."""
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as floor_dir:
        Path(floor_dir, f"{FLOOR}.py").write_text(FLOOR_SOURCE)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "layers" / "bluegreen"), str(ROOT), floor_dir]
            ),
            "PYTHONDONTWRITEBYTECODE": "",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-west-2"),
            "POWERTOOLS_SERVICE_NAME": "bench",
            "POWERTOOLS_METRICS_NAMESPACE": "Bench",
            # As in Lambda: the X-Ray SDK then samples locally instead of creating
            # sampling clients, which only happens outside Lambda.
            "LAMBDA_TASK_ROOT": floor_dir,
        }
        cpu: dict[str, list[float]] = {m: [] for m in dict.fromkeys([FLOOR, *modules])}
        wall: dict[str, list[float]] = {m: [] for m in cpu}
        kube: dict[str, bool] = dict.fromkeys(cpu, False)
        for module in cpu:  # warm the bytecode caches; not counted
            _sample(module, env)
        for _ in range(runs):
            for module in cpu:
                cpu_s, wall_s, imported_kube = _sample(module, env)
                cpu[module].append(cpu_s)
                wall[module].append(wall_s)
                kube[module] = kube[module] or imported_kube
    return {m: (cpu[m], wall[m], kube[m]) for m in cpu}


def main() -> None:
    """Measure and print the table."""
    present = [m for m in FUNCTIONS if _exists(m)]
    present += [f"{m} + first call" for m in [FLOOR, *present] if m in FIRST_CALL]
    for missing in sorted(set(FUNCTIONS) - set(present)):
        print(f"note: {missing} does not exist yet; skipped")
    if importlib.util.find_spec("aws_lambda_powertools") is None:
        print("note: aws_lambda_powertools is not installed; run 'make venv' first")
        return
    results = measure(present)

    def floor_of(row: str) -> tuple[float, float]:
        floor = f"{FLOOR} + first call" if row.endswith(" + first call") else FLOOR
        return statistics.median(results[floor][0]), statistics.median(results[floor][1])

    print(f"$ make bench   # or: python -m bench cold_start   ({RUNS} runs each, interleaved)")
    header = (
        f"{'module':<37} {'cpu ms':>7} {'x floor':>8} {'target':>9} "
        f"{'wall ms':>8} {'x floor':>8} {'k8s':>4}"
    )
    print(header)
    print("-" * len(header))
    for module, (cpu, wall, kube) in results.items():
        floor_cpu, floor_wall = floor_of(module)
        ratio = statistics.median(cpu) / floor_cpu
        target = TARGETS.get(module)
        verdict = f"<={target} " + ("ok" if ratio <= target else "MISS") if target else ""
        name = module.replace(".app", "").replace(FLOOR, "floor (Logger + boto3)")
        print(
            f"{name:<37} {statistics.median(cpu) * 1000:>7.1f} {ratio:>8.2f} {verdict:>9} "
            f"{statistics.median(wall) * 1000:>8.1f} {statistics.median(wall) / floor_wall:>8.2f} "
            f"{'yes' if kube else 'no':>4}"
        )
    print("medians; k8s: whether the import loaded the Kubernetes client;")
    print("'+ first call': the import plus what it builds on first use (the floor: a DynamoDB")
    print("client), each compared with the floor's own '+ first call'")


if __name__ == "__main__":
    main()
