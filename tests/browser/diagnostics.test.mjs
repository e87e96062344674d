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
    const memoryTable = () => page.$$eval('#memory-table tr', (rows) => rows.map((row) => [...row.cells].map((c) => c.textContent)));
    /** A byte count as the table writes it, 14,688,160. */
    const bytes = (text) => Number(text.replaceAll(',', ''));

    check('counts, FLOPs, memory and weight statistics describe the model that runs', async () => {
      const shown = await diagnostics();
      assert.equal(Number(shown.params), SEED_PARAMETERS);
      // Counts are written as the explorer writes them: 3,672,040.
      const grouped = SEED_PARAMETERS.toLocaleString('en-US');
      assert.equal(await page.textContent('#param-counts'), `${grouped} parameters: ${grouped} trainable, 0 frozen`);
      const tokens = Number((await page.textContent('#forward')).match(/for (\d+) tokens/)[1]);
      assert.equal(Number(shown.flops), seedFlops(tokens));
      assert.match(await page.textContent('#flops-note'), new RegExp(`\\(1 × ${tokens} tokens\\)`));
      // The table, biggest first, then by path.
      assert.equal(await page.locator('#leaf-table tbody tr').count(), SEED_TENSORS);
      assert.equal(await page.textContent('#leaf-table tbody tr:first-child td:first-child'), 'layers.0.ff.linear1.weight');
      assert.equal(await page.textContent('#leaf-table tbody tr:first-child td:nth-child(3)'), (256 * 1024).toLocaleString('en-US'));
      await page.click('#sort-path');
      assert.equal(await page.textContent('#leaf-table tbody tr:first-child td:first-child'), 'embedding.weight');
      await page.click('#sort-path');
      assert.equal(await page.textContent('#leaf-table tbody tr:first-child td:first-child'), 'output.weight');
      // Parameter memory is the count times four bytes; the training total is parameters,
      // gradients and AdamW's two moments of the trainable ones, plus the activations a step
      // keeps for backward (computed from shapes for the batch and length shown), and not the
      // explorer's trace.
      const memory = await memoryTable();
      assert.deepEqual(memory[0].slice(0, 1).concat(memory[0][2]), ['parameters (f32, all)', (4 * SEED_PARAMETERS).toLocaleString('en-US')]);
      assert.equal(await page.inputValue('#memory-batch'), '64');
      assert.equal(await page.inputValue('#memory-seq'), '512');
      const saved = memory.find((row) => row[0].startsWith('activations kept for backward, 64 × 512 tokens (computed from shapes)'));
      assert.ok(saved, JSON.stringify(memory));
      const total = memory.find((row) => row[0].startsWith('training step with AdamW'));
      assert.equal(bytes(total[2]), 4 * 4 * SEED_PARAMETERS + bytes(saved[2]));
      const trace = memory.find((row) => row[0].startsWith('not in the total'));
      assert.ok(bytes(trace[2]) > 0);
      assert.match(await page.textContent('#memory-note'), /computed from shapes, not measured/);
      // A smaller step keeps less; a bad length is refused in words.
      await page.fill('#memory-batch', '8');
      await page.dispatchEvent('#memory-batch', 'change');
      await waitFor(() => [...document.querySelectorAll('#memory-table tr')].some((row) => row.cells[0].textContent.startsWith('activations kept for backward, 8 × 512')));
      assert.ok(bytes((await memoryTable()).find((row) => row[0].startsWith('activations kept'))[2]) < bytes(saved[2]));
      await page.fill('#memory-seq', '100000');
      await page.dispatchEvent('#memory-seq', 'change');
      assert.equal(await page.textContent('#diagnostics-message'), 'The sequence length must be between 1 and 512.');
      await page.fill('#memory-seq', '512');
      await page.dispatchEvent('#memory-seq', 'change');
      assert.ok(await page.$eval('#diagnostics-message', (m) => m.hidden));
      await page.fill('#memory-batch', '64');
      await page.dispatchEvent('#memory-batch', 'change');
      // Weight statistics are read back from the device.
      await waitFor((n) => Number(document.querySelector('#diagnostics').dataset.stats) === n, SEED_TENSORS);
      assert.match(await page.textContent('#param-overall'), new RegExp(`All ${grouped} weights: mean .*% with \\|w\\| < 1e-6\\.`));
      await page.click('#param-stats tbody tr:nth-child(3)');
      for (const canvas of ['#param-histogram', '#flops-chart']) {
        const stats = await canvasStats(page, canvas);
        assert.ok(stats.nonBackground > 0.02, `${canvas} looks empty: ${JSON.stringify(stats)}`);
      }
      // The seed model's attention term passes its linear layers only beyond 512 tokens.
      await page.screenshot({ path: path.join(SCREENSHOTS, `${backend}-diagnostics.png`), fullPage: true });
    });

    check('without an input the FLOPs note says what it needs instead of "1 × 0 tokens"', async () => {
      await page.click('#tab-explore');
      const text = await page.inputValue('#text');
      await page.fill('#text', '');
      await page.click('#tab-diagnostics');
      await waitFor(() => /No input in the explorer yet/.test(document.querySelector('#flops-note').textContent));
      const note = await page.textContent('#flops-note');
      assert.doesNotMatch(note, /× 0 tokens/);
      assert.match(note, /type some text there.*\(512 tokens\)/);
      assert.equal(Number((await diagnostics()).flops), seedFlops(512));
      const trace = (await memoryTable()).find((row) => row[0].startsWith('not in the total'));
      assert.equal(trace[2], '—');
      await page.click('#tab-explore');
      await page.fill('#text', text);
      await page.click('#tab-diagnostics');
      await waitFor(() => /explorer's input \(1 × \d+ tokens\)/.test(document.querySelector('#flops-note').textContent));
    });

    check('freezing modules changes the counts and training keeps them fixed', async () => {
      await page.check('#freeze-embedding');
      await page.check('#freeze-layers-0');
      await waitFor((n) => Number(document.querySelector('#diagnostics').dataset.frozen) === n, EMBEDDING + LAYER);
      assert.equal(Number((await diagnostics()).trainable), SEED_PARAMETERS - EMBEDDING - LAYER);
      // Frozen tensors have no gradient and no optimizer state; their weights still count.
      const memory = await memoryTable();
      const row = (start) => bytes(memory.find((cells) => cells[0].startsWith(start))[2]);
      assert.equal(row('gradients'), 4 * (SEED_PARAMETERS - EMBEDDING - LAYER));
      assert.equal(row('optimizer state: AdamW'), 8 * (SEED_PARAMETERS - EMBEDDING - LAYER));
      assert.equal(row('parameters'), 4 * SEED_PARAMETERS);
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
      const kept = report.memory_bytes.saved_for_backward;
      assert.deepEqual([kept.batch, kept.seq], [64, 512]);
      assert.equal(kept.total, Object.values(kept.by_part).reduce((a, b) => a + b, 0));
      assert.equal(report.memory_bytes.training_total_adamw, 4 * 4 * SEED_PARAMETERS + kept.total);
      assert.ok(report.memory_bytes.explorer_trace_measured > 0);
      await page.click('#arch-layer-2');
      assert.ok(await page.isVisible('#explore-tab'));
      assert.equal(await page.inputValue('#layer'), '2');
    });
  });
}
