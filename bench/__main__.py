"""``make bench``: run every benchmark module of this folder and print its table.

Each ``bench/<name>.py`` exposes ``main() -> None`` that measures and prints one
table, headed by the command that reproduces it. ``python -m bench <name> ...``
runs only the named ones.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    # The handlers' metrics would print EMF documents between the tables; the shared
    # Metrics object reads this once, when the first benchmark imports it.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    here = Path(__file__).resolve().parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    chosen = argv or names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
        return 2
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        module.main()
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
