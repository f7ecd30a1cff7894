"""pytest plugin: the ``cluster_emulator`` fixture (default seed, instant clock)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.cluster.clock import Clock
from local.cluster.emulator import ClusterEmulator


@pytest.fixture
def cluster_emulator() -> Iterator[ClusterEmulator]:
    """A running emulator with the default seed and an instant clock, stopped afterwards."""
    with ClusterEmulator(seed="default", clock=Clock.instant()) as emulator:
        yield emulator
