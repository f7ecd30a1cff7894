"""The Gateway API CRDs for the real control plane, from the ``sigs.k8s.io/gateway-api`` module.

HTTPRoute is not built into Kubernetes: a cluster serves it once its
CustomResourceDefinition is installed. The definition is the one the project
publishes, taken from the Go module cache (``go mod download -json
sigs.k8s.io/gateway-api@v1.6.3``, which fetches the module once and then only reads
the cache); nothing is vendored here, and nothing is built.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

MODULE = "sigs.k8s.io/gateway-api"
VERSION = "v1.6.3"
CRDS = ("gateway.networking.k8s.io_httproutes.yaml",)
"""The standard-channel CRDs the product's objects need (the gateway router's HTTPRoute)."""


class GatewayApiUnavailable(Exception):
    """The module could not be found or fetched; the message says why."""


@lru_cache(maxsize=1)
def module_dir() -> Path:
    """Where the module's files are in the Go module cache (fetched on first use)."""
    if shutil.which("go") is None:
        raise GatewayApiUnavailable(
            f"no `go` on PATH to find {MODULE}@{VERSION} (its CRDs define HTTPRoute)"
        )
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent,
    )
    try:
        answer = json.loads(result.stdout or "{}")
    except ValueError:
        answer = {}
    folder = answer.get("Dir")
    if result.returncode != 0 or not folder or answer.get("Error"):
        reason = answer.get("Error") or result.stderr.strip() or f"exit {result.returncode}"
        raise GatewayApiUnavailable(f"go mod download {MODULE}@{VERSION} failed: {reason}")
    return Path(folder)


def crd_manifests() -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of ``CRDS``, as published in the module."""
    standard = module_dir() / "config" / "crd" / "standard"
    objects = []
    for name in CRDS:
        document = yaml.safe_load((standard / name).read_text())
        if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
            raise GatewayApiUnavailable(f"{standard / name} is not a CustomResourceDefinition")
        objects.append(document)
    return objects
