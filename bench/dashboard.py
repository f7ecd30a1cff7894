"""Dashboard: the page's size, and its time to first render against the local stack.

The whole local stack in-process (free ports), with one good push deployed so
every table has a row; ``bluegreen dashboard``'s server in front of it, signing
its calls; Debian's headless chromium driven by Playwright. Each run opens the
page in a fresh browser context (nothing cached) and reads, from the browser's
own clock, the time from navigation start to the moment the script has drawn
the first view (the ``bluegreen-first-render`` performance mark). The server
asks the API for the first view while it serves the page, so this includes
three signed API calls through the local API Gateway endpoint.
"""

from __future__ import annotations

import gzip
import io
import os
import statistics
import tempfile
import urllib.request
from pathlib import Path

COMMAND = ".venv/bin/python -m bench dashboard   (or: make bench)"
RUNS = 7
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--no-first-run",
]
ASSETS = ("/assets/dashboard.js", "/assets/dashboard.css", "/assets/favicon.svg")


def main() -> None:
    """Measure the page's bytes and ``RUNS`` first renders (after one warm-up)."""
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: `make chromium` installs Debian's package")
    from bluegreen_cli.api import ApiClient, Signer
    from bluegreen_cli.dashboard.server import DashboardServer
    from bluegreen_cli.main import main as bluegreen
    from playwright.sync_api import sync_playwright

    from local.stack import STATE_FILE, LocalStack, StackOptions

    with (
        tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder,
        LocalStack(StackOptions.ephemeral(Path(folder))) as stack,
    ):
        assert stack.state is not None
        # The CLI finds this stack as it finds `make local`'s: through its state file.
        os.environ["BLUEGREEN_LOCAL_STATE"] = str(Path(folder) / STATE_FILE)
        argv = ["push", "dev", "--wait", "--interval", "0.2"]
        pushed = bluegreen(argv, io.StringIO(), io.StringIO())
        del os.environ["BLUEGREEN_LOCAL_STATE"]
        if pushed != 0:
            raise SystemExit(f"bench dashboard: the warm-up push ended {pushed}")
        client = ApiClient(stack.state.api_url, Signer(stack.state.region), timeout=30)
        with DashboardServer(client, 0) as server:
            sizes = {path: len(_get(server.url.rstrip("/") + path)) for path in ("/", *ASSETS)}
            packed = sum(
                len(gzip.compress(_get(server.url.rstrip("/") + p))) for p in ("/", *ASSETS)
            )
            renders: list[float] = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                for n in range(RUNS + 1):
                    context = browser.new_context(viewport={"width": 1440, "height": 900})
                    page = context.new_page()
                    page.goto(server.url)
                    page.wait_for_selector("body[data-ready]")
                    mark = page.evaluate(
                        "performance.getEntriesByName('bluegreen-first-render')[0].startTime"
                    )
                    context.close()
                    if n:  # the first one pays for the browser's own start
                        renders.append(float(mark))
                browser.close()

    rows = [
        ("page (index.html, first view inside)", f"{sizes['/']:,} bytes"),
        *((f"{path.removeprefix('/assets/')}", f"{sizes[path]:,} bytes") for path in ASSETS),
        ("total, as served (uncompressed)", f"{sum(sizes.values()):,} bytes"),
        ("total, gzip (for comparison; not served so)", f"{packed:,} bytes"),
        ("time to first render, median", f"{statistics.median(renders):.0f} ms"),
        ("time to first render, max", f"{max(renders):.0f} ms"),
    ]
    print(f"$ {COMMAND}")
    print(
        f"dashboard against the local stack: page size, and {RUNS} first renders in headless "
        "chromium after one warm-up (fresh context each, no cache)"
    )
    width = max(len(label) for label, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 20}")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback only
        return bytes(answer.read())


if __name__ == "__main__":
    main()
