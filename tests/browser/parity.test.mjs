// The PyTorch parity fixtures on the page's own code path, in headless Chromium on WebGPU (SwiftShader) and on the CPU fallback.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKENDS, LOAD_TIMEOUT_MS, checker, launch, onBackend, watchProblems } from './browser.mjs';
import { serve } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const FIXTURES = path.join(REPO, 'tests/fixtures');

/** The tolerances tests/parity.rs holds burn-flex to natively: every backend must meet them. */
const TOLERANCE = {
  attention: 1e-5, // absolute, per weight
  modules: 1e-4, // absolute, per sub-module output value
  logits: 1e-4, // absolute
  gradient: 1e-4, // relative to max(|reference|, the gradient's scale)
  loss: 1e-5, // relative
  zeroNorm: 1e-6, // a gradient zero up to round-off (a key bias's) must have a norm below this, times the largest reference norm (at least 1)
};
const STATISTICS = ['mean', 'std', 'min', 'max', 'norm'];

/** The names, shapes and sizes in a safetensors file's header, read without the page's code. */
async function safetensorsHeader(file) {
  const bytes = await readFile(file);
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
  delete header.__metadata__;
  return Object.fromEntries(Object.entries(header).map(([name, { shape }]) => [name, shape.reduce((a, b) => a * b, 1)]));
}

/** How many values the page must have compared, counted from the fixture files themselves. */
async function expectedCounts(name) {
  const sizes = await safetensorsHeader(path.join(FIXTURES, `${name}.expected.safetensors`));
  const sum = (prefix) => Object.entries(sizes).filter(([key]) => key.startsWith(prefix)).reduce((total, [, size]) => total + size, 0);
  const json = JSON.parse(await readFile(path.join(FIXTURES, `${name}.expected.json`), 'utf8'));
  return {
    attention: sum('attention.layers.'),
    modules: sum('modules.'),
    logits: sizes.logits,
    parameters: Object.keys(json.gradients).length,
    largestNorm: Math.max(1, ...Object.values(json.gradients).map((gradient) => gradient.norm)),
    loss: json.loss,
  };
}

/** Asserts one quantity's report: a finite largest error within `tolerance`, over `count` values. */
function assertWithin(what, difference, tolerance, count) {
  assert.equal(typeof difference.largest, 'number', `${what}: the largest error is ${difference.largest} (NaN?)`);
  assert.ok(Number.isFinite(difference.largest), `${what}: the largest error is ${difference.largest}`);
  // To the last bit but one: serde_json may parse a fixture's number one ULP away from JavaScript.
  assert.ok(Math.abs(difference.tolerance - tolerance) <= 1e-12 * tolerance, `${what}: the page holds it to ${difference.tolerance}, the test to ${tolerance}`);
  if (count !== undefined) assert.equal(difference.compared, count, `${what}: compared ${difference.compared} values, the fixture has ${count}`);
  const worst = difference.worst ? ` at ${difference.worst.what}[${difference.worst.index}]: ${difference.worst.actual} vs PyTorch ${difference.worst.expected}` : '';
  assert.ok(difference.largest <= tolerance, `${what}: largest error ${difference.largest.toExponential(2)} > ${tolerance}${worst}`);
}

