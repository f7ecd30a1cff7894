"""Sample events from ``events/``, one folder per entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> Any:
    """Load ``events/<name>`` (e.g. ``"ecr_push/tagged_push.json"``) as JSON."""
    return json.loads((EVENTS / name).read_text())
