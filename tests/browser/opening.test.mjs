// The first five minutes: the page opens on the view that shows what the model learned, beside
// its controls and above the fold at 1400 × 1000 and at 360 px; typing runs the model a few
// times, not once a keystroke, and the views end on the last text.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKENDS, LOAD_TIMEOUT_MS, checker, launch, onBackend, waitForApp, watchProblems } from './browser.mjs';
import { serve } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const SCREENSHOTS = path.join(REPO, 'target/screenshots');
const DOWNLOADS = path.join(REPO, 'target/downloads');
/** The opening model's trace on its opening text, made when the page was built. */
const SHIPPED = path.join(DIST, 'models/reverse.trace.safetensors');
/** As close as the parity tests hold the page to PyTorch. */
const TOLERANCE = { attention: 1e-5, modules: 1e-4 };

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

// The page draws the opening model's trace, made when the page was built, before the model has
// loaded; the model's own first run then replaces it. Both must be the same numbers.
for (const backend of Object.keys(BACKENDS)) {
  describe(`the shipped opening trace on ${backend}`, () => {
    let server;
    let browser;
    const state = { current: 'setup' };
    const problems = [];

    before(async () => {
      server = await serve(DIST);
      browser = await launch(backend);
    });
    after(async () => {
      await browser?.close();
      await server?.close();
    });

    const check = checker(it, problems, state, { timeout: LOAD_TIMEOUT_MS + 120_000, notFound: () => server.notFound });

    /** The whole trace the page shows, as its "Trace (JSON)" exports it. */
    async function exportedTrace(page, name) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-trace')]);
      await mkdir(DOWNLOADS, { recursive: true });
      const saved = path.join(DOWNLOADS, `${backend}-${name}-${download.suggestedFilename()}`);
      await download.saveAs(saved);
      return JSON.parse(await readFile(saved, 'utf8'));
    }

    /**
     * Records in `window.shippedStates` each value #app's data-shipped takes, in order, from the
     * page's first moment, and in `window.shippedRuns` the runs shown when it was drawn.
     */
    function watchShipped(page) {
      return page.addInitScript(() => {
        window.shippedStates = [];
        new MutationObserver(() => {
          const app = document.querySelector('#app');
          const value = app?.dataset.shipped ?? '';
          if (app && window.shippedStates.at(-1) !== value) {
            window.shippedStates.push(value);
            if (value === 'drawn') window.shippedRuns = Number(app.dataset.runs);
          }
        }).observe(document, { subtree: true, attributes: true, childList: true });
      });
    }

    /** The largest difference between two lists of numbers of the same length. */
    function largestDifference(what, a, b) {
      assert.equal(a.length, b.length, `${what}: ${a.length} values against ${b.length}`);
      return a.reduce((worst, value, i) => Math.max(worst, Math.abs(value - b[i])), 0);
    }

    check('is drawn first, and holds the numbers of the model\'s own run', async () => {
      const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
      const page = await context.newPage();
      watchProblems(page, problems, () => state.current);
      await watchShipped(page);
      await page.goto(`${server.url}${onBackend('', backend)}`);
      await waitForApp(page, { runs: 1, draws: 1 });
      const seen = await page.evaluate(() => window.shippedStates);
      assert.ok(seen.includes('drawn'), `the shipped trace was never drawn: #app's data-shipped went ${JSON.stringify(seen)}`);
      assert.equal(await page.evaluate(() => window.shippedRuns), 0, 'the shipped trace was drawn before the model\'s first run');
      // The model's own run replaced it: made by the model here, on this page or in its worker.
      assert.equal(seen.at(-1), '', `data-shipped went ${JSON.stringify(seen)}`);
      assert.match(await page.$eval('#app', (app) => app.dataset.ranIn), /^(page|worker)$/);
      assert.match(await page.textContent('#forward'), /last forward \+ capture/);
      const live = await exportedTrace(page, 'live');

      // The shipped file, opened as a trace: the page's own export of it.
      await page.setInputFiles('#open', SHIPPED);
      await page.waitForFunction(() => document.querySelector('#app').dataset.source === 'trace');
      await waitForApp(page);
      const shipped = await exportedTrace(page, 'shipped');
      assert.equal(shipped.text, live.text);
      assert.equal(live.text, '3 1 4 1 5 9 2 6');
      assert.deepEqual(shipped.tokens, live.tokens);
      assert.deepEqual(shipped.attention.map((a) => [a.layer, a.heads, a.queries, a.keys]),
        live.attention.map((a) => [a.layer, a.heads, a.queries, a.keys]));
      for (const [i, attention] of live.attention.entries()) {
        const worst = largestDifference(`layer ${attention.layer}'s attention`, shipped.attention[i].values, attention.values);
        assert.ok(worst <= TOLERANCE.attention, `layer ${attention.layer}'s attention differs by ${worst}`);
      }
      assert.deepEqual(shipped.modules.map((m) => [m.path, m.shape]), live.modules.map((m) => [m.path, m.shape]));
      assert.ok(live.modules.length > 0);
      for (const [i, module] of live.modules.entries()) {
        const worst = largestDifference(module.path, shipped.modules[i].values, module.values);
        assert.ok(worst <= TOLERANCE.modules, `${module.path} differs by ${worst}`);
      }
      await context.close();
    });

    check('a link with another text does not show it', async () => {
      const page = await browser.newPage();
      watchProblems(page, problems, () => state.current);
      await watchShipped(page);
      await page.goto(`${server.url}${onBackend('?text=2+7+1+8', backend)}`);
      await waitForApp(page, { runs: 1, draws: 1 });
      assert.deepEqual((await page.evaluate(() => window.shippedStates)).filter(Boolean), []);
      assert.equal(await page.inputValue('#text'), '2 7 1 8');
      await page.close();
    });
  });
}
