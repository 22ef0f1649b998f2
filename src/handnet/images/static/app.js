// The draw-a-digit page: pointer drawing (mouse, touch, pen), live predictions from
// POST /api/predict, a bar chart, the preprocessed input and the strongest hidden units.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const labelEl = document.getElementById("label");
const confEl = document.getElementById("confidence");
const runnerEl = document.getElementById("runner-up");
const barsEl = document.getElementById("bars");
const unitsEl = document.getElementById("units");

const STROKE = 24; // pen width on the 280 px pad: MNIST-like strokes (about 1/8 of the digit) after scaling
// Ink must span this many pen widths before the page asks: the server calls less "only a dot, not
// a digit" (2.1 widths, handnet.data.photo), and a tap is answered here, without a 422.
const MIN_SPAN = 3 * STROKE;
let classes = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
let drawing = false, dirty = false, inFlight = false, hasInk = false, last = null;
let inkBox = null; // [left, top, right, bottom] of the pen's centre since the pad was cleared

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  inkBox = null;
  showEmpty("draw something");
}

function addInk([x, y]) {
  inkBox = inkBox ? [Math.min(inkBox[0], x), Math.min(inkBox[1], y), Math.max(inkBox[2], x), Math.max(inkBox[3], y)]
    : [x, y, x, y];
}

function enoughInk() {
  return inkBox !== null && Math.max(inkBox[2] - inkBox[0], inkBox[3] - inkBox[1]) + STROKE >= MIN_SPAN;
}

function showEmpty(message) {
  document.body.classList.add("blank");
  labelEl.textContent = "?";
  labelEl.classList.add("empty");
  confEl.textContent = message;
  runnerEl.textContent = "";
  renderBars(classes.map(() => 0), -1);
  seen.fillStyle = "#000";
  seen.fillRect(0, 0, 28, 28);
  unitsEl.replaceChildren();
}

function renderBars(probs, win) {
  if (barsEl.children.length !== probs.length) {
    barsEl.replaceChildren(...probs.map((_, i) => {
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.innerHTML = '<span class="pct"></span><div class="fill"></div><span class="cls"></span>';
      bar.querySelector(".cls").textContent = classes[i];
      return bar;
    }));
  }
  probs.forEach((p, i) => {
    const bar = barsEl.children[i];
    bar.classList.toggle("win", i === win);
    bar.querySelector(".fill").style.height = `${Math.max(0, p) * 82}%`;
    bar.querySelector(".pct").textContent = p >= 0.005 ? `${Math.round(p * 100)}%` : "";
  });
}

// A probability with the digits that tell it from its neighbours, from 0 and from 1: 45.3%,
// 99.98%, 0.018%, <0.01%, >99.99% (the rule of `handnet predict`, handnet.cli.common.percent).
function percent(p) {
  const pct = 100 * p;
  if (pct < 0.01) return "<0.01%";
  if (pct > 99.99) return ">99.99%";
  if (pct < 0.995) return `${Number(pct.toPrecision(2))}%`; // two significant digits
  return `${pct.toFixed(pct > 99 ? 2 : 1)}%`;
}

function renderInput(rows) {
  const img = seen.createImageData(28, 28);
  rows.flat().forEach((v, i) => {
    img.data.set([v, v, v, 255], 4 * i);
  });
  seen.putImageData(img, 0, 0);
}

// Weights in [-127, 127] -> red (excites) / blue (inhibits) on white.
function renderUnit(canvas, weights, side) {
  const c = canvas.getContext("2d");
  const img = c.createImageData(side, side);
  weights.forEach((w, i) => {
    const t = Math.min(1, Math.abs(w) / 127);
    const [r, g, b] = w >= 0 ? [214, 69, 61] : [47, 111, 219];
    img.data.set([255 + (r - 255) * t, 255 + (g - 255) * t, 255 + (b - 255) * t, 255], 4 * i);
  });
  c.putImageData(img, 0, 0);
}

