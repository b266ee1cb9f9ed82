// painterly's page: plain JavaScript over the HTTP API (/api/...), nothing fetched from elsewhere.
"use strict";

const PALETTE = [["red", "#ff0000"], ["green", "#00ff00"], ["blue", "#0000ff"], ["yellow", "#ffff00"],
                 ["magenta", "#ff00ff"], ["cyan", "#00ffff"]];
const PAINT_SIDE = 768;  // the long side of the region maps painted (guidance maps are resized anyway)
const MAIN_OPTIONS = ["size", "iterations", "max_time", "style_weight", "content_weight", "strength",
                      "preserve_color", "model", "style_weights", "seed"];
const $ = (id) => document.getElementById(id);

const state = { methods: [], content: null, styles: [], active: null, color: PALETTE[0][1], eraser: false,
                job: null, events: null };

// --- images with a paint layer --------------------------------------------------------------------
class Panel {
  constructor(kind, blob, name) {
    this.kind = kind; this.blob = blob; this.name = name; this.undo = [];
    this.element = document.createElement("div");
    this.element.className = "panel";
    this.view = document.createElement("canvas");
    this.paint = document.createElement("canvas");
    this.paint.getContext("2d", { willReadFrequently: true });  // read back for the colour legend
    const caption = document.createElement("div");
    caption.className = "caption";
    this.label = document.createElement("span");
    caption.append(this.label);
    // a region map made elsewhere (a STROTSS guidance map): its colours become this picture's regions
    const mapPick = document.createElement("label");
    mapPick.className = "pick"; mapPick.textContent = "load a map";
    mapPick.title = "a colour-coded region map of this picture (black: no region painted)";
    const mapInput = document.createElement("input");
    mapInput.type = "file"; mapInput.accept = "image/*"; mapInput.className = "visually-hidden";
    mapInput.setAttribute("aria-label", `load a region map for ${name}`);
    mapInput.onchange = (e) => {
      const f = e.target.files[0];
      if (f) this.loadMap(f).catch((err) => showError(err.message));
      e.target.value = "";
    };
    mapPick.append(mapInput);
    caption.append(mapPick);
    if (kind === "style") {
      const remove = document.createElement("button");
      remove.className = "remove"; remove.type = "button"; remove.textContent = "remove";
      remove.title = "remove this style";
      remove.onclick = () => removeStyle(this);
      caption.append(remove);
    }
    this.element.append(this.view, caption);
    this.image = new Image();
    this.ready = new Promise((resolve, reject) => {
      this.image.onload = () => { this.layout(); resolve(this); };
      this.image.onerror = () => reject(new Error(`${name} is not an image this browser can show`));
    });
    this.image.src = URL.createObjectURL(blob);
    this.bindBrush();
  }

  layout() {
    const scale = Math.min(1, PAINT_SIDE / Math.max(this.image.width, this.image.height));
    const w = Math.max(1, Math.round(this.image.width * scale)), h = Math.max(1, Math.round(this.image.height * scale));
    for (const c of [this.view, this.paint]) { c.width = w; c.height = h; }
    this.redraw();
  }

  redraw() {
    const g = this.view.getContext("2d");
    g.globalAlpha = 1;
    g.drawImage(this.image, 0, 0, this.view.width, this.view.height);
    g.globalAlpha = 0.55;
    g.drawImage(this.paint, 0, 0);
    g.globalAlpha = 1;
  }

  point(event) {
    const r = this.view.getBoundingClientRect();
    return [(event.clientX - r.left) * this.view.width / r.width, (event.clientY - r.top) * this.view.height / r.height];
  }

  bindBrush() {
    let last = null;
    const g = () => this.paint.getContext("2d", { willReadFrequently: true });
    const dab = (from, to) => {
      const ctx = g();
      ctx.globalCompositeOperation = state.eraser ? "destination-out" : "source-over";
      ctx.strokeStyle = state.color; ctx.lineCap = "round"; ctx.lineJoin = "round";
      ctx.lineWidth = Number($("brush-size").value) * this.view.width / this.view.getBoundingClientRect().width;
      ctx.beginPath(); ctx.moveTo(...from); ctx.lineTo(...to); ctx.stroke();
      this.redraw();
    };
    this.view.addEventListener("pointerdown", (e) => {
      setActive(this);
      this.undo.push(g().getImageData(0, 0, this.paint.width, this.paint.height));
      if (this.undo.length > 30) this.undo.shift();
      this.view.setPointerCapture(e.pointerId);
      last = this.point(e);
      dab(last, last);
    });
    this.view.addEventListener("pointermove", (e) => {
      if (last === null) return;
      const p = this.point(e);
      dab(last, p);
      last = p;
    });
    const end = () => { if (last !== null) { last = null; showPairs(); } };
    this.view.addEventListener("pointerup", end);
    this.view.addEventListener("pointercancel", end);
  }

