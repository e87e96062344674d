// The heatmap at 1,024 tokens on both backends: wheel zoom around the pointer, drag and arrow-key
// pan, the minimap, hover and pin read in the whole map's positions, and labels at every token
// once zoomed in (read from the SVG export, which replays what the canvas drew).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKENDS, appState, canvasStats, checker, waitForApp } from './browser.mjs';
import { pageSuite } from './suite.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const STEP_TIMEOUT_MS = 4 * 60_000;
const TEST_TIMEOUT_MS = 10 * 60_000;

const TOKENS = 1024;
const SHAPE = {
  vocab_size: 1000, d_model: 32, num_heads: 2, d_ff: 64, num_layers: 2,
  max_seq_len: TOKENS, positional: 'Learned',
};
const WORDS = ['the', 'whale', 'swam', 'under', 'a', 'ship', 'and', 'sea', 'old', 'man'];
const TEXT = Array.from({ length: TOKENS }, (_, i) => WORDS[(i * 7 + (i >> 3)) % WORDS.length]).join(' ');
const QUERY = `?config=${encodeURIComponent(JSON.stringify(SHAPE))}&text=${encodeURIComponent(TEXT)}&layer=1&head=0`;

for (const [backend, scale] of Object.keys(BACKENDS).flatMap((b) => [[b, 1], [b, 2]])) {
  describe(`heatmap zoom at ${TOKENS} tokens on ${backend}, devicePixelRatio ${scale}`, () => {
    const suite = pageSuite(DIST, backend, QUERY, { timeout: STEP_TIMEOUT_MS, scale });
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

    const windowOf = async () => (await suite.page.$eval('#heatmap', (c) => c.dataset.window)).split(' ').map(Number);

    /** Where cell (row, col) of the drawn window is on the screen, and the canvas' geometry. */
    async function screenPoint(fracX, fracY) {
      return suite.page.$eval('#heatmap', (canvas, [fx, fy]) => {
        const [x, y, w, h] = canvas.dataset.plot.split(' ').map(Number);
        const r = canvas.getBoundingClientRect();
        const scale = r.width / canvas.width;
        return { x: r.left + (x + fx * w) * scale, y: r.top + (y + fy * h) * scale, pitch: (w / Number(canvas.dataset.cells.split(' ')[1])) * scale };
      }, [fracX, fracY]);
    }

    check('every canvas has one backing pixel per device pixel, and text keeps its size', async () => {
      const sizes = await suite.page.$$eval('canvas', (canvases) => canvases.filter((c) => c.dataset.cssSize).map((c) => {
        const [width] = c.dataset.cssSize.split(' ').map(Number);
        return { id: c.id, backing: c.width, css: width, shown: c.getBoundingClientRect().width, ratio: window.devicePixelRatio };
      }));
      assert.ok(sizes.some((s) => s.id === 'heatmap'), JSON.stringify(sizes));
      for (const s of sizes) {
        assert.equal(s.ratio, scale);
        assert.equal(s.backing, Math.round(s.css * scale), `${s.id}: ${s.backing} backing pixels for ${s.css} CSS pixels`);
      }
      // The heatmap's cells sit where it says, in backing pixels, whatever the ratio: the
      // strongest cell of the map reads back in the colour the top of the scale has.
      const plot = (await suite.page.$eval('#heatmap', (c) => c.dataset.plot)).split(' ').map(Number);
      assert.ok(plot[2] > 600 * (scale - 0.1), `a plot ${plot[2]} backing pixels wide`);
    });

    check('the whole map is drawn at first, one cell per token', async () => {
      assert.equal(await suite.page.$eval('#heatmap', (c) => c.dataset.cells), `${TOKENS} ${TOKENS}`);
      assert.deepEqual(await windowOf(), [0, 0, TOKENS]);
      assert.equal(await suite.page.$eval('#minimap', (c) => c.checkVisibility()), false);
    });

    check('the wheel zooms around the cell under the pointer, and the minimap shows where', async () => {
      const { page } = suite;
      const at = await screenPoint(0.75, 0.25);
      await page.mouse.move(at.x, at.y);
      const before = await page.textContent('#tooltip');
      const [, query, key] = before.match(/#(\d+), id \d+\) → key “.*” \(#(\d+)/).map(Number);
      await act(() => page.mouse.wheel(0, -100));
      const [row, col, span] = await windowOf();
      assert.equal(span, TOKENS / 2);
      assert.equal(await page.$eval('#heatmap', (c) => c.dataset.cells), `${span} ${span}`);
      // The cell under the pointer is still under it (to within a cell of rounding).
      await page.mouse.move(at.x, at.y + 1);
      const after = (await page.textContent('#tooltip')).match(/#(\d+), id \d+\) → key “.*” \(#(\d+)/).map(Number);
      assert.ok(Math.abs(after[1] - query) <= 2 && Math.abs(after[2] - key) <= 2, `${before} → ${after[0]}`);
      assert.ok(row <= query && query < row + span && col <= key && key < col + span);
      assert.equal(await page.$eval('#minimap', (c) => c.checkVisibility()), true);
      const minimap = await canvasStats(page, '#minimap');
      assert.ok(minimap.distinctColours >= 8, `the minimap has ${minimap.distinctColours} colours`);
    });

    check('a drag pans the window, and the click that ends it pins nothing', async () => {
      const { page } = suite;
      const [row, col, span] = await windowOf();
      const at = await screenPoint(0.5, 0.5);
      const cells = 20;
      await page.mouse.move(at.x, at.y);
      await page.mouse.down();
      await act(() => page.mouse.move(at.x + cells * at.pitch, at.y + cells * at.pitch, { steps: 4 }));
      await page.mouse.up();
      const [row2, col2, span2] = await windowOf();
      assert.equal(span2, span);
      assert.ok(Math.abs(row - row2 - cells) <= 1 && Math.abs(col - col2 - cells) <= 1, `window ${row},${col} → ${row2},${col2}`);
      assert.equal(await page.inputValue('#pin'), '');
    });

    check('the keyboard zooms, pans and shows the whole map again', async () => {
      const { page } = suite;
      await page.focus('#heatmap');
      const [row, , span] = await windowOf();
      await act(() => page.keyboard.press('ArrowDown'));
      assert.equal((await windowOf())[0], Math.min(row + span / 8, TOKENS - span));
      await act(() => page.keyboard.press('+'));
      assert.equal((await windowOf())[2], span / 2);
      await act(() => page.keyboard.press('0'));
      assert.deepEqual(await windowOf(), [0, 0, TOKENS]);
      assert.equal(await page.$eval('#minimap', (c) => c.checkVisibility()), false);
    });

    check('zoomed in to 16 tokens, every token is labelled and a click pins the token in the whole map', async () => {
      const { page } = suite;
      const at = await screenPoint(0.5, 0.5);
      await page.mouse.move(at.x, at.y);
      for (let span = TOKENS; span > 16; span /= 2) await act(() => page.mouse.wheel(0, -100));
      const [row, col, span] = await windowOf();
      assert.equal(span, 16);
      // Every row and column label is drawn: the SVG export replays the canvas' text.
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-svg')]);
      const svg = await readFile(await download.path(), 'utf8');
      // The page's own token labels, from the pin picker: `#497 “whale”`.
      const shown = await page.$$eval('#pin option', (options) => options.slice(1).map((o) => o.textContent.match(/“(.*)”$/)[1]));
      const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1].trim());
      const labels = texts.slice(1, 1 + 32);
      assert.deepEqual(labels.slice(0, 16), shown.slice(row, row + 16), 'a label on every query');
      assert.deepEqual(labels.slice(16, 32), shown.slice(col, col + 16), 'a label on every key');
      assert.ok(texts.length >= 32 + 2, `${texts.length} texts`);
      // A click on the cell at 3/4 down pins query row + 12.
      const cell = await screenPoint(0.5, (12 + 0.5) / 16);
      await act(() => page.mouse.click(cell.x, cell.y));
      assert.equal(await page.inputValue('#pin'), String(row + 12));
      assert.match(await page.textContent('#pinned'), new RegExp(`#${row + 12}\\)`));
      assert.ok(col >= 0);
    });
  });
}
