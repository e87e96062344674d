// Real-browser tests of the gradients & activations tab in headless Chromium, on WebGPU
// (SwiftShader) and on the CPU fallback.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKENDS, canvasStats, checker } from './browser.mjs';
import { pageSuite } from './suite.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const SCREENSHOTS = path.join(REPO, 'target/screenshots');

/** Software WebGPU trains slowly: a few steps take a minute or more there. */
const WAIT_MS = 8 * 60_000;
const TEST_TIMEOUT_MS = 10 * 60_000;

/**
 * The seed preset's captured tensors, each once: the embedding, six per post-LN layer in four
 * layers (attention output, feed-forward input, pre-activation, activation, output, and the
 * layer's output), the logits.
 */
const SEED_MODULES = 1 + 4 * 6 + 1;

for (const [backend] of Object.entries(BACKENDS)) {
  describe(`gradients and activations on ${backend}`, () => {
    const suite = pageSuite(DIST, backend, '?model=seed', { timeout: WAIT_MS });
    const { state, problems } = suite;
    // Set by the suite's before hook.
    let page;
    before(() => {
      page = suite.page;
    });

    const check = checker(it, problems, state, { timeout: TEST_TIMEOUT_MS });

    const inside = () => page.$eval('#inside', (section) => ({ ...section.dataset }));

    async function waitFor(predicate, arg) {
      await page.waitForFunction(predicate, arg, { timeout: WAIT_MS, polling: 100 });
    }

    async function set(selector, value) {
      if ((await page.$eval(selector, (e) => e.tagName)) === 'SELECT') {
        await page.selectOption(selector, value);
      } else {
        await page.fill(selector, value);
        await page.dispatchEvent(selector, 'change');
      }
    }

    check('opening the tab analyses one batch of the seed preset and draws every tensor', async () => {
      assert.equal((await inside()).source, 'none');
      assert.match(await page.textContent('#inside-source'), /Nothing analysed yet/);
      // The first opening analyses the explorer's model by itself: no button is pressed.
      await page.click('#tab-inside');
      await waitFor(() => document.querySelector('#inside').dataset.source === 'batch'
        || !document.querySelector('#inside-message').hidden);
      assert.ok(await page.$eval('#inside-message', (m) => m.hidden), await page.textContent('#inside-message'));
      const shown = await inside();
      // The model worker made it, on its own copy of the explorer's model.
      assert.equal(shown.madeIn, 'worker');
      assert.equal(Number(shown.modules), SEED_MODULES);
      // Embedding, 16 tensors per layer (4 attention linears, 2 norms, 2 feed-forward linears,
      // each weight and bias), the output weight and bias.
      assert.equal(Number(shown.tensors), 1 + 4 * 16 + 2);
      const source = await page.textContent('#inside-source');
      assert.match(source, /the explorer's text \(\d+ tokens/);
      await waitFor(() => Number(document.querySelector('#inside').dataset.draws) >= 3);
      for (const canvas of ['#gradient-panels', '#activation-grid']) {
        const stats = await canvasStats(page, canvas);
        assert.ok(stats.nonBackground > 0.05, `${canvas} looks empty: ${JSON.stringify(stats)}`);
      }
      // Four columns of histograms, one cell per module.
      const height = await page.$eval('#activation-grid', (canvas) => canvas.height);
      assert.equal(height, Math.ceil(SEED_MODULES / 4) * 170);
      // Five rows of smallest and largest norms; the key biases are left out and said so.
      assert.equal(await page.locator('#gradient-extremes tbody tr').count(), 5);
      assert.doesNotMatch(await page.textContent('#gradient-extremes'), /key\.bias/);
      assert.match(await page.textContent('.inside .note'), /4 attention key bias tensors are left out/);
      // ReLU after the first linear: about half of each layer's activations are zero, not 90 %.
      assert.equal(Number(shown.sparse), 0);
      assert.equal(await page.locator('#dead-neurons tbody tr').count(), 4);
      // A ReLU model has exact zeros: the note that "0 dead" means nothing stays hidden.
      assert.ok(await page.$eval('#dead-note', (note) => note.hidden));
      // Leaving the tab and coming back shows the same analysis, not a new one.
      await page.click('#tab-explore');
      await page.click('#tab-inside');
      assert.equal(await page.textContent('#inside-source'), source);
      // The charts save as PNG and every number as JSON.
      await mkdir(path.join(REPO, 'target/downloads'), { recursive: true });
      const save = async (button) => {
        const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
        const file = path.join(REPO, 'target/downloads', `${backend}-${download.suggestedFilename()}`);
        await download.saveAs(file);
        return readFile(file);
      };
      const png = await save('#activation-grid-png');
      assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
      const saved = JSON.parse((await save('#inside-json')).toString('utf8'));
      assert.equal(saved.gradients.length, 1 + 4 * 16 + 2);
      assert.equal(saved.activations.length, SEED_MODULES);
      assert.equal(saved.activations[0].histogram.counts.length, 50);
      // Each distinct tensor once, under its role: post-LN's layer output is not a second,
      // identical histogram.
      const sites = saved.activations.map((a) => `${a.role}@${a.layer}`);
      assert.equal(new Set(sites).size, sites.length, sites.join(' '));
      assert.equal(saved.activations.filter((a) => a.role === 'block_output').length, 4);
      assert.equal(saved.thresholds.fluctuation, 1);
      // Hovering the gradient panels reads out one tensor.
      const box = await page.locator('#gradient-panels').boundingBox();
      await page.mouse.move(box.x + box.width * 0.75, box.y + box.height * 0.25);
      await waitFor(() => /norm [\d.e+-]+, ‖g‖\/‖w‖/.test(document.querySelector('#gradient-readout').textContent));
      // A threshold edit re-runs the detectors: with an exploding limit below every norm,
      // every judged tensor is flagged.
      await set('#threshold-exploding', '1e-30');
      await waitFor(() => Number(document.querySelector('#inside').dataset.findings) >= 60);
      assert.match(await page.textContent('#gradient-findings'), /exploding gradient: \S+ \(norm/);
      await set('#threshold-exploding', '1000');
      await waitFor(() => !/exploding/.test(document.querySelector('#inside').dataset.problems));
      // Bad input is refused in words and the threshold in force stays.
      await set('#threshold-exploding', 'lots');
      assert.equal(await page.inputValue('#threshold-exploding'), '1e3');
      assert.match(await page.textContent('#inside-message'), /“lots” is not a positive number; the threshold stays 1e3/);
      await set('#threshold-exploding', '1000');
      assert.ok(await page.$eval('#inside-message', (m) => m.hidden));
    });

    check('the dying-ReLU preset flags the sparse feed-forward outputs and their dead units', async () => {
      await page.click('#tab-train');
      await page.click('#train-reset');
      await set('#train-problem', 'dying-relu');
      assert.match(await page.textContent('#train-problem-description'), /−3/);
      await set('#train-batch', '16');
      await page.click('#train-step');
      await waitFor(() => Number(document.querySelector('#training').dataset.steps) === 1
        && document.querySelector('#training').dataset.phase === 'paused');
      await page.click('#tab-inside');
      await waitFor(() => document.querySelector('#inside').dataset.source === 'training');
      const shown = await inside();
      assert.equal(Number(shown.sparse), 2, 'both layers\' feed-forward outputs are over 90 % zero');
      assert.ok(Number(shown.dead) > 0.9 * 2 * 256, `dead units: ${shown.dead}`);
      const warnings = await page.textContent('#activation-warnings');
      assert.match(warnings, /layers\.0\.ff\.activation: \d+\.\d% of the outputs are exactly zero/);
      assert.match(await page.textContent('#dead-neurons'), /of 256/);
    });

    check('the exploding preset raises the exploding flag and the table names the tensors', async () => {
      await page.click('#tab-train');
      await page.click('#train-reset');
      await set('#train-problem', 'exploding');
      // The preset's settings are shown in the form.
      assert.equal(await page.inputValue('#train-lr'), '10');
      assert.equal(await page.inputValue('#train-optimizer'), 'sgd');
      assert.equal(await page.inputValue('#train-clip'), '0');
      await set('#train-batch', '16');
      await set('#train-steps', '40');
      await page.click('#train-start');
      // Training runs until the numbers overflow (a NaN pause) or the steps are done; the
      // exploding detector must have fired on the way.
      await waitFor(() => ['paused', 'done'].includes(document.querySelector('#training').dataset.phase)
        && !document.querySelector('#train-start').disabled);
      await page.click('#tab-inside');
      await waitFor(() => /exploding/.test(document.querySelector('#inside').dataset.problems));
      const findings = await page.textContent('#gradient-findings');
      const flagged = [...findings.matchAll(/exploding gradient: (\S+) \(norm ([\d.]+e\d+) > 1e3\)/g)].map((m) => m[1]);
      assert.ok(flagged.length > 0, findings);
      // The largest-norm column of the table names the flagged tensors.
      const largest = await page.$$eval('#gradient-extremes tbody tr', (rows) => rows.map((row) => row.cells[2].textContent));
      assert.ok(flagged.some((path) => largest.includes(path)), `${flagged} vs ${largest}`);
      // The heatmap over training has a column per step.
      const heatmap = await canvasStats(page, '#gradient-heatmap');
      assert.ok(heatmap.nonBackground > 0.05, JSON.stringify(heatmap));
      await page.screenshot({ path: path.join(SCREENSHOTS, `${backend}-inside-exploding.png`), fullPage: true });
      await page.click('#tab-train');
      await page.click('#train-reset');
      await set('#train-problem', 'healthy');
    });
  });
}