  async loadMap(file) {
    const map = new Image();
    map.src = URL.createObjectURL(file);
    try { await map.decode(); } catch (err) { throw new Error(`${file.name} is not an image this browser can show`); }
    const g = this.paint.getContext("2d", { willReadFrequently: true });
    this.undo.push(g.getImageData(0, 0, this.paint.width, this.paint.height));
    g.globalCompositeOperation = "source-over";
    g.clearRect(0, 0, this.paint.width, this.paint.height);
    g.imageSmoothingEnabled = false;
    g.drawImage(map, 0, 0, this.paint.width, this.paint.height);
    const pixels = g.getImageData(0, 0, this.paint.width, this.paint.height);
    const d = pixels.data;
    for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] < 3 * 24) d[i + 3] = 0;  // black: unpainted
    g.putImageData(pixels, 0, 0);
    setActive(this); this.redraw(); showPairs(); showError("");
  }

  undoStroke() {
    const previous = this.undo.pop();
    if (previous) { this.paint.getContext("2d").putImageData(previous, 0, 0); this.redraw(); showPairs(); }
  }

  clear() {
    this.undo.push(this.paint.getContext("2d").getImageData(0, 0, this.paint.width, this.paint.height));
    this.paint.getContext("2d").clearRect(0, 0, this.paint.width, this.paint.height);
    this.redraw(); showPairs();
  }

  // The colours on the paint layer (opaque enough to survive as a region): a palette colour by name, any
  // other (a loaded map's) as #rrggbb where it covers 1% of the picture, as the server counts regions.
  colours() {
    const data = this.paint.getContext("2d").getImageData(0, 0, this.paint.width, this.paint.height).data;
    const found = new Set(), others = new Map();
    let samples = 0;
    for (let i = 0; i < data.length; i += 4 * 7) {
      samples += 1;
      if (data[i + 3] < 200) continue;
      const named = PALETTE.find(([, hex]) => [1, 3, 5].every((k, c) => Math.abs(data[i + c] - parseInt(hex.slice(k, k + 2), 16)) < 40));
      if (named) { found.add(named[0]); continue; }
      const key = "#" + [0, 1, 2].map((c) => (Math.round(data[i + c] / 255 * 31) * 255 / 31 | 0).toString(16).padStart(2, "0")).join("");
      others.set(key, (others.get(key) || 0) + 1);
    }
    for (const [key, count] of others) if (count >= 0.01 * samples) found.add(key);
    return found;
  }

  // The colour-coded guidance map the CLI takes: the painted regions on black, at the image's own size
  // (so its aspect ratio is exactly the image's).
  guidance() {
    const c = document.createElement("canvas");
    c.width = this.image.width; c.height = this.image.height;
    const g = c.getContext("2d");
    g.imageSmoothingEnabled = false;
    g.fillStyle = "#000"; g.fillRect(0, 0, c.width, c.height);
    g.drawImage(this.paint, 0, 0, c.width, c.height);
    return new Promise((resolve) => c.toBlob(resolve, "image/png"));
  }
}

function panels() { return [state.content, ...state.styles].filter(Boolean); }

function setActive(panel) {
  state.active = panel;
  for (const p of panels()) p.element.classList.toggle("active", p === panel);
}

function relabel() {
  if (state.content) state.content.label.textContent = `content: ${state.content.name}`;
  state.styles.forEach((p, i) => { p.label.textContent = `style ${i + 1}: ${p.name}`; });
  $("brush").hidden = panels().length === 0;
}

