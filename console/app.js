// The console: plain JavaScript on the project's REST API (docs/openapi.json), no build step.
// config.json says where the API is and, on AWS, the Cognito app client to sign in with (code + PKCE);
// locally (python -m emulator api) the API is the same origin and there is no sign-in.
"use strict";

const ALGORITHMS = ["HistGradientBoosting", "RandomForest", "LogisticRegression"];
const INSTANCE_TYPES = ["ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.m5.4xlarge"];
const FORM_FIELDS = ["datasetUri", "modelName", "algorithm", "instanceType", "scoreUri"];
const POLL_MS = 1000;
let config = { apiBase: "", auth: null };
let pollTimer = null;
let charts = [];

const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const main = () => document.getElementById("main");
const fmtDate = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
const fmtNum = (x, digits = 4) => (typeof x === "number" ? x.toFixed(digits) : "–");
const fmtSeconds = (s) => (typeof s === "number" ? (s < 90 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`) : "–");
// A registry metric: metrics.model.<name> (DynamoDB keeps numbers as decimal strings), or null
const metric = (metrics, name) => {
  const value = metrics && (metrics.model ? metrics.model[name] : metrics[name]);
  return value === undefined || value === null || value === "" ? null : Number(value);
};
const fmtMoney = (x, currency) => (typeof x === "number" ? `${x.toFixed(4)} ${currency || "USD"}` : "not priced");

// ---- sign-in (AWS only) ------------------------------------------------------------------------------
function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
async function signIn() {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  sessionStorage.setItem("pkce", verifier);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const a = config.auth;
  const query = new URLSearchParams({
    response_type: "code", client_id: a.clientId, redirect_uri: a.redirectUri, scope: "openid email",
    code_challenge_method: "S256", code_challenge: challenge,
  });
  location.assign(`${a.domain}/oauth2/authorize?${query}`);
}
async function finishSignIn() {
  const code = new URLSearchParams(location.search).get("code");
  if (!code) return;
  const a = config.auth;
  const response = await fetch(`${a.domain}/oauth2/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", client_id: a.clientId, code, redirect_uri: a.redirectUri,
      code_verifier: sessionStorage.getItem("pkce") || "",
    }),
  });
  if (response.ok) {
    const tokens = await response.json();
    sessionStorage.setItem("idToken", tokens.id_token);
    sessionStorage.setItem("idTokenExpires", String(Date.now() + tokens.expires_in * 1000));
  }
  history.replaceState(null, "", location.pathname + (location.hash || "#/runs"));
}
function token() {
  const expires = Number(sessionStorage.getItem("idTokenExpires") || 0);
  return expires > Date.now() ? sessionStorage.getItem("idToken") : null;
}

// ---- the API ------------------------------------------------------------------------------------------
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (config.auth) headers.Authorization = token();
  const response = await fetch(config.apiBase + path, { ...options, headers });
  if (response.status === 401 && config.auth) { await signIn(); throw new Error("signing in"); }
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  return { status: response.status, body };
}
async function apiOk(path) {
  const { status, body } = await api(path);
  if (status !== 200) throw new Error((body && body.message) || `HTTP ${status}`);
  return body;
}

// ---- routing ------------------------------------------------------------------------------------------
function stopPolling() {
  if (pollTimer) clearTimeout(pollTimer);
  pollTimer = null;
  charts.forEach((c) => c.destroy());
  charts = [];
}
async function route() {
  stopPolling();
  const parts = (location.hash || "#/runs").slice(2).split("/").map(decodeURIComponent);
  document.querySelectorAll("nav a").forEach((a) => {
    a.toggleAttribute("aria-current", a.getAttribute("href") === `#/${parts[0]}`);
    if (a.hasAttribute("aria-current")) a.setAttribute("aria-current", "page");
  });
  const pages = { start: startPage, runs: parts[1] ? () => runPage(parts[1]) : runsPage,
    models: parts[2] ? () => versionPage(parts[1], parts[2]) : modelsPage, drift: () => driftPage(parts[1]), costs: costsPage };
  const page = pages[parts[0]] || runsPage;
  try {
    await page();
  } catch (error) {
    main().innerHTML = `<div class="panel error" role="alert">${esc(error.message)}</div>`;
  }
  const heading = main().querySelector("h2");
  if (heading) document.title = `${heading.textContent} – Readmission pipeline console`;
}

