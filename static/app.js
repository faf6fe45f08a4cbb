"use strict";
// waterz web page: upload, options, live progress (Server-Sent Events, polling as fallback), result.
const $ = (id) => document.getElementById(id);
const job = { id: null, video: null, box: null, source: null, timer: null, done: false };
const STAGES = {
  uploaded: "Uploaded", probing: "Reading the video", detecting: "Finding the watermark",
  inpainting: "Removing the watermark", encoding: "Encoding the result", joining: "Joining the result",
  encode: "Encoding the result", done: "Done", failed: "Failed",
};
const PALETTE = ["#0b63c5", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0f766e", "#a16207", "#be185d"];
const workerColours = {};

// ---- the optional API key: asked once, kept in this browser -------------------------------------
const KEY = "waterz-api-key";
const apiKey = () => localStorage.getItem(KEY) || "";
const withKey = (url) => (apiKey() ? `${url}${url.includes("?") ? "&" : "?"}api_key=${encodeURIComponent(apiKey())}` : url);
function askForKey() {
  const key = prompt("This service needs an API key. Enter it (it is kept in this browser):");
  if (key) { localStorage.setItem(KEY, key.trim()); location.reload(); }
}
async function api(url, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  const response = await fetch(url, { ...options, headers });
  if (response.status === 401) askForKey();
  return response;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}
function clearError() { $("error").hidden = true; }
function show(id, visible = true) { $(id).hidden = !visible; }

async function detailOf(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
  } catch (e) { /* not JSON */ }
  return `The server answered ${response.status} ${response.statusText}.`;
}

function setTaskInUrl(id) {
  const url = new URL(location.href);
  if (id) url.searchParams.set("task", id); else url.searchParams.delete("task");
  history.replaceState(null, "", url);
}

// ---- 1. upload --------------------------------------------------------------------------------
function upload(file) {
  clearError();
  const form = new FormData();
  form.append("file", file);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/upload");
  if (apiKey()) xhr.setRequestHeader("Authorization", `Bearer ${apiKey()}`);
  show("upload-progress");
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) $("upload-bar").value = (100 * e.loaded) / e.total; };
  xhr.onerror = () => { show("upload-progress", false); showError("The upload failed: the server could not be reached."); };
  xhr.onload = () => {
    show("upload-progress", false);
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* keep {} */ }
    if (xhr.status === 401) { askForKey(); return; }
    if (xhr.status !== 200) {
      showError(typeof body.detail === "string" ? body.detail : `The upload failed (${xhr.status}).`);
      return;
    }
    job.id = body.task_id;
    setTaskInUrl(job.id);
    showVideo(body, file.size);
    showOptions();
  };
  xhr.send(form);
}

function formatDuration(s) {
  const m = Math.floor(s / 60), rest = s - 60 * m;
  return m ? `${m} min ${rest.toFixed(1)} s` : `${rest.toFixed(1)} s`;
}

function showVideo(v, size) {
  job.video = v;
  $("info-name").textContent = v.filename || "—";
  $("info-size").textContent = size ? `${(size / 1048576).toFixed(1)} MB` : "—";
  $("info-length").textContent = formatDuration(v.duration);
  $("info-fps").textContent = `${Number(v.fps).toFixed(3).replace(/\.?0+$/, "")} fps`;
  $("info-frames").textContent = String(v.frames);
  $("info-dims").textContent = `${v.width} × ${v.height}`;
  show("video-info");
  show("drop", false);
}

// ---- 2. options and the box -------------------------------------------------------------------
async function loadOptions() {
  const r = await api("/api/options");
  if (!r.ok) { showError(await detailOf(r)); return; }
  const o = await r.json();
  $("max-mb").textContent = o.max_upload_mb;
  for (const [select, names, chosen] of [["detector", o.detectors, o.detector], ["inpainter", o.inpainters, o.inpainter]]) {
    $(select).replaceChildren(...names.map((n) => new Option(n === chosen ? `${n} (default)` : n, n, n === chosen, n === chosen)));
  }
  const e = await api("/api/engines");
  if (!e.ok) return; // the selects still work; only the notes on each engine are missing
  const listing = await e.json();
  for (const [select, rows] of [["detector", listing.detectors], ["inpainter", listing.inpainters]]) {
    const about = () => {
      const r = rows.find((row) => row.name === $(select).value);
      if (!r) { $(`${select}-about`).textContent = ""; return; }
      const weights = r.weights ? ` Weights: ${r.weights} (${r.weights_licence}).` : "";
      const state = r.available ? "" : ` Not available here: ${r.why}.`;
      $(`${select}-about`).textContent = `${r.does}. Runs on ${r.device}. Code: ${r.code_licence}.${weights}${state}`;
    };
    $(select).addEventListener("change", about);
    about();
  }
}