async function addImage(kind, blob, name) {
  const panel = new Panel(kind, blob, name);
  // a style takes its place now, in the order picked: each loads at its own speed (and the order is the
  // blend weights' and the legend's "style N")
  if (kind === "style") { state.styles.push(panel); $("panels").append(panel.element); }
  try { await panel.ready; } catch (err) {
    if (kind === "style") removeStyle(panel);
    showError(err.message); return;
  }
  if (kind === "content") {
    if (state.content) state.content.element.remove();
    state.content = panel;
    $("panels").prepend(panel.element);
  }
  setActive(panel); relabel(); showPairs(); showError("");
}

function removeStyle(panel) {
  state.styles = state.styles.filter((p) => p !== panel);
  panel.element.remove();
  if (state.active === panel) setActive(state.content);
  relabel(); showPairs();
}

function showPairs() {
  const box = $("pairs");
  box.textContent = "";
  const present = panels().map((p) => p.colours());
  const keys = [...new Set(present.flatMap((set) => [...set]))];
  const used = keys.map((key) => [key, (PALETTE.find(([name]) => name === key) || [key, key])[1]]);
  for (const [name, hex] of used) {
    const line = document.createElement("div");
    const swatch = document.createElement("span");
    swatch.className = "swatch"; swatch.style.background = hex;
    const where = panels().map((p, i) => `${p.kind === "content" ? "content" : "style " + (state.styles.indexOf(p) + 1)}: ${present[i].has(name) ? "yes" : "no"}`);
    const paired = state.content && present[0].has(name) && state.styles.every((p, i) => present[i + 1].has(name));
    line.append(swatch, `${name}: ${where.join(", ")}${paired ? " (paired)" : " (not paired: paint it on the content and on every style)"}`);
    box.append(line);
  }
}

// Whether any region is painted or loaded (any opaque paint: a JPEG map's colours may each be under 1%)
function painted() {
  return panels().some((p) => {
    const data = p.paint.getContext("2d").getImageData(0, 0, p.paint.width, p.paint.height).data;
    for (let i = 3; i < data.length; i += 4 * 7) if (data[i] >= 200) return true;
    return false;
  });
}

// --- methods and their options ----------------------------------------------------------------------
function currentMethod() { return state.methods.find((m) => m.name === $("method").value); }

function optionInput(option, method) {
  const id = `opt-${option.name}`;
  const label = document.createElement("label");
  label.htmlFor = id; label.textContent = option.name.replaceAll("_", " "); label.title = option.help;
  let input;
  const names = option.names;
  if (option.choices && option.type === "string") {
    input = document.createElement("select");
    for (const c of option.choices) input.add(new Option(c, c, false, c === option.default));
  } else if (option.files) {
    input = document.createElement("select");
    // a method without style images takes them from this file (a network's model): "none" cannot run
    const needed = !method.needs_styles && !option.default && names.length > 0;
    if (!names.includes(option.default) && !needed) input.add(new Option(option.default_text || "default", ""));
    for (const n of names) input.add(new Option(n, n, false, n === option.default));
  } else if (option.type === "boolean") {
    input = document.createElement("input"); input.type = "checkbox"; input.checked = Boolean(option.default);
  } else {
    input = document.createElement("input");
    const numeric = option.type === "integer" || option.type === "number";
    input.type = numeric ? "number" : "text";
    if (numeric) {
      input.step = option.type === "integer" ? "1" : "any";
      if (option.minimum !== null) input.min = option.minimum;
      if (option.maximum !== null && option.maximum !== undefined) input.max = option.maximum;
    }
    const shown = Array.isArray(option.default) ? option.default.join(",") : option.default;
    if (shown !== null && shown !== undefined) input.value = shown;
    else input.placeholder = option.default_text || "default";
  }
  input.id = id; input.dataset.option = option.name; input.title = option.help;
  return [label, input];
}

function showOptions() {
  const method = currentMethod();
  $("method-summary").textContent = method.summary;
  const main = $("main-options"), more = $("more-options");
  main.textContent = ""; more.textContent = "";
  const byName = Object.fromEntries(method.options.map((o) => [o.name, o]));
  for (const name of MAIN_OPTIONS) if (byName[name]) main.append(...optionInput(byName[name], method));
  for (const o of method.options) if (!MAIN_OPTIONS.includes(o.name)) more.append(...optionInput(o, method));
  const size = $("opt-size");
  if (size) size.value = state.size || 384;  // a friendly default on a CPU, kept across methods
  if (size) size.oninput = () => { state.size = size.value; };
}

