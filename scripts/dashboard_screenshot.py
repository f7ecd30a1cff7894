"""``make screenshot``: regenerate docs/dashboard.png, the dashboard while a deploy's
rollout runs.

The whole local stack in-process (free ports, a private state folder) with one good
push deployed, so that every table has a row; ``bluegreen dashboard``'s server in front
of it, signing its calls; Debian's headless chromium driven by Playwright at a laptop's
size. An image that cannot be pulled is pushed from the command line and the page is
photographed while that rollout runs, then left to show the rollback before the stack
stops. tests/dashboard/test_local_stack.py takes the same picture with the same
functions, into a temporary folder of its own.

    .venv/bin/python -m scripts.dashboard_screenshot [PATH]   (or: make screenshot)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

    from local.stack import StackOptions

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "dashboard.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}
"""A laptop's screen: the size of every page the dashboard's tests open, and of the picture."""

GOOD_PUSH = ("push", "dev", "--wait", "--interval", "0.2")
UNPULLABLE_PUSH = ("push", "dev", "--broken", "--fault", "ImagePullBackOff")
"""``bluegreen`` arguments: a good image deployed to the end, and an image that cannot be
pulled, whose rollout runs until the flow gives up on it and rolls it back."""

ROLLOUT_RUNNING = "#deployment .step[data-phase=rollout][data-status=running]"
ROLLBACK_SHOWN = "#deployment .cause"


def stack_options(state_dir: Path) -> StackOptions:
    """The local stack the picture is taken on, at its own speed.

    A crash loop is seen from the pods in a fraction of a second there; an image that
    cannot be pulled is given FailAfterSeconds (here 300, 5 s of real time), long enough
    to watch (and photograph) the rollout running.
    """
    from local.stack import StackOptions

    return StackOptions.ephemeral(state_dir, speed=60, overrides={"BG_FAIL_AFTER_SECONDS": "300"})


def bluegreen(*argv: str) -> tuple[int, Any, str]:
    """Run the ``bluegreen`` command line in-process with ``--json``: exit code, the
    parsed output (None when there is none) and what it wrote to stderr."""
    from bluegreen_cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["--json", *argv], out=out, err=err)
    return code, json.loads(out.getvalue()) if out.getvalue() else None, err.getvalue()


def photograph_rollout(page: Any, path: Path) -> Path:
    """Wait until ``page`` shows a deployment's rollout running, then write a picture of
    the whole page to ``path`` (a PNG) and return ``path``."""
    page.wait_for_selector(ROLLOUT_RUNNING)
    page.screenshot(path=str(path), full_page=True)
    return path


def push(*argv: str) -> None:
    code, _, err = bluegreen(*argv)
    if code != 0:
        raise SystemExit(f"screenshot: `bluegreen {' '.join(argv)}` ended {code}: {err}")


def take(path: Path) -> Path:
    """Start a local stack, deploy a good image, push one that cannot be pulled and
    photograph the dashboard while its rollout runs; return ``path``."""
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: `make chromium` installs Debian's package")
    from bluegreen_cli.api import ApiClient, Signer
    from bluegreen_cli.dashboard.server import DashboardServer
    from playwright.sync_api import sync_playwright

    from local.stack import STATE_FILE, LocalStack

    with (
        tempfile.TemporaryDirectory(prefix="dashboard-screenshot-") as folder,
        LocalStack(stack_options(Path(folder))) as stack,
    ):
        assert stack.state is not None
        # The CLI finds this stack as it finds `make local`'s: through its state file.
        os.environ["BLUEGREEN_LOCAL_STATE"] = str(Path(folder) / STATE_FILE)
        push(*GOOD_PUSH)
        client = ApiClient(stack.state.api_url, Signer(stack.state.region), timeout=30)
        with DashboardServer(client, 0) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(server.url)
            page.wait_for_selector("body[data-ready]")
            push(*UNPULLABLE_PUSH)
            photograph_rollout(page, path)
            # The flow ends (rolled back) before the stack under it stops.
            page.locator(ROLLBACK_SHOWN).wait_for(timeout=60_000)
            browser.close()
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.dashboard_screenshot")
    parser.add_argument(
        "path", nargs="?", type=Path, default=SCREENSHOT, help=f"where (default {SCREENSHOT})"
    )
    written = take(parser.parse_args(argv).path)
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
