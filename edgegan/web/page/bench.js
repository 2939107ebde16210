// edgegan browser runner: load one artifact with an in-browser runtime, time warm-up + N runs,
// run every stored input once, POST the per-run times and the outputs (raw float32) back.
// Everything it loads comes from the edgegan process that served it (no CDN, no network).
const started = performance.now();  // ms since navigation start: page load up to this script
const $ = (id) => document.getElementById(id);
const say = (t) => { $('status').textContent = t; };
const note = (t) => { $('log').textContent += t + '\n'; };
// the wasm runtimes print why they refuse a model on the console (e.g. TFLite's "Didn't find op
// for builtin opcode ... version ..."): keep those lines for the error report
const runtimeErrors = [];
for (const level of ['warn', 'error']) {
  const orig = console[level].bind(console);
  console[level] = (...a) => {
    const text = a.map(String).join(' ');
    if (/ERROR|error:/.test(text) && runtimeErrors.length < 5) runtimeErrors.push(text.slice(0, 300));
    orig(...a);
  };
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function post(url, body, type) {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': type }, body });
  if (!r.ok) throw new Error(`POST ${url}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.appendChild(s);
  });
}

// one loader per in-browser runtime: (config, model bytes, threads) -> {version, run(x) -> {data, dims}}
const RUNTIMES = {
  'onnxruntime-web': async (cfg, bytes, threads) => {
    const base = cfg.runtime_base + 'onnxruntime-web/dist/';
    const ort = await import(base + 'ort.wasm.min.mjs');
    ort.env.wasm.wasmPaths = base;
    ort.env.wasm.numThreads = threads;
    ort.env.logLevel = 'error';
    const sess = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    const inName = sess.inputNames[0], outName = sess.outputNames[0];
    return {
      version: (ort.env.versions && ort.env.versions.web) || '',
      run: async (x) => {
        const out = (await sess.run({ [inName]: new ort.Tensor('float32', x, cfg.input_shape) }))[outName];
        if (out.type !== 'float32') throw new Error(`output is ${out.type}, not float32`);
        return { data: out.data, dims: Array.from(out.dims) };
      },
    };
  },
  'tflite-web': async (cfg, bytes, threads) => {
    const base = cfg.runtime_base + '@tensorflow/';
    await loadScript(base + 'tfjs-core/dist/tf-core.min.js');
    await loadScript(base + 'tfjs-backend-cpu/dist/tf-backend-cpu.min.js');
    await loadScript(base + 'tfjs-tflite/dist/tf-tflite.min.js');
    await tf.setBackend('cpu');
    tflite.setWasmPath(base + 'tfjs-tflite/wasm/');
    const model = await tflite.loadTFLiteModel(bytes.buffer, { numThreads: threads });
    for (const [what, infos] of [['input', model.inputs], ['output', model.outputs]]) {
      if (infos.length !== 1 || infos[0].dtype !== 'float32') {
        throw new Error(`tfjs-tflite: the model's ${what} is ${infos.map((i) => i.dtype).join(',')}; ` +
                        'the browser runner feeds and reads one float32 tensor (export without --int8-io)');
      }
    }
    return {
      version: (tflite.version_tflite || '') + ` (tfjs-core ${tf.version_core || tf.version && tf.version['tfjs-core'] || ''})`,
      run: async (x) => {
        const t = tf.tensor(x, cfg.input_shape, 'float32');
        const y = model.predict(t);
        const out = { data: y.dataSync(), dims: y.shape.slice() };
        t.dispose();
        y.dispose();
        return out;
      },
    };
  },
};

async function main() {
  const cfg = await (await fetch('config.json')).json();
  const isolated = self.crossOriginIsolated === true;
  // threads need SharedArrayBuffer, i.e. a cross-origin isolated page (COOP/COEP headers)
  const threads = isolated ? cfg.threads : 1;
  note(`${cfg.runtime}, ${cfg.format}, ${threads} thread(s), cross-origin isolated: ${isolated}`);
  const loader = RUNTIMES[cfg.runtime];
  if (!loader) throw new Error(`no loader for runtime ${cfg.runtime}`);
  say('loading the model ...');
  const t0 = performance.now();
  const bytes = await fetchBytes(cfg.artifact);
  const fetchMs = performance.now() - t0;
  const model = await loader(cfg, bytes, threads);
  const loadMs = performance.now() - t0;
  const inputs = new Float32Array((await fetchBytes(cfg.inputs)).buffer);
  const per = cfg.input_shape.reduce((a, b) => a * b, 1);
  if (inputs.length !== per * cfg.count) throw new Error(`inputs: ${inputs.length} values, expected ${per * cfg.count}`);
  const x0 = inputs.subarray(0, per);
  say('warming up ...');
  let t = performance.now();
  await model.run(x0);
  const firstMs = performance.now() - t;
  for (let i = 0; i < cfg.warmup; i++) await model.run(x0);
  say(`timing ${cfg.runs} runs ...`);
  const times = [];
  for (let i = 0; i < cfg.runs; i++) {
    t = performance.now();
    await model.run(x0);
    times.push(performance.now() - t);
  }
  say('running every stored input ...');
  let samples = null, dims = null;
  for (let i = 0; i < cfg.count; i++) {
    const y = await model.run(inputs.slice(i * per, (i + 1) * per));
    if (samples === null) {
      dims = y.dims;
      samples = new Float32Array(y.data.length * cfg.count);
    }
    samples.set(y.data, i * y.data.length);
  }
  say('posting results ...');
  await post(cfg.post.samples, samples.buffer, 'application/octet-stream');
  await post(cfg.post.result, JSON.stringify({
    token: cfg.token, runtime: cfg.runtime, version: model.version, format: cfg.format, threads,
    cross_origin_isolated: isolated, user_agent: navigator.userAgent,
    hardware_concurrency: navigator.hardwareConcurrency || null,
    page_ms: started, model_fetch_ms: fetchMs, model_load_ms: loadMs, first_inference_ms: firstMs,
    warmup: cfg.warmup, times_ms: times, output_dims: dims,
  }), 'application/json');
  say('done');
  document.title = 'edgegan: done';
}

main().catch(async (err) => {
  const why = runtimeErrors.filter((t) => !/Registration failed/.test(t)).slice(0, 2).join(' | ');
  const message = String((err && err.message) || err) + (why ? ` (runtime: ${why})` : '');
  say('failed: ' + message);
  document.title = 'edgegan: failed';
  try {
    const cfg = await (await fetch('config.json')).json();
    await post(cfg.post.error, JSON.stringify({ token: cfg.token, message }), 'application/json');
  } catch (e) { /* the host's timeout reports it */ }
});
