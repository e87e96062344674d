// The views ask and the device answers, in headless Chromium on both backends: a 12-layer,
// 12-head model (width 96: SwiftShader is ~70x slower than the CPU) opened from a shape in the
// address, its model view drawn from device-side thumbnails, a click that opens a head, the
// flow view's arrow cap, and a layer switch that reads back one map and no more.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKENDS, appState, canvasStats, checker, waitForApp } from './browser.mjs';
import { pageSuite } from './suite.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const STEP_TIMEOUT_MS = 4 * 60_000;
const TEST_TIMEOUT_MS = 10 * 60_000;

const LAYERS = 12;
const HEADS = 12;
const SHAPE = {
  vocab_size: 1000, d_model: 96, num_heads: HEADS, d_ff: 384, num_layers: LAYERS,
  max_seq_len: 1024, positional: 'Learned',
};
const WORDS = ['the', 'whale', 'swam', 'under', 'a', 'ship', 'and', 'sea'];
const TOKENS = 48;
const TEXT = Array.from({ length: TOKENS }, (_, i) => WORDS[(i * 5 + i % 3) % WORDS.length]).join(' ');
const QUERY = `?config=${encodeURIComponent(JSON.stringify(SHAPE))}&text=${encodeURIComponent(TEXT)}`;

/**
 * A partial trace written by the CLI (`cargo test` built it; CI runs that first): layer 1's
 * attention and the layer outputs only, rounded to f16.
 */
function partialTrace() {
  const target = process.env.CARGO_TARGET_DIR ?? path.join(REPO, 'target');
  const out = path.join(REPO, 'target/downloads/reverse-partial.safetensors');
  mkdirSync(path.dirname(out), { recursive: true });
  execFileSync(path.join(target, 'debug/glassbox-trace'), ['--checkpoint', path.join(REPO, 'assets/models/reverse.safetensors'),
    '--text', '3 1 4 1 5 9', '--layers', '1', '--modules', 'block_output', '--f16', '--out', out]);
  return out;
}

