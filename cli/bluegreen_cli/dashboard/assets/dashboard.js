// eks-bluegreen dashboard: draws the release from the services API and drives it.
// Every call goes to this page's own server under /api/, which forwards it, signed,
// to the configured API; nothing is loaded from anywhere else. Text from the API is
// always set as text (never as HTML): reasons and actors are typed by people.
"use strict";

(() => {
  const REFRESH_MS = 2000;
  const TOKEN = document.querySelector('meta[name="bluegreen-token"]').content;
  const FINAL = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]);

  const state = {
    services: null, // the last answer of each call: {status, body}
    images: null,
    deployments: null,
    good: { services: null, images: null, deployments: null }, // the last 2xx bodies
    deployment: null,
    timeline: null,
    selected: null, // a deployment chosen by the person (or started from the page)
    updated: null,
    refreshError: null,
  };

  // -- small DOM helpers -----------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "data") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const short = (digest) => {
    const text = String(digest || "");
    const at = text.lastIndexOf("sha256:");
    return at < 0 ? text || "–" : "sha256:" + text.slice(at + 7, at + 19);
  };
  const code = (digest) => h("code", { title: digest || "" }, short(digest));
  const ok = (answer) => answer && answer.status >= 200 && answer.status < 300;

  function when(value) {
    if (!value) return "–";
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    const time = date.toLocaleTimeString([], { hour12: false });
    const today = new Date().toDateString() === date.toDateString();
    return today ? time : `${date.toLocaleDateString()} ${time}`;
  }

  function took(start, end) {
    const from = Date.parse(start);
    const to = end ? Date.parse(end) : Date.now();
    if (Number.isNaN(from) || Number.isNaN(to)) return "";
    const seconds = Math.max(0, Math.round((to - from) / 1000));
    return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  }

  // -- the API, through this page's server ----------------------------------------------

  async function call(method, path, body) {
    const init = {
      method,
      cache: "no-store",
      headers: { Accept: "application/json", "X-Bluegreen-Dashboard": TOKEN },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch("/api" + path, init);
    } catch (error) {
      return {
        status: 0,
        body: {
          error: "DashboardUnreachable",
          detail: "the dashboard's server did not answer: is `bluegreen dashboard` still running?",
        },
      };
    }
    const text = await response.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch (error) {
      // not JSON: shown as the text it is
    }
    return { status: response.status, body: parsed };
  }

  // The API's {error, detail} exactly as it came, with its status.
  function errorBox(answer, what) {
    const body = answer.body;
    const named = body && typeof body === "object" && (body.error || body.message);
    return h(
      "div",
      { class: "error", role: "alert", data: { status: String(answer.status) } },
      h("p", {}, h("strong", {}, `${what}: `), answer.status ? `HTTP ${answer.status}` : "no answer"),
      named ? h("p", { class: "error-name" }, String(body.error || body.message)) : null,
      named && body.detail ? h("p", { class: "error-detail" }, String(body.detail)) : null,
      h("pre", { class: "raw" }, typeof body === "string" ? body : JSON.stringify(body, null, 2))
    );
  }

  // -- colours -----------------------------------------------------------------------

  function imageIndex() {
    const images = (state.good.images && state.good.images.images) || [];
    return new Map(images.map((image) => [image.digest, image]));
  }

  function weightsOf(services) {
    // Production's weights as the router object holds them (null: the API reports none
    // or could not read them).
    const traffic = services.traffic;
    const weights = traffic && traffic.weights && typeof traffic.weights === "object" ? traffic.weights : null;
    return weights && Object.keys(weights).length ? weights : null;
  }

  const weightsText = (weights) =>
    Object.entries(weights)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([colour, weight]) => `${colour} ${weight}%`)
      .join(", ");

  function weightBar(weights, what) {
    return h(
      "div",
      { class: "weight-bar", role: "img", "aria-label": `${what}: ${weightsText(weights)}` },
      ...Object.entries(weights)
        .filter(([, weight]) => weight > 0)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([colour, weight]) => {
          const part = h("span", { class: `weight colour-${colour}`, data: { colour, weight: String(weight) } }, `${colour} ${weight}%`);
          // Through the CSSOM: the page's CSP allows no inline style attribute.
          part.style.width = `${Math.max(0, Math.min(100, weight))}%`;
          return part;
        })
    );
  }

  // What the router object says is one thing; a move counts once the data plane (the
  // Services' endpoints, the ALB's listener rule, the Gateway's status of the route)
  // applies it. `confirmed` is true, false (not yet) or null (it could not be read).
  const CONFIRMATION = new Map([
    [true, { key: "confirmed", mark: "✓", text: "confirmed by the data plane" }],
    [false, { key: "pending", mark: "◷", text: "not confirmed yet" }],
    [null, { key: "unreadable", mark: "?", text: "the data plane could not be read" }],
  ]);

  const sameWeights = (a, b) =>
    Object.keys({ ...a, ...b }).every((colour) => (a[colour] || 0) === (b[colour] || 0));

  function trafficView(traffic, weights) {
    const said = CONFIRMATION.get(typeof traffic.confirmed === "boolean" ? traffic.confirmed : null);
    const held = traffic.heldWeights && typeof traffic.heldWeights === "object" ? traffic.heldWeights : null;
    const differs = held && weights && !sameWeights(held, weights);
    return [
      h(
        "p",
        { class: "written" },
        h("strong", {}, "Written"),
        ` by the ${traffic.router} router to `,
        h("code", {}, traffic.object || "?"),
        traffic.canary ? h("span", { class: "muted" }, ` · the canary endpoint reaches ${traffic.canary}`) : ""
      ),
      weights ? weightBar(weights, "Written") : h("p", { class: "warning" }, "No weights could be read from the object."),
      traffic.problem ? h("p", { class: "warning traffic-problem" }, traffic.problem) : null,
      h(
        "div",
        { class: `data-plane confirmation-${said.key}`, role: "group", "aria-label": "What the data plane applies" },
        h(
          "p",
          {},
          h("span", { class: `badge confirmation-${said.key}` }, h("span", { "aria-hidden": "true" }, `${said.mark} `), said.text),
          traffic.dataPlane ? h("span", { class: "data-plane-words" }, ` ${traffic.dataPlane}`) : ""
        ),
        held && differs
          ? [
              h("p", { class: "held" }, h("strong", {}, "Held by the data plane"), h("span", { class: "warning" }, ": not what is written")),
              weightBar(held, "Held by the data plane"),
            ]
          : null,
        held && !differs ? h("p", { class: "held" }, `The data plane holds the written weights: ${weightsText(held)}.`) : null
      ),
    ];
  }

  function renderColours() {
    const answer = state.services;
    $("colours-error").replaceChildren(answer && !ok(answer) ? errorBox(answer, "GET /services") : "");
    const services = state.good.services;
    if (!services) return;
    const known = imageIndex();
    const weights = weightsOf(services);
    const cards = Object.entries(services.colours || {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, colour]) => colourCard(name, colour, services, known.get(colour.digest), weights));
    $("colour-cards").replaceChildren(...cards);

    const weightBox = $("weights");
    const traffic = services.traffic || null;
    weightBox.hidden = !traffic;
    if (traffic) {
      const confirmed = typeof traffic.confirmed === "boolean" ? String(traffic.confirmed) : "unknown";
      Object.assign(weightBox.dataset, { router: traffic.router || "", confirmed });
      weightBox.replaceChildren(h("h3", {}, "Production traffic"), ...trafficView(traffic, weights).filter(Boolean));
    }

    const env = services.canaryEnv || {};
    $("canary-env").replaceChildren(
      "canaryEnv: selector ",
      h("strong", {}, env.selector || "?"),
      ", image ",
      code(env.image),
      env.present === false ? " (the key is missing: the initial canary, blue, applies)" : ""
    );
    const disagreements = services.disagreements || [];
    const box = $("disagreements");
    box.hidden = services.inAgreement !== false && disagreements.length === 0;
    box.replaceChildren(
      h("h3", {}, "canaryEnv and the cluster disagree"),
      h("ul", {}, ...(disagreements.length ? disagreements : ["they disagree"]).map((text) => h("li", {}, text))),
      h("p", {}, "Switching the canary colour rewrites canaryEnv and both Services together.")
    );
    box.setAttribute("role", box.hidden ? "none" : "alert");

    for (const span of document.querySelectorAll("[data-role-label]")) {
      const role = span.dataset.roleLabel;
      const colour = role === "canary" ? services.canary : services.production;
      span.textContent = role === "canary" ? `the canary (${colour})` : `production (${colour})`;
    }
    const canary = (services.colours || {})[services.canary] || {};
    $("promote-hint").textContent =
      `Put what the canary (${services.canary}) runs, ${short(canary.digest || canary.image)}, ` +
      `on production (${services.production}).`;
  }

  function colourCard(name, colour, services, image, weights) {
    const replicas = colour.replicas || {};
    const isCanary = services.canary === name;
    const rows = [
      ["Digest", code(colour.digest || colour.image)],
      ["Tags", image ? (image.tags || []).join(", ") || "untagged" : "not in the ledger (ran before it)"],
      ["Verdict", image ? verdictBadge(image.verdict, image.verdictReason) : "–"],
      [
        "Replicas",
        h(
          "span",
          { class: "replicas" },
          h("progress", { max: String(replicas.desired || 0), value: String(replicas.ready || 0), "aria-hidden": "true" }),
          ` ${replicas.ready ?? "?"}/${replicas.desired ?? "?"} ready`,
          h("span", { class: "muted" }, ` (${replicas.updated ?? "?"} updated, ${replicas.available ?? "?"} available)`)
        ),
      ],
      ["Rollout", h("span", { class: `rollout rollout-${colour.rollout}` }, colour.rollout || "?", colour.message ? h("span", { class: "muted" }, ` ${colour.message}`) : "")],
    ];
    if (weights && name in weights) rows.push(["Traffic", `${weights[name]}%`]);
    return h(
      "article",
      { class: `card colour-${name}`, data: { colour: name, role: colour.role } },
      h("header", {}, h("h3", {}, name), h("span", { class: `role role-${colour.role}` }, colour.role)),
      h("dl", {}, ...rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
      isCanary
        ? null
        : h("button", { type: "button", class: "switch", onclick: () => confirmSwitch(name, services) }, `Make ${name} the canary…`)
    );
  }

  function verdictBadge(verdict, reason) {
    return h("span", { class: `badge verdict-${verdict || "unknown"}`, title: reason || "" }, verdict || "unknown");
  }

  // -- images and deployments ------------------------------------------------------------

  function renderImages() {
    const answer = state.images;
    $("images-error").replaceChildren(answer && !ok(answer) ? errorBox(answer, "GET /images") : "");
    const body = state.good.images;
    if (!body) return;
    if (body.clusterError) {
      $("images-error").append(h("p", { class: "warning" }, `Where each image runs is unknown: ${body.clusterError}`));
    }
    const images = body.images || [];
    const rows = images.map((image) =>
      h(
        "tr",
        { data: { digest: image.digest } },
        h("td", {}, code(image.digest)),
        h("td", {}, (image.tags || []).join(", ") || "–"),
        h("td", {}, when(image.pushedAt)),
        h(
          "td",
          {},
          verdictBadge(image.verdict, image.verdictReason),
          image.verdict === "failed" && image.verdictReason
            ? h("span", { class: "reason clamp", title: image.verdictReason }, image.verdictReason)
            : ""
        ),
        h("td", {}, image.runningOn === null ? "?" : (image.runningOn || []).map((p) => `${p.colour} (${p.role})`).join(", ") || "–"),
        h("td", {}, h("button", { type: "button", class: "small", "aria-label": `Deploy ${short(image.digest)}…`, onclick: () => prefillDeploy(image.digest) }, "Deploy…"))
      )
    );
    $("images-rows").replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: "6", class: "empty" }, "No image pushed yet."))]));
    const options = new Map();
    for (const image of images) {
      for (const tag of image.tags || []) if (!options.has(tag)) options.set(tag, `tag → ${short(image.digest)}`);
      options.set(image.digest, (image.tags || []).join(", ") || image.verdict);
    }
    $("known-images").replaceChildren(...[...options].map(([value, label]) => h("option", { value }, label)));
  }

  function renderDeployments() {
    const answer = state.deployments;
    $("deployments-error").replaceChildren(answer && !ok(answer) ? errorBox(answer, "GET /deployments") : "");
    const body = state.good.deployments;
    if (!body) return;
    const current = currentDeploymentId();
    const rows = (body.deployments || []).map((d) =>
      h(
        "tr",
        { data: { id: d.id, outcome: d.outcome }, class: d.id === current ? "selected" : "" },
        h("td", {}, when(d.startedAt)),
        h("td", {}, d.action),
        h("td", {}, d.colour ? `${d.colour} (${d.service})` : d.service),
        h("td", {}, d.action === "switch" ? "–" : [code(d.fromDigest), " → ", code(d.toDigest)]),
        h("td", {}, h("span", { class: `badge outcome-${d.outcome}` }, d.outcome)),
        h("td", {}, d.trigger),
        h("td", { class: "actor" }, d.actor),
        h("td", { class: "reason" }, h("span", { class: "clamp", title: d.reason || "" }, d.reason || "–")),
        h("td", {}, d.action === "switch" ? "" : h("button", { type: "button", class: "small", "aria-label": `Show deployment ${d.id}`, onclick: () => select(d.id) }, "Show"))
      )
    );
    $("deployments-rows").replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: "9", class: "empty" }, "No deployment yet."))]));
  }

  // -- the deployment and its timeline --------------------------------------------------

  function currentDeploymentId() {
    if (state.selected) return state.selected;
    const listed = ((state.good.deployments && state.good.deployments.deployments) || []).filter((d) => d.action !== "switch");
    const running = listed.find((d) => d.outcome === "running");
    return (running || listed[0] || {}).id || null;
  }

  async function refreshDeployment() {
    const id = currentDeploymentId();
    if (!id) {
      state.deployment = state.timeline = null;
      return;
    }
    const [deployment, timeline] = await Promise.all([
      call("GET", `/deployments/${encodeURIComponent(id)}`),
      call("GET", `/deployments/${encodeURIComponent(id)}/timeline`),
    ]);
    state.deployment = { id, answer: deployment };
    state.timeline = { id, answer: timeline };
  }

  function renderDeployment() {
    const box = $("deployment-body");
    const id = currentDeploymentId();
    if (!id) {
      box.replaceChildren(h("p", { class: "empty" }, "No deployment yet: push an image or deploy one from here."));
      return;
    }
    if (!state.deployment || state.deployment.id !== id) {
      box.replaceChildren(h("p", { class: "muted" }, `Reading deployment ${id}…`));
      return;
    }
    const answer = state.deployment.answer;
    if (!ok(answer)) {
      box.replaceChildren(errorBox(answer, `GET /deployments/${id}`));
      return;
    }
    const body = answer.body || {};
    const record = body.record || {};
    const execution = body.execution || {};
    const status = execution.status || (record.outcome === "running" ? "RUNNING" : "");
    const running = status === "RUNNING";
    const heading = state.selected ? "Deployment" : running ? "Running deployment" : "Last deployment";
    const facts = [
      ["Id", h("code", {}, id)],
      ["Action", record.action],
      ["Colour", record.colour ? `${record.colour} (${record.service})` : record.service],
      ["From → to", [code(record.fromDigest), " → ", code(record.toDigest)]],
      ["Status", h("span", { class: `badge status-${(status || "unknown").toLowerCase()}` }, status || "unknown"), record.outcome ? ` (${record.outcome})` : ""],
      ["Trigger", record.trigger],
      ["Actor", record.actor],
      // Once the flow failed, the record's reason is its Cause: shown once, below.
      ["Reason", record.reason && record.reason !== execution.cause ? record.reason : ""],
      ["Started", when(record.startedAt || execution.startDate)],
      ["Finished", record.finishedAt || execution.stopDate ? when(record.finishedAt || execution.stopDate) : "–"],
    ].filter(([, value]) => value !== undefined && value !== null && value !== "");
    const parts = [
      h(
        "div",
        { class: "deployment-head" },
        h("h3", {}, heading),
        body.consoleUrl ? h("a", { href: body.consoleUrl, target: "_blank", rel: "noopener noreferrer" }, "Open in the Step Functions console") : null,
        state.selected ? h("button", { type: "button", class: "small", onclick: () => select(null) }, "Follow the latest") : null
      ),
      h("dl", { class: "facts" }, ...facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    ];
    if (FINAL.has(status) && status !== "SUCCEEDED") {
      parts.push(
        h(
          "div",
          { class: "cause", data: { error: execution.error || "" } },
          h("h4", {}, `Why it failed: ${execution.error || status}`),
          h("p", { class: "cause-text" }, execution.cause || record.reason || "no cause was given")
        )
      );
    }
    if (body.promotion) {
      parts.push(
        window.BluegreenPromotion.view(body.promotion, {
          h,
          when,
          startedAt: record.startedAt || execution.startDate,
          finishedAt: record.finishedAt || execution.stopDate,
          running,
        })
      );
    }
    const promotion = body.promotion;
    if (promotion && promotion.waitingForPerson) {
      parts.push(gatePanel(id, promotion.waitingFor || "a person's decision"));
    }
    parts.push(timelineView(id, running));
    box.replaceChildren(...parts);
  }

  function gatePanel(id, waiting) {
    // A promotion waiting at a manual gate (GET /deployments/{id} promotion.waitingFor): resume or abort.
    const what = String(waiting);
    return h(
      "div",
      { class: "gate", role: "group", "aria-label": "Waiting for a person" },
      h("h4", {}, "Waiting for a person"),
      h("p", {}, what),
      h("button", { type: "button", onclick: () => confirmGate(id, "resume", what) }, "Resume…"),
      h("button", { type: "button", class: "danger", onclick: () => confirmGate(id, "abort", what) }, "Abort…")
    );
  }

  const MARKS = { succeeded: "✓", failed: "✗", running: "●", waiting: "◷" };

  function timelineView(id, running) {
    if (!state.timeline || state.timeline.id !== id) return h("p", { class: "muted" }, "Reading the timeline…");
    const answer = state.timeline.answer;
    if (!ok(answer)) return errorBox(answer, `GET /deployments/${id}/timeline`);
    const steps = (answer.body && answer.body.steps) || [];
    if (!steps.length) return h("p", { class: "muted" }, running ? "Starting: the flow has not begun its first phase." : "The execution recorded no phase.");
    return h(
      "ol",
      { class: "timeline", "aria-label": "The deploy flow's phases" },
      ...steps.map((step) =>
        h(
          "li",
          { class: `step status-${step.status}`, data: { phase: step.phase, status: step.status } },
          h("span", { class: "mark", "aria-hidden": "true" }, MARKS[step.status] || "•"),
          h(
            "div",
            { class: "step-body" },
            h(
              "p",
              { class: "step-head" },
              h("strong", {}, step.title),
              " ",
              h("span", { class: "status" }, step.status),
              " ",
              h("time", { datetime: step.startedAt }, when(step.startedAt)),
              h("span", { class: "muted" }, ` · ${took(step.startedAt, step.endedAt)}`),
              step.polls ? h("span", { class: "muted" }, ` · ${step.polls} read${step.polls > 1 ? "s" : ""}`) : "",
              step.retries ? h("span", { class: "muted" }, ` · ${step.retries} retried`) : ""
            ),
            step.detail ? h("p", { class: "detail" }, step.detail) : null,
            // The end's cause is the execution's, already shown above the timeline.
            step.error
              ? h("p", { class: "step-error" }, h("strong", {}, step.error), step.cause && step.phase !== "end" ? `: ${step.cause}` : "")
              : null,
            step.hooks && step.hooks.length ? h("ul", { class: "hooks" }, ...step.hooks.map(hookView)) : null
          )
        )
      ),
      answer.body.truncated ? h("li", { class: "muted" }, "The history was too long to read whole: see the console.") : null
    );
  }

  function hookView(hook) {
    return h(
      "li",
      { class: `hook status-${hook.status}`, data: { hook: hook.name } },
      h("strong", {}, hook.name),
      ` ${hook.status}`,
      hook.job ? h("span", { class: "muted" }, ` · Job ${hook.job}`) : "",
      hook.reason ? h("span", { class: "reason" }, ` · ${hook.reason}`) : "",
      hook.logTail
        ? h("details", { open: hook.status === "failed" }, h("summary", {}, "Log tail"), h("pre", { class: "log" }, hook.logTail))
        : null
    );
  }

  function select(id) {
    state.selected = id;
    state.deployment = state.timeline = null;
    renderDeployment();
    renderDeployments();
    refreshNow();
  }

  // -- confirmations and actions --------------------------------------------------------

  function confirmDialog(title, text, facts, danger) {
    const dialog = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-facts").replaceChildren(...facts.map(([term, value]) => h("li", {}, h("strong", {}, `${term}: `), value)));
    const okButton = $("confirm-ok");
    okButton.textContent = title.replace(/\?$/, "");
    okButton.className = danger ? "danger" : "primary";
    return new Promise((resolve) => {
      const finish = (answer) => {
        okButton.removeEventListener("click", onOk);
        $("confirm-cancel").removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        resolve(answer);
      };
      const onOk = () => finish(true);
      const onCancel = (event) => {
        if (event) event.preventDefault();
        finish(false);
      };
      okButton.addEventListener("click", onOk);
      $("confirm-cancel").addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      $("confirm-cancel").focus();
    });
  }

  async function act(what, method, path, body, facts, danger) {
    const [title, text] = what;
    if (!(await confirmDialog(title, text, facts, danger))) return;
    const result = $("action-result");
    result.replaceChildren(h("p", { class: "muted" }, `${method} ${path}…`));
    const answer = await call(method, path, body);
    if (!ok(answer)) {
      result.replaceChildren(errorBox(answer, `${method} ${path}`));
      return;
    }
    const started = answer.body || {};
    if (started.deploymentId) {
      state.selected = started.deploymentId;
      state.deployment = state.timeline = null;
    }
    result.replaceChildren(
      h(
        "div",
        { class: "done" },
        h("p", {}, h("strong", {}, `HTTP ${answer.status}`), " ", doneText(started)),
        started.consoleUrl ? h("a", { href: started.consoleUrl, target: "_blank", rel: "noopener noreferrer" }, "Open in the Step Functions console") : null
      )
    );
    refreshNow();
  }

  function doneText(body) {
    if (body.deploymentId) return `started deployment ${body.deploymentId}`;
    if (body.changed === false) return `${body.canary} was already the canary: nothing changed`;
    if (body.canary) return `canary: ${body.canary}, production: ${body.production}`;
    return "done";
  }

  function running(colour, services) {
    const info = ((services || {}).colours || {})[colour] || {};
    return short(info.digest || info.image);
  }

  function confirmSwitch(colour, services) {
    const other = colour === "blue" ? "green" : "blue";
    act(
      [
        `Make ${colour} the canary?`,
        `${colour} becomes the canary and ${other} production. The canaryEnv ConfigMap and both ` +
          `Services change together: production traffic moves to ${other}, which runs ` +
          `${running(other, services)}.`,
      ],
      "POST",
      "/services",
      { selector: colour },
      [["canary", `${colour} (${running(colour, services)})`], ["production", `${other} (${running(other, services)})`]],
      true
    );
  }

  function roleColour(role) {
    const services = state.good.services || {};
    return role === "production" ? services.production : services.canary;
  }

  function prefillDeploy(digest) {
    $("deploy-image").value = digest;
    $("deploy-image").focus();
  }

  function formValues(form) {
    const data = new FormData(form);
    return {
      service: String(data.get("service") || "canary"),
      reason: String(data.get("reason") || "").trim(),
      image: String(data.get("image") || "").trim(),
      force: data.get("force") === "on",
    };
  }

  function onDeploy(event) {
    event.preventDefault();
    const form = event.target;
    const { service, reason, image, force } = formValues(form);
    const input = $("deploy-image");
    if (!image) {
      input.setAttribute("aria-invalid", "true");
      $("action-result").replaceChildren(h("p", { class: "error", role: "alert" }, "Enter a digest (sha256:…) or a tag to deploy."));
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    const colour = roleColour(service);
    const body = { imageTag: image, service };
    if (reason) body.reason = reason;
    if (force) body.force = true;
    const facts = [
      ["image", image],
      ["to", `${service} (${colour}, now ${running(colour, state.good.services)})`],
      ["reason", reason || "none given"],
    ];
    if (force) facts.push(["force", "deploys it even if the ledger judged it failed"]);
    act(
      [
        `Deploy to ${service}?`,
        `The deploy flow points ${colour}'s Deployment at ${image}, waits for the rollout, runs ` +
          `the hooks and the health checks, and rolls ${colour} back to its last healthy digest ` +
          "if any of them fails.",
      ],
      "POST",
      "/services",
      body,
      facts,
      service === "production"
    );
  }

  function onRollback(event) {
    event.preventDefault();
    const { service, reason } = formValues(event.target);
    const colour = roleColour(service);
    const body = { service };
    if (reason) body.reason = reason;
    act(
      [
        `Roll back ${service}?`,
        `${colour} goes back to the digest it ran before if that was judged healthy, else to the ` +
          "most recent healthy digest (never one judged failed); the hooks run again.",
      ],
      "POST",
      "/rollback",
      body,
      [["colour", `${colour} (now ${running(colour, state.good.services)})`], ["reason", reason || "none given"]],
      true
    );
  }

  function onPromote(event) {
    event.preventDefault();
    const { reason } = formValues(event.target);
    const services = state.good.services || {};
    act(
      [
        "Promote to production?",
        `The deploy flow puts what the canary (${services.canary}) runs, ` +
          `${running(services.canary, services)}, on production (${services.production}), with ` +
          "its hooks and health checks, and rolls production back if they fail.",
      ],
      "POST",
      "/promote",
      reason ? { reason } : {},
      [["from", `${services.canary} (canary)`], ["to", `${services.production} (production)`], ["reason", reason || "none given"]],
      true
    );
  }

  function confirmGate(id, verb, what) {
    act(
      [
        verb === "resume" ? "Resume the promotion?" : "Abort the promotion?",
        verb === "resume"
          ? `The flow goes on past the gate it waits at (${what}).`
          : `The flow stops at the gate (${what}) and rolls production traffic back.`,
      ],
      "POST",
      `/deployments/${encodeURIComponent(id)}/${verb}`,
      {},
      [["deployment", id]],
      verb === "abort"
    );
  }

  // -- refreshing ------------------------------------------------------------------

  let timer = null;
  let busy = false;
  let again = false;

  function keep(name, answer) {
    state[name] = answer;
    if (ok(answer)) state.good[name] = answer.body;
  }

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    clearTimeout(timer);
    try {
      const [services, images, deployments] = await Promise.all([
        call("GET", "/services"),
        call("GET", "/images?limit=25"),
        call("GET", "/deployments?limit=25"),
      ]);
      keep("services", services);
      keep("images", images);
      keep("deployments", deployments);
      await refreshDeployment();
      const failed = [services, images, deployments].find((answer) => !ok(answer));
      state.refreshError = failed ? failed : null;
      state.updated = new Date();
      render();
    } finally {
      busy = false;
      if (again) {
        again = false;
        refresh();
      } else if (!document.hidden) {
        timer = setTimeout(refresh, REFRESH_MS);
      }
    }
  }

  function refreshNow() {
    clearTimeout(timer);
    refresh();
  }

  function renderFreshness() {
    const line = $("freshness");
    if (!state.updated) return;
    const time = state.updated.toLocaleTimeString([], { hour12: false });
    if (state.refreshError) {
      const body = state.refreshError.body || {};
      line.className = "freshness stale";
      line.textContent = `refresh ${time}: HTTP ${state.refreshError.status} ${body.error || ""} (the rest is from the last good answer)`;
    } else {
      line.className = "freshness live";
      line.textContent = `live · updated ${time}`;
    }
  }

  function render() {
    renderColours();
    renderImages();
    renderDeployments();
    renderDeployment();
    renderFreshness();
  }

  function start() {
    $("app").hidden = false;
    $("deploy-form").addEventListener("submit", onDeploy);
    $("rollback-form").addEventListener("submit", onRollback);
    $("promote-form").addEventListener("submit", onPromote);
    let initial = {};
    try {
      initial = JSON.parse($("initial").textContent || "{}");
    } catch (error) {
      initial = {};
    }
    for (const name of ["services", "images", "deployments"]) {
      if (initial[name]) keep(name, initial[name]);
    }
    state.updated = new Date();
    render();
    document.body.dataset.ready = "true";
    performance.mark("bluegreen-first-render");
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refreshNow();
    });
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
