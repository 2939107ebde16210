// edgegan phone demo: runs the bundle's generator in the page with onnxruntime-web (wasm, one
// thread: no COOP/COEP headers needed, and one thread was faster for these small models) and
// draws a grid of samples from new normal latents on every tap. Everything is loaded from the
// page's own origin (the edgegan server or the APK's assets): no network beyond it.
import * as ort from "./ort/ort.wasm.min.mjs";

const $ = (id) => document.getElementById(id);
const state = { config: null, session: null, format: null, busy: false, runs: 0 };
// read by the tests: the latents and outputs of the last grid, and the timings
window.edgeganDemo = state;

function gaussian() {
  // Box-Muller on crypto-quality uniforms
  const u = new Uint32Array(2);
  crypto.getRandomValues(u);
  const a = (u[0] + 1) / 4294967297, b = (u[1] + 1) / 4294967297;
  return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * b);
}

function latent(spec, n) {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = spec.distribution === "uniform" ? spec.low + (spec.high - spec.low) * Math.random() : gaussian();
  }
  return x;
}

const prod = (s) => s.reduce((a, b) => a * b, 1);

async function load(fmt) {
  const f = state.config.formats.find((x) => x.format === fmt);
  $("status").textContent = `loading ${f.label} model (${(f.bytes / 1e6).toFixed(2)} MB)…`;
  const t0 = performance.now();
  state.session = await ort.InferenceSession.create(f.url, { executionProviders: ["wasm"] });
  state.loadMs = performance.now() - t0;
  state.format = fmt;
  for (const b of $("formats").children) b.setAttribute("aria-pressed", String(b.dataset.format === fmt));
}

function draw(outputs) {
  const { config } = state;
  const [c, h, w] = config.output.shape;
  const g = config.grid;
  const [lo, hi] = config.output.range;
  const cv = $("grid");
  cv.width = g * w;
  cv.height = g * h;
  const ctx = cv.getContext("2d");
  const img = ctx.createImageData(g * w, g * h);
  outputs.forEach((y, k) => {
    const ox = (k % g) * w, oy = Math.floor(k / g) * h;
    for (let yy = 0; yy < h; yy++) {
      for (let xx = 0; xx < w; xx++) {
        const p = ((oy + yy) * g * w + ox + xx) * 4;
        for (let ch = 0; ch < 3; ch++) {
          const v = y[(c === 1 ? 0 : ch) * h * w + yy * w + xx];
          img.data[p + ch] = Math.max(0, Math.min(255, Math.round(((v - lo) / (hi - lo)) * 255)));
        }
        img.data[p + 3] = 255;
      }
    }
  });
  ctx.putImageData(img, 0, 0);
}

async function refresh() {
  if (state.busy || !state.session) return;
  state.busy = true;
  try {
    const { config, session } = state;
    const n = config.grid * config.grid;
    const shape = [1, ...config.input.shape];
    const latents = [], outputs = [], ms = [];
    for (let k = 0; k < n; k++) {
      const z = latent(config.input, prod(config.input.shape));
      const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", z, shape) };
      const t0 = performance.now();
      const out = await session.run(feeds);
      ms.push(performance.now() - t0);
      latents.push(Array.from(z));
      outputs.push(out[session.outputNames[0]].data);
    }
    draw(outputs);
    const sorted = [...ms].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    const f = config.formats.find((x) => x.format === state.format);
    state.latents = latents;
    state.timesMs = ms;
    state.runs += 1;
    $("status").innerHTML = `<b>${f.label}</b> (${f.format}) · ${median.toFixed(2)} ms per inference ` +
      `(median of ${n}, batch 1) · grid #${state.runs}`;
    document.body.dataset.runs = String(state.runs);
  } catch (e) {
    $("error").textContent = String(e && e.message ? e.message : e);
  } finally {
    state.busy = false;
  }
}

async function main() {
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = new URL("./ort/", document.baseURI).href;
  const config = await (await fetch("config.json")).json();
  state.config = config;
  $("title").textContent = `edgegan · ${config.model}`;
  document.title = `edgegan · ${config.model}`;
  for (const f of config.formats) {
    const b = document.createElement("button");
    b.textContent = f.label;
    b.dataset.format = f.format;
    b.onclick = async () => { if (!state.busy && f.format !== state.format) { await load(f.format); await refresh(); } };
    $("formats").appendChild(b);
  }
  $("grid").addEventListener("click", refresh);
  await load(config.default);
  await refresh();
}

main().catch((e) => { $("error").textContent = String(e && e.message ? e.message : e); });
