// Prints (never asserts) glassbox's wasm size, navigation-to-first-heatmap time and what came down before it,
// the page's own ?bench=1 numbers, the main thread's longest task (training, a 512-token run) and training
// speed in the page (steps/s for tiny and seed, seconds until 99% on reverse) per backend.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { BACKENDS, CHROMIUM, LOAD_TIMEOUT_MS, launch, onBackend, waitForApp, watchProblems } from '../tests/browser/browser.mjs';
import { serve } from '../tests/browser/serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const OUT = path.join(REPO, 'target/bench.json');
const MB = 1024 * 1024;

async function wasmSizes() {
  const names = (await readdir(DIST)).filter((name) => name.endsWith('.wasm'));
  return Promise.all(names.map(async (name) => {
    const bytes = await readFile(path.join(DIST, name));
    return { file: name, raw_bytes: bytes.length, gzip9_bytes: gzipSync(bytes, { level: 9 }).length };
  }));
}

/** Each file of dist/ by its path, with its size gzipped (-9), as a static host would send it. */
async function gzippedSizes() {
  const sizes = new Map();
  const walk = async (folder, prefix) => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory()) await walk(file, `${prefix}${entry.name}/`);
      else sizes.set(`${prefix}${entry.name}`, gzipSync(await readFile(file), { level: 9 }).length);
    }
  };
  await walk(DIST, '');
  return sizes;
}

/**
 * Milliseconds from the start of `page.goto` until the first heatmap is drawn (the opening trace
 * shipped with the page, or the model's own first run if that came first), and until the model's
 * own first run is drawn, in a fresh context (no cache, no service worker); and what came down
 * before the first heatmap: every request the page and its workers made, the bytes on the wire
 * (this server does not compress) and the same files gzipped, with the files fetched more than
 * once.
 */
async function firstHeatmap(browser, at, problems, gzipped) {
  const context = await browser.newContext();
  const page = await context.newPage();
  watchProblems(page, problems, () => 'first heatmap');
  const loads = [];
  let drawn = false;
  context.on('requestfinished', async (request) => {
    const when = drawn ? 'after' : 'before';
    const sizes = await request.sizes().catch(() => undefined);
    const file = decodeURIComponent(new URL(request.url()).pathname.replace(/^\//, '')) || 'index.html';
    loads.push({ when, file, wire: (sizes?.responseBodySize ?? 0) + (sizes?.responseHeadersSize ?? 0) });
  });
  try {
    const started = performance.now();
    await page.goto(at(''), { waitUntil: 'commit' });
    const from = await page.waitForFunction(() => {
      const app = document.querySelector('#app');
      if (app?.dataset.shipped === 'drawn') return 'shipped trace';
      return Number(app?.dataset.draws) >= 1 && 'live run';
    }, null, { polling: 'raf', timeout: LOAD_TIMEOUT_MS }).then((handle) => handle.jsonValue());
    const ms = performance.now() - started;
    drawn = true;
    await waitForApp(page, { runs: 1, draws: 1 });
    const liveMs = performance.now() - started;
    const before = loads.filter((load) => load.when === 'before');
    const counts = new Map();
    for (const { file, wire } of before) if (wire > 1024) counts.set(file, (counts.get(file) ?? 0) + 1);
    return {
      first_heatmap_ms: ms,
      first_heatmap_from: from,
      first_live_heatmap_ms: liveMs,
      first_load_requests: before.length,
      first_load_wire_mb: before.reduce((sum, load) => sum + load.wire, 0) / MB,
      first_load_gzip_mb: before.reduce((sum, load) => sum + (load.wire > 1024 ? gzipped.get(load.file) ?? load.wire : load.wire), 0) / MB,
      first_load_repeated: [...counts].filter(([, count]) => count > 1).map(([file, count]) => `${file} ×${count}`),
    };
  } finally {
    await context.close();
  }
}

/**
 * Records every long task (over 50 ms) of the main thread in `window.__longTasks`, from the
 * page's start; `longestTask` reads the longest one since a time of the page's clock.
 */
const watchLongTasks = () => {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__longTasks.push([entry.startTime, entry.duration]);
  }).observe({ type: 'longtask', buffered: true });
};
const pageNow = (page) => page.evaluate(() => performance.now());
const longestTask = (page, since) => page.evaluate((since) => Math.max(0, ...window.__longTasks
  .filter(([start]) => start >= since).map(([, duration]) => duration)), since);

