// Headless Chromium per glassbox backend, plus page helpers shared by the browser tests and the benchmark.
import { chromium } from 'playwright-core';

/** The system's Chromium; no tool here may download a browser of its own. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const COMMON_FLAGS = [
  '--headless', '--no-sandbox', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Each backend: the Chromium flags that select it, the `?backend=` the page needs for it, and
 * the start of the page's `#backend` label.
 */
export const BACKENDS = {
  // SwiftShader is Chromium's software WebGPU adapter: the WebGPU path runs for real without a
  // GPU. It is a fallback adapter, which the page skips for the CPU unless told otherwise.
  webgpu: { flags: ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'], backend: 'webgpu', label: 'WebGPU (' },
  // Without WebGPU the page must fall back to burn's CPU backend.
  cpu: { flags: ['--disable-webgpu'], backend: null, label: 'CPU (burn-flex): ' },
};

/** `query` (`?a=b`, or empty) with the `?backend=` that makes the page run on `backend`. */
export function onBackend(query, backend) {
  const value = BACKENDS[backend].backend;
  if (!value) return query;
  return `${query}${query.includes('?') ? '&' : '?'}backend=${value}`;
}

/** Loading ~20 MB of wasm and compiling shaders on SwiftShader takes a while on 2 cores. */
export const LOAD_TIMEOUT_MS = 5 * 60_000;

/** Launches Chromium (with a fresh profile, which Playwright makes) for `backend`. */
export function launch(backend) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...COMMON_FLAGS, ...BACKENDS[backend].flags],
  });
}

/** Appends every console error, uncaught exception, failed request and HTTP error of `page` to `problems`. */
export function watchProblems(page, problems = [], during = () => '') {
  const note = (what) => problems.push(`${what}${during() ? ` [during: ${during()}]` : ''}`);
  page.on('console', (message) => {
    if (message.type() === 'error') note(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => note(`page error: ${error.message}`));
  page.on('requestfailed', (request) => note(`request failed: ${request.url()} (${request.failure()?.errorText})`));
  // The console's "Failed to load resource" does not name the resource; this does.
  page.on('response', (response) => {
    if (response.status() >= 400) note(`HTTP ${response.status()}: ${response.url()}`);
  });
  return problems;
}

/**
 * A test-definer for `node:test`: each test also fails on any console error, page error or
 * failed request recorded in `problems` so far. `state.current` names the running test (for
 * `watchProblems`); `notFound()` lists paths the server answered with 404.
 */
export function checker(it, problems, state, { timeout, notFound = () => [] }) {
  return (name, body) => it(name, { timeout }, async () => {
    state.current = name;
    let failure;
    try {
      await body();
    } catch (error) {
      failure = error;
    }
    if (problems.length > 0) {
      const missing = notFound().length ? `\nthe server answered 404 for: ${notFound().join(', ')}` : '';
      const also = failure ? `\nand the test itself failed: ${failure.message}` : '';
      throw new Error(`the browser reported ${problems.length} problem(s):\n${problems.join('\n')}${missing}${also}`, { cause: failure });
    }
    if (failure) throw failure;
  });
}

/** The page's state attributes: `{ state, runs, draws }`. */
export function appState(page) {
  return page.$eval('#app', (app) => ({
    state: app.dataset.state,
    runs: Number(app.dataset.runs),
    draws: Number(app.dataset.draws),
  }));
}

/**
 * Waits until the page is ready with at least `runs` model runs and `draws` redraws.
 * Throws at once, with the page's words, if it shows an error instead.
 */
export async function waitForApp(page, { runs = 0, draws = 0 } = {}, timeout = LOAD_TIMEOUT_MS) {
  const outcome = await page.waitForFunction(
    ({ runs, draws }) => {
      const app = document.querySelector('#app');
      if (!app) return false;
      if (app.dataset.state === 'error') return 'error';
      const done = app.dataset.state === 'ready'
        && Number(app.dataset.runs) >= runs && Number(app.dataset.draws) >= draws;
      return done && 'ready';
    },
    { runs, draws },
    { timeout, polling: 50 },
  );
  if ((await outcome.jsonValue()) === 'error') {
    throw new Error(`the page shows an error: ${await page.textContent('#error')}`);
  }
  return appState(page);
}

/**
 * What a canvas shows: a hash of its pixels, how many distinct colours it has, and the
 * fraction of pixels that differ from its most common colour (the background).
 */
export function canvasStats(page, selector) {
  return page.$eval(selector, (canvas) => {
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    const counts = new Map();
    let hash = 0x811c9dc5; // FNV-1a over RGBA words.
    for (let i = 0; i < data.length; i += 4) {
      const rgba = ((data[i] << 24) | (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3]) >>> 0;
      counts.set(rgba, (counts.get(rgba) ?? 0) + 1);
      hash = Math.imul(hash ^ rgba, 0x01000193) >>> 0;
    }
    const pixels = data.length / 4;
    let background = 0;
    for (const count of counts.values()) background = Math.max(background, count);
    return {
      hash: hash.toString(16),
      distinctColours: counts.size,
      nonBackground: (pixels - background) / pixels,
    };
  });
}
