"""``make bench``: run every benchmark module of this folder and print its table.

Each ``bench/<name>.py`` exposes ``main() -> None`` that measures and prints one
table, headed by the command that reproduces it. ``python -m bench <name> ...``
runs only the named ones.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import pkgutil
import sys
from pathlib import Path

# What the handlers themselves write to stdout (EMF metric documents, structured log
# lines) is not a figure: it is dropped so the tables stay readable.
_HANDLER_OUTPUT = ('{"_aws"', '{"level"')


class _TablesOnly(io.TextIOBase):
    """A stdout that passes whole lines through, except the handlers' own JSON lines."""

    def __init__(self, target: io.TextIOBase) -> None:
        self._target = target
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if not line.startswith(_HANDLER_OUTPUT):
                self._target.write(line + "\n")
        self._target.flush()
        return len(text)

    def flush(self) -> None:
        self._target.flush()


def main(argv: list[str]) -> int:
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    here = Path(__file__).resolve().parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    chosen = argv or names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
        return 2
    with contextlib.redirect_stdout(_TablesOnly(sys.stdout)):  # type: ignore[arg-type]
        for name in chosen:
            module = importlib.import_module(f"bench.{name}")
            module.main()
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
