// eks-bluegreen dashboard: draws the release from the services API and drives it.
// Every call goes to this page's own server under /api/, which forwards it, signed,
// to the configured API; nothing is loaded from anywhere else. Text from the API is
// always set as text (never as HTML): reasons and actors are typed by people.
"use strict";

(() => {
  const REFRESH_MS = 2000;
  const TOKEN = document.querySelector('meta[name="bluegreen-token"]').content;
  const FINAL = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]);
  // An application's name as the API routes it in /apps/{app} (forwarding.py's rule).
  const APP_NAME = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
  const FLEET_MS = 10000; // the fleet's rows: one GET /apps/{app}/services each
  const FLEET_PARALLEL = 4;
  const FLEET_PAGES = 50; // GET /apps?limit=100, following nextCursor: 5000 applications
  const STACK = "stack parameters"; // who registered the stack's default application

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
    app: null, // the application shown: null for the default one (the un-prefixed routes)
    badApp: null, // an ?app= of the URL that is no application name
    defaultApp: null, // the application the un-prefixed routes reach, when the CLI names one
    generation: 0, // one more at each change of application: older answers are dropped
  };

  const fleet = {
    answer: null, // the last answer of GET /apps (of its last page read)
    apps: null, // the registry's applications, by name, from the last good listing
    more: false, // the listing stopped before its end
    rows: new Map(), // name -> the last answer of GET /apps/{name}/services
    updated: null,
    busy: false,
    timer: null,
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

  const confirmationOf = (traffic) => CONFIRMATION.get(typeof traffic.confirmed === "boolean" ? traffic.confirmed : null);

  function confirmationBadge(traffic) {
    const said = confirmationOf(traffic);
    return h("span", { class: `badge confirmation-${said.key}` }, h("span", { "aria-hidden": "true" }, `${said.mark} `), said.text);
  }

  const roleBadge = (role) => h("span", { class: `role role-${role}` }, role);

  function rolloutView(colour) {
    return h("span", { class: `rollout rollout-${colour.rollout}` }, colour.rollout || "?", colour.message ? h("span", { class: "muted" }, ` ${colour.message}`) : "");
  }

  // Whether canaryEnv and the cluster (Services, router object) agree, and what differs.
  function agreementOf(services) {
    const disagreements = (services.disagreements || []).map(String);
    const agree = services.inAgreement !== false && disagreements.length === 0;
    return { agree, disagreements: agree || disagreements.length ? disagreements : ["they disagree"] };
  }

  // What is moving, as GET /services shows it: a colour whose rollout is not complete (a
  // deployment applies it), and production split between the colours (a promotion holds
  // the canary's share).
  function activityOf(services) {
    const moving = Object.entries(services.colours || {})
      .sort(([a], [b]) => a.localeCompare(b))
      .filter(([, colour]) => colour.rollout && colour.rollout !== "complete")
      .map(([name, colour]) => ({ key: `rollout-${colour.rollout}`, text: `${name}: rollout ${colour.rollout}` }));
    const weights = weightsOf(services);
    const share = weights ? Number(weights[services.canary] || 0) : 0;
    if (share > 0 && share < 100) moving.push({ key: "promotion", text: `promotion: ${services.canary} takes ${share}% of production` });
    return moving;
  }

  const sameWeights = (a, b) =>
    Object.keys({ ...a, ...b }).every((colour) => (a[colour] || 0) === (b[colour] || 0));

  function trafficView(traffic, weights) {
    const said = confirmationOf(traffic);
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
          confirmationBadge(traffic),
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
    $("colours-error").replaceChildren(answer && !ok(answer) ? errorBox(answer, `GET ${appPath("/services")}`) : "");
    const services = state.good.services;
    if (!services) {
      // Another application was chosen, or its colours were never read: none of another's.
      $("colour-cards").replaceChildren(answer ? "" : h("p", { class: "muted" }, `Reading the colours of ${appLabel()}…`));
      $("weights").hidden = true;
      $("canary-env").replaceChildren();
      $("disagreements").hidden = true;
      $("disagreements").setAttribute("role", "none");
      return;
    }
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
    const { agree, disagreements } = agreementOf(services);
    const box = $("disagreements");
    box.hidden = agree;
    box.replaceChildren(
      h("h3", {}, "canaryEnv and the cluster disagree"),
      h("ul", {}, ...disagreements.map((text) => h("li", {}, text))),
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
      ["Rollout", rolloutView(colour)],
    ];
    if (weights && name in weights) rows.push(["Traffic", `${weights[name]}%`]);
    return h(
      "article",
      { class: `card colour-${name}`, data: { colour: name, role: colour.role } },
      h("header", {}, h("h3", {}, name), roleBadge(colour.role)),
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

  // A table's only row while it has nothing of the application shown.
  function placeholderRow(answer, columns, what) {
    const text = answer ? "Not read: see the error above." : `Reading ${what} of ${appLabel()}…`;
    return h("tr", {}, h("td", { colspan: String(columns), class: "empty" }, text));
  }

  function renderImages() {
    const answer = state.images;
    $("images-error").replaceChildren(answer && !ok(answer) ? errorBox(answer, `GET ${appPath("/images")}`) : "");
    const body = state.good.images;
    if (!body) {
      $("images-rows").replaceChildren(placeholderRow(answer, 6, "the images"));
      $("known-images").replaceChildren();
      return;
    }
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
    $("deployments-error").replaceChildren(answer && !ok(answer) ? errorBox(answer, `GET ${appPath("/deployments")}`) : "");
    const body = state.good.deployments;
    if (!body) {
      $("deployments-rows").replaceChildren(placeholderRow(answer, 9, "the deployments"));
      return;
    }
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

  async function refreshDeployment(app, generation) {
    const id = currentDeploymentId();
    if (!id) {
      state.deployment = state.timeline = null;
      return;
    }
    const [deployment, timeline] = await Promise.all([
      call("GET", appPath(`/deployments/${encodeURIComponent(id)}`, app)),
      call("GET", appPath(`/deployments/${encodeURIComponent(id)}/timeline`, app)),
    ]);
    if (generation !== state.generation) return;
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
      box.replaceChildren(errorBox(answer, `GET ${appPath(`/deployments/${id}`)}`));
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
    if (!ok(answer)) return errorBox(answer, `GET ${appPath(`/deployments/${id}/timeline`)}`);
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

  async function act(what, method, route, body, facts, danger) {
    // For the application shown when the person asked; the confirmation names it.
    const [title, text] = what;
    const app = state.app;
    const generation = state.generation;
    const path = appPath(route, app);
    if (!(await confirmDialog(title, text, [["application", appLabel(app)], ...facts], danger))) return;
    if (generation !== state.generation) return; // another application was chosen meanwhile
    const result = $("action-result");
    result.replaceChildren(h("p", { class: "muted" }, `${method} ${path}…`));
    const answer = await call(method, path, body);
    if (generation !== state.generation) return;
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

  // -- the fleet: the registry's applications, each at a glance ---------------------------

  // The application's routes: /apps/{app}/... for a chosen one, as they are for the default.
  const appPath = (path, app = state.app) => (app ? `/apps/${encodeURIComponent(app)}${path}` : path);

  function appLabel(app = state.app) {
    if (app) return app;
    return state.defaultApp ? `${state.defaultApp} (the default)` : "the stack's default application";
  }

  // The registry's row the un-prefixed routes act for: the name the CLI sends them under,
  // else the application the stack's parameters registered.
  const isDefault = (record) => (state.defaultApp ? record.name === state.defaultApp : record.createdBy === STACK);

  // The fleet's row of the application the views show (their poll keeps it fresh).
  function shownRow() {
    if (state.app) return state.app;
    const record = (fleet.apps || []).find(isDefault);
    return record ? String(record.name) : null;
  }

  // The application a page URL names (?app=checkout): a reload or a shared link shows it.
  function appOfUrl() {
    const named = new URLSearchParams(window.location.search).get("app");
    if (!named) return { app: null, bad: null };
    return APP_NAME.test(named) ? { app: named, bad: null } : { app: null, bad: named };
  }

  function urlOf(app) {
    const url = new URL(window.location.href);
    if (app) url.searchParams.set("app", app);
    else url.searchParams.delete("app");
    return url;
  }

  // Show `app` (null: the default application) in every view, from its own routes.
  function choose(app, { push = true } = {}) {
    if (push) {
      state.badApp = null;
      if (urlOf(app).href !== window.location.href) window.history.pushState({ app }, "", urlOf(app));
    }
    if (app === state.app) {
      render();
      return;
    }
    state.app = app;
    state.generation += 1;
    Object.assign(state, { services: null, images: null, deployments: null, deployment: null, timeline: null, selected: null, refreshError: null });
    state.good = { services: null, images: null, deployments: null };
    $("action-result").replaceChildren();
    $("deploy-image").value = "";
    render();
    refreshNow();
  }

  async function listApps() {
    // Every page of GET /apps, following nextCursor (a cursor seen twice ends it).
    const apps = [];
    const seen = new Set();
    let cursor = null;
    let answer = null;
    for (let page = 0; page < FLEET_PAGES; page += 1) {
      answer = await call("GET", "/apps?limit=100" + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""));
      if (!ok(answer)) return { answer, apps: null, more: false };
      const body = answer.body && typeof answer.body === "object" ? answer.body : {};
      apps.push(...(Array.isArray(body.apps) ? body.apps : []).filter((record) => record && typeof record === "object"));
      cursor = typeof body.nextCursor === "string" && body.nextCursor ? body.nextCursor : null;
      if (!cursor || seen.has(cursor)) return { answer, apps, more: false };
      seen.add(cursor);
    }
    return { answer, apps, more: true };
  }

  async function refreshFleet() {
    if (fleet.busy) return;
    fleet.busy = true;
    clearTimeout(fleet.timer);
    try {
      const listed = await listApps();
      fleet.answer = listed.answer;
      if (listed.apps) {
        fleet.apps = listed.apps;
        fleet.more = listed.more;
      }
      renderFleet();
      const names = (fleet.apps || []).map((record) => String(record.name)).filter((name) => APP_NAME.test(name));
      let next = 0;
      const worker = async () => {
        while (next < names.length) {
          const name = names[next++];
          // The application the views show: their own poll reads it every few seconds.
          const shown = name === shownRow() && ok(state.services);
          const answer = shown ? state.services : await call("GET", `/apps/${encodeURIComponent(name)}/services`);
          fleet.rows.set(name, answer);
          renderFleet();
        }
      };
      await Promise.all(Array.from({ length: Math.min(FLEET_PARALLEL, names.length) }, worker));
      fleet.updated = new Date();
      renderFleet();
    } finally {
      fleet.busy = false;
      // A caller refused the registry stays refused: "Try again" asks once more.
      const refused = fleet.answer && (fleet.answer.status === 401 || fleet.answer.status === 403);
      if (!refused && !document.hidden) fleet.timer = setTimeout(refreshFleet, FLEET_MS);
    }
  }

  function renderShowing() {
    const parts = [h("span", {}, "Showing "), h("strong", {}, appLabel())];
    if (state.app) {
      parts.push(" ", h("button", { type: "button", class: "small", onclick: () => choose(null) }, "Show the default application"));
    }
    const warning = state.badApp
      ? h("p", { class: "warning" }, `The link names “${state.badApp}”, which is no application name (lowercase letters, digits and '-', at most 40): showing the default application.`)
      : "";
    $("fleet-showing").replaceChildren(h("p", {}, ...parts), warning);
    $("app-name").textContent = appLabel();
    document.title = `${state.app ? `${state.app} · ` : ""}eks-bluegreen dashboard`;
  }

  function renderFleetError() {
    const answer = fleet.answer;
    const box = $("fleet-error");
    if (!answer || ok(answer)) {
      box.replaceChildren();
      return;
    }
    const refused = answer.status === 401 || answer.status === 403;
    const why = refused
      ? "The list of applications is missing: the API refused to list the registry (GET /apps) to this identity. " +
        "Listing it takes the read-only or operator policy; an identity allowed one application only can still open it by name below."
      : "The list of applications is missing: the registry could not be read (GET /apps).";
    box.replaceChildren(
      h(
        "div",
        { class: "fleet-missing", data: { status: String(answer.status) } },
        h("p", {}, why, " ", `The views below show ${appLabel()} as before.`),
        errorBox(answer, "GET /apps"),
        refused ? h("button", { type: "button", class: "small", onclick: () => refreshFleet() }, "Try again") : null
      )
    );
  }

  function fleetRow(record) {
    const name = String(record.name ?? "");
    const routable = APP_NAME.test(name);
    const shown = routable && (name === state.app || (!state.app && isDefault(record)));
    const link = routable
      ? h(
          "a",
          {
            href: urlOf(name).search || "?",
            class: "app-link",
            "aria-current": shown ? "page" : null,
            onclick: (event) => {
              if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
              event.preventDefault();
              choose(name);
            },
          },
          name
        )
      : h("span", { class: "warning", title: "not a name the API routes" }, name);
    const head = h(
      "th",
      { scope: "row" },
      link,
      isDefault(record) ? h("span", { class: "tag" }, "default") : null,
      routable ? null : h("span", { class: "muted" }, " (no application name)")
    );
    const row = (...cells) => h("tr", { class: shown ? "selected" : "", data: { app: name } }, head, ...cells);
    const answer = fleet.rows.get(name);
    if (!routable) return row(h("td", { colspan: "5", class: "empty" }, "–"));
    if (!answer) return row(h("td", { colspan: "5", class: "muted" }, "reading…"));
    if (!ok(answer)) {
      const body = answer.body && typeof answer.body === "object" ? answer.body : {};
      return row(
        h(
          "td",
          { colspan: "5", class: "fleet-failed", data: { status: String(answer.status) } },
          `HTTP ${answer.status || "–"} ${body.error || body.message || ""}`,
          body.detail ? h("span", { class: "muted" }, `: ${body.detail}`) : ""
        )
      );
    }
    const services = answer.body || {};
    const colourCell = (role) => {
      const name = role === "canary" ? services.canary : services.production;
      const colour = (services.colours || {})[name] || {};
      return h("td", { data: { role, colour: name } }, h("span", { class: `swatch colour-${name}` }, name), " ", code(colour.digest || colour.image));
    };
    const { agree, disagreements } = agreementOf(services);
    const traffic = services.traffic || null;
    const weights = traffic ? weightsOf(services) : null;
    const moving = activityOf(services);
    return row(
      colourCell("canary"),
      colourCell("production"),
      h(
        "td",
        { data: { agree: String(agree) } },
        agree
          ? h("span", { class: "badge agree" }, "✓ in agreement")
          : [h("span", { class: "badge disagree" }, "✗ disagree"), h("ul", { class: "fleet-disagreements" }, ...disagreements.map((text) => h("li", {}, text)))]
      ),
      h(
        "td",
        { data: { confirmed: traffic ? String(typeof traffic.confirmed === "boolean" ? traffic.confirmed : "unknown") : "" } },
        traffic ? [weights ? h("span", { class: "fleet-weights" }, weightsText(weights)) : h("span", { class: "warning" }, "no weights"), " ", confirmationBadge(traffic)] : h("span", { class: "muted" }, "no weights: the Services select")
      ),
      h(
        "td",
        { data: { moving: String(moving.length > 0) } },
        moving.length ? moving.map((item) => h("span", { class: `activity activity-${item.key}` }, item.text)) : h("span", { class: "muted" }, "settled")
      )
    );
  }

  function renderFleet() {
    renderShowing();
    renderFleetError();
    const table = $("fleet-table");
    table.hidden = !fleet.apps;
    if (!fleet.apps) return;
    // Redrawn at every refresh: a person's focus on an application's link stays on it.
    const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest("#fleet-rows tr[data-app]") : null;
    const rows = fleet.apps.map(fleetRow);
    $("fleet-rows").replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: "6", class: "empty" }, "No application is registered."))]));
    const read = fleet.updated ? ` · read ${fleet.updated.toLocaleTimeString([], { hour12: false })}` : "";
    $("fleet-caption").textContent =
      `${fleet.apps.length} application(s)${fleet.more ? " (the first ones: the registry has more)" : ""}, each at a glance from its GET /apps/{app}/services${read}: choose one to show and drive it below`;
    if (focused) {
      const again = rows.find((row) => row.dataset.app === focused.dataset.app);
      const link = again && again.querySelector("a");
      if (link) link.focus();
    }
  }

  function onOpenApp(event) {
    event.preventDefault();
    const input = $("app-input");
    const name = input.value.trim();
    if (!APP_NAME.test(name)) {
      input.setAttribute("aria-invalid", "true");
      $("app-form-error").textContent = "An application's name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 40 characters.";
      return;
    }
    input.removeAttribute("aria-invalid");
    $("app-form-error").textContent = "";
    input.value = "";
    choose(name);
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
      // The application shown when the calls went out: answers of another are dropped.
      const app = state.app;
      const generation = state.generation;
      const [services, images, deployments] = await Promise.all([
        call("GET", appPath("/services", app)),
        call("GET", appPath("/images?limit=25", app)),
        call("GET", appPath("/deployments?limit=25", app)),
      ]);
      if (generation !== state.generation) return;
      keep("services", services);
      keep("images", images);
      keep("deployments", deployments);
      const row = shownRow();
      if (row) fleet.rows.set(row, services); // its row in the fleet, as fresh
      await refreshDeployment(app, generation);
      if (generation !== state.generation) return;
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
    renderFleet();
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
    $("app-form").addEventListener("submit", onOpenApp);
    let initial = {};
    try {
      initial = JSON.parse($("initial").textContent || "{}");
    } catch (error) {
      initial = {};
    }
    const named = appOfUrl();
    state.app = named.app;
    state.badApp = named.bad;
    state.defaultApp = typeof initial.defaultApp === "string" ? initial.defaultApp : null;
    // The server drew the first answers for the application of the URL it was asked for.
    if ((initial.app || null) === state.app) {
      for (const name of ["services", "images", "deployments"]) {
        if (initial[name]) keep(name, initial[name]);
      }
    }
    state.updated = new Date();
    render();
    window.addEventListener("popstate", () => {
      const back = appOfUrl();
      state.badApp = back.bad;
      choose(back.app, { push: false });
    });
    document.body.dataset.ready = "true";
    performance.mark("bluegreen-first-render");
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) return;
      refreshNow();
      if (!fleet.busy) refreshFleet();
    });
    refresh();
    refreshFleet();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
