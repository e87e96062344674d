// Real-browser tests of the model diagnostics tab in headless Chromium, on WebGPU (SwiftShader)
// and on the CPU fallback.
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
const DOWNLOADS = path.join(REPO, 'target/downloads');
const WAIT_MS = 5 * 60_000;

/** The seed preset: 3,672,040 parameters in 67 tensors; the embedding and layer 0 hold these. */
const SEED_PARAMETERS = 3_672_040;
const SEED_TENSORS = 67;
const EMBEDDING = 1000 * 256;
const LAYER = 4 * (256 * 256 + 256) + 4 * 256 + (256 * 1024 + 1024) + (1024 * 256 + 256);

/** Matrix-product FLOPs of the seed model on one sequence of `s` tokens (multiply-add = 2):
 * per token 4 layers × (4 projections 2·d² + two feed-forward linears 2·d·d_ff) + the head 2·d·V,
 * plus QKᵀ and softmax·V, 2·s²·d each per layer. */
const seedFlops = (s) => s * (4 * (4 * 2 * 256 * 256 + 2 * 2 * 256 * 1024) + 2 * 256 * 1000) + 4 * 2 * 2 * s * s * 256;

for (const [backend] of Object.entries(BACKENDS)) {
  describe(`model diagnostics on ${backend}`, () => {
    const suite = pageSuite(DIST, backend, '?model=seed&tab=diagnostics', { timeout: WAIT_MS });
    const { state, problems } = suite;
    // Set by the suite's before hook.
    let page;
    before(() => {
      page = suite.page;
    });

    const check = checker(it, problems, state, { timeout: 10 * 60_000 });
    const diagnostics = () => page.$eval('#diagnostics', (section) => ({ ...section.dataset }));
    const waitFor = (predicate, arg) => page.waitForFunction(predicate, arg, { timeout: WAIT_MS, polling: 100 });

    check('counts, FLOPs, memory and weight statistics describe the model that runs', async () => {
      const shown = await diagnostics();
      assert.equal(Number(shown.params), SEED_PARAMETERS);
      assert.equal(await page.textContent('#param-counts'), `${SEED_PARAMETERS} parameters: ${SEED_PARAMETERS} trainable, 0 frozen`);
      const tokens = Number((await page.textContent('#forward')).match(/for (\d+) tokens/)[1]);
      assert.equal(Number(shown.flops), seedFlops(tokens));
      // The table, biggest first, then by path.
      assert.equal(await page.locator('#leaf-table tbody tr').count(), SEED_TENSORS);
      assert.equal(await page.textContent('#leaf-table tbody tr:first-child td:first-child'), 'layers.0.ff.linear1.weight');
      await page.click('#sort-path');
      assert.equal(await page.textContent('#leaf-table tbody tr:first-child td:first-child'), 'embedding.weight');
      await page.click('#sort-path');
      assert.equal(await page.textContent('#leaf-table tbody tr:first-child td:first-child'), 'output.weight');
      // Parameter memory is the count times four bytes; the activations measured from the trace
      // equal the ones computed from shapes.
      const memory = await page.$$eval('#memory-table tr', (rows) => rows.map((row) => [...row.cells].map((c) => c.textContent)));
      assert.deepEqual(memory[0].slice(0, 1).concat(memory[0][2]), ['parameters (f32)', String(4 * SEED_PARAMETERS)]);
      const measured = memory.find((row) => row[0].startsWith('activations of the explorer'));
      const computed = memory.find((row) => row[0].startsWith('the same, computed'));
      assert.ok(Number(measured[2]) > 0);
      assert.equal(measured[2], computed[2]);
      // Weight statistics are read back from the device.
      await waitFor((n) => Number(document.querySelector('#diagnostics').dataset.stats) === n, SEED_TENSORS);
      assert.match(await page.textContent('#param-overall'), new RegExp(`All ${SEED_PARAMETERS} weights: mean`));
      await page.click('#param-stats tbody tr:nth-child(3)');
      for (const canvas of ['#param-histogram', '#flops-chart']) {
        const stats = await canvasStats(page, canvas);
        assert.ok(stats.nonBackground > 0.02, `${canvas} looks empty: ${JSON.stringify(stats)}`);
      }
      // The seed model's attention term passes its linear layers only beyond 512 tokens.
      await page.screenshot({ path: path.join(SCREENSHOTS, `${backend}-diagnostics.png`), fullPage: true });
    });

    check('freezing modules changes the counts and training keeps them fixed', async () => {
      await page.check('#freeze-embedding');
      await page.check('#freeze-layers-0');
      await waitFor((n) => Number(document.querySelector('#diagnostics').dataset.frozen) === n, EMBEDDING + LAYER);
      assert.equal(Number((await diagnostics()).trainable), SEED_PARAMETERS - EMBEDDING - LAYER);
      await page.click('#tab-train');
      assert.match(await page.textContent('#train-frozen'), /Frozen: embedding, layers\.0/);
      await page.click('#train-reset');
      await page.fill('#train-batch', '8');
      await page.dispatchEvent('#train-batch', 'change');
      await page.click('#train-step');
      await waitFor(() => Number(document.querySelector('#training').dataset.steps) === 1
        && document.querySelector('#training').dataset.phase === 'paused');
      assert.ok(await page.$eval('#train-message', (m) => m.hidden), await page.textContent('#train-message'));
      await page.click('#train-reset');
      await page.click('#tab-diagnostics');
      await page.uncheck('#freeze-embedding');
      await page.uncheck('#freeze-layers-0');
      await waitFor(() => Number(document.querySelector('#diagnostics').dataset.frozen) === 0);
    });

    check('the benchmark reports median and p95 per pass, and can be cancelled', async () => {
      await page.click('#bench-start');
      await waitFor(() => document.querySelector('#diagnostics').dataset.bench === 'running');
      if (backend === 'webgpu') {
        // Software WebGPU runs the seed model in seconds per pass: cancel after the first runs.
        await waitFor(() => Number(document.querySelector('#bench-progress').value) > 0);
        await page.click('#bench-cancel');
        await waitFor(() => document.querySelector('#diagnostics').dataset.bench !== 'running');
        assert.match(await page.textContent('#diagnostics-message'), /Benchmark cancelled/);
      } else {
        await waitFor(() => document.querySelector('#diagnostics').dataset.bench === '2');
        const rows = await page.$$eval('#bench-table tbody tr', (rows) => rows.map((row) => [...row.cells].map((c) => c.textContent)));
        assert.deepEqual(rows.map((row) => row[1]), ['forward', 'forward + backward']);
        for (const [, , median, p95, rate] of rows) {
          assert.ok(Number(median) > 0 && Number(p95) >= Number(median) && Number(rate) > 0, rows.join(' | '));
        }
      }
    });

    check('the report exports as JSON with the numbers shown, and a layer block opens its attention', async () => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-diagnostics')]);
      await mkdir(DOWNLOADS, { recursive: true });
      const saved = path.join(DOWNLOADS, `${backend}-diagnostics.json`);
      await download.saveAs(saved);
      const report = JSON.parse(await readFile(saved, 'utf8'));
      assert.equal(report.parameters.total, SEED_PARAMETERS);
      assert.equal(report.parameters.tensors.length, SEED_TENSORS);
      assert.equal(report.flops.matmul_total, Number((await diagnostics()).flops));
      assert.equal(report.memory_bytes.parameters, 4 * SEED_PARAMETERS);
      assert.equal(report.memory_bytes.activations_measured, report.memory_bytes.activations_from_shapes);
      await page.click('#arch-layer-2');
      assert.ok(await page.isVisible('#explore-tab'));
      assert.equal(await page.inputValue('#layer'), '2');
    });
  });
}