/** The JSON the page writes into `#bench-output` under `?bench=1`, or why there is none. */
async function pageBench(browser, at, problems) {
  const page = await browser.newPage();
  watchProblems(page, problems, () => '?bench=1');
  try {
    await page.goto(at('?bench=1'));
    // A page without the benchmark has no #bench-output once it is ready.
    const outcome = await page.waitForFunction(() => {
      const app = document.querySelector('#app');
      const output = document.querySelector('#bench-output');
      if (output?.textContent.trim()) return 'done';
      if (app?.dataset.state === 'error') return 'error';
      return !output && app?.dataset.state === 'ready' && Number(app.dataset.draws) >= 1 && 'absent';
    }, null, { timeout: 2 * LOAD_TIMEOUT_MS, polling: 200 }).then((handle) => handle.jsonValue());
    if (outcome === 'error') return { unavailable: `the page shows an error: ${await page.textContent('#error')}` };
    if (outcome === 'absent') return { unavailable: 'the page has no #bench-output' };
    return JSON.parse(await page.textContent('#bench-output'));
  } finally {
    await page.close();
  }
}

/** How long to let the page train towards 99% before giving up (software WebGPU is slow). */
const TRAIN_BUDGET_MS = Number(process.env.GLASSBOX_TRAIN_BUDGET_MS ?? 240_000);

/** Trains in the page's training tab with `settings` ({ selector: value }) and returns the exported history. */
async function trainInPage(page, settings, { until } = {}) {
  await page.click('#train-reset');
  for (const [selector, value] of Object.entries(settings)) {
    if ((await page.$eval(selector, (e) => e.tagName)) === 'SELECT') await page.selectOption(selector, value);
    else {
      await page.fill(selector, value);
      await page.dispatchEvent(selector, 'change');
    }
  }
  const since = await pageNow(page);
  await page.click('#train-start');
  const reached = await page.waitForFunction((until) => {
    const section = document.querySelector('#training');
    if (section.dataset.phase === 'done') return 'done';
    if (!document.querySelector('#train-message').hidden) return 'stopped';
    return until !== undefined && Number(section.dataset.valAccuracy) >= until && 'reached';
  }, until, { timeout: TRAIN_BUDGET_MS + 60_000, polling: 200 }).then((h) => h.jsonValue()).catch(() => 'timeout');
  if (reached !== 'done') {
    await page.click('#train-pause');
    // A step in flight finishes first; on software WebGPU one step of `seed` takes minutes.
    await page.waitForFunction(() => document.querySelector('#training').dataset.phase !== 'running', null, { timeout: TRAIN_BUDGET_MS });
  }
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
  const file = path.join(REPO, 'target', `bench-history-${Date.now()}.json`);
  await download.saveAs(file);
  return { reached, history: JSON.parse(await readFile(file, 'utf8')), longest_task_ms: await longestTask(page, since) };
}

/** Steps per second between the first and the last step of a history. */
function stepsPerSecond(history) {
  const steps = history.steps;
  if (steps.length < 2) return undefined;
  const first = steps[0];
  const last = steps[steps.length - 1];
  return (1000 * (last.step - first.step)) / (last.elapsed_ms - first.elapsed_ms);
}