// The options that differ from the method's defaults, typed as the API wants them.
function collectOptions() {
  const method = currentMethod();
  const options = { method: method.name };
  for (const o of method.options) {
    const input = document.querySelector(`[data-option="${o.name}"]`);
    if (!input) continue;
    const label = o.name.replaceAll("_", " ");
    const number = (text, whole) => {
      const v = Number(text);
      if (text.trim() === "" || !Number.isFinite(v)) throw new Error(`${label} must be a number, not '${text}'`);
      if (whole && !Number.isInteger(v)) throw new Error(`${label} must be a whole number, not '${text}'`);
      return v;
    };
    let value;
    if (o.type === "boolean") value = input.checked;
    else if (input.value === "" || input.value === undefined) continue;
    else if (o.type === "integer") value = number(input.value, true);
    else if (o.type === "number") value = number(input.value, false);
    else if (o.type.endsWith("[]")) {
      // a,b,c as the field shows it, or [a, b, c] as the option's help writes a list
      const items = input.value.replace(/[\[\]"]/g, "").split(",").map((s) => s.trim()).filter(Boolean);
      value = o.type.startsWith("string") ? items : items.map((s) => number(s, o.type.startsWith("integer")));
    } else value = input.value;
    if (JSON.stringify(value) === JSON.stringify(o.default)) continue;
    options[o.name] = value;
  }
  return options;
}

// --- jobs -------------------------------------------------------------------------------------------
async function api(path, init) {
  const response = await fetch(path, init);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.error || `${response.status} ${response.statusText}`);
  return body;
}

async function start() {
  showError("");
  const method = currentMethod();
  $("start").disabled = true;  // one job per click
  $("start").textContent = "sending…";
  try {
    if (!state.content) throw new Error("choose a content image first");
    if (method.needs_styles && state.styles.length === 0) throw new Error("choose at least one style image");
    const form = new FormData();
    form.append("content", state.content.blob, state.content.name);
    if (method.needs_styles) for (const s of state.styles) form.append("style", s.blob, s.name);  // a network brings its own
    if (painted()) {
      if (!method.accepts.includes("guidance")) throw new Error(`${method.name} takes no painted regions; clear them or choose another method`);
      form.append("content_guidance", await state.content.guidance(), "content_guidance.png");
      for (const s of state.styles) form.append("style_guidance", await s.guidance(), "style_guidance.png");
    }
    form.append("options", JSON.stringify(collectOptions()));
    const { id } = await api("/api/jobs", { method: "POST", body: form });
    follow(id);
    refreshGallery();
  } catch (err) { showError(err.message); } finally { $("start").disabled = false; $("start").textContent = "Paint"; }
}

function follow(id) {
  if (state.events) state.events.close();
  state.job = id;
  $("run").hidden = false;
  $("job-id").textContent = id;
  $("download").hidden = true; $("copy-command").hidden = true; $("command").hidden = true; $("remove").hidden = true;
  $("preview").removeAttribute("src");
  $("loss-curve").hidden = true; $("loss-curve").removeAttribute("src");  // no late load of the last job's
  state.events = new EventSource(`/api/jobs/${id}/events`);
  state.events.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
  state.events.onerror = () => {  // the browser reconnects by itself; say so while the server is away
    api(`/api/jobs/${id}`).then(showStatus).catch(() => {
      $("job-state").textContent = "lost the connection to the server; retrying…";
    });
  };
}

let lastPreview = 0;
function showStatus(job) {
  if (job.id !== state.job) return;
  const p = job.progress || {};
  const bar = $("bar");
  const text = {
    queued: `queued: position ${job.position}`,
    running: (p.scales ? `running: scale ${p.scale}/${p.scales} (${p.size.join("x")}), iteration ${p.iteration}/${p.iterations}, ${p.elapsed.toFixed(1)} s` : "starting…")
      + (job.resumed_from_step ? ` (resumed from step ${job.resumed_from_step} after a restart)` : ""),
    done: `done: ${job.size ? job.size.join("x") : ""}`,
    failed: `failed: ${job.error}`,
    cancelled: "cancelled",
  }[job.state];
  const estimate = ["queued", "running"].includes(job.state) && job.estimated_seconds ? ` · about ${clock(job.estimated_seconds)} in all (estimated)` : "";
  $("job-state").textContent = text + estimate;
  $("job-state").className = job.state === "failed" ? "error" : "";
  if (p.scales) bar.value = ((p.scale - 1) + p.iteration / p.iterations) / p.scales;
  if (job.state === "done") bar.value = 1;
  $("losses").textContent = p.losses ? Object.entries(p.losses).map(([k, v]) => `${k} ${v.toPrecision(3)}`).join("   ") : "";
  const now = Date.now();
  if ((job.has_preview && now - lastPreview > 900) || job.state === "done") {
    lastPreview = now;
    $("preview").src = `/api/jobs/${job.id}/preview?t=${now}`;
  }
  $("cancel").hidden = !["queued", "running"].includes(job.state);
  $("remove").hidden = !["done", "failed", "cancelled"].includes(job.state);
  if (job.state === "done") {
    $("download").href = `/api/jobs/${job.id}/result?download=true`;
    $("download").textContent = "download PNG"; $("download").download = "";  // the server's name
    $("download").hidden = false;
  } else if (job.state === "cancelled" && job.has_preview) {  // what it had painted when stopped
    $("download").href = `/api/jobs/${job.id}/preview`;
    $("download").download = `painterly_${job.method}_${job.id}_cancelled.png`;
    $("download").textContent = "download the picture so far";
    $("download").hidden = false;
  }
  $("copy-command").hidden = false;
  if (["done", "cancelled"].includes(job.state)) {  // an optimisation's curve (a forward pass has none)
    const curve = $("loss-curve");
    curve.onload = () => { curve.hidden = false; };
    curve.onerror = () => { curve.hidden = true; };
    curve.src = `/api/jobs/${job.id}/loss?t=${Date.now()}`;
  }
  if (["done", "failed", "cancelled"].includes(job.state)) {
    if (state.events) { state.events.close(); state.events = null; }
    refreshGallery();
  }
}

async function cancel() {
  if (!state.job) return;
  try { showStatus(await api(`/api/jobs/${state.job}`, { method: "DELETE" })); } catch (err) { showError(err.message); }
}

async function removeJob() {  // a finished job and its files, after asking
  const id = state.job;
  if (!id || !confirm("Remove this job, its pictures and its uploads from the gallery?")) return;
  try {
    await api(`/api/jobs/${id}?remove=true`, { method: "DELETE" });
    if (state.events) { state.events.close(); state.events = null; }
    state.job = null;
    $("run").hidden = true;
    await refreshGallery();
  } catch (err) { showError(err.message); }
}

async function copyCommand() {
  try {
    const { command } = await api(`/api/jobs/${state.job}/command`);
    $("command").textContent = command; $("command").hidden = false;
    try { await navigator.clipboard.writeText(command); } catch (err) { /* shown on the page instead */ }
  } catch (err) { showError(err.message); }
}

let galleryTimer = null;
async function refreshGallery() {
  let jobs;
  try { jobs = await api("/api/jobs"); } catch (err) {  // the server away (restarting): look again later
    clearTimeout(galleryTimer);
    galleryTimer = setTimeout(() => refreshGallery().catch(() => {}), 5000);
    throw err;
  }
  const box = $("gallery");
  const focused = document.activeElement?.closest?.(".card")?.dataset.job;  // kept across the rebuild
  box.textContent = "";
  if (jobs.length === 0) {
    const empty = document.createElement("p");
    empty.className = "hint"; empty.textContent = "No jobs yet: the pictures you paint are kept here.";
    box.append(empty);
  }
  for (const job of jobs) {
    const card = document.createElement("div");
    card.className = "card"; card.dataset.job = job.id;
    card.tabIndex = 0; card.setAttribute("role", "button");
    card.setAttribute("aria-label", `open job ${job.id}: ${job.method}, ${job.state}`);
    const img = document.createElement("img");
    img.alt = "";  // the card's label says what it is; an unfinished job's empty picture shows no broken text
    if (job.has_result) { img.src = `/api/jobs/${job.id}/result`; img.alt = `${job.method} result`; }
    else if (job.has_preview) img.src = `/api/jobs/${job.id}/preview`;
    const settings = Object.entries(job.options).map(([k, v]) => `${k}=${v}`).join(", ");
    const line = document.createElement("div");
    line.innerHTML = "";
    line.append(`${job.method}: ${job.inputs.content} + ${job.inputs.styles.join(", ") || "(model)"}`);
    const st = document.createElement("div");
    st.className = `state-${job.state}`;
    st.textContent = `${job.state}${job.position ? " #" + job.position : ""}${settings ? " · " + settings : ""}`;
    card.append(img, line, st);
    card.onclick = () => { follow(job.id); showStatus(job); };
    card.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); card.onclick(); } };
    box.append(card);
  }
  if (focused) box.querySelector(`[data-job="${focused}"]`)?.focus();
  // other jobs (queued behind the one followed, or another tab's) finish too: look again while any is under way
  clearTimeout(galleryTimer);
  if (jobs.some((j) => ["queued", "running"].includes(j.state))) {
    galleryTimer = setTimeout(() => refreshGallery().catch(() => {}), 5000);
  }
  return jobs;
}