function showOptions() {
  show("options-step");
  $("preview").src = withKey(`/api/preview/${job.id}`);
  $("start").disabled = false;
}

const canvas = $("box-canvas");
function drawBox() {
  const img = $("preview");
  canvas.width = img.naturalWidth || 1;
  canvas.height = img.naturalHeight || 1;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!job.box) return;
  const { x, y, w, h } = job.box;
  ctx.fillStyle = "rgba(11, 99, 197, 0.25)";
  ctx.fillRect(x, y, w, h);
  ctx.lineWidth = Math.max(2, canvas.width / 300);
  ctx.strokeStyle = "#f0b400";
  ctx.strokeRect(x, y, w, h);
}
function setBox(box) {
  job.box = box && box.w > 0 && box.h > 0 ? box : null;
  for (const k of ["x", "y", "w", "h"]) $(`box-${k}`).value = job.box ? job.box[k] : "";
  drawBox();
}
function imagePoint(e) {
  const r = canvas.getBoundingClientRect();
  const sx = canvas.width / r.width, sy = canvas.height / r.height;
  return { x: Math.max(0, Math.min(canvas.width, Math.round((e.clientX - r.left) * sx))),
           y: Math.max(0, Math.min(canvas.height, Math.round((e.clientY - r.top) * sy))) };
}
let dragFrom = null;
canvas.addEventListener("pointerdown", (e) => { dragFrom = imagePoint(e); canvas.setPointerCapture(e.pointerId); });
canvas.addEventListener("pointermove", (e) => {
  if (!dragFrom) return;
  const p = imagePoint(e);
  setBox({ x: Math.min(p.x, dragFrom.x), y: Math.min(p.y, dragFrom.y), w: Math.abs(p.x - dragFrom.x), h: Math.abs(p.y - dragFrom.y) });
});
canvas.addEventListener("pointerup", () => { dragFrom = null; });
for (const k of ["x", "y", "w", "h"]) {
  $(`box-${k}`).addEventListener("input", () => {
    const v = Object.fromEntries(["x", "y", "w", "h"].map((n) => [n, parseInt($(`box-${n}`).value, 10)]));
    job.box = Object.values(v).every(Number.isFinite) && v.w > 0 && v.h > 0 ? v : null;
    drawBox();
  });
}
$("box-clear").addEventListener("click", () => setBox(null));
$("preview").addEventListener("load", drawBox);

