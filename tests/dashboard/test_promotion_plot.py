"""A progressive promotion as the page draws it, in headless chromium in front of a fake
API: the canary's weight over time and one point per reading of its error rate and p99,
against the limits the readings were judged by, placed where their times and values say."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from bluegreen_cli.dashboard.server import DashboardServer

from tests.dashboard import answers
from tests.dashboard.conftest import Tab
from tests.fake_api import FakeApi

Start = Callable[[str], DashboardServer]

ERROR_PERCENT = [
    None if requests == 0 else 100 * errors / requests
    for *_, requests, errors, _p99 in answers.READINGS
]
P99 = [reading[-1] for reading in answers.READINGS]
FINDINGS = ["passed", "inconclusive", "passed", "failed"]


class Plot:
    """The plot's geometry as drawn: the time axis and each panel's height scale."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.svg = page.locator("#promotion-plot")
        baseline = self.svg.locator(".panel-weight line.baseline")
        self.left = number(baseline, "x1")
        self.right = number(baseline, "x2")
        self.start = answers.PROMOTION_START
        self.end = answers.FINISHED_AT

    def x(self, when: datetime | str) -> float:
        at = datetime.fromisoformat(when) if isinstance(when, str) else when
        share = (at - self.start) / (self.end - self.start)
        return self.left + share * (self.right - self.left)

    def panel(self, name: str) -> Any:
        return self.svg.locator(f".panel[data-panel={name}]")

    def height(self, name: str, y: float) -> float:
        """How far up its panel ``y`` is, from 0 (the baseline) to 1 (the top)."""
        panel = self.panel(name)
        top, bottom = number(panel, "data-top"), number(panel, "data-bottom")
        return (bottom - y) / (bottom - top)


def number(locator: Any, attribute: str) -> float:
    return float(locator.get_attribute(attribute))


def open_promotion(tab: Tab, server: DashboardServer) -> Plot:
    tab.page.goto(server.url)
    tab.page.wait_for_selector("body[data-ready]")
    tab.page.wait_for_selector("#promotion-plot")
    return Plot(tab.page)


@pytest.fixture
def plot(fake_api: FakeApi, dashboard_for: Start, tab: Tab) -> Plot:
    # GIVEN a promotion of blue that passed at 10 %, failed at 50 % and was backed out
    answers.serve_promotion(fake_api)
    server = dashboard_for(fake_api.url)
    # WHEN the page is opened
    drawn = open_promotion(tab, server)
    assert all(url.startswith(server.url) for url in tab.requests), tab.requests
    return drawn


def test_the_weight_line_steps_where_and_when_the_promotion_moved(plot: Plot) -> None:
    # THEN the canary's weight goes 0, 10 from the first reading's window, 50 from the
    # second step's start, 0 from the back-out, to the end of the deployment
    path = str(plot.panel("weight").locator("path.weight-line").get_attribute("d"))
    levels = weight_levels(plot, path)
    assert [round(weight) for _, weight in levels] == [0, 10, 50, 0]
    moved_at = [x for x, _ in levels[1:]]
    expected = [answers.READINGS[0][1], answers.STEP_TWO_AT, answers.BACKED_OUT_AT]
    assert moved_at == pytest.approx([plot.x(when) for when in expected], abs=0.2)
    assert float(re.findall(r"H([\d.]+)", path)[-1]) == pytest.approx(plot.right, abs=0.2)


def weight_levels(plot: Plot, path: str) -> list[tuple[float, float]]:
    """Each level of the stepped path ``M x y (H x V y)* H x`` as (x where it starts,
    weight in percent), consecutive equal levels merged."""
    tokens = re.findall(r"([MHV])([\d.]+)(?: ([\d.]+))?", path)
    assert tokens[0][0] == "M", path
    x, y = float(tokens[0][1]), float(tokens[0][2])
    levels = [(x, 100 * plot.height("weight", y))]
    for command, value, _ in tokens[1:]:
        if command == "H":
            x = float(value)
        else:
            weight = 100 * plot.height("weight", float(value))
            if round(weight, 3) != round(levels[-1][1], 3):
                levels.append((x, weight))
    return levels


@pytest.mark.parametrize(
    ("panel", "values", "limit"),
    [
        ("errorPercent", ERROR_PERCENT, answers.POLICY.max_error_percent),
        ("p99Seconds", P99, answers.POLICY.max_p99_seconds),
    ],
)
def test_each_reading_is_one_point_against_the_limit_it_was_judged_by(
    plot: Plot, panel: str, values: list[float | None], limit: float
) -> None:
    drawn = plot.panel(panel)
    # THEN the panel draws the limit the readings state (not a default), once
    threshold = drawn.locator("line.threshold")
    assert threshold.count() == 1
    assert number(threshold, "data-value") == limit
    line_y = number(threshold, "y1")
    assert number(threshold, "y2") == line_y
    line_height = plot.height(panel, line_y)
    assert line_height == pytest.approx(limit / number(drawn, "data-max"), abs=1e-3)
    # AND one point per reading, in order, at the end of its window
    points = drawn.locator("circle.reading").all()
    assert len(points) == len(answers.READINGS)
    for index, (point, value, finding) in enumerate(zip(points, values, FINDINGS, strict=True)):
        assert number(point, "data-index") == index
        assert number(point, "cx") == pytest.approx(
            plot.x(answers.readings()[index]["end"]), abs=0.2
        )
        assert f"finding-{finding}" in str(point.get_attribute("class"))
        height = plot.height(panel, number(point, "cy"))
        if value is None:
            # AND a reading with nothing to read sits on the baseline, hollow
            assert "unread" in str(point.get_attribute("class"))
            assert height == 0
            continue
        # AND at its value's height on the same scale as the limit: above the line
        # exactly when the value broke the limit
        assert height / line_height == pytest.approx(value / limit, rel=1e-3)
        assert (height > line_height) == (value > limit)


def test_the_promotion_says_where_it_stands_and_lists_its_readings(plot: Plot) -> None:
    box = plot.page.locator("#deployment .promotion")
    facts = box.locator(".promotion-facts").inner_text()
    assert "backed_out" in facts
    assert "step 2 of 3 (50 %)" in facts
    assert "2 passed, 1 failed, 1 inconclusive" in facts
    # WHEN a person opens the table of the readings
    box.locator(".readings summary").click()
    # THEN it lists each reading with its figures and the reasons the flow gave
    rows = box.locator(".readings tbody tr").all()
    assert [row.get_attribute("data-finding") for row in rows] == FINDINGS
    assert "4.00 %" in rows[3].inner_text()
    assert "is above 2.5 %" in rows[3].inner_text()
    # AND it stays open when the page redraws the deployment
    box.locator(".readings").evaluate("node => { window.drawnBefore = node; }")
    plot.page.wait_for_function(
        "() => document.querySelector('#deployment .readings') !== window.drawnBefore"
    )
    assert box.locator(".readings").get_attribute("open") is not None
