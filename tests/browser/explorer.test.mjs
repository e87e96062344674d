// Real-browser tests of the glassbox page in headless Chromium, run once on WebGPU (SwiftShader) and once on the CPU fallback.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKENDS, LOAD_TIMEOUT_MS, appState, canvasStats, launch, waitForApp, watchProblems } from './browser.mjs';
import { serve } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const SCREENSHOTS = path.join(REPO, 'target/screenshots');

/** A model run or a redraw on SwiftShader can be slow; nothing here sleeps a fixed time. */
const STEP_TIMEOUT_MS = 3 * 60_000;
const TEST_TIMEOUT_MS = 10 * 60_000;

/** The canvases each view draws. */
const VIEWS = { heatmap: ['heatmap'], flow: ['flow'], heads: ['head-grid', 'similarity'] };
const TOOLTIP = /query “.+” \(#\d+\) → key “.+” \(#\d+\): weight \d\.\d{4}/;
const LONG_TEXT = Array.from({ length: 600 }, (_, i) => ['the', 'whale', 'swam', 'under', 'a', 'ship'][i % 6]).join(' ');
const NON_ASCII_TEXT = '🐋 Ünïcode 東京 whale';

for (const [backend, { label }] of Object.entries(BACKENDS)) {
  describe(`glassbox on ${backend}`, () => {
    let server;
    let browser;
    let page;
    let current = 'page load';
    const problems = [];

    before(async () => {
      server = await serve(DIST);
      browser = await launch(backend);
      page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      page.setDefaultTimeout(STEP_TIMEOUT_MS);
      watchProblems(page, problems, () => current);
      await page.goto(server.url);
      await waitForApp(page, { runs: 1, draws: 1 });
    }, { timeout: LOAD_TIMEOUT_MS + 60_000 });

    after(async () => {
      await browser?.close();
      await server?.close();
    });

    /** A test that also fails on any console error, page error or failed request so far. */
    const check = (name, body) => it(name, { timeout: TEST_TIMEOUT_MS }, async () => {
      current = name;
      let failure;
      try {
        await body();
      } catch (error) {
        failure = error;
      }
      if (problems.length > 0) {
        const missing = server.notFound.length ? `\nthe server answered 404 for: ${server.notFound.join(', ')}` : '';
        const also = failure ? `\nand the test itself failed: ${failure.message}` : '';
        throw new Error(`the browser reported ${problems.length} problem(s):\n${problems.join('\n')}${missing}${also}`, { cause: failure });
      }
      if (failure) throw failure;
    });

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

    if (backend === 'webgpu') {
      check('?backend=cpu forces the CPU backend even when WebGPU is there', async () => {
        const cpuPage = await browser.newPage();
        try {
          watchProblems(cpuPage, problems, () => `${current} (second page)`);
          await cpuPage.goto(`${server.url}?backend=cpu`);
          await waitForApp(cpuPage, { runs: 1, draws: 1 });
          const shown = await cpuPage.textContent('#backend');
          assert.ok(shown.startsWith(BACKENDS.cpu.label), `#backend says "${shown}"`);
        } finally {
          await cpuPage.close();
        }
      });
    }
  });
}