function clock(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function showError(message) { $("form-error").textContent = message; }

// --- wiring -----------------------------------------------------------------------------------------
function bindDrop(zone, kind) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault(); zone.classList.remove("over");
    const files = [...e.dataTransfer.files];
    for (const f of kind === "content" ? files.slice(0, 1) : files) addImage(kind, f, f.name);
  });
}

async function init() {
  const palette = $("palette");
  for (const [name, hex] of PALETTE) {
    const b = document.createElement("button");
    b.type = "button"; b.title = name; b.style.background = hex; b.dataset.color = name;
    b.setAttribute("aria-pressed", String(hex === state.color));
    b.onclick = () => {
      state.color = hex; state.eraser = false; $("eraser").setAttribute("aria-pressed", "false");
      for (const other of palette.children) other.setAttribute("aria-pressed", String(other === b));
    };
    palette.append(b);
  }
  $("eraser").onclick = () => { state.eraser = !state.eraser; $("eraser").setAttribute("aria-pressed", String(state.eraser)); };
  $("undo").onclick = () => state.active && state.active.undoStroke();
  $("clear").onclick = () => state.active && state.active.clear();
  $("content-file").onchange = (e) => { const f = e.target.files[0]; if (f) addImage("content", f, f.name); e.target.value = ""; };
  $("style-file").onchange = (e) => { for (const f of e.target.files) addImage("style", f, f.name); e.target.value = ""; };
  bindDrop($("content-drop"), "content");
  bindDrop($("style-drop"), "style");
  for (const name of await api("/api/examples")) {
    $("content-example").add(new Option(name, name));
    $("style-example").add(new Option(name, name));
  }
  for (const [select, kind] of [[$("content-example"), "content"], [$("style-example"), "style"]]) {
    select.onchange = async () => {
      const name = select.value;
      select.value = "";
      if (!name) return;
      try {
        const response = await fetch(`/api/examples/${encodeURIComponent(name)}`);
        if (!response.ok) throw new Error(`example ${name}: ${response.status}`);
        const blob = await response.blob();
        await addImage(kind, blob, `${name}.${blob.type === "image/png" ? "png" : "jpg"}`);
      } catch (err) { showError(err.message); }
    };
  }
  state.methods = await api("/api/methods");
  for (const m of state.methods) $("method").add(new Option(m.name, m.name));
  $("method").onchange = showOptions;
  showOptions();
  $("start").onclick = start;
  $("settings").addEventListener("keydown", (e) => {  // Enter in a field paints, as in a form
    if (e.key === "Enter" && !e.isComposing && e.target.matches("input") && !$("start").disabled) {
      e.preventDefault(); start();
    }
  });
  $("cancel").onclick = cancel;
  $("remove").onclick = removeJob;
  $("copy-command").onclick = copyCommand;
  try {  // a reload mid-job: follow the job under way again
    const jobs = await refreshGallery();
    // the job under way: one running, else the next in the queue (the list is newest first)
    const queued = jobs.filter((j) => j.state === "queued").sort((a, b) => a.position - b.position);
    const going = jobs.find((j) => j.state === "running") || queued[0];
    if (going && !state.job) { follow(going.id); showStatus(going); }
  } catch (err) { showError(err.message); }
}

init().catch((err) => showError(err.message));