async function trainingBench(browser, at, problems) {
  const page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1280, height: 1400 } });
  await page.addInitScript(watchLongTasks);
  watchProblems(page, problems, () => 'training');
  try {
    await page.goto(at('?tab=train'));
    await waitForApp(page, { runs: 1 }, LOAD_TIMEOUT_MS);
    // Plain steps first, then the same steps with the gradient and activation analysis on each.
    const quiet = { '#train-eval-every': '100000', '#train-probe-every': '100000', '#train-analyse-every': '0' };
    const analysed = { ...quiet, '#train-analyse-every': '1' };
    // A first short run compiles and allocates what every later run reuses; it is not counted.
    await trainInPage(page, { '#train-preset': 'tiny', '#train-steps': '4', ...analysed });
    const tiny = await trainInPage(page, { '#train-preset': 'tiny', '#train-steps': '12', ...quiet });
    const tinyAnalysed = await trainInPage(page, { '#train-preset': 'tiny', '#train-steps': '12', ...analysed });
    const seed = await trainInPage(page, { '#train-preset': 'seed', '#train-steps': '4', ...quiet });
    const seedAnalysed = await trainInPage(page, { '#train-preset': 'seed', '#train-steps': '4', ...analysed });
    const started = performance.now();
    const reverse = await trainInPage(page, {
      '#train-preset': 'tiny', '#train-steps': '3000', '#train-eval-every': '25', '#train-probe-every': '100000',
      '#train-analyse-every': '0',
    }, { until: 0.99 });
    const wall_ms = performance.now() - started;
    const hit = reverse.history.evals.find((e) => e.val_accuracy >= 0.99);
    const atHit = hit && reverse.history.steps.find((s) => s.step === hit.step);
    const lastEval = reverse.history.evals.at(-1);
    return {
      train_tiny_steps_per_s: stepsPerSecond(tiny.history),
      train_tiny_analysed_steps_per_s: stepsPerSecond(tinyAnalysed.history),
      train_seed_steps_per_s: stepsPerSecond(seed.history),
      train_seed_analysed_steps_per_s: stepsPerSecond(seedAnalysed.history),
      reverse_99_percent_s: atHit ? atHit.elapsed_ms / 1000 : undefined,
      reverse_99_percent_step: hit?.step,
      // The main thread's longest task while the worker trained (tiny, then seed, then reverse).
      train_longest_main_task_ms: Math.max(tiny.longest_task_ms, tinyAnalysed.longest_task_ms, seed.longest_task_ms,
        seedAnalysed.longest_task_ms, reverse.longest_task_ms),
      reverse_outcome: hit ? 'reached 99%' : `${reverse.reached}: ${(100 * (lastEval?.val_accuracy ?? 0)).toFixed(1)}% at step ${lastEval?.step ?? 0} after ${(wall_ms / 1000).toFixed(0)} s`,
    };
  } finally {
    await page.close();
  }
}

/**
 * The main thread's longest task while the explorer runs the `seed` preset on 512 tokens and
 * draws it (a change of text after the page is ready), and how long that took.
 */
async function longRunBench(browser, at, problems) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  await page.addInitScript(watchLongTasks);
  watchProblems(page, problems, () => '512-token run');
  try {
    await page.goto(at('?model=seed'));
    const before = await waitForApp(page, { runs: 1, draws: 1 }, LOAD_TIMEOUT_MS);
    const since = await pageNow(page);
    await page.fill('#text', Array(512).fill('the').join(' '));
    await waitForApp(page, { runs: before.runs + 1, draws: before.draws + 1 }, 2 * LOAD_TIMEOUT_MS);
    return { run_512_ms: (await pageNow(page)) - since, run_512_longest_main_task_ms: await longestTask(page, since) };
  } finally {
    await page.close();
  }
}

/** The diagnostics tab's own benchmark (10 warm-up + 100 timed runs per pass) on the seed preset. */
async function diagnosticsBench(browser, at, problems) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  watchProblems(page, problems, () => 'diagnostics benchmark');
  try {
    await page.goto(at('?model=seed&tab=diagnostics'));
    await waitForApp(page, { runs: 1 }, LOAD_TIMEOUT_MS);
    await page.click('#bench-start');
    await page.waitForFunction(() => !['0', 'running'].includes(document.querySelector('#diagnostics').dataset.bench),
      null, { timeout: TRAIN_BUDGET_MS * 4, polling: 500 });
    const rows = await page.$$eval('#bench-table tbody tr', (rows) => rows.map((row) => [...row.cells].map((c) => c.textContent)));
    const out = {};
    for (const [backend, pass, median, p95, rate] of rows) {
      const key = `${backend.startsWith('CPU') ? 'cpu' : 'page'}_${pass === 'forward' ? 'fwd' : 'fwd_bwd'}`;
      out[`diag_${key}_median_ms`] = Number(median);
      out[`diag_${key}_p95_ms`] = Number(p95);
      out[`diag_${key}_seq_per_s`] = Number(rate);
    }
    return out;
  } finally {
    await page.close();
  }
}

