// Prints (never asserts) how glassbox opens real-sized HuggingFace models in headless Chromium, per backend:
// load time, the page's WebAssembly memory after the load (its peak: wasm memory never shrinks), and forward +
// capture time at 16, 128 and 512 tokens. The models are made here from their configs (random weights of the
// right shapes, seeded), never committed: all-MiniLM-L6-v2's shape (BERT, 6 layers, width 384, 22.7 M parameters,
// 91 MB) and GPT-2 small's (12 layers, width 768, 124 M parameters, 498 MB in f32 with its head tied).
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKENDS, CHROMIUM, launch, onBackend, waitForApp, watchProblems } from '../tests/browser/browser.mjs';
import { serve } from '../tests/browser/serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const MODELS = path.join(REPO, 'target/bench-models');
const OUT = path.join(REPO, 'target/bench-hf.json');
const FIXTURES = path.join(REPO, 'tests/fixtures/hf');
const LENGTHS = (process.env.GLASSBOX_BENCH_LENGTHS ?? '128,512,1024').split(',').map(Number);
const STEP_TIMEOUT_MS = Number(process.env.GLASSBOX_BENCH_STEP_MS ?? 900_000);
const MB = 1024 * 1024;

/** The tensors of a BERT encoder (MiniLM's layout: no prefix, a pooler) of `config`. */
function bertTensors(c) {
  const d = c.hidden_size;
  const tensors = [['embeddings.word_embeddings.weight', [c.vocab_size, d]],
    ['embeddings.position_embeddings.weight', [c.max_position_embeddings, d]],
    ['embeddings.token_type_embeddings.weight', [c.type_vocab_size, d]],
    ['embeddings.LayerNorm.weight', [d]], ['embeddings.LayerNorm.bias', [d]]];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `encoder.layer.${l}`;
    for (const part of ['query', 'key', 'value']) {
      tensors.push([`${p}.attention.self.${part}.weight`, [d, d]], [`${p}.attention.self.${part}.bias`, [d]]);
    }
    tensors.push([`${p}.attention.output.dense.weight`, [d, d]], [`${p}.attention.output.dense.bias`, [d]],
      [`${p}.attention.output.LayerNorm.weight`, [d]], [`${p}.attention.output.LayerNorm.bias`, [d]],
      [`${p}.intermediate.dense.weight`, [c.intermediate_size, d]], [`${p}.intermediate.dense.bias`, [c.intermediate_size]],
      [`${p}.output.dense.weight`, [d, c.intermediate_size]], [`${p}.output.dense.bias`, [d]],
      [`${p}.output.LayerNorm.weight`, [d]], [`${p}.output.LayerNorm.bias`, [d]]);
  }
  tensors.push(['pooler.dense.weight', [d, d]], ['pooler.dense.bias', [d]]);
  return tensors;
}

/** The tensors of a GPT2LMHeadModel of `config` (`transformer.` prefix, `lm_head` tied and left out). */
function gpt2Tensors(c) {
  const d = c.n_embd;
  const tensors = [['transformer.wte.weight', [c.vocab_size, d]], ['transformer.wpe.weight', [c.n_positions, d]]];
  for (let l = 0; l < c.n_layer; l++) {
    const p = `transformer.h.${l}`;
    tensors.push([`${p}.ln_1.weight`, [d]], [`${p}.ln_1.bias`, [d]],
      [`${p}.attn.c_attn.weight`, [d, 3 * d]], [`${p}.attn.c_attn.bias`, [3 * d]],
      [`${p}.attn.c_proj.weight`, [d, d]], [`${p}.attn.c_proj.bias`, [d]],
      [`${p}.ln_2.weight`, [d]], [`${p}.ln_2.bias`, [d]],
      [`${p}.mlp.c_fc.weight`, [d, 4 * d]], [`${p}.mlp.c_fc.bias`, [4 * d]],
      [`${p}.mlp.c_proj.weight`, [4 * d, d]], [`${p}.mlp.c_proj.bias`, [d]]);
  }
  tensors.push(['transformer.ln_f.weight', [d]], ['transformer.ln_f.bias', [d]]);
  return tensors;
}

