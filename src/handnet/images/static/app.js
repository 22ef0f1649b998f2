// The draw-a-digit-or-a-number page: pointer drawing (mouse, touch, pen), live predictions from
// POST /api/predict, a bar chart, the preprocessed input and the strongest hidden units. For a
// number (several digits found), the label shows the number, each digit is framed on the pad,
// each digit's input is shown, and the bars are those of the least sure digit.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const boxes = document.getElementById("boxes"); // the digits' frames, over the pad
const boxCtx = boxes.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const seenDigitsEl = document.getElementById("seen-digits");
const labelEl = document.getElementById("label");
const confEl = document.getElementById("confidence");
const runnerEl = document.getElementById("runner-up");
const barsEl = document.getElementById("bars");
const barsNoteEl = document.getElementById("bars-note");
const unitsEl = document.getElementById("units");

// Pen width: 24 px on a 280 px tall pad, MNIST-like strokes (about 1/8 of a digit drawn the pad's
// height) after scaling; the pad is twice as wide as tall, for a number.
const STROKE = pad.height * 24 / 280;
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

// Nothing from an earlier answer is left: label, texts, bars, inputs, units and frames.
function showEmpty(message) {
  document.body.classList.add("blank");
  document.body.classList.remove("several");
  labelEl.textContent = "?";
  labelEl.classList.add("empty");
  labelEl.classList.remove("number", "long");
  confEl.textContent = message;
  runnerEl.textContent = "";
  barsNoteEl.textContent = "";
  renderBars(classes.map(() => 0), -1);
  seen.fillStyle = "#000";
  seen.fillRect(0, 0, 28, 28);
  seenDigitsEl.replaceChildren();
  unitsEl.replaceChildren();
  drawBoxes([]);
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

function renderInput(rows, target = seen) {
  const img = target.createImageData(rows.length, rows.length);
  rows.flat().forEach((v, i) => {
    img.data.set([v, v, v, 255], 4 * i);
  });
  target.putImageData(img, 0, 0);
}

// A number: one input per digit, left to right, each with its label and confidence under it.
function renderDigitInputs(digits) {
  seenDigitsEl.replaceChildren(...digits.map((d, i) => {
    const fig = document.createElement("figure");
    fig.className = "seen-digit";
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = d.input.length;
    canvas.setAttribute("aria-label", `the ${ordinal(i + 1)} digit's input`);
    renderInput(d.input, canvas.getContext("2d"));
    const caption = document.createElement("figcaption");
    caption.innerHTML = "<b></b> <span></span>";
    caption.firstChild.textContent = d.label;
    caption.lastChild.textContent = percent(d.probability);
    fig.append(canvas, caption);
    return fig;
  }));
}

// Each digit's box, [left, top, right, bottom] in the pad's pixels, framed with its label.
function drawBoxes(digits) {
  boxCtx.clearRect(0, 0, boxes.width, boxes.height);
  boxes.dataset.count = digits.length;
  if (digits.length < 2) return; // one digit: the pad looks as it did before numbers
  const m = STROKE / 4, tag = Math.round(STROKE * 0.9);
  boxCtx.font = `600 ${tag - 4}px system-ui, sans-serif`;
  boxCtx.textBaseline = "middle";
  for (const d of digits) {
    const [l, t, r, b] = d.box;
    const x = Math.max(1, l - m), y = Math.max(1, t - m);
    const w = Math.min(boxes.width - 1, r + m) - x, h = Math.min(boxes.height - 1, b + m) - y;
    boxCtx.strokeStyle = "rgba(79, 70, 229, 0.85)";
    boxCtx.lineWidth = 2;
    boxCtx.setLineDash([6, 4]);
    boxCtx.strokeRect(x, y, w, h);
    boxCtx.setLineDash([]);
    const tw = boxCtx.measureText(d.label).width + 10;
    const ty = y >= tag ? y - tag : y; // above the frame, or inside it at the pad's top
    boxCtx.fillStyle = "rgba(79, 70, 229, 0.9)";
    boxCtx.fillRect(x, ty, tw, tag);
    boxCtx.fillStyle = "#fff";
    boxCtx.fillText(d.label, x + 5, ty + tag / 2 + 1);
  }
}

function ordinal(n) {
  const s = n % 100 >= 11 && n % 100 <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] || "th";
  return `${n}${s}`;
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
  if (res.digits.length > 1) { renderNumber(res); return; }
  document.body.classList.remove("blank", "several");
  const win = res.classes.indexOf(res.label);
  labelEl.textContent = res.label;
  labelEl.classList.remove("empty", "number", "long");
  confEl.textContent = `${percent(res.probability)} sure`;
  const rest = res.top.slice(1).map((t) => `${t.label} (${percent(t.probability)})`);
  runnerEl.textContent = rest.length ? `then ${rest.join(", ")}` : "";
  barsNoteEl.textContent = "";
  renderBars(res.probabilities, win);
  renderInput(res.input);
  seenDigitsEl.replaceChildren();
  renderUnits(res.hidden, res.input.length);
  drawBoxes(res.digits);
}

// Several digits: the number, the least sure digit's confidence and bars, every digit's input.
function renderNumber(res) {
  document.body.classList.remove("blank");
  document.body.classList.add("several");
  const digits = res.digits;
  const least = digits.reduce((k, d, i) => (d.probability < digits[k].probability ? i : k), 0);
  const weakest = digits[least];
  labelEl.textContent = res.number;
  labelEl.classList.remove("empty");
  labelEl.classList.add("number");
  labelEl.classList.toggle("long", res.number.length > 3);
  confEl.textContent = `least sure: ${weakest.label} (${ordinal(least + 1)}), ${percent(weakest.probability)}`;
  runnerEl.textContent = `each digit: ${digits.map((d) => `${d.label} (${percent(d.probability)})`).join(", ")}`;
  barsNoteEl.textContent = `The bars: the ${ordinal(least + 1)} digit, the least sure.`;
  renderBars(weakest.probabilities, res.classes.indexOf(weakest.label));
  renderDigitInputs(digits);
  unitsEl.replaceChildren(); // shown for a single digit only
  drawBoxes(digits);
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
      `Each digit's answer is averaged over it and ${m.tta_views} copies of it distorted as in training.`;
  }
  clearPad();
}).catch(() => { document.getElementById("model-info").textContent = "model info unavailable"; });

clearPad();