const format = (value, digits = 1) => {
  if (typeof value !== 'number') return String(value ?? '—');
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
};

const wasm = await wasmSizes();
const gzipped = await gzippedSizes();
const server = await serve(DIST);
const backends = {};
try {
  // GLASSBOX_BENCH_BACKENDS=cpu (or webgpu) measures one backend only.
  const chosen = (process.env.GLASSBOX_BENCH_BACKENDS ?? Object.keys(BACKENDS).join(',')).split(',');
  for (const backend of Object.keys(BACKENDS).filter((name) => chosen.includes(name))) {
    const browser = await launch(backend);
    const problems = [];
    // Each page at `query` on this backend (WebGPU's fallback adapter has to be asked for).
    const at = (query) => new URL(onBackend(query, backend), server.url).href;
    try {
      const { first_heatmap_ms, first_heatmap_from, first_load_repeated, ...first_load } = await firstHeatmap(browser, at, problems, gzipped);
      const page_bench = { ...first_load, ...await pageBench(browser, at, problems) };
      const long_run = await longRunBench(browser, at, problems).catch((error) => ({ long_run_error: error.message }));
      const training = await trainingBench(browser, at, problems).catch((error) => ({ error: error.message }));
      // On software WebGPU 220 passes of the seed model take far too long; the CPU runs it.
      const diagnostics = backend === 'cpu'
        ? await diagnosticsBench(browser, at, problems).catch((error) => ({ diagnostics_error: error.message }))
        : {};
      backends[backend] = {
        first_heatmap_ms, first_heatmap_from, first_load_repeated, page_bench: { ...page_bench, ...long_run, ...training, ...diagnostics }, problems,
      };
    } catch (error) {
      backends[backend] = { error: error.message, problems };
    } finally {
      await browser.close();
    }
  }
} finally {
  await server.close();
}

const report = { date: new Date().toISOString(), chromium: CHROMIUM, dist: DIST, wasm, backends };
await mkdir(path.dirname(OUT), { recursive: true });
await writeFile(OUT, `${JSON.stringify(report, null, 2)}\n`);

console.log('\nwasm size');
for (const { file, raw_bytes, gzip9_bytes } of wasm) {
  console.log(`  ${file.padEnd(40)} ${format(raw_bytes / MB, 2).padStart(7)} MB raw  ${format(gzip9_bytes / MB, 2).padStart(7)} MB gzip -9`);
}
// Rows are metrics, columns are backends; every number the page reports gets a row.
const names = Object.keys(backends);
const rows = [['goto → first heatmap ms', names.map((name) => backends[name].first_heatmap_ms)]];
for (const key of new Set(names.flatMap((name) => Object.keys(backends[name].page_bench ?? {})))) {
  const values = names.map((name) => backends[name].page_bench?.[key]);
  if (values.some((value) => typeof value === 'number')) rows.push([key, values]);
}
console.log('\nheadless Chromium (its WebGPU is SwiftShader: software, far slower than a GPU)');
console.log(`  ${'metric'.padEnd(30)}${names.map((name) => name.padStart(12)).join('')}`);
for (const [metric, values] of rows) {
  console.log(`  ${metric.padEnd(30)}${values.map((value) => format(value).padStart(12)).join('')}`);
}
for (const [name, result] of Object.entries(backends)) {
  const bench = result.page_bench ?? {};
  console.log(`  ${name}: ${result.error ?? bench.unavailable ?? bench.backend ?? ''}`);
  if (result.first_heatmap_from) console.log(`    first heatmap drawn from the ${result.first_heatmap_from}`);
  if (bench.reverse_outcome) console.log(`    reverse to 99%: ${bench.reverse_outcome}`);
  if (bench.error) console.log(`    training: ${bench.error}`);
  if (bench.diagnostics_error) console.log(`    diagnostics benchmark: ${bench.diagnostics_error}`);
  if (bench.long_run_error) console.log(`    512-token run: ${bench.long_run_error}`);
  if (result.first_load_repeated?.length) console.log(`    fetched twice before the first heatmap: ${result.first_load_repeated.join(', ')}`);
  for (const problem of result.problems) console.log(`    problem: ${problem}`);
}
console.log(`\nfull results: ${path.relative(process.cwd(), OUT) || OUT}`);