async function start() {
  clearError();
  $("start").disabled = true;
  const body = { task_id: job.id, detector: $("detector").value, inpainter: $("inpainter").value };
  if (job.box) body.boxes = [job.box];
  const r = await api("/api/process", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (r.status !== 202) { showError(await detailOf(r)); $("start").disabled = false; return; }
  show("options-step", false);
  follow(job.id);
}

// ---- 3. progress --------------------------------------------------------------------------------
function follow(id) {
  show("progress-step");
  if (window.EventSource) {
    const source = new EventSource(withKey(`/api/events/${id}`));
    job.source = source;
    source.addEventListener("status", (e) => render(JSON.parse(e.data)));
    source.onerror = () => { source.close(); if (!job.done) poll(id); };
  } else {
    poll(id);
  }
}
function poll(id) {
  clearInterval(job.timer);
  job.timer = setInterval(async () => {
    const r = await api(`/api/status/${id}`).catch(() => null);
    if (r && r.ok) render(await r.json());
    else if (r && r.status === 404) { clearInterval(job.timer); showError(await detailOf(r)); }
  }, 1000);
}

function colourOf(worker) {
  if (!(worker in workerColours)) workerColours[worker] = PALETTE[Object.keys(workerColours).length % PALETTE.length];
  return workerColours[worker];
}

function renderLanes(status) {
  const segs = status.metadata.segments || [];
  const now = Date.now() / 1000;
  const t0 = Math.min(...segs.map((s) => s.started_at || Infinity));
  const t1 = Math.max(now * (status.metadata.finished_at ? 0 : 1), status.metadata.finished_at || 0,
                      ...segs.map((s) => s.finished_at || 0));
  const span = Math.max(1e-3, t1 - (Number.isFinite(t0) ? t0 : now));
  const lanes = segs.map((s) => {
    const lane = document.createElement("div");
    lane.className = "lane";
    const label = document.createElement("span");
    label.className = "lane-label";
    label.textContent = `Segment ${s.index + 1} · ${s.start_frame}–${s.end_frame}`;
    const track = document.createElement("div");
    track.className = "lane-track";
    const length = s.end_frame - s.start_frame + 1;
    const done = Math.min(length, s.frames_done || 0);
    if (s.started_at) {
      const fill = document.createElement("div");
      fill.className = "lane-fill";
      fill.style.width = `${(100 * done) / length}%`;
      track.append(fill);
      const bar = document.createElement("div");
      const end = s.finished_at || now;
      bar.className = "lane-bar" + (s.finished_at ? "" : " running");
      bar.style.left = `${(100 * (s.started_at - t0)) / span}%`;
      bar.style.width = `${(100 * (end - s.started_at)) / span}%`;
      bar.style.background = colourOf(s.worker || "?");
      bar.textContent = s.worker ? s.worker.split("@")[0] : "";
      const what = s.finished_at ? `done in ${(s.finished_at - s.started_at).toFixed(1)} s` : `${done} of ${length} frames`;
      bar.title = `${s.worker}: ${what}`;
      track.setAttribute("aria-label", `Segment ${s.index + 1}: ${s.worker}, ${what}`);
      track.append(bar);
    } else {
      track.setAttribute("aria-label", `Segment ${s.index + 1}: waiting`);
    }
    lane.append(label, track);
    return lane;
  });
  $("lanes").replaceChildren(...lanes);
  const perWorker = {};
  for (const s of segs) if (s.worker) perWorker[s.worker.split("@")[0]] = (perWorker[s.worker.split("@")[0]] || 0) + 1;
  const who = Object.entries(perWorker).map(([w, n]) => `${w}: ${n}`).join(", ");
  $("job-summary").textContent = segs.length ? `${segs.length} segment${segs.length > 1 ? "s" : ""}${who ? " · " + who : ""}` : "";
}

function formatLeft(s) {
  if (s < 60) return `${Math.max(1, Math.round(s))} s`;
  const m = Math.floor(s / 60), rest = Math.round(s - 60 * m);
  return m < 60 ? `${m} min ${rest} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function render(status) {
  $("job-bar").value = status.progress;
  $("job-stage").textContent = `${STAGES[status.stage] || status.stage} — ${status.progress.toFixed(1)}%`;
  const running = status.state === "STARTED" || status.state === "PROGRESS";
  $("job-eta").textContent = !running ? "" : status.eta_s == null ? "Estimating the time left…"
    : `About ${formatLeft(status.eta_s)} left`;
  renderLanes(status);
  if (status.state === "SUCCESS") { finish(); showDone(status); }
  if (status.state === "FAILURE") { finish(); showError(status.error || "The job failed."); }
}
function finish() {
  job.done = true;
  if (job.source) job.source.close();
  clearInterval(job.timer);
}

// ---- 4. done --------------------------------------------------------------------------------------
function showDone(status) {
  const url = status.result.result_url;
  $("before").src = withKey(`/api/source/${status.task_id}`);
  $("after").src = url;
  $("download").href = url;
  const stem = (status.filename || "video").replace(/\.[^.]+$/, "");
  $("download").setAttribute("download", `${stem}_clean.mp4`);
  show("done-step");
}
$("split").addEventListener("input", (e) => {
  $("after-clip").style.clipPath = `inset(0 0 0 ${e.target.value}%)`;
  $("divider").style.left = `${e.target.value}%`;
});
$("play").addEventListener("click", () => {
  const before = $("before"), after = $("after");
  if (before.paused) {
    after.currentTime = before.currentTime;
    before.play(); after.play();
    $("play").textContent = "Pause";
  } else {
    before.pause(); after.pause();
    $("play").textContent = "Play both";
  }
});
$("before").addEventListener("timeupdate", () => {
  const before = $("before"), after = $("after");
  if (Math.abs(after.currentTime - before.currentTime) > 0.15) after.currentTime = before.currentTime;
});
$("again").addEventListener("click", () => { setTaskInUrl(null); location.reload(); });

// ---- start-up: a task id in the URL resumes the job ---------------------------------------------
async function resume(id) {
  const r = await api(`/api/status/${id}`);
  if (!r.ok) { showError(await detailOf(r)); setTaskInUrl(null); return; }
  const status = await r.json();
  job.id = id;
  showVideo({ ...status.metadata.video, filename: status.filename }, null);
  if (status.state === "PENDING" && !status.metadata.queued_at) showOptions();
  else { render(status); if (!job.done) follow(id); }
}

const drop = $("drop");
$("file").addEventListener("change", (e) => { if (e.target.files[0]) upload(e.target.files[0]); });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
});
$("start").addEventListener("click", start);

loadOptions().then(() => {
  const id = new URLSearchParams(location.search).get("task");
  if (id) resume(id);
});