for (const [backend, { label }] of Object.entries(BACKENDS)) {
  describe(`parity with PyTorch on ${backend}`, () => {
    let server;
    let browser;
    const state = { current: 'start' };
    const problems = [];

    before(async () => {
      server = await serve(DIST, 0, { fixtures: FIXTURES });
      browser = await launch(backend);
    });

    after(async () => {
      await browser?.close();
      await server?.close();
    });

    const check = checker(it, problems, state, { timeout: LOAD_TIMEOUT_MS + 60_000, notFound: () => server.notFound });

    /** Opens `?parity=name` and waits for its report; throws with the page's words on an error. */
    async function runParity(name) {
      const page = await browser.newPage();
      watchProblems(page, problems, () => state.current);
      try {
        await page.goto(`${server.url}${onBackend(`?parity=${name}`, backend)}`);
        const outcome = await page.waitForFunction(
          () => ['done', 'error'].includes(document.querySelector('#parity')?.dataset.state) && document.querySelector('#parity').dataset.state,
          null, { timeout: LOAD_TIMEOUT_MS, polling: 100 },
        );
        const status = await page.textContent('#parity-status');
        if ((await outcome.jsonValue()) === 'error') throw new Error(`the parity page shows an error: ${status}`);
        const report = JSON.parse(await page.textContent('#parity'));
        const attributes = await page.$eval('#parity', (pre) => ({ ...pre.dataset }));
        return { report, attributes, status };
      } finally {
        await page.close();
      }
    }

    for (const name of ['tiny', 'seed']) {
      check(`the ${name} fixture matches PyTorch on ${backend}: forward, attention, loss and gradients`, async () => {
        const { report, attributes, status } = await runParity(name);
        const counts = await expectedCounts(name);
        assert.equal(report.fixture, name);
        assert.ok(report.backend.startsWith(label), `the page ran on "${report.backend}", expected "${label}…"`);
        assert.equal(report.webgpu, backend === 'webgpu');
        assert.equal(attributes.backend, report.backend);

        const { forward, gradients } = report;
        assertWithin('attention', forward.attention, TOLERANCE.attention, counts.attention);
        assertWithin('module outputs', forward.modules, TOLERANCE.modules, counts.modules);
        assertWithin('logits', forward.logits, TOLERANCE.logits, counts.logits);
        assertWithin('loss', gradients.loss, TOLERANCE.loss, 1);
        assert.ok(Math.abs(gradients.loss.worst.expected - counts.loss) <= 1e-12 * counts.loss, 'the page compared with the fixture\'s loss');
        assert.deepEqual(Object.keys(gradients.statistics).sort(), [...STATISTICS].sort());
        for (const key of STATISTICS) assertWithin(`gradient ${key}`, gradients.statistics[key], TOLERANCE.gradient);
        assertWithin('gradients zero up to round-off', gradients.zero_norms, TOLERANCE.zeroNorm * counts.largestNorm);
        assert.equal(gradients.statistics.norm.compared + gradients.zero_norms.compared, counts.parameters,
          'one gradient per parameter');
        assert.ok(gradients.zero_norms.compared > 0, 'the key biases, whose gradient softmax cancels, were checked');

        // The data attributes carry the same numbers as the JSON.
        assert.equal(Number(attributes.attention), forward.attention.largest);
        assert.equal(Number(attributes.logits), forward.logits.largest);
        assert.equal(Number(attributes.gradients), Math.max(...STATISTICS.map((key) => gradients.statistics[key].largest)));
        assert.equal(report.within_tolerance, true);
        assert.match(status, /^Within tolerance on /);

        const largest = Object.fromEntries(STATISTICS.map((key) => [key, gradients.statistics[key].largest.toExponential(2)]));
        console.log(`${backend} ${name} vs PyTorch, largest differences: attention ${forward.attention.largest.toExponential(2)}, `
          + `module outputs ${forward.modules.largest.toExponential(2)} (${forward.modules.worst.what}), `
          + `logits ${forward.logits.largest.toExponential(2)}, loss (relative) ${gradients.loss.largest.toExponential(2)}, `
          + `gradient statistics (relative) ${JSON.stringify(largest)}, zero-gradient norms ${gradients.zero_norms.largest.toExponential(2)}; `
          + `forward ${report.forward_ms.toFixed(0)} ms, analysis ${report.analysis_ms.toFixed(0)} ms`);
      });
    }

    for (const name of ['bert-mlm', 'gpt2', 'roberta-mlm']) {
      check(`the HuggingFace ${name} folder matches transformers on ${backend}: attention, hidden states, logits, loss and gradients`, async () => {
        const files = (await readdir(path.join(FIXTURES, 'hf', name))).join(',');
        const { report, status } = await runParity(`hf/${name}&files=${files}`);
        assert.ok(report.backend.startsWith(label), `the page ran on "${report.backend}", expected "${label}…"`);
        const reference = JSON.parse(await readFile(path.join(FIXTURES, 'hf', `${name}.expected.json`), 'utf8'));
        const { forward, gradients } = report;
        assertWithin('attention', forward.attention, TOLERANCE.attention);
        assertWithin('hidden states', forward.hidden, TOLERANCE.modules);
        assertWithin('logits', forward.logits, TOLERANCE.logits);
        assert.ok(forward.attention.compared > 0 && forward.hidden.compared > 0 && forward.logits.compared > 0);
        assertWithin('loss', gradients.loss, TOLERANCE.loss, 1);
        assert.ok(Math.abs(gradients.loss.worst.expected - reference.analysis.loss) <= 1e-12 * reference.analysis.loss, 'the page compared with transformers\' loss');
        for (const key of STATISTICS) assertWithin(`gradient ${key}`, gradients.statistics[key], TOLERANCE.gradient);
        const largestNorm = Math.max(1, ...Object.values(reference.analysis.gradients).map((gradient) => gradient.norm));
        assertWithin('gradients zero up to round-off', gradients.zero_norms, TOLERANCE.zeroNorm * largestNorm);
        assert.equal(gradients.statistics.norm.compared + gradients.zero_norms.compared, Object.keys(reference.analysis.gradients).length,
          'one gradient per HuggingFace parameter');
        assert.equal(report.within_tolerance, true);
        assert.match(status, /^Within tolerance on /);
        console.log(`${backend} hf/${name} vs transformers, largest differences: attention ${forward.attention.largest.toExponential(2)}, `
          + `hidden states ${forward.hidden.largest.toExponential(2)}, logits ${forward.logits.largest.toExponential(2)}, `
          + `loss (relative) ${gradients.loss.largest.toExponential(2)}, gradient statistics (relative) `
          + `${JSON.stringify(Object.fromEntries(STATISTICS.map((key) => [key, gradients.statistics[key].largest.toExponential(2)])))}; `
          + `forward ${report.forward_ms.toFixed(0)} ms, analysis ${report.analysis_ms.toFixed(0)} ms`);
      });
    }

    if (backend === 'cpu') {
      check('an unknown fixture is refused in words, not with a panic', async () => {
        const page = await browser.newPage();
        try {
          // This page's own failures are what is tested; it reports them in the page, not the console.
          watchProblems(page, problems, () => state.current);
          await page.goto(`${server.url}?parity=../../etc/passwd`);
          await page.waitForFunction(() => document.querySelector('#parity')?.dataset.state === 'error', null, { timeout: LOAD_TIMEOUT_MS });
          assert.match(await page.textContent('#parity-status'), /there is no parity fixture called “\.\.\/\.\.\/etc\/passwd”: use one of tiny, seed/);
        } finally {
          await page.close();
        }
      });
    }
  });
}
