// The first five minutes: the page opens on the view that shows what the model learned, beside
// its controls and above the fold at 1400 × 1000 and at 360 px; typing runs the model a few
// times, not once a keystroke, and the views end on the last text.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { LOAD_TIMEOUT_MS, checker, launch, waitForApp, watchProblems } from './browser.mjs';
import { serve } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const SCREENSHOTS = path.join(REPO, 'target/screenshots');

/** Where the heatmap canvas lies, and the screen's size, in CSS pixels. */
function heatmapBox(page) {
  return page.$eval('#heatmap', (canvas) => {
    const box = canvas.getBoundingClientRect();
    return { top: box.top, left: box.left, bottom: box.bottom, right: box.right, width: innerWidth, height: innerHeight };
  });
}

// The layout and the chooser do not depend on the backend: the CPU runs them fastest.
describe('the first view on cpu', () => {
  let server;
  let browser;
  const state = { current: 'setup' };
  const problems = [];

  before(async () => {
    server = await serve(DIST);
    browser = await launch('cpu');
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const check = checker(it, problems, state, { timeout: LOAD_TIMEOUT_MS + 120_000, notFound: () => server.notFound });

  async function open(query, viewport) {
    const page = await browser.newPage({ viewport });
    watchProblems(page, problems, () => state.current);
    await page.goto(`${server.url}${query}`);
    await waitForApp(page, { runs: 1, draws: 1 });
    return page;
  }

  for (const viewport of [{ width: 1400, height: 1000 }, { width: 360, height: 740 }]) {
    check(`opens on the sharpest head, says why, and shows it inside the first screen at ${viewport.width} px`, async () => {
      const page = await open('', viewport);
      const opening = await page.textContent('#opening');
      const [, layer, head] = opening.match(/Opened on layer (\d+), head (\d+)/) ?? [];
      assert.ok(layer !== undefined, `#opening says "${opening}"`);
      assert.match(opening, /sharpest/);
      // The pickers show what was chosen, and so does the address.
      assert.equal(await page.inputValue('#layer'), layer);
      assert.equal(await page.inputValue('#head'), head);
      // The trained reverse model learned its anti-diagonal in layer 1, not layer 0.
      assert.equal(layer, '1', `the reverse model should open on layer 1: ${opening}`);
      await page.waitForFunction(([l, h]) => location.search.includes(`layer=${l}`) && location.search.includes(`head=${h}`), [layer, head]);
      const box = await heatmapBox(page);
      assert.ok(box.top >= 0 && box.left >= 0 && box.bottom <= box.height && box.right <= box.width,
        `the heatmap ${JSON.stringify(box)} should lie inside the first screen`);
      await mkdir(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SCREENSHOTS, `first-view-${viewport.width}.png`) });
      await page.close();
    });
  }

  check('a link that names the layer or head keeps it: the chooser does not run', async () => {
    const page = await open('?layer=0&head=mean', { width: 1400, height: 1000 });
    assert.equal(await page.inputValue('#layer'), '0');
    assert.equal(await page.inputValue('#head'), 'mean');
    assert.equal(await page.$eval('#opening', (element) => element.checkVisibility()), false);
    await page.close();
  });

  check('typing 30 characters quickly runs the model a few times and shows the last text', async () => {
    const page = await open('?model=language&layer=1&head=mean', { width: 1400, height: 1000 });
    const started = () => page.$eval('#app', (app) => Number(app.dataset.started));
    const before = await started();
    await page.fill('#text', '');
    await waitForApp(page);
    const afterClear = await started();
    const words = 'the whale was under a ship at ';
    assert.equal(words.length, 30);
    // The page's own clock of each keystroke: a run may start only after a pause of 150 ms.
    await page.evaluate(() => {
      window.keystrokes = [];
      document.querySelector('#text').addEventListener('input', () => window.keystrokes.push(performance.now()));
    });
    await page.type('#text', words, { delay: 15 });
    await page.waitForFunction(() => document.querySelector('#app').dataset.state === 'ready'
      && document.querySelector('#text').value.endsWith(' at '), null, { polling: 50 });
    // Let any run still scheduled finish before counting.
    await page.waitForTimeout(500);
    await waitForApp(page);
    const runs = (await started()) - afterClear;
    const times = await page.evaluate(() => window.keystrokes);
    assert.equal(times.length, 30);
    const pauses = times.slice(1).filter((time, i) => time - times[i] >= 150).length;
    // One run for the last keystroke, and at most one more for each pause the typing made
    // (a loaded machine can stall the keystrokes); never one a keystroke.
    assert.ok(runs >= 1 && runs <= 1 + pauses, `30 keystrokes with ${pauses} pauses started ${runs} runs (before: ${before})`);
    assert.ok(runs < 10, `30 keystrokes started ${runs} runs`);
    const shown = await page.$$eval('#pin option', (options) => options.slice(1).map((option) => option.textContent));
    const tokens = shown.map((label) => label.match(/“(.*)”/)[1]);
    assert.deepEqual(tokens, words.trim().split(' '), `the views show ${shown.join(' ')}`);
    await page.close();
  });

  check('a link to the Gradients & activations tab analyses the model once it has loaded', async () => {
    const page = await open('?model=reverse&tab=inside', { width: 1400, height: 1000 });
    await page.waitForFunction(() => document.querySelector('#inside').dataset.source === 'batch'
      || !document.querySelector('#inside-message').hidden, null, { polling: 100 });
    assert.ok(await page.$eval('#inside-message', (message) => message.hidden), await page.textContent('#inside-message'));
    assert.ok(Number(await page.$eval('#inside', (section) => section.dataset.modules)) > 0);
    await page.close();
  });
});