for (const backend of Object.keys(BACKENDS)) {
  describe(`model view and device read-back on ${backend}`, () => {
    const suite = pageSuite(DIST, backend, QUERY, { timeout: STEP_TIMEOUT_MS });
    const check = checker(it, suite.problems, suite.state, {
      timeout: TEST_TIMEOUT_MS,
      notFound: () => suite.server.notFound,
    });

    /** Runs `action` and waits for the redraw it causes. */
    async function act(action) {
      const before = await appState(suite.page);
      await action();
      return waitForApp(suite.page, { runs: before.runs, draws: before.draws + 1 }, STEP_TIMEOUT_MS);
    }

    async function choose(selector, value) {
      if ((await suite.page.inputValue(selector)) === value) return;
      await act(() => suite.page.selectOption(selector, value));
    }

    check('a layer switch reads back one full map, not the trace', async () => {
      const { page } = suite;
      assert.match(await page.textContent('#provenance'), /12 layers, 12 heads, d_model 96/);
      await choose('#view', 'heatmap');
      await choose('#head', '3');
      await choose('#layer', '7');
      const app = await page.$eval('#app', (a) => ({ read: Number(a.dataset.readBytes), trace: Number(a.dataset.traceBytes) }));
      // One head's map of sequence 0: tokens × tokens f32s.
      const tokens = Number((await page.$eval('#heatmap', (c) => c.dataset.cells)).split(' ')[0]);
      assert.equal(app.read, tokens * tokens * 4, `read ${app.read} bytes for a ${tokens}-token map`);
      assert.ok(app.trace > 50 * app.read, `the trace on the device (${app.trace} B) stays there`);
    });

    check('the model view draws every head of every layer from thumbnails and a click opens one', async () => {
      const { page } = suite;
      await choose('#view', 'model');
      const grid = (await page.$eval('#model-view', (c) => c.dataset.grid)).split(' ').map(Number);
      const [left, top, side, layers, heads] = grid;
      assert.deepEqual([layers, heads], [LAYERS, HEADS]);
      assert.ok(side >= 30, `cells of ${side} px`);
      // Every cell is drawn: its centre is not the background, and the cells differ.
      const pitch = side + 3;
      const colours = await page.$eval('#model-view', (canvas, { left, top, side, pitch, layers, heads }) => {
        const context = canvas.getContext('2d');
        const out = [];
        for (let layer = 0; layer < layers; layer++) {
          for (let head = 0; head < heads; head++) {
            const { data } = context.getImageData(left + head * pitch, top + layer * pitch, side, side);
            let sum = 0;
            for (let i = 0; i < data.length; i += 4) sum += data[i] * 3 + data[i + 1] * 5 + data[i + 2] * 7;
            out.push(sum);
          }
        }
        return out;
      }, { left, top, side, pitch, layers, heads });
      assert.equal(colours.length, LAYERS * HEADS);
      assert.ok(new Set(colours).size > LAYERS * HEADS / 2, 'the heads look different from each other');
      const entropy = await canvasStats(page, '#entropy');
      assert.ok(entropy.distinctColours >= 16, `the entropy heatmap has ${entropy.distinctColours} colours`);
      assert.equal(await page.$eval('#entropy', (c) => c.dataset.cells), `${LAYERS} ${HEADS}`);
      // Hover names the head and its entropy; a click opens it in the heatmap.
      const box = await page.$eval('#model-view', (c) => {
        const r = c.getBoundingClientRect();
        return { x: r.left, y: r.top, scale: r.width / c.width };
      });
      const at = { x: box.x + (left + 5 * pitch + side / 2) * box.scale, y: box.y + (top + 9 * pitch + side / 2) * box.scale };
      await page.mouse.move(at.x, at.y);
      await page.waitForFunction(() => /layer 9, head 5: entropy \d/.test(document.querySelector('#model-tooltip').textContent));
      await act(() => page.mouse.click(at.x, at.y));
      assert.equal(await page.inputValue('#view'), 'heatmap');
      assert.equal(await page.inputValue('#layer'), '9');
      assert.equal(await page.inputValue('#head'), '5');
    });

    check('a partial trace opens, says what it lacks, and a layer it lacks is named, not drawn', async () => {
      const { page } = suite;
      await choose('#view', 'heatmap');
      await page.setInputFiles('#open', [partialTrace()]);
      await page.waitForFunction(() => document.querySelector('#app').dataset.source === 'trace');
      await waitForApp(page, {}, STEP_TIMEOUT_MS);
      const provenance = await page.textContent('#provenance');
      assert.match(provenance, /Partial trace: attention of layer 1 of 2/);
      assert.match(provenance, /f16/);
      assert.equal(await page.$$eval('#layer option', (options) => options.length), 2);
      assert.equal(await page.inputValue('#layer'), '1', 'it opens on the layer it holds');
      assert.equal(await page.$eval('#heatmap', (c) => c.dataset.cells), '6 6');
      await page.selectOption('#layer', '0');
      await page.waitForFunction(() => /does not hold layer 0/.test(document.querySelector('#error').textContent));
      // Back to the layer it holds: drawn again, and the message goes.
      await act(() => page.selectOption('#layer', '1'));
      assert.equal(await page.$eval('#error', (e) => e.checkVisibility()), false);
      // Back to the model: the layers run again.
      const runs = (await appState(page)).runs;
      await page.fill('#text', TEXT);
      await waitForApp(page, { runs: runs + 1 }, STEP_TIMEOUT_MS);
      assert.equal(await page.evaluate(() => document.querySelector('#app').dataset.source), 'model');
    });

    check('the flow view draws at most k arrows per query, and k can be changed', async () => {
      const { page } = suite;
      await choose('#view', 'flow');
      await act(() => page.$eval('#threshold', (input) => {
        input.value = '0';
        input.dispatchEvent(new Event('input', { bubbles: true }));
      }));
      const tokens = Number((await page.$eval('#heatmap', (c) => c.dataset.cells)).split(' ')[0]);
      const arrows = async () => Number(await page.$eval('#flow', (c) => c.dataset.arrows));
      assert.equal(await arrows(), 3 * tokens, 'three arrows per query at threshold 0');
      await act(() => page.fill('#flow-k', '1').then(() => page.dispatchEvent('#flow-k', 'change')));
      assert.equal(await arrows(), tokens, 'one arrow per query');
    });
  });
}

// Past the trace budget the run is refused in words before anything is allocated, and the page
// keeps working: a shape whose trace at 4,096 tokens would take 100 GiB.
const HUGE = { vocab_size: 1000, d_model: 32, num_heads: 32, d_ff: 64, num_layers: 48, max_seq_len: 4096, positional: 'Learned' };
const LONG = Array.from({ length: 4096 }, (_, i) => WORDS[i % WORDS.length]).join(' ');
describe('a trace over the budget', () => {
  const suite = pageSuite(DIST, 'cpu', `?config=${encodeURIComponent(JSON.stringify(HUGE))}&text=the%20whale`, { timeout: STEP_TIMEOUT_MS });
  const check = checker(it, suite.problems, suite.state, { timeout: TEST_TIMEOUT_MS, notFound: () => suite.server.notFound });
  check('is refused with the budget and the length that fits, and a shorter text runs', async () => {
    const { page } = suite;
    await page.fill('#text', LONG);
    await page.waitForFunction(() => /over the page's budget of 2048 MiB/.test(document.querySelector('#error').textContent));
    const words = await page.textContent('#error');
    const fits = Number(words.match(/shorten the text to (\d+) tokens/)[1]);
    assert.ok(fits > 100 && fits < 4096, words);
    const runs = (await appState(page)).runs;
    await page.fill('#text', LONG.split(' ').slice(0, 64).join(' '));
    // The page shows the refusal until the shorter text has run: wait for the run itself.
    await page.waitForFunction((n) => Number(document.querySelector('#app').dataset.runs) > n, runs);
    await waitForApp(page, { runs: runs + 1 }, STEP_TIMEOUT_MS);
    assert.equal(await page.$eval('#heatmap', (c) => c.dataset.cells), '64 64');
  });
});