const MODEL_SPECS = {
  // The seed chapter's preset, built in the page (no file); its positions stop at 512.
  seed: { preset: true, text: (tokens) => Array(tokens).fill('the').join(' ') },
  'minilm-sized': {
    config: { model_type: 'bert', architectures: ['BertModel'], vocab_size: 30522, hidden_size: 384, num_hidden_layers: 6,
      num_attention_heads: 12, intermediate_size: 1536, max_position_embeddings: 512, type_vocab_size: 2,
      hidden_act: 'gelu', layer_norm_eps: 1e-12 },
    tensors: bertTensors,
    tokenizer: 'bert-mlm',
    // [CLS] a a … [SEP]: every `a` is one token.
    text: (tokens) => Array(tokens - 2).fill('a').join(' '),
  },
  'bert-base-sized': {
    config: { model_type: 'bert', architectures: ['BertModel'], vocab_size: 30522, hidden_size: 768, num_hidden_layers: 12,
      num_attention_heads: 12, intermediate_size: 3072, max_position_embeddings: 512, type_vocab_size: 2,
      hidden_act: 'gelu', layer_norm_eps: 1e-12 },
    tensors: bertTensors,
    tokenizer: 'bert-mlm',
    text: (tokens) => Array(tokens - 2).fill('a').join(' '),
  },
  'gpt2-small-sized': {
    config: { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 50257, n_embd: 768, n_layer: 12, n_head: 12,
      n_inner: null, n_positions: 1024, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5 },
    tensors: gpt2Tensors,
    tokenizer: 'gpt2',
    // `a`, then ` a` (one token, `Ġa`) for each further token.
    text: (tokens) => Array(tokens).fill('a').join(' '),
  },
};

/** Writes `folder/model.safetensors` (seeded uniform values in ±0.02, F32), config.json and a fixture's tokenizer. */
async function makeModel(name, spec) {
  const folder = path.join(MODELS, name);
  const weights = path.join(folder, 'model.safetensors');
  const tensors = spec.tensors(spec.config);
  const header = {};
  let offset = 0;
  for (const [tensor, shape] of tensors) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[tensor] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  await mkdir(folder, { recursive: true });
  const existing = await stat(weights).catch(() => null);
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const total = 8 + json.length + offset;
  if (existing?.size !== total) {
    const out = createWriteStream(weights);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    out.write(length);
    out.write(json);
    let state = 0x9e3779b9;
    const chunk = new Float32Array(4 * MB);
    for (let left = offset / 4; left > 0; left -= chunk.length) {
      const count = Math.min(left, chunk.length);
      for (let i = 0; i < count; i++) {
        state ^= state << 13; state ^= state >>> 17; state ^= state << 5; // xorshift32
        chunk[i] = ((state >>> 0) / 4294967296 - 0.5) * 0.04;
      }
      const bytes = Buffer.from(chunk.buffer, 0, 4 * count);
      if (!out.write(Buffer.from(bytes))) await new Promise((resolve) => out.once('drain', resolve));
    }
    await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
  }
  await writeFile(path.join(folder, 'config.json'), JSON.stringify(spec.config, null, 2));
  await copyFile(path.join(FIXTURES, spec.tokenizer, 'tokenizer.json'), path.join(folder, 'tokenizer.json'));
  return { folder, bytes: total, parameters: offset / 4 };
}

/** The `p`-th percentile (0..1) of `values`, by the nearest rank. */
function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/**
 * What the views cost on the run shown, timed in the page from the change to the redraw it causes
 * (`#app[data-draws]`): every layer switched to twice (the host keeps 8 maps, so each switch
 * reads one back), with the bytes each read moved; pin changes, which redraw without reading;
 * and hovers, from the pointer event to the tooltip's new text.
 */
