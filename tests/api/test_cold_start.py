"""The handler module imports neither boto3 nor the Kubernetes client: requests do, on need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import functions.services_api.app
print(json.dumps(sorted(m for m in ("boto3", "kubernetes", "botocore.session", "aws_xray_sdk")
                        if m in sys.modules)))
"""


def _heavy_modules_after(code: str, cwd: Path, pythonpath: list[Path]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_handler_loads_no_sdk_or_kubernetes_client() -> None:
    # GIVEN a fresh interpreter; WHEN the handler module is imported
    loaded = _heavy_modules_after(PROBE, ROOT, [ROOT / "layers" / "bluegreen", ROOT])
    # THEN none of the slow imports happened
    assert loaded == []


def test_the_handler_imports_as_lambda_loads_it() -> None:
    # GIVEN the function folder as the code root, as Lambda unpacks it (plus the layer)
    code = "import app; print(app.lambda_handler.__name__)"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "bluegreen")}
    # WHEN the runtime imports ``app``
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "functions" / "services_api",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # THEN it loads, with its routes
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "lambda_handler"
