"""Fixtures and collection rules of the local stack's tests.

A story test about what only one configuration has (the real proxy under the gateway
router on the real control plane, the real controller under alb) says so with
``@pytest.mark.only_on("kube-gateway")``: it is collected for that configuration of
the module's ``stack`` and not generated for the others (deselected, never skipped).
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "only_on(*ids): a story test that exists only for those configurations of `stack`",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("only_on")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None or "stack" not in callspec.params:
            kept.append(item)
            continue
        cluster, router, _ = callspec.params["stack"]
        (kept if f"{cluster}-{router}" in marker.args else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