function renderUnits(units, side) {
  unitsEl.replaceChildren(...(units || []).map((u) => {
    const box = document.createElement("div");
    box.className = "unit";
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = side;
    renderUnit(canvas, u.weights, side);
    const caption = document.createElement("div");
    caption.textContent = `#${u.unit} ${u.score >= 0 ? "+" : ""}${u.score.toFixed(2)}`;
    caption.title = `activation ${u.activation.toFixed(3)}, contribution ${u.score.toFixed(3)}`;
    box.append(canvas, caption);
    return box;
  }));
}

function render(res) {
  document.body.classList.remove("blank");
  const win = res.classes.indexOf(res.label);
  labelEl.textContent = res.label;
  labelEl.classList.remove("empty");
  confEl.textContent = `${percent(res.probability)} sure`;
  const rest = res.top.slice(1).map((t) => `${t.label} (${percent(t.probability)})`);
  runnerEl.textContent = rest.length ? `then ${rest.join(", ")}` : "";
  renderBars(res.probabilities, win);
  renderInput(res.input);
  renderUnits(res.hidden, res.input.length);
}

async function predict() {
  if (!hasInk) return;
  if (!enoughInk()) { showEmpty("draw a bit more"); return; }
  if (inFlight) { dirty = true; return; }
  inFlight = true; dirty = false;
  try {
    const resp = await fetch("/api/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image: pad.toDataURL("image/png"), top: 3, explain: true }),
    });
    const body = await resp.json();
    if (!hasInk) { /* cleared while waiting */ }
    else if (resp.ok) render(body);
    else showEmpty(resp.status === 422 ? "draw a bit more" : `error: ${body.detail}`);
  } catch (err) {
    confEl.textContent = `server unreachable (${err.message})`;
  } finally {
    inFlight = false;
    if (dirty) predict();
  }
}

let timer = null;
function schedule(delay) {
  clearTimeout(timer);
  timer = setTimeout(predict, delay);
}

function point(ev) {
  const r = pad.getBoundingClientRect();
  return [(ev.clientX - r.left) * pad.width / r.width, (ev.clientY - r.top) * pad.height / r.height];
}

function dot([x, y]) {
  ctx.beginPath();
  ctx.arc(x, y, STROKE / 2, 0, 2 * Math.PI);
  ctx.fill();
}

pad.addEventListener("pointerdown", (ev) => {
  ev.preventDefault();
  pad.setPointerCapture(ev.pointerId);
  drawing = true;
  hasInk = true;
  last = point(ev);
  addInk(last);
  ctx.fillStyle = "#111";
  dot(last);
});

pad.addEventListener("pointermove", (ev) => {
  if (!drawing) return;
  const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  ctx.strokeStyle = "#111";
  ctx.lineWidth = STROKE;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...last);
  for (const e of events.length ? events : [ev]) {
    last = point(e);
    addInk(last);
    ctx.lineTo(...last);
  }
  ctx.stroke();
  schedule(60); // live updates while drawing, at most one request in flight
});

function stop() {
  if (!drawing) return;
  drawing = false;
  schedule(0);
}
pad.addEventListener("pointerup", stop);
pad.addEventListener("pointercancel", stop);
document.getElementById("clear").addEventListener("click", clearPad);
document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") clearPad(); });

fetch("/api/model").then((r) => r.json()).then((m) => {
  classes = m.classes;
  const acc = m.test_accuracy != null ? ` · ${(m.test_accuracy * 100).toFixed(2)}% on the ${m.dataset} test set` : "";
  document.getElementById("model-info").textContent =
    `${m.network.replace(/^MLP\(\[|\]\)$/g, "").replace(/Dropout\([^)]*\), /g, "")} · ${m.parameters.toLocaleString("en")} parameters${acc}`;
  if (m.shape_normalization) {
    document.getElementById("shape-note").textContent =
      ` Then, as this model was trained: ${m.shape_normalization}.`;
  }
  if (m.tta_views) {
    document.getElementById("tta-note").textContent =
      `Averaged over your digit and ${m.tta_views} copies of it distorted as in training.`;
  }
  clearPad();
}).catch(() => { document.getElementById("model-info").textContent = "model info unavailable"; });

clearPad();
