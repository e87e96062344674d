// Real-browser tests of the glassbox page in headless Chromium, run once on WebGPU (SwiftShader) and once on the CPU fallback.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKENDS, LOAD_TIMEOUT_MS, appState, canvasStats, checker, launch, onBackend, waitForApp, watchProblems } from './browser.mjs';
import { serve } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const SCREENSHOTS = path.join(REPO, 'target/screenshots');

/** A model run or a redraw on SwiftShader can be slow; nothing here sleeps a fixed time. */
const STEP_TIMEOUT_MS = 3 * 60_000;
const TEST_TIMEOUT_MS = 10 * 60_000;

/** The canvases each view draws. */
const VIEWS = { heatmap: ['heatmap'], flow: ['flow'], heads: ['head-grid', 'similarity'] };
const TOOLTIP = /query “.+” \(#\d+, id \d+\) → key “.+” \(#\d+, id \d+\): weight \d\.\d{4}/;
const LONG_TEXT = Array.from({ length: 600 }, (_, i) => ['the', 'whale', 'swam', 'under', 'a', 'ship'][i % 6]).join(' ');
const NON_ASCII_TEXT = '🐋 Ünïcode 東京 whale';
const FIXTURES = path.join(REPO, 'tests/fixtures');
const DOWNLOADS = path.join(REPO, 'target/downloads');

/**
 * The heatmap's colour map, viridis at 0, 1/8, …, 1 (R's `viridisLite::viridis(9)`, as
 * src/charts/colormap.rs lists it), written out again here so that the canvas is checked
 * against the map itself, not against the page's own colour code.
 */
const VIRIDIS = [[68, 1, 84], [71, 45, 123], [59, 82, 139], [44, 114, 142], [33, 144, 140],
  [39, 173, 129], [93, 200, 99], [170, 220, 50], [253, 231, 37]];

/** The colour of `t` in 0..=1 (clamped): linear between the two nearest anchors, rounded. */
function viridis(t) {
  const position = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const index = Math.min(Math.floor(position), VIRIDIS.length - 2);
  const frac = position - index;
  return VIRIDIS[index].map((low, channel) => Math.round(low + (VIRIDIS[index + 1][channel] - low) * frac));
}

/** The heatmap's cells worth sampling: the strongest and weakest few, the median and two corners. */
function sampleCells(rows) {
  const cells = rows.flatMap((row, query) => row.map((weight, key) => ({ query, key, weight })));
  cells.sort((a, b) => b.weight - a.weight);
  const picked = [...cells.slice(0, 3), cells[Math.floor(cells.length / 2)], ...cells.slice(-3),
    cells.find((c) => c.query === 0 && c.key === 0), cells.find((c) => c.query === rows.length - 1 && c.key === rows[0].length - 1)];
  return [...new Map(picked.map((c) => [`${c.query},${c.key}`, c])).values()];
}

for (const [backend, { label }] of Object.entries(BACKENDS)) {
  describe(`glassbox on ${backend}`, () => {
    let server;
    let browser;
    let page;
    const state = { current: 'page load' };
    const problems = [];

    before(async () => {
      server = await serve(DIST);
      browser = await launch(backend);
      page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      page.setDefaultTimeout(STEP_TIMEOUT_MS);
      watchProblems(page, problems, () => state.current);
      // Most checks look at the seed chapter's model; the model checks below open the others.
      await page.goto(`${server.url}${onBackend('?model=seed', backend)}`);
      await waitForApp(page, { runs: 1, draws: 1 });
    }, { timeout: LOAD_TIMEOUT_MS + 60_000 });

    after(async () => {
      await browser?.close();
      await server?.close();
    });

    /** A test that also fails on any console error, page error or failed request so far. */
    const check = checker(it, problems, state, { timeout: TEST_TIMEOUT_MS, notFound: () => server.notFound });

    /** Runs `action` and waits for the page to finish the model runs and redraws it causes. */
    async function act(action, { run = false, draw = true } = {}) {
      const before = await appState(page);
      await action();
      return waitForApp(page, { runs: before.runs + (run ? 1 : 0), draws: before.draws + (draw ? 1 : 0) }, STEP_TIMEOUT_MS);
    }

    /** Chooses `value` in a `<select>`, waiting for the redraw when it is a change. */
    async function choose(selector, value) {
      if ((await page.inputValue(selector)) === value) return;
      await act(() => page.selectOption(selector, value));
    }

    async function setText(text, { draw = true } = {}) {
      await act(() => page.fill('#text', text), { run: true, draw });
    }

    async function setThreshold(value) {
      if ((await page.inputValue('#threshold')) === value) return;
      await act(() => page.$eval('#threshold', (input, value) => {
        input.value = value;
        input.dispatchEvent(new Event('input', { bubbles: true }));
      }, value));
    }

    /** Ids of the canvases the user can see, each with a hash of its pixels. */
    async function visibleDrawing() {
      const ids = await page.$$eval('canvas', (canvases) => canvases.filter((c) => c.checkVisibility()).map((c) => c.id));
      const drawn = [];
      for (const id of ids) drawn.push(`${id}:${(await canvasStats(page, `#${id}`)).hash}`);
      return drawn.join(' ');
    }

    async function assertDrawn(id) {
      const stats = await canvasStats(page, `#${id}`);
      assert.ok(stats.distinctColours >= 16, `#${id} has only ${stats.distinctColours} colours`);
      assert.ok(stats.nonBackground >= 0.01, `#${id} is ${(100 * (1 - stats.nonBackground)).toFixed(2)}% background`);
    }

    async function assertVisible(selector, visible) {
      const shown = await page.$eval(selector, (element) => element.checkVisibility());
      assert.equal(shown, visible, `${selector} should be ${visible ? 'visible' : 'hidden'}`);
    }

    check('shows the backend it runs on and says the weights are untrained', async () => {
      const shown = await page.textContent('#backend');
      assert.ok(shown.startsWith(label), `#backend says "${shown}", expected it to start with "${label}"`);
      const provenance = await page.textContent('#provenance');
      assert.match(provenance, /random/i);
      assert.match(provenance, /untrained/i);
      assert.match(await page.textContent('#forward'), /last forward \+ capture: [\d.]+ ms for \d+ tokens/);
      await assertVisible('#error', false);
    });

    check('draws every canvas of every view, and shows only that view', async () => {
      for (const [view, canvases] of Object.entries(VIEWS)) {
        await choose('#view', view);
        for (const [other, otherCanvases] of Object.entries(VIEWS)) {
          for (const id of otherCanvases) await assertVisible(`#${id}`, other === view);
        }
        for (const id of canvases) await assertDrawn(id);
      }
      await choose('#view', 'heatmap');
    });

    /** The attention the view shows, as the page exports it ("JSON (its data)"). */
    async function exportedView() {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-view-json')]);
      await mkdir(DOWNLOADS, { recursive: true });
      const saved = path.join(DOWNLOADS, `${backend}-${download.suggestedFilename()}`);
      await download.saveAs(saved);
      return JSON.parse(await readFile(saved, 'utf8'));
    }

    check('the heatmap shows the weights: each sampled cell has the colour map\'s colour of its weight', async () => {
      await choose('#view', 'heatmap');
      for (const head of ['mean', '3']) {
        await choose('#head', head);
        const exported = await exportedView();
        assert.equal(exported.view, 'heatmap');
        assert.equal(exported.maps.length, 1);
        const rows = exported.maps[0].queries_by_keys;
        // The page draws 0 in the bottom colour and the map's largest weight in the top one.
        const vmax = Math.max(...rows.flat());
        const canvas = await page.$eval('#heatmap', (c) => ({ plot: c.dataset.plot, cells: c.dataset.cells, width: c.width, height: c.height }));
        assert.ok(canvas.plot && canvas.cells, 'the heatmap canvas names where its cells are (data-plot, data-cells)');
        const [x, y, width, height] = canvas.plot.split(' ').map(Number);
        assert.deepEqual(canvas.cells.split(' ').map(Number), [rows.length, rows[0].length], 'one cell per query and key');
        assert.ok(x >= 0 && y >= 0 && x + width <= canvas.width && y + height <= canvas.height,
          `the cells (${canvas.plot}) lie inside the ${canvas.width}×${canvas.height} canvas`);
        // Cells of several pixels, so that the middle of a cell is far from its neighbours.
        assert.ok(width / rows[0].length >= 4 && height / rows.length >= 4, `cells of ${width / rows[0].length}×${height / rows.length} pixels`);
        const cells = sampleCells(rows);
        const pixels = await page.$eval('#heatmap', (c, points) => {
          const context = c.getContext('2d');
          return points.map(([px, py]) => [...context.getImageData(px, py, 1, 1).data]);
        }, cells.map(({ query, key }) => [
          x + Math.floor(((key + 0.5) * width) / rows[0].length),
          y + Math.floor(((query + 0.5) * height) / rows.length),
        ]));
        const wrong = [];
        cells.forEach(({ query, key, weight }, index) => {
          const want = viridis(weight / vmax);
          const [r, g, b, a] = pixels[index];
          // One unit per channel for rounding the ratio in f32 on the page and f64 here.
          if (a !== 255 || [r, g, b].some((value, channel) => Math.abs(value - want[channel]) > 1)) {
            wrong.push(`cell (q ${query}, k ${key}) weight ${weight.toFixed(4)}: canvas rgba(${r},${g},${b},${a}), colour map rgb(${want})`);
          }
        });
        assert.deepEqual(wrong, [], `head ${head}: ${wrong.length} of ${cells.length} cells show another colour than their weight's`);
        // The strongest cell is the map's top colour and the weakest is near its bottom: the check can tell them apart.
        assert.deepEqual(pixels[0].slice(0, 3), VIRIDIS[VIRIDIS.length - 1]);
        assert.ok(Math.min(...cells.map((c) => c.weight)) < cells[0].weight, 'the sampled cells differ in weight');
      }
      await choose('#head', 'mean');
    });

    check('the model runs in the worker: killed, a new worker runs the text again and the map is the same', async () => {
      // The page's first run may have been made before the worker's device started.
      await setText('The whale swam under the ship.');
      await choose('#view', 'heatmap');
      await choose('#head', '2');
      assert.equal(await page.$eval('#app', (app) => app.dataset.ranIn), 'worker');
      const before = (await exportedView()).maps[0].queries_by_keys;
      const { runs, draws } = await appState(page);
      // An uncaught error inside the worker, as a trap in its wasm would be.
      await page.workers().at(-1).evaluate(() => {
        setTimeout(() => {
          throw new Error('killed by the test');
        });
      });
      await waitForApp(page, { runs: runs + 1, draws: draws + 1 }, STEP_TIMEOUT_MS);
      assert.equal(await page.$eval('#app', (app) => app.dataset.ranIn), 'worker');
      assert.deepEqual((await exportedView()).maps[0].queries_by_keys, before, 'the new worker\'s run draws the same weights');
      await choose('#head', 'mean');
    });

    check('saves a full-page screenshot of each view', async () => {
      await mkdir(SCREENSHOTS, { recursive: true });
      for (const view of Object.keys(VIEWS)) {
        await choose('#view', view);
        await page.screenshot({ path: path.join(SCREENSHOTS, `${backend}-${view}.png`), fullPage: true });
      }
      await choose('#view', 'heatmap');
    });

    check('changing the layer redraws the heatmap differently', async () => {
      await choose('#view', 'heatmap');
      await choose('#layer', '0');
      const before = await canvasStats(page, '#heatmap');
      await choose('#layer', '1');
      assert.notEqual((await canvasStats(page, '#heatmap')).hash, before.hash);
    });

    check('changing the head redraws the heatmap differently', async () => {
      await choose('#view', 'heatmap');
      await choose('#head', 'mean');
      const before = await canvasStats(page, '#heatmap');
      await choose('#head', '3');
      assert.notEqual((await canvasStats(page, '#heatmap')).hash, before.hash);
      await choose('#head', 'mean');
    });

    check('changing the view heatmap → flow → heads → heatmap changes what is drawn each time', async () => {
      await choose('#view', 'heatmap');
      let before = await visibleDrawing();
      for (const view of ['flow', 'heads', 'heatmap']) {
        await choose('#view', view);
        const now = await visibleDrawing();
        assert.notEqual(now, before, `switching to ${view} left the drawing as it was`);
        before = now;
      }
    });

    check('changing the text runs the model again and redraws', async () => {
      await choose('#view', 'heatmap');
      const before = await canvasStats(page, '#heatmap');
      await setText('The whale swam under the ship, and the sea was calm.');
      assert.notEqual((await canvasStats(page, '#heatmap')).hash, before.hash);
    });

    check('the threshold slider changes the flow drawing', async () => {
      await choose('#view', 'flow');
      await assertVisible('#threshold', true);
      await setThreshold('0.1');
      const before = await canvasStats(page, '#flow');
      await setThreshold('0');
      const after = await canvasStats(page, '#flow');
      assert.notEqual(after.hash, before.hash);
      // Threshold 0 keeps every edge, so it must draw more than any higher threshold.
      assert.ok(after.nonBackground > before.nonBackground,
        `threshold 0 drew ${after.nonBackground}, threshold 0.1 drew ${before.nonBackground} non-background`);
      await setThreshold('0.1');
      await choose('#view', 'heatmap');
    });

    check('hovering a heatmap cell shows its query, key and weight', async () => {
      await choose('#view', 'heatmap');
      await page.mouse.move(0, 0);
      await page.hover('#heatmap');
      await page.waitForFunction((source) => new RegExp(source).test(document.querySelector('#tooltip')?.textContent ?? ''),
        TOOLTIP.source, { timeout: 30_000 }).catch(() => {});
      assert.match(await page.textContent('#tooltip'), TOOLTIP);
    });

    check('empty text shows the empty state, not an error', async () => {
      await setText('', { draw: false });
      await assertVisible('#empty-state', true);
      await assertVisible('#error', false);
    });

    check('600 words: the notice says tokens were dropped and the heatmap still draws', async () => {
      await choose('#view', 'heatmap');
      await setText(LONG_TEXT);
      await assertVisible('#token-notice', true);
      assert.match(await page.textContent('#token-notice'), /more were dropped/);
      await assertVisible('#empty-state', false);
      await assertDrawn('heatmap');
    });

    check('emoji and non-ASCII text: the notice mentions [UNK], no error', async () => {
      await setText(NON_ASCII_TEXT);
      await assertVisible('#token-notice', true);
      assert.match(await page.textContent('#token-notice'), /\[UNK\]/);
      await assertVisible('#error', false);
      await assertDrawn('heatmap');
    });

    /** Opens `files` (paths or `{ name, mimeType, buffer }`) with the page's file picker. */
    async function openFiles(files, { fails = false } = {}) {
      const models = await page.$eval('#app', (app) => Number(app.dataset.models));
      await page.setInputFiles('#open', files);
      if (fails) {
        await page.waitForFunction(() => document.querySelector('#load-error')?.checkVisibility());
        await waitForApp(page, {}, STEP_TIMEOUT_MS);
        return;
      }
      await page.waitForFunction((models) => Number(document.querySelector('#app').dataset.models) > models, models);
      await waitForApp(page, { runs: 1 }, STEP_TIMEOUT_MS);
    }

    async function modelState() {
      return page.$eval('#app', (app) => ({ model: app.dataset.model, models: Number(app.dataset.models) }));
    }

    check('opens on the trained reverse model, whose attention reads the input backwards', async () => {
      const fresh = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      try {
        watchProblems(fresh, problems, () => `${state.current} (second page)`);
        await fresh.goto(`${server.url}${onBackend('', backend)}`);
        await waitForApp(fresh, { runs: 1, draws: 1 });
        assert.equal(await fresh.$eval('#app', (app) => app.dataset.model), 'reverse');
        assert.equal(await fresh.inputValue('#model'), 'reverse');
        const provenance = await fresh.textContent('#provenance');
        assert.match(provenance, /trained by glassbox-train on the reverse task/);
        assert.match(provenance, /(100\.0|9\d\.\d)% of held-out tokens right/);
        assert.equal(await fresh.inputValue('#text'), '3 1 4 1 5 9 2 6');
        // Some layer and head must attend from each position to its mirror: the anti-diagonal.
        const mirror = '7 6 5 4 3 2 1 0';
        const found = [];
        for (const layer of ['0', '1']) {
          for (const head of ['mean', '0', '1', '2', '3']) {
            for (const [selector, value] of [['#layer', layer], ['#head', head]]) {
              if ((await fresh.inputValue(selector)) !== value) {
                const before = await appState(fresh);
                await fresh.selectOption(selector, value);
                await waitForApp(fresh, { runs: before.runs, draws: before.draws + 1 }, STEP_TIMEOUT_MS);
              }
            }
            const keys = await fresh.$eval('#heatmap-summary', (summary) => summary.dataset.keys);
            if (keys === mirror) found.push(`layer ${layer} head ${head}`);
          }
        }
        assert.ok(found.length > 0, 'no layer or head of the reverse model attends along the anti-diagonal');
        await mkdir(SCREENSHOTS, { recursive: true });
        await fresh.screenshot({ path: path.join(SCREENSHOTS, `${backend}-reverse.png`), fullPage: true });
      } finally {
        await fresh.close();
      }
    });

    check('the model picker switches between the shipped models', async () => {
      await choose('#view', 'heatmap');
      for (const [id, layers] of [['sort', 2], ['language', 2], ['seed', 4]]) {
        const before = await canvasStats(page, '#heatmap');
        const { models } = await modelState();
        await page.selectOption('#model', id);
        await page.waitForFunction((models) => Number(document.querySelector('#app').dataset.models) > models, models);
        await waitForApp(page, { runs: 1 }, STEP_TIMEOUT_MS);
        assert.equal((await modelState()).model, id);
        assert.equal((await page.$$('#layer option')).length, layers);
        assert.notEqual((await canvasStats(page, '#heatmap')).hash, before.hash, `${id} drew what the last model drew`);
        await assertDrawn('heatmap');
      }
    });

    check('opens a PyTorch checkpoint with its config through the file picker, and the views change', async () => {
      await choose('#view', 'heatmap');
      const before = await canvasStats(page, '#heatmap');
      await openFiles([path.join(FIXTURES, 'tiny.safetensors'), path.join(FIXTURES, 'tiny.config.json')]);
      assert.equal((await modelState()).model, 'file');
      assert.match(await page.textContent('#provenance'), /tiny\.safetensors, a PyTorch checkpoint mapped onto glassbox/);
      assert.equal((await page.$$('#layer option')).length, 2);
      assert.match(await page.textContent('#model'), /Opened: tiny\.safetensors/);
      assert.notEqual((await canvasStats(page, '#heatmap')).hash, before.hash);
      await assertDrawn('heatmap');
      await assertVisible('#load-error', false);
    });

    check('a model opened from disk is kept: a reload opens it again without its files, until it is forgotten', async () => {
      // The test before opened tiny.safetensors with its config.
      await page.waitForFunction(() => /tiny\.safetensors is kept in this browser/.test(document.querySelector('#kept').textContent));
      await page.waitForFunction(() => /[?&]model=file/.test(location.search));
      await choose('#view', 'heatmap');
      await choose('#layer', '1');
      const before = (await exportedView()).maps[0].queries_by_keys;
      const text = await page.inputValue('#text');
      await page.reload();
      await waitForApp(page, { runs: 1, draws: 1 }, STEP_TIMEOUT_MS);
      assert.equal((await modelState()).model, 'file');
      assert.match(await page.textContent('#provenance'), /tiny\.safetensors, a PyTorch checkpoint mapped onto glassbox/);
      assert.match(await page.textContent('#kept'), /tiny\.safetensors was opened again from this browser's copy of its files/);
      assert.match(await page.textContent('#model'), /Opened: tiny\.safetensors/);
      assert.equal(await page.inputValue('#text'), text);
      assert.equal(await page.inputValue('#layer'), '1');
      assert.deepEqual((await exportedView()).maps[0].queries_by_keys, before, 'the reopened model draws the same weights');
      await page.click('#forget-kept');
      await page.waitForFunction(() => /Forgotten/.test(document.querySelector('#kept').textContent));
      await page.waitForFunction(() => !/model=file/.test(location.search));
      await assertVisible('#forget-kept', false);
      await choose('#layer', '0');
    });

    check('a malformed checkpoint shows what is wrong and the loaded model stays', async () => {
      await choose('#view', 'heatmap');
      const weights = await readFile(path.join(FIXTURES, 'tiny.safetensors'));
      const cases = [
        { name: 'truncated.safetensors', buffer: weights.subarray(0, weights.length - 1000), expect: /truncated: tensor `.+` ends at byte \d+/ },
        { name: 'no-config.safetensors', buffer: weights, expect: /carries no model config/ },
        { name: 'garbage.safetensors', buffer: Buffer.from('this is not a checkpoint at all'), expect: /header length at byte 0/ },
      ];
      for (const { name, buffer, expect } of cases) {
        const before = { state: await modelState(), heatmap: await canvasStats(page, '#heatmap'), text: await page.inputValue('#text') };
        await openFiles({ name, mimeType: 'application/octet-stream', buffer }, { fails: true });
        const message = await page.textContent('#load-error');
        assert.match(message, expect, `${name}: ${message}`);
        assert.match(message, new RegExp(name.replace('.', '\\.')));
        assert.match(message, /already loaded is still in use/);
        assert.deepEqual(await modelState(), before.state, `${name} replaced the model`);
        assert.equal((await canvasStats(page, '#heatmap')).hash, before.heatmap.hash);
        assert.equal(await page.inputValue('#text'), before.text);
        await assertVisible('#error', false);
      }
    });

    check('saves the model as safetensors and reopens it with identical weights', async () => {
      await page.selectOption('#model', 'sort');
      await page.waitForFunction(() => document.querySelector('#app').dataset.model === 'sort');
      await waitForApp(page, { runs: 1 }, STEP_TIMEOUT_MS);
      await choose('#view', 'heatmap');
      const before = await canvasStats(page, '#heatmap');
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
      assert.equal(download.suggestedFilename(), 'sort.safetensors');
      await mkdir(DOWNLOADS, { recursive: true });
      const saved = path.join(DOWNLOADS, `${backend}-sort.safetensors`);
      await download.saveAs(saved);
      const bytes = await readFile(saved);
      const headerLength = Number(bytes.readBigUInt64LE(0));
      const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
      assert.equal(header.__metadata__.format, 'glassbox');
      assert.equal(header.__metadata__['glassbox.task'], 'sort');
      assert.ok(header['layers.0.attn.query.weight'], 'the saved file names tensors by glassbox path');
      await page.waitForFunction(() => /Saved sort\.safetensors/.test(document.querySelector('#save-status').textContent));
      await openFiles(saved);
      assert.equal((await modelState()).model, 'file');
      assert.equal((await canvasStats(page, '#heatmap')).hash, before.hash, 'the reopened weights draw a different heatmap');
    });

    check('dropping a checkpoint on the page opens it', async () => {
      const { models } = await modelState();
      await page.evaluate(async () => {
        const bytes = await (await fetch('models/reverse.safetensors')).arrayBuffer();
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'dropped-reverse.safetensors'));
        document.querySelector('#app').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      });
      await page.waitForFunction((models) => Number(document.querySelector('#app').dataset.models) > models, models);
      await waitForApp(page, { runs: 1 }, STEP_TIMEOUT_MS);
      assert.equal((await modelState()).model, 'file');
      assert.match(await page.textContent('#provenance'), /reverse task/);
      assert.match(await page.textContent('#model'), /Opened: dropped-reverse\.safetensors/);
    });

    if (backend === 'webgpu') {
      check('?backend=cpu forces the CPU backend even when WebGPU is there', async () => {
        const cpuPage = await browser.newPage();
        try {
          watchProblems(cpuPage, problems, () => `${state.current} (second page)`);
          await cpuPage.goto(`${server.url}?backend=cpu`);
          await waitForApp(cpuPage, { runs: 1, draws: 1 });
          const shown = await cpuPage.textContent('#backend');
          assert.ok(shown.startsWith(BACKENDS.cpu.label), `#backend says "${shown}"`);
        } finally {
          await cpuPage.close();
        }
      });

      check('by default a fallback adapter loses to the CPU, in words, and the backend control switches', async () => {
        const autoPage = await browser.newPage();
        try {
          watchProblems(autoPage, problems, () => `${state.current} (second page)`);
          await autoPage.goto(`${server.url}?model=reverse&layer=1`);
          await waitForApp(autoPage, { runs: 1, draws: 1 });
          const shown = await autoPage.textContent('#backend');
          assert.ok(shown.startsWith(BACKENDS.cpu.label), `#backend says "${shown}"`);
          assert.match(shown, /software fallback \(google swiftshader/);
          assert.equal(await autoPage.$eval('#backend-choice', (select) => select.value), 'Fastest (automatic)');
          await autoPage.selectOption('#backend-choice', { label: 'WebGPU' });
          await autoPage.waitForURL(/backend=webgpu/);
          await waitForApp(autoPage, { runs: 1, draws: 1 });
          assert.ok((await autoPage.textContent('#backend')).startsWith(BACKENDS.webgpu.label));
          // The view's settings travel across the switch.
          assert.match(autoPage.url(), /model=reverse/);
          assert.equal(await autoPage.inputValue('#layer'), '1');
        } finally {
          await autoPage.close();
        }
      });
    }
  });
}