async function viewMetrics(page) {
  const raw = await page.evaluate(async () => {
    const app = document.querySelector('#app');
    // Polls every turn of the event loop (a MessageChannel message, not clamped like timers).
    const channel = new MessageChannel();
    const turn = () => new Promise((resolve) => { channel.port1.onmessage = resolve; channel.port2.postMessage(0); });
    const until = async (done, what = 'a redraw') => {
      const started = performance.now();
      while (!done()) {
        if (performance.now() - started > 600_000) throw new Error(`no ${what} within 10 minutes`);
        await turn();
      }
    };
    const timed = async (change) => {
      const before = Number(app.dataset.draws);
      const started = performance.now();
      change();
      await until(() => Number(app.dataset.draws) > before);
      return performance.now() - started;
    };
    const choose = (id, value) => () => {
      const select = document.querySelector(id);
      select.value = value;
      select.dispatchEvent(new Event('change', { bubbles: true }));
    };
    if (document.querySelector('#view').value !== 'heatmap') await timed(choose('#view', 'heatmap'));
    if (document.querySelector('#head').value !== '0') await timed(choose('#head', '0'));
    const layers = document.querySelector('#layer').options.length;
    const first = Number(document.querySelector('#layer').value);
    const switches = [];
    const bytes = [];
    for (let i = 1; i <= 2 * layers; i++) {
      switches.push(await timed(choose('#layer', String((first + i) % layers))));
      bytes.push(Number(app.dataset.readBytes));
    }
    const redraws = [];
    for (let i = 0; i < 12; i++) redraws.push(await timed(choose('#pin', String(i % 4))));
    const canvas = document.querySelector('#heatmap');
    const tooltip = document.querySelector('#tooltip');
    const [x, y, w, h] = canvas.dataset.plot.split(' ').map(Number);
    const rect = canvas.getBoundingClientRect();
    const scale = rect.width / canvas.width;
    const hovers = [];
    for (let i = 0; i < 12; i++) {
      const before = tooltip.textContent;
      const event = new MouseEvent('mousemove', {
        bubbles: true,
        clientX: rect.left + (x + (0.05 + 0.9 * ((i * 0.37) % 1)) * w) * scale,
        clientY: rect.top + (y + (0.05 + 0.9 * ((i * 0.61) % 1)) * h) * scale,
      });
      const started = performance.now();
      canvas.dispatchEvent(event);
      await until(() => tooltip.textContent !== before, 'tooltip');
      hovers.push(performance.now() - started);
    }
    return { switches, bytes, redraws, hovers };
  });
  const summary = (values) => ({ median_ms: percentile(values, 0.5), p95_ms: percentile(values, 0.95) });
  return {
    layer_switch: summary(raw.switches),
    bytes_per_switch: { median: percentile(raw.bytes, 0.5), max: Math.max(...raw.bytes) },
    heatmap_redraw: summary(raw.redraws),
    hover: summary(raw.hovers),
  };
}

async function measure(browser, url, backend, name, spec, model, problems) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  watchProblems(page, problems, () => name);
  try {
    await page.goto(`${url}${onBackend('?model=seed', backend)}`);
    await waitForApp(page, { runs: 1 });
    const before = await page.$eval('#app', (app) => ({ models: Number(app.dataset.models), wasm: Number(app.dataset.wasmBytes) }));
    const started = performance.now();
    if (spec.preset) before.models -= 1;
    else await page.setInputFiles('#open-folder', model.folder);
    await page.waitForFunction((models) => Number(document.querySelector('#app').dataset.models) > models
      || document.querySelector('#load-error')?.checkVisibility(), before.models, { timeout: STEP_TIMEOUT_MS, polling: 100 });
    const load_ms = performance.now() - started;
    const loadError = await page.$eval('#load-error', (e) => (e.checkVisibility() ? e.textContent : null));
    if (loadError) return { error: loadError };
    await waitForApp(page, {}, STEP_TIMEOUT_MS);
    const after = await page.$eval('#app', (app) => Number(app.dataset.wasmBytes));
    const provenance = await page.textContent('#provenance');
    const runs = {};
    for (const tokens of LENGTHS) {
      const count = Number(await page.$eval('#app', (app) => app.dataset.runs));
      await page.fill('#text', spec.text(tokens));
      try {
        await waitForApp(page, { runs: count + 1 }, STEP_TIMEOUT_MS);
      } catch (error) {
        runs[tokens] = { error: error.message.split('\n')[0] };
        break;
      }
      console.error(`  ${name}: ${tokens} tokens ran`);
      const shown = (await page.$$('#pin option')).length - 1;
      runs[tokens] = {
        tokens: shown,
        forward_capture_ms: Number(await page.getAttribute('#forward', 'data-ms')),
        trace_bytes_on_device: Number(await page.$eval('#app', (app) => app.dataset.traceBytes)),
        views: await viewMetrics(page),
        wasm_bytes: Number(await page.$eval('#app', (app) => app.dataset.wasmBytes)),
        // The head's top-5 at each position, to compare the backends' numbers.
        top5: await page.$$eval('#predictions tr[data-position]', (rows) => rows.map((row) => [...row.querySelectorAll('.prediction')].map((s) => Number(s.dataset.id)))),
      };
    }
    const limits = await page.evaluate(async () => {
      const adapter = await navigator.gpu?.requestAdapter();
      return adapter ? { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize } : null;
    });
    return { load_ms, wasm_bytes_before: before.wasm, wasm_bytes_after_load: after, provenance, adapter_limits: limits, runs };
  } finally {
    await page.close();
  }
}