// ---- start a run --------------------------------------------------------------------------------------
async function startPage() {
  const { datasets } = await apiOk("/datasets");
  // A score file is read from the scoring or datasets prefix only (check_score_location): uploads/ holds
  // training datasets, so its files are offered as datasets, not as files to score.
  const options = datasets.map((d) => `<option value="${esc(d.uri)}">${esc(d.name)} (${d.source === "uploads" ? "uploaded, " : ""}${(d.size / 1e6).toFixed(1)} MB)</option>`).join("");
  main().innerHTML = `
    <h2>Start a training run</h2>
    <form id="start-form" class="panel" novalidate>
      <div class="field"><label for="datasetUri">Dataset</label>
        <select id="datasetUri" name="datasetUri" aria-describedby="datasetUri-hint datasetUri-error" required>
          ${options || '<option value="">no datasets under the datasets prefix</option>'}</select>
        <span class="hint" id="datasetUri-hint">Files under the bucket's datasets prefix, and datasets uploaded here before.</span>
        <span class="error" id="datasetUri-error"></span></div>
      <div class="field"><label for="datasetFile">… or upload a dataset (.csv, .csv.gz)</label>
        <input type="file" id="datasetFile" accept=".csv,.gz" aria-describedby="datasetFile-hint datasetFile-error">
        <span class="hint" id="datasetFile-hint">Used instead of the choice above: on Start it is uploaded to the bucket's
          <code>uploads/</code> prefix (which starts no run by itself) and the run below trains on it, with these fields.
          It can be picked above for later runs.</span>
        <span class="error" id="datasetFile-error"></span></div>
      <div class="field"><label for="modelName">Model name</label>
        <input id="modelName" name="modelName" value="medication-adherence-model" aria-describedby="modelName-error">
        <span class="error" id="modelName-error"></span></div>
      <div class="field"><label for="algorithm">Algorithm</label>
        <select id="algorithm" name="algorithm" aria-describedby="algorithm-error">${ALGORITHMS.map((a) => `<option>${a}</option>`).join("")}</select>
        <span class="error" id="algorithm-error"></span></div>
      <div class="field"><label for="instanceType">Training instance type</label>
        <input id="instanceType" name="instanceType" list="instance-types" value="ml.m5.xlarge" aria-describedby="instanceType-error">
        <datalist id="instance-types">${INSTANCE_TYPES.map((t) => `<option value="${t}">`).join("")}</datalist>
        <span class="error" id="instanceType-error"></span></div>
      <div class="field"><label for="scoreUri">File to score (optional)</label>
        <input id="scoreUri" name="scoreUri" list="score-files" placeholder="s3://…/scoring/new.csv" aria-describedby="scoreUri-hint scoreUri-error">
        <datalist id="score-files">${datasets.filter((d) => d.source !== "uploads").map((d) => `<option value="${esc(d.uri)}">`).join("")}</datalist>
        <span class="hint" id="scoreUri-hint">Empty: the dataset itself is scored.</span>
        <span class="error" id="scoreUri-error"></span></div>
      <div class="field"><label for="scoreFile">… or upload a file to score</label>
        <input type="file" id="scoreFile" accept=".csv,.gz" aria-describedby="scoreFile-hint scoreFile-error">
        <span class="hint" id="scoreFile-hint">Stored under the bucket's scoring prefix, then scored after training.</span>
        <span class="error" id="scoreFile-error"></span></div>
      <div class="error" id="form-error" role="alert"></div>
      <button type="submit" id="start">Start training</button>
    </form>`;
  document.getElementById("start-form").addEventListener("submit", submitStart);
}
// One file straight into the bucket: POST /uploads signs it, the browser posts the form to S3. A file
// already stored (the same File, e.g. a resubmission after a field error) is not uploaded again.
const storedFiles = new WeakMap();
async function uploadFile(purpose, file, fieldId) {
  if (storedFiles.has(file)) return storedFiles.get(file);
  const slot = document.getElementById(`${fieldId}-error`);
  const { status, body } = await api("/uploads", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ purpose, fileName: file.name, size: file.size }),
  });
  if (status !== 200) {
    slot.textContent = ((body && body.errors) || [{ message: (body && body.message) || `HTTP ${status}` }]).map((e) => e.message).join(" ");
    document.getElementById(fieldId).setAttribute("aria-invalid", "true");
    document.getElementById(fieldId).focus();
    return null;
  }
  const form = new FormData();
  for (const [key, value] of Object.entries(body.fields)) form.append(key, value);
  form.append("file", file);
  const stored = await fetch(body.url, { method: "POST", body: form });
  if (!stored.ok) {
    slot.textContent = `The upload was refused (HTTP ${stored.status}).`;
    document.getElementById(fieldId).setAttribute("aria-invalid", "true");
    return null;
  }
  storedFiles.set(file, body.uri);
  return body.uri;
}
async function submitStart(event) {
  event.preventDefault();
  const form = event.target;
  const body = {};
  for (const name of FORM_FIELDS) {
    const value = form.elements[name].value.trim();
    if (value) body[name] = value;
    form.elements[name].removeAttribute("aria-invalid");
    document.getElementById(`${name}-error`).textContent = "";
  }
  for (const id of ["datasetFile", "scoreFile"]) {
    document.getElementById(id).removeAttribute("aria-invalid");
    document.getElementById(`${id}-error`).textContent = "";
  }
  document.getElementById("form-error").textContent = "";
  const button = document.getElementById("start");
  button.disabled = true;
  try {
    // An uploaded dataset is staged outside the trigger's prefix: the run is the one this form starts.
    const datasetFile = document.getElementById("datasetFile").files[0];
    if (datasetFile) {
      const uri = await uploadFile("dataset", datasetFile, "datasetFile");
      if (!uri) return;
      body.datasetUri = uri;
    }
    const scoreFile = document.getElementById("scoreFile").files[0];
    if (scoreFile) {
      const uri = await uploadFile("score", scoreFile, "scoreFile");
      if (!uri) return;
      body.scoreUri = uri;
    }
    const { status, body: answer } = await api("/training", {
      method: "POST", headers: { "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() }, body: JSON.stringify(body),
    });
    if (status === 200 || status === 202) { location.hash = `#/runs/${encodeURIComponent(answer.executionName)}`; return; }
    const errors = (answer && answer.errors) || [{ field: "form", message: (answer && answer.message) || `HTTP ${status}` }];
    let first = null;
    for (const e of errors) {
      let name = String(e.field).split(".")[0];
      if (name === "datasetUri" && datasetFile) name = "datasetFile";  // the problem is the uploaded file's
      if (name === "scoreUri" && scoreFile) name = "scoreFile";
      const slot = document.getElementById(`${name}-error`);
      if (slot && form.elements[name]) {
        slot.textContent = (slot.textContent ? slot.textContent + " " : "") + e.message;
        form.elements[name].setAttribute("aria-invalid", "true");
        first = first || form.elements[name];
      } else {
        document.getElementById("form-error").textContent += `${e.field}: ${e.message} `;
      }
    }
    if (first) first.focus();
  } finally {
    button.disabled = false;
  }
}

// ---- runs ---------------------------------------------------------------------------------------------
async function runsPage() {
  const { executions } = await apiOk("/executions");
  const rows = executions.map((e) => `<tr>
      <td><a href="#/runs/${encodeURIComponent(e.executionName)}">${esc(e.executionName)}</a></td>
      <td class="status-${esc(e.status)}">${esc(e.status)}</td><td>${esc(e.trigger)}</td>
      <td>${esc((e.datasetUri || "").split("/").pop())}</td><td>${fmtDate(e.startDate)}</td>
      <td>${fmtSeconds(e.durationSeconds)}</td><td>${esc(e.decision || "–")}</td></tr>`).join("");
  main().innerHTML = `<h2>Runs</h2><div class="panel"><table><caption class="hint">Newest first</caption>
    <thead><tr><th scope="col">Execution</th><th scope="col">Status</th><th scope="col">Trigger</th><th scope="col">Dataset</th>
    <th scope="col">Started</th><th scope="col">Duration</th><th scope="col">Decision</th></tr></thead>
    <tbody>${rows || '<tr><td colspan="7">No runs yet: <a href="#/start">start one</a>.</td></tr>'}</tbody></table></div>`;
  pollTimer = setTimeout(() => { if (location.hash === "#/runs" || !location.hash) runsPage(); }, 5 * POLL_MS);
}

// The graph: states ranked by their longest path from StartAt over Next/Default/Choices/Catch edges.
function layout(definition) {
  const edges = [];
  for (const [name, s] of Object.entries(definition.States)) {
    if (s.Next) edges.push([name, s.Next, false]);
    if (s.Default) edges.push([name, s.Default, false]);
    (s.Choices || []).forEach((c) => c.Next && edges.push([name, c.Next, false]));
    (s.Catch || []).forEach((c) => edges.push([name, c.Next, true]));
  }
  const rank = { [definition.StartAt]: 0 };
  for (let i = 0; i < Object.keys(definition.States).length; i++) {
    for (const [from, to] of edges) if (rank[from] !== undefined && (rank[to] === undefined || rank[to] < rank[from] + 1)) rank[to] = rank[from] + 1;
  }
  const rows = {};
  for (const name of Object.keys(definition.States)) (rows[rank[name] ?? 0] ||= []).push(name);
  const pos = {};
  const W = 190, H = 38, GX = 30, GY = 26;
  const widest = Math.max(...Object.values(rows).map((r) => r.length));
  for (const [r, names] of Object.entries(rows)) {
    const offset = ((widest - names.length) * (W + GX)) / 2;
    names.forEach((n, i) => { pos[n] = { x: 10 + offset + i * (W + GX), y: 10 + Number(r) * (H + GY) }; });
  }
  const width = 20 + widest * (W + GX);
  // Catch edges run down a lane right of the graph (one per target), so the main flow stays readable
  const lanes = {};
  edges.filter((e) => e[2]).forEach(([, to]) => { if (!(to in lanes)) lanes[to] = width + 10 + Object.keys(lanes).length * 14; });
  return { edges, pos, W, H, lanes, width: width + 20 + Object.keys(lanes).length * 14, height: 20 + Object.keys(rows).length * (H + GY) };
}
function drawGraph(definition, states) {
  const { edges, pos, W, H, lanes, width, height } = layout(definition);
  const lines = edges.map(([from, to, caught]) => {
    const a = pos[from], b = pos[to];
    if (caught) {
      const lane = lanes[to];
      return `<path class="edge catch" marker-end="url(#arrow)" d="M${a.x + W},${a.y + H / 2} H${lane} V${b.y + H / 2} H${b.x + W}"/>`;
    }
    return `<path class="edge" marker-end="url(#arrow)" d="M${a.x + W / 2},${a.y + H} C${a.x + W / 2},${a.y + H + 20} ${b.x + W / 2},${b.y - 20} ${b.x + W / 2},${b.y}"/>`;
  }).join("");
  const boxes = Object.keys(definition.States).map((name) => {
    const status = (states[name] && states[name].status) || "NOT_RUN";
    const p = pos[name];
    return `<g class="${status}" data-state="${esc(name)}" data-status="${status}"><title>${esc(name)}: ${status}</title>
      <rect x="${p.x}" y="${p.y}" width="${W}" height="${H}"></rect>
      <text x="${p.x + W / 2}" y="${p.y + H / 2 + 4}" text-anchor="middle">${esc(name)}</text></g>`;
  }).join("");
  return `<svg role="img" aria-label="The workflow's states coloured by status" viewBox="0 0 ${width} ${height}" width="${width}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>
    ${lines}${boxes}</svg>`;
}
async function artifactLink(uri, label) {
  if (!uri) return "";
  const target = uri.endsWith("/") ? null : uri;
  if (!target) return `<li>${esc(label)}: <code>${esc(uri)}</code></li>`;
  const { status, body } = await api(`/links?uri=${encodeURIComponent(target)}`);
  return status === 200 ? `<li><a href="${esc(body.url)}">${esc(label)}</a> (link valid ${body.expiresInSeconds / 60} min)</li>` : `<li>${esc(label)}: <code>${esc(uri)}</code></li>`;
}
async function runPage(name) {
  const [states, execution] = await Promise.all([apiOk(`/executions/${encodeURIComponent(name)}/states`), apiOk(`/executions/${encodeURIComponent(name)}`)]);
  // The state that failed, not the Fail state the Catch led to (it repeats the same error and cause)
  let failed = Object.entries(states.states).filter(([, s]) => s.status === "FAILED");
  const causes = failed.filter(([n]) => (states.definition.States[n] || {}).Type !== "Fail");
  if (causes.length) failed = causes;
  const run = execution.run || {};
  let links = "";
  if (states.status !== "RUNNING") {
    links += run.modelVersion ? `<li><a href="#/models/${encodeURIComponent(run.modelName)}/${run.modelVersion}">Model report: ${esc(run.modelName)} v${run.modelVersion}</a></li>` : "";
    links += await artifactLink(run.predictionsUri && !run.predictionsUri.endsWith("/") ? run.predictionsUri : null, "Predictions");
    if (run.driftReportUri) links += `<li><a href="#/drift/${encodeURIComponent(name)}">Drift report</a></li>`;
    links += await artifactLink(run.driftReportUri ? run.driftReportUri.replace(/\/?$/, "/") + "drift_report.json" : null, "Drift report (JSON file)");
  }
  main().innerHTML = `<h2>Run ${esc(name)}</h2>
    <div class="panel"><p>Status: <strong id="run-status" class="status-${esc(states.status)}">${esc(states.status)}</strong>
      · current state: ${esc(execution.currentState || "–")} · started ${fmtDate(execution.startDate)}${execution.stopDate ? ` · ended ${fmtDate(execution.stopDate)}` : ""}</p>
      ${failed.map(([state, s]) => `<div class="failure" role="alert" data-failed-state="${esc(state)}"><strong>${esc(state)} failed: ${esc(s.error)}</strong><p class="cause">${esc(s.cause || "no cause given")}</p></div>`).join("")}
      ${states.status !== "SUCCEEDED" && states.status !== "RUNNING" && states.cause && !failed.length ? `<div class="failure" role="alert"><strong>${esc(states.error)}</strong><p class="cause">${esc(states.cause)}</p></div>` : ""}
      ${links ? `<ul class="links">${links}</ul>` : ""}</div>
    <div class="panel graph"><h3>Workflow</h3><p class="legend"><span class="status-SUCCEEDED">■ succeeded</span><span class="status-RUNNING">■ running</span><span class="status-FAILED">■ failed</span><span>□ not run</span> · dashed: Catch</p>
      ${drawGraph(states.definition, states.states)}</div>`;
  if (states.status === "RUNNING") {
    pollTimer = setTimeout(() => { if (location.hash === `#/runs/${encodeURIComponent(name)}`) runPage(name).catch(() => {}); }, POLL_MS);
  }
}

// ---- models -------------------------------------------------------------------------------------------
async function modelsPage() {
  const { models } = await apiOk("/models");
  const rows = models.map((m) => `<tr>
      <td><a href="#/models/${encodeURIComponent(m.modelName)}/${m.version}">${esc(m.modelName)} v${m.version}</a></td>
      <td>${m.isChampion ? "★ champion" : ""}</td><td>${esc(m.status)}</td><td>${fmtNum(metric(m.metrics, "roc_auc"))}</td><td>${fmtNum(metric(m.metrics, "pr_auc"))}</td>
      <td>${esc(m.algorithm)}</td><td>${esc((m.datasetUri || "").split("/").pop())}</td>
      <td class="wrap">${esc((m.decisionReasons || []).join("; "))}</td></tr>`).join("");
  main().innerHTML = `<h2>Models</h2><div class="panel"><table>
    <thead><tr><th scope="col">Version</th><th scope="col">Champion</th><th scope="col">Status</th><th scope="col">ROC AUC</th><th scope="col">PR AUC</th>
    <th scope="col">Algorithm</th><th scope="col">Dataset</th><th scope="col">Decision reasons</th></tr></thead>
    <tbody>${rows || '<tr><td colspan="8">No versions registered yet.</td></tr>'}</tbody></table></div>`;
}
// metrics.json's `model` and `champion` blocks (the same held-out rows) and DeLong's paired test
function comparisonTable(metrics) {
  if (!metrics || !metrics.champion) {
    const why = metrics && metrics.champion_error ? ` The champion could not be scored: ${esc(metrics.champion_error)}` : "";
    return `<p id="comparison">No champion was scored on these rows (the first version of a model).${why}</p>`;
  }
  const rows = ["roc_auc", "pr_auc", "log_loss", "brier"].map((k) => `<tr><th scope="row">${k}</th>
    <td>${fmtNum(metric(metrics, k))}</td><td>${fmtNum(metric({ model: metrics.champion }, k))}</td></tr>`).join("");
  const c = metrics.comparison || {};
  const interval = Array.isArray(c.interval) ? `[${fmtNum(c.interval[0])}, ${fmtNum(c.interval[1])}]` : "–";
  return `<table id="comparison"><thead><tr><th scope="col">metric</th><th scope="col">this version</th><th scope="col">champion</th></tr></thead>
    <tbody>${rows}</tbody></table>
    <p>ROC AUC difference (this − champion) ${fmtNum(c.roc_auc_difference)}, 95% interval ${interval}, p = ${fmtNum(c.p_value)}
      (DeLong's paired test on ${esc(c.rows ?? "–")} rows, ${esc(c.positives ?? "–")} readmitted).</p>`;
}
async function versionPage(name, version) {
  const [v, report] = await Promise.all([apiOk(`/models/${encodeURIComponent(name)}/${version}`), apiOk(`/models/${encodeURIComponent(name)}/${version}/report`)]);
  const metricRows = ["roc_auc", "pr_auc", "log_loss", "brier"].map((k) => `<tr><th scope="row">${k}</th><td data-metric="${k}">${fmtNum(metric(v.metrics, k))}</td></tr>`).join("");
  main().innerHTML = `<h2>${esc(name)} v${esc(version)}</h2>
    <div class="panel"><p>${v.isChampion ? "★ Champion · " : ""}Status ${esc(v.status)} · ${esc(v.algorithm)} · promotion ${esc(v.promotion || "–")}
      ${v.runId ? ` · run <a href="#/runs/${encodeURIComponent(v.runId)}">${esc(v.runId)}</a>` : ""}</p>
      <p>${esc((v.decisionReasons || []).join("; "))}</p><table>${metricRows}</table></div>
    <div class="panel"><h3>Compared with the champion on the same rows</h3>${comparisonTable(report.metrics)}</div>
    <div class="panel"><h3>Report plots</h3><div class="plots">
      ${report.plots.map((p) => `<figure><img src="${p.dataUri}" alt="${esc(p.name.replace(/_/g, " ").replace(".png", ""))}" data-plot="${esc(p.name)}"><figcaption>${esc(p.name)}</figcaption></figure>`).join("") || `<p>No plots in this version's report.${report.reportProblem ? " " + esc(report.reportProblem) : ""}</p>`}
    </div>${report.reportUri ? `<p>Published at <code>${esc(report.reportUri)}</code></p>` : ""}</div>
    ${report.modelCard ? `<div class="panel"><h3>Model card</h3><pre class="model-card" data-model-card>${esc(report.modelCard)}</pre></div>` : ""}`;
}

// ---- drift --------------------------------------------------------------------------------------------
async function driftPage(name) {
  if (!name) {
    const { executions } = await apiOk("/executions");
    const done = executions.find((e) => e.status === "SUCCEEDED");
    if (!done) { main().innerHTML = "<h2>Drift</h2><div class='panel'>No succeeded run yet, so no drift report.</div>"; return; }
    name = done.executionName;
  }
  const { report } = await apiOk(`/executions/${encodeURIComponent(name)}/drift`);
  const features = Object.entries(report.features || {}).sort((a, b) => b[1].psi - a[1].psi);
  const { warn, drift } = report.thresholds;
  main().innerHTML = `<h2>Drift of run ${esc(name)}</h2>
    <div class="panel"><p>${esc(report.rows)} scored rows against ${esc(report.baseline_rows)} baseline rows · status <strong>${esc(report.status)}</strong>
      · warn at PSI ${warn}, alert at ${drift} · prediction PSI ${fmtNum(report.prediction && report.prediction.psi)}</p>
      <div class="chart" style="height: ${Math.max(320, features.length * 18 + 90)}px"><canvas id="psi-chart" role="img" aria-label="Population stability index per feature with the warn and alert thresholds"></canvas></div></div>
    <div class="panel"><table><thead><tr><th scope="col">Feature</th><th scope="col">PSI</th><th scope="col">Level</th></tr></thead>
      <tbody>${features.map(([f, v]) => `<tr><td>${esc(f)}</td><td>${fmtNum(v.psi)}</td><td>${esc(v.level)}</td></tr>`).join("")}</tbody></table></div>`;
  const colours = features.map(([, v]) => (v.level === "drift" || v.level === "alert" ? "#b3261e" : v.level === "warn" ? "#d08a00" : "#1f5fbf"));
  const labels = features.map(([f]) => f);
  charts.push(new Chart(document.getElementById("psi-chart"), {
    data: {
      labels,
      datasets: [
        { type: "bar", label: "PSI", data: features.map(([, v]) => v.psi), backgroundColor: colours },
        { type: "line", label: `warn (${warn})`, data: labels.map(() => warn), borderColor: "#d08a00", borderDash: [6, 4], pointRadius: 0 },
        { type: "line", label: `alert (${drift})`, data: labels.map(() => drift), borderColor: "#b3261e", borderDash: [2, 2], pointRadius: 0 },
      ],
    },
    options: {
      indexAxis: "y", maintainAspectRatio: false, animation: false,
      scales: {
        x: { type: "logarithmic", title: { display: true, text: "PSI (log scale)" },
          ticks: { callback: (v) => (Number.isInteger(Math.log10(v)) ? String(v) : "") } },
        y: { ticks: { autoSkip: false } },
      },
    },
  }));
}

// ---- cost ---------------------------------------------------------------------------------------------
async function costsPage() {
  const c = await apiOk("/costs");
  const rows = c.runs.map((r) => `<tr><td><a href="#/runs/${encodeURIComponent(r.executionName)}">${esc(r.executionName)}</a></td>
      <td>${fmtDate(r.startDate)}</td><td>${r.jobs.map((j) => `${esc(j.kind)} ${esc(j.instanceCount)}× ${esc(j.instanceType)} ${fmtSeconds(j.seconds)}`).join("<br>")}</td>
      <td>${fmtMoney(r.cost, c.currency)}</td></tr>`).join("");
  main().innerHTML = `<h2>Cost</h2>
    <div class="panel"><p>Month so far (${esc(c.month)}): <strong id="month-total">${fmtMoney(c.monthToDate, c.currency)}</strong>${c.unpricedRunsThisMonth ? ` + ${c.unpricedRunsThisMonth} runs not priced` : ""}</p>
      <p class="hint">Each SageMaker job's billable seconds × its instances × the on-demand price (${esc(c.region)}, prices as of ${esc(c.pricesAsOf)}, docs/aws-prices.json). ${esc(c.caveat)}</p></div>
    <div class="panel"><table><thead><tr><th scope="col">Run</th><th scope="col">Started</th><th scope="col">Jobs</th><th scope="col">Estimated cost</th></tr></thead>
      <tbody>${rows || '<tr><td colspan="4">No runs yet.</td></tr>'}</tbody></table></div>`;
}

// ---- start --------------------------------------------------------------------------------------------
async function boot() {
  try { config = await (await fetch("config.json")).json(); } catch { /* local defaults */ }
  if (config.auth) {
    await finishSignIn();
    if (!token()) { await signIn(); return; }
    document.getElementById("user").textContent = "signed in";
  }
  window.addEventListener("hashchange", route);
  await route();
}
boot();
