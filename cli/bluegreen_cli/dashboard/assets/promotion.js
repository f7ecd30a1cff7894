// eks-bluegreen dashboard: a progressive promotion, drawn by the page itself as inline SVG
// (nothing is fetched, no chart library): the canary's share of production over time, and
// each reading of the canary (error rate, p99) against the limits it was judged by.
// Everything comes from `promotion` in GET /deployments/{id}; text is set as text.
"use strict";

window.BluegreenPromotion = (() => {
  // The SVG namespace is a name, not an address: nothing is loaded from it.
  const SVG_NS = "http://www.w3.org/2000/svg";
  const WIDTH = 720;
  const LEFT = 76;
  const RIGHT = 20;
  const TOP = 22;
  const PANEL = 92;
  const GAP = 34;
  const AXIS = 26;

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const time = (value) => {
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? null : parsed;
  };
  const round = (value) => Math.round(value * 100) / 100;

  // -- the limits --------------------------------------------------------------------

  // A reading states the limits it was judged by only in its reasons, in the words of
  // bluegreen.logic.analysis.judge: a passed reading names both ("(at most 1 %)",
  // "(at most 0.5 s)"), a failed one the limit each figure broke ("is above 1 %").
  // An inconclusive reading names none. tests/dashboard builds its readings with judge
  // itself, so a change of those words fails there rather than here in silence.
  const NUMBER = "([0-9]+(?:\\.[0-9]+)?(?:e[+-]?[0-9]+)?)";
  const LIMIT_WORDS = {
    errorPercent: [
      new RegExp(`error rate [0-9.]+ % over [0-9]+ requests \\(at most ${NUMBER} %\\)`),
      new RegExp(`error rate [0-9.]+ % \\(5xx [^)]*\\) is above ${NUMBER} %`),
    ],
    p99Seconds: [
      new RegExp(`p99 [0-9.]+ s \\(at most ${NUMBER} s\\)`),
      new RegExp(`p99 latency [0-9.]+ s is above ${NUMBER} s`),
    ],
  };

  function limitOf(readings, figure) {
    for (const reading of [...readings].reverse()) {
      for (const reason of reading.reasons || []) {
        for (const words of LIMIT_WORDS[figure]) {
          const found = words.exec(String(reason));
          if (found) return Number(found[1]);
        }
      }
    }
    return null;
  }

  // -- the weights over time ------------------------------------------------------------

  // The canary's weight from the moments the promotion records: the start (0), the start
  // of each reading's window (the weight it was read at; a step's first window opens when
  // the data plane confirmed its weights), the current step's start, the back-out (0) and
  // the end of a promotion that completed (100).
  function weightMoments(promotion, readings, context) {
    const moments = [];
    const add = (value, weight) => {
      const at = time(value);
      if (at !== null && typeof weight === "number") moments.push({ at, weight });
    };
    add(context.startedAt, 0);
    for (const reading of readings) add(reading.start, reading.weight);
    const current = (promotion.steps || [])[promotion.step - 1];
    if (current) add(promotion.stepStartedAt, current.weight);
    add(promotion.backedOutAt, 0);
    if (promotion.status === "promoted") add(context.finishedAt, 100);
    return moments.sort((a, b) => a.at - b.at);
  }

  function span(moments, readings, promotion, context) {
    const times = [
      ...moments.map((moment) => moment.at),
      ...readings.map((reading) => time(reading.end)),
      time(promotion.failedAt),
      time(context.finishedAt),
    ].filter((at) => at !== null);
    if (context.running) times.push(Date.now());
    if (!times.length) return null;
    const from = Math.min(...times);
    const to = Math.max(...times);
    return { from, to: to > from ? to : from + 1000 };
  }

  // -- drawing -------------------------------------------------------------------------

  function niceTop(value) {
    if (!(value > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  function panel(index, name, title, top, unit) {
    const y0 = TOP + index * (PANEL + GAP);
    const bottom = y0 + PANEL;
    const y = (value) => bottom - (Math.max(0, Math.min(top, value)) / top) * PANEL;
    const group = svg(
      "g",
      { class: `panel panel-${name}`, "data-panel": name, "data-top": y0, "data-bottom": bottom, "data-max": top },
      svg("text", { class: "panel-title", x: LEFT, y: y0 - 8 }, title),
      svg("line", { class: "axis", x1: LEFT, x2: LEFT, y1: y0, y2: bottom }),
      svg("line", { class: "axis baseline", x1: LEFT, x2: WIDTH - RIGHT, y1: bottom, y2: bottom }),
      svg("text", { class: "tick", x: LEFT - 6, y: bottom, "text-anchor": "end" }, `0 ${unit}`),
      svg("text", { class: "tick", x: LEFT - 6, y: y0 + 10, "text-anchor": "end" }, `${round(top)} ${unit}`)
    );
    return { group, y, bottom, top: y0 };
  }

  function weightPanel(moments, x, to) {
    const drawn = panel(0, "weight", "canary weight", 100, "%");
    if (moments.length) {
      const first = moments[0];
      let d = `M${x(first.at).toFixed(1)} ${drawn.y(first.weight).toFixed(1)}`;
      for (const moment of moments.slice(1)) {
        d += ` H${x(moment.at).toFixed(1)} V${drawn.y(moment.weight).toFixed(1)}`;
      }
      d += ` H${x(to).toFixed(1)}`;
      const last = moments[moments.length - 1];
      drawn.group.append(
        svg("path", { class: "weight-line", d }),
        svg("text", { class: "weight-now", x: x(to) - 4, y: drawn.y(last.weight) - 4, "text-anchor": "end" }, `${last.weight} %`)
      );
    }
    return drawn.group;
  }

  function readingPanel(index, figure, title, unit, readings, limit, x, when) {
    const values = readings.map((reading) => (typeof reading[figure] === "number" ? reading[figure] : null));
    const top = niceTop(Math.max(...values.filter((value) => value !== null), limit !== null ? limit * 1.25 : 0));
    const drawn = panel(index, figure, title, top, unit);
    if (limit !== null) {
      const at = drawn.y(limit);
      drawn.group.append(
        svg("line", { class: "threshold", "data-value": limit, x1: LEFT, x2: WIDTH - RIGHT, y1: at, y2: at }),
        svg("text", { class: "threshold-label", x: WIDTH - RIGHT, y: at - 4, "text-anchor": "end" }, `limit ${limit} ${unit}`)
      );
    } else {
      drawn.group.append(
        svg("text", { class: "threshold-label", x: WIDTH - RIGHT, y: drawn.top + 10, "text-anchor": "end" }, "no reading stated its limit yet")
      );
    }
    readings.forEach((reading, position) => {
      const value = values[position];
      const end = time(reading.end);
      if (end === null) return;
      const read = value !== null;
      drawn.group.append(
        svg(
          "circle",
          {
            class: `reading finding-${reading.finding || "unknown"}${read ? "" : " unread"}`,
            "data-index": position,
            "data-value": read ? value : "",
            "data-finding": reading.finding || "",
            cx: x(end),
            cy: read ? drawn.y(value) : drawn.bottom,
            r: 4.5,
          },
          svg(
            "title",
            {},
            `${when(reading.end)} at ${reading.weight} %: ${title} ` +
              `${read ? `${round(value)} ${unit}` : "not read"} (${reading.finding})`
          )
        )
      );
    });
    return drawn.group;
  }

  function plot(promotion, readings, limits, context) {
    const moments = weightMoments(promotion, readings, context);
    const range = span(moments, readings, promotion, context);
    if (!range) return null;
    const x = (at) => LEFT + ((at - range.from) / (range.to - range.from)) * (WIDTH - LEFT - RIGHT);
    const height = TOP + 3 * PANEL + 2 * GAP + AXIS;
    const passed = readings.filter((reading) => reading.finding === "passed").length;
    return svg(
      "svg",
      {
        id: "promotion-plot",
        class: "plot",
        viewBox: `0 0 ${WIDTH} ${height}`,
        role: "img",
        "aria-label":
          `The canary's weight over time and ${readings.length} reading(s), ${passed} passed: ` +
          `error rate against ${limits.errorPercent ?? "no stated"} %, p99 against ${limits.p99Seconds ?? "no stated"} s`,
      },
      weightPanel(moments, x, range.to),
      readingPanel(1, "errorPercent", "error rate", "%", readings, limits.errorPercent, x, context.when),
      readingPanel(2, "p99Seconds", "p99", "s", readings, limits.p99Seconds, x, context.when),
      svg("text", { class: "tick", x: LEFT, y: height - 6 }, context.when(new Date(range.from).toISOString())),
      svg("text", { class: "tick", x: WIDTH - RIGHT, y: height - 6, "text-anchor": "end" }, context.when(new Date(range.to).toISOString()))
    );
  }

  // -- the view --------------------------------------------------------------------

  // The page redraws every few seconds: the table stays open once a person opened it.
  let tableOpen = false;

  function readingsTable(readings, h, when) {
    const figure = (value, unit, digits) => (typeof value === "number" ? `${value.toFixed(digits)} ${unit}` : "–");
    return h(
      "details",
      { class: "readings", open: tableOpen, ontoggle: (event) => (tableOpen = event.target.open) },
      h("summary", {}, `The ${readings.length} reading(s) as a table`),
      h(
        "table",
        {},
        h(
          "thead",
          {},
          h("tr", {}, ...["Read at", "Weight", "Requests", "Error rate", "p99", "Finding", "Reasons"].map((name) => h("th", { scope: "col" }, name)))
        ),
        h(
          "tbody",
          {},
          ...readings.map((reading) =>
            h(
              "tr",
              { data: { finding: reading.finding || "" } },
              h("td", {}, when(reading.end)),
              h("td", {}, `${reading.weight} %`),
              h("td", {}, typeof reading.requests === "number" ? String(Math.round(reading.requests)) : "–"),
              h("td", {}, figure(reading.errorPercent, "%", 2)),
              h("td", {}, figure(reading.p99Seconds, "s", 3)),
              h("td", {}, h("span", { class: `badge finding-${reading.finding}` }, reading.finding || "?")),
              h("td", { class: "reason" }, (reading.reasons || []).join("; "))
            )
          )
        )
      )
    );
  }

  /**
   * The promotion's panel: where it stands, the plot, and its readings as a table.
   * `context` gives the page's element helper `h`, its time format `when`, the
   * deployment's `startedAt` and `finishedAt`, and whether it is `running`.
   */
  function view(promotion, context) {
    const { h, when } = context;
    const readings = (promotion.analyses || []).filter((reading) => reading && typeof reading === "object");
    const limits = { errorPercent: limitOf(readings, "errorPercent"), p99Seconds: limitOf(readings, "p99Seconds") };
    const steps = promotion.steps || [];
    const current = steps[promotion.step - 1];
    const counts = ["passed", "failed", "inconclusive"]
      .map((finding) => [finding, readings.filter((reading) => reading.finding === finding).length])
      .filter(([, count]) => count)
      .map(([finding, count]) => `${count} ${finding}`);
    const drawn = plot(promotion, readings, limits, context);
    return h(
      "div",
      { class: "promotion", data: { status: promotion.status || "" } },
      h("h4", {}, "Promotion"),
      h(
        "p",
        { class: "promotion-facts" },
        `${promotion.canary} takes production from ${promotion.production}: `,
        h("strong", {}, promotion.status || "?"),
        current ? ` · step ${promotion.step} of ${steps.length} (${current.weight} %)` : ` · ${steps.length} steps`,
        ` · steps ${steps.map((step) => `${step.weight} %`).join(" → ")}`,
        ` · ${readings.length} reading(s)${counts.length ? `: ${counts.join(", ")}` : ""}`
      ),
      drawn ? h("figure", { class: "plot-box" }, drawn) : h("p", { class: "muted" }, "Nothing to plot yet."),
      readings.length ? readingsTable(readings, h, when) : null
    );
  }

  return { view };
})();