const server = await serve(DIST);
const results = {};
try {
  const models = {};
  const only = process.env.GLASSBOX_BENCH_MODELS?.split(',');
  for (const name of Object.keys(MODEL_SPECS)) if (only && !only.includes(name)) delete MODEL_SPECS[name];
  for (const [name, spec] of Object.entries(MODEL_SPECS)) {
    if (spec.preset) continue;
    const started = performance.now();
    models[name] = await makeModel(name, spec);
    console.log(`${name}: ${(models[name].bytes / MB).toFixed(1)} MB, ${models[name].parameters} parameters (made in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
  const chosen = (process.env.GLASSBOX_BENCH_BACKENDS ?? Object.keys(BACKENDS).join(',')).split(',');
  for (const backend of Object.keys(BACKENDS).filter((b) => chosen.includes(b))) {
    const browser = await launch(backend);
    const problems = [];
    results[backend] = {};
    try {
      for (const [name, spec] of Object.entries(MODEL_SPECS)) {
        results[backend][name] = await measure(browser, server.url, backend, name, spec, models[name], problems)
          .catch((error) => ({ error: error.message.split('\n')[0] }));
        console.log(backend, name, JSON.stringify(results[backend][name]));
      }
    } finally {
      results[backend].problems = problems;
      await browser.close();
    }
  }
} finally {
  await server.close();
}
await writeFile(OUT, `${JSON.stringify({ date: new Date().toISOString(), chromium: CHROMIUM, results }, null, 2)}\n`);

console.log('\nHuggingFace-sized models in headless Chromium (its WebGPU is SwiftShader: software)');
for (const [backend, byModel] of Object.entries(results)) {
  for (const [name, r] of Object.entries(byModel)) {
    if (name === 'problems') continue;
    if (r.error) { console.log(`  ${backend} ${name}: ${r.error}`); continue; }
    const lengths = Object.entries(r.runs).map(([n, run]) => (run.error ? `${n}: ${run.error}` : `${run.tokens} tokens ${run.forward_capture_ms.toFixed(0)} ms`)).join(', ');
    console.log(`  ${backend} ${name}: load ${(r.load_ms / 1000).toFixed(1)} s, wasm memory ${(r.wasm_bytes_before / MB).toFixed(0)} → ${(r.wasm_bytes_after_load / MB).toFixed(0)} MB after the load; forward + capture: ${lengths}`);
  }
  for (const problem of byModel.problems ?? []) console.log(`    problem: ${problem}`);
}
console.log('\nViews (median / p95 ms; bytes read back per layer switch):');
for (const [backend, byModel] of Object.entries(results)) {
  for (const [name, r] of Object.entries(byModel)) {
    if (name === 'problems' || r.error) continue;
    for (const run of Object.values(r.runs)) {
      if (run.error || !run.views) continue;
      const v = run.views;
      const f = (m) => `${m.median_ms.toFixed(1)} / ${m.p95_ms.toFixed(1)}`;
      console.log(`  | ${backend} | ${name} | ${run.tokens} | ${run.forward_capture_ms.toFixed(0)} | ${f(v.layer_switch)} | ${(v.bytes_per_switch.max / MB).toFixed(2)} MiB | ${f(v.heatmap_redraw)} | ${f(v.hover)} | ${(run.wasm_bytes / MB).toFixed(0)} MiB |`);
    }
  }
}
// The same model on both backends must predict the same tokens.
for (const name of Object.keys(MODEL_SPECS)) {
  const [a, b] = ['webgpu', 'cpu'].map((backend) => results[backend]?.[name]?.runs);
  if (!a || !b) continue;
  for (const tokens of LENGTHS) {
    const [x, y] = [a[tokens]?.top5, b[tokens]?.top5];
    if (x?.length) console.log(`  ${name} at ${tokens} tokens: WebGPU and CPU top-5 ${JSON.stringify(x) === JSON.stringify(y) ? 'agree at every position' : 'DIFFER'}`);
  }
}
console.log(`\nfull results: ${path.relative(process.cwd(), OUT)}`);
