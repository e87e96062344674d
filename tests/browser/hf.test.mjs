// HuggingFace model folders (tests/fixtures/hf/, made with `transformers`) opened in the page on WebGPU (SwiftShader) and on the CPU: through the folder picker (webkitdirectory) and as a multi-file pick (what a drop gives), checked against transformers' own numbers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, writeFile, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKENDS, LOAD_TIMEOUT_MS, checker, launch, onBackend, waitForApp, watchProblems } from './browser.mjs';
import { serve } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const HF = path.join(REPO, 'tests/fixtures/hf');
const DOWNLOADS = path.join(REPO, 'target/downloads');
const STEP_TIMEOUT_MS = 120_000;
/** transformers' attention, to the tolerance tests/hf.rs holds burn-flex to natively. */
const ATTENTION_TOLERANCE = 1e-5;

/** A safetensors file's F32 tensors, read without the page's code: name → { shape, values }. */
async function readSafetensors(file) {
  const bytes = await readFile(file);
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__' || info.dtype !== 'F32') continue;
    const [start, end] = info.data_offsets;
    const data = bytes.subarray(8 + length + start, 8 + length + end);
    tensors[name] = { shape: info.shape, values: new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) };
  }
  return tensors;
}

/** GPT-2's byte-level alphabet (`bytes_to_unicode`), inverted: character → byte. */
function byteLevelDecoder() {
  const printable = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table = new Map();
  let next = 256;
  for (let b = 0; b < 256; b++) {
    table.set(String.fromCodePoint(printable.includes(b) ? b : next++), b);
  }
  return table;
}
const BYTES = byteLevelDecoder();

/** How the page must show a byte-level token: its text with ␣ for a space, or hex bytes. */
function byteLevelDisplay(token) {
  const bytes = Uint8Array.from([...token].map((ch) => BYTES.get(ch)));
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).replaceAll(' ', '␣');
  } catch {
    return [...bytes].map((b) => `<${b.toString(16).toUpperCase().padStart(2, '0')}>`).join('');
  }
}

async function expected(name) {
  return JSON.parse(await readFile(path.join(HF, `${name}.expected.json`), 'utf8'));
}

for (const [backend, { label }] of Object.entries(BACKENDS)) {
  describe(`HuggingFace models on ${backend}`, () => {
    let server;
    let browser;
    let page;
    const state = { current: 'page load' };
    const problems = [];

    before(async () => {
      server = await serve(DIST);
      browser = await launch(backend);
      page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
      page.setDefaultTimeout(STEP_TIMEOUT_MS);
      watchProblems(page, problems, () => state.current);
      await page.goto(`${server.url}${onBackend('?model=seed', backend)}`);
      await waitForApp(page, { runs: 1, draws: 1 });
      assert.ok((await page.textContent('#backend')).startsWith(label));
      await mkdir(DOWNLOADS, { recursive: true });
    }, { timeout: LOAD_TIMEOUT_MS + 60_000 });

    after(async () => {
      await browser?.close();
      await server?.close();
    });

    const check = checker(it, problems, state, { timeout: 4 * STEP_TIMEOUT_MS, notFound: () => server.notFound });

    /** Opens a model through `input` (the folder picker or the multi-file one) and waits for its first run. */
    async function openModel(input, files) {
      const models = await page.$eval('#app', (app) => Number(app.dataset.models));
      await page.setInputFiles(input, files);
      await page.waitForFunction((models) => Number(document.querySelector('#app').dataset.models) > models, models);
      await waitForApp(page, {}, STEP_TIMEOUT_MS);
    }

    /** Types `text` (and sentence B) and waits for the run. */
    async function runText(text, textB) {
      const before = Number(await page.$eval('#app', (app) => app.dataset.runs));
      if (textB !== undefined) await page.fill('#text-b', textB);
      await page.fill('#text', text);
      await waitForApp(page, { runs: before + 1 }, STEP_TIMEOUT_MS);
    }

    /** The tokens the page shows (the pin picker lists each as `#i “token”`). */
    async function shownTokens() {
      const options = await page.$$eval('#pin option', (options) => options.slice(1).map((o) => o.textContent));
      return options.map((text) => text.replace(/^#\d+ “/, '').replace(/”$/, ''));
    }

    /** Exports the trace and compares each layer's attention with transformers'. */
    async function assertTraceMatches(name, ids) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-trace')]);
      const saved = path.join(DOWNLOADS, `${backend}-hf-${name}-${download.suggestedFilename()}`);
      await download.saveAs(saved);
      const trace = JSON.parse(await readFile(saved, 'utf8'));
      assert.deepEqual(trace.tokens.map((token) => token.id), ids, 'the trace holds transformers\' token ids');
      const reference = await readSafetensors(path.join(HF, `${name}.expected.safetensors`));
      const layers = Object.keys(reference).filter((key) => key.startsWith('attention.')).length;
      assert.equal(trace.attention.length, layers);
      let largest = 0;
      for (const capture of trace.attention) {
        const want = reference[`attention.${capture.layer}`];
        assert.deepEqual([capture.batch, capture.heads, capture.queries, capture.keys], want.shape);
        capture.values.forEach((value, index) => { largest = Math.max(largest, Math.abs(value - want.values[index])); });
      }
      assert.ok(largest <= ATTENTION_TOLERANCE, `${name}: attention differs from transformers' by ${largest}`);
      return trace;
    }

    /** Runs "Analyse one batch" on the Gradients & activations tab and waits for it. */
    async function analyseOneBatch() {
      await page.click('#tab-inside');
      const before = await page.$eval('#inside', (s) => s.dataset.draws);
      await page.click('#analyse-batch');
      await page.waitForFunction((before) => {
        const inside = document.querySelector('#inside');
        return (inside.dataset.source === 'batch' && inside.dataset.draws !== before && !document.querySelector('#analyse-batch').disabled)
          || !document.querySelector('#inside-message').hidden;
      }, before);
      assert.ok(await page.$eval('#inside-message', (m) => m.hidden), await page.textContent('#inside-message'));
      // A HuggingFace folder is read from its files on the page's thread, and analysed there.
      assert.equal(await page.$eval('#inside', (s) => s.dataset.madeIn), 'page');
    }

    /** The predictions table: position → the ids listed, most likely first. */
    async function predictions() {
      return page.$$eval('#predictions tr[data-position]', (rows) => Object.fromEntries(rows.map((row) => [
        row.dataset.position,
        [...row.querySelectorAll('.prediction')].map((span) => Number(span.dataset.id)),
      ])));
    }

    check('GPT-2 opens from its folder: the status names it, tokens show legibly, attention and next-token predictions are transformers\'', async () => {
      const want = await expected('gpt2');
      await openModel('#open-folder', path.join(HF, 'gpt2'));
      const provenance = await page.textContent('#provenance');
      assert.match(provenance, /GPT-2 .*2 layers × 4 heads, width 32, 43,904 parameters, stored as F32/);
      assert.equal(await page.$eval('#app', (app) => app.dataset.model), 'file');
      assert.ok(await page.$eval('#text-b', (box) => !box.checkVisibility()), 'GPT-2 takes no sentence B');
      await runText(want.text);
      // A folder is read a tensor at a time on the page's thread, and runs there.
      assert.equal(await page.$eval('#app', (app) => app.dataset.ranIn), 'page');
      assert.deepEqual(await shownTokens(), want.tokens.map(byteLevelDisplay));
      await assertTraceMatches('gpt2', want.ids);
      const listed = await predictions();
      assert.equal(Object.keys(listed).length, want.ids.length, 'one row per position');
      for (const [position, ids] of Object.entries(want.top5)) {
        assert.deepEqual(listed[position], ids, `top-5 after position ${position}`);
      }
      assert.match(await page.getAttribute('#predictions .prediction', 'title'), /^id \d+$/);

      // Diagnostics count what transformers counts: the parameters, and (its matrix products)
      // torch's FlopCounterMode for the same forward.
      await page.click('#tab-diagnostics');
      await page.waitForFunction(() => document.querySelector('#param-counts')?.textContent.includes('43,904'));
      const matmul = await page.$$eval('#flops-table tbody tr', (rows) => rows
        .filter((row) => ['linear (matmul)', 'QKᵀ', 'attention · V'].includes(row.cells[0].textContent))
        .reduce((total, row) => total + Number(row.cells[row.cells.length - 1].textContent.replaceAll(',', '')), 0));
      assert.equal(matmul, want.flops, 'matrix-product FLOPs equal torch\'s FlopCounterMode');
      assert.match(await page.textContent('#flops-note'), new RegExp(`1 × ${want.ids.length} tokens`));
      const architecture = await page.textContent('#architecture');
      assert.match(architecture, /also the output head, tied/);
      assert.match(architecture, /final LayerNorm/);

      // "Analyse one batch": GPT-2's next-token loss on the text, transformers' to 4 decimals.
      await analyseOneBatch();
      const source = await page.textContent('#inside-source');
      assert.match(source, /each predicting the next\)/);
      assert.match(source, new RegExp(`loss ${want.analysis.loss.toFixed(4).replace('.', '\\.')}\\.`));
      // wte, wpe, 16 tensors per layer (q, k, v and output split from c_attn/c_proj, two norms,
      // two feed-forward linears, weights and biases), ln_f.
      assert.equal(await page.$eval('#inside', (s) => s.dataset.tensors), String(2 + 2 * 16 + 2));
      await page.click('#tab-explore');
    });

    check('BERT with a masked-LM head opens as picked files: sentence B, [MASK] predictions and attention are transformers\'', async () => {
      const want = await expected('bert-mlm');
      const folder = path.join(HF, 'bert-mlm');
      const files = (await readdir(folder)).map((file) => path.join(folder, file));
      await openModel('#open', files);
      assert.match(await page.textContent('#provenance'), /BERT .*2 layers × 4 heads, width 32, 33,584 parameters, stored as F32/);
      assert.ok(await page.$eval('#text-b', (box) => box.checkVisibility()), 'BERT takes sentence B');
      await runText(want.text, want.text_b);
      assert.deepEqual(await shownTokens(), want.tokens);
      const trace = await assertTraceMatches('bert-mlm', want.ids);
      assert.deepEqual(trace.tokens.map((token) => token.segment), want.token_type_ids, 'sentence B has token type 1');
      assert.deepEqual(await predictions(), want.top5, 'top-5 at the [MASK]');
    });

    check('RoBERTa opens from its folder: positions from 2, <s> … </s></s> … </s> pairs, <mask> predictions and attention are transformers\'', async () => {
      const want = await expected('roberta-mlm');
      await openModel('#open-folder', path.join(HF, 'roberta-mlm'));
      assert.match(await page.textContent('#provenance'), /RoBERTa .*2 layers × 4 heads, width 32, 39,360 parameters, stored as F32.* Put <mask> in the text/);
      assert.ok(await page.$eval('#text-b', (box) => box.checkVisibility()), 'RoBERTa takes sentence B');
      await runText(want.text, want.text_b);
      assert.deepEqual(await shownTokens(), want.tokens.map(byteLevelDisplay));
      await assertTraceMatches('roberta-mlm', want.ids);
      assert.deepEqual(await predictions(), want.top5, 'top-5 at the <mask>');
      assert.match(await page.textContent('#predictions h3'), /at each <mask>/);
    });

    check('GPT-2 without its prefix, its files dropped on the page (vocab.json + old merges.txt, no tokenizer.json), predicts as transformers does', async () => {
      const want = await expected('gpt2-bare');
      const folder = path.join(HF, 'gpt2-bare');
      const files = await Promise.all((await readdir(folder)).map(async (name) => ({ name, bytes: [...await readFile(path.join(folder, name))] })));
      const models = await page.$eval('#app', (app) => Number(app.dataset.models));
      await page.evaluate((files) => {
        const transfer = new DataTransfer();
        for (const { name, bytes } of files) transfer.items.add(new File([new Uint8Array(bytes)], name));
        document.querySelector('#app').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      }, files);
      await page.waitForFunction((models) => Number(document.querySelector('#app').dataset.models) > models, models);
      await waitForApp(page, {}, STEP_TIMEOUT_MS);
      assert.match(await page.textContent('#provenance'), /GPT-2 GPT2Model: 2 layers × 4 heads/);
      await runText(want.text);
      assert.deepEqual(await shownTokens(), want.tokens.map(byteLevelDisplay));
      await assertTraceMatches('gpt2-bare', want.ids);
      const listed = await predictions();
      for (const [position, ids] of Object.entries(want.top5)) assert.deepEqual(listed[position], ids, `top-5 after position ${position}`);
    });

    check('a model folder dropped on the page opens (Chromium drops the directory itself, through DevTools)', async () => {
      // Playwright cannot drop a directory; Chromium's own drag input can, as from the desktop.
      const want = await expected('gpt2');
      const models = await page.$eval('#app', (app) => Number(app.dataset.models));
      const cdp = await page.context().newCDPSession(page);
      const data = { items: [], files: [path.join(HF, 'gpt2')], dragOperationsMask: 1 };
      for (const type of ['dragEnter', 'dragOver', 'drop']) {
        await cdp.send('Input.dispatchDragEvent', { type, x: 640, y: 40, data });
      }
      await cdp.detach();
      await page.waitForFunction((models) => Number(document.querySelector('#app').dataset.models) > models
        || document.querySelector('#load-error')?.checkVisibility(), models);
      assert.ok(await page.$eval('#load-error', (e) => !e.checkVisibility()), await page.textContent('#load-error'));
      await waitForApp(page, {}, STEP_TIMEOUT_MS);
      assert.match(await page.textContent('#provenance'), /GPT-2 GPT2LMHeadModel: 2 layers × 4 heads, width 32, 43,904 parameters/);
      await runText(want.text);
      assert.deepEqual(await shownTokens(), want.tokens.map(byteLevelDisplay));
    });

    check('a BERT encoder without a head (MiniLM-like, old gamma/beta names, padded tokenizer) opens and says it has no head', async () => {
      const want = await expected('bert-plain');
      await openModel('#open-folder', path.join(HF, 'bert-plain'));
      const provenance = await page.textContent('#provenance');
      assert.match(provenance, /3 layers × 4 heads/);
      assert.match(provenance, /no language-model head/);
      assert.match(provenance, /Not used: pooler\.dense\.bias, pooler\.dense\.weight/);
      await runText(want.text, want.text_b);
      assert.deepEqual(await shownTokens(), want.tokens, 'no padding to 128');
      await assertTraceMatches('bert-plain', want.ids);
      assert.equal(await page.$('#predictions'), null, 'no head, no predictions');
      // No head, no loss: "Analyse one batch" shows the activations only, and says why.
      await analyseOneBatch();
      assert.match(await page.textContent('#inside-source'), /^Activations of the explorer's text \(\d+ tokens\); this model has no language-model head/);
      const inside = await page.$eval('#inside', (s) => ({ ...s.dataset }));
      assert.equal(inside.tensors, '0');
      assert.ok(Number(inside.modules) > 3 * 6, `every layer's captures: ${inside.modules}`);
      assert.match(await page.textContent('#inside'), /No gradients to check: the model has no loss/);
      await page.click('#tab-explore');
    });

    check('a folder of an unsupported model type is refused by name and the model in use stays', async () => {
      const before = await page.textContent('#provenance');
      const folder = await mkdtemp(path.join(os.tmpdir(), 'glassbox-llama-'));
      const model = path.join(folder, 'llama');
      await mkdir(model);
      for (const file of await readdir(path.join(HF, 'gpt2'))) {
        await copyFile(path.join(HF, 'gpt2', file), path.join(model, file));
      }
      const config = JSON.parse(await readFile(path.join(model, 'config.json'), 'utf8'));
      await writeFile(path.join(model, 'config.json'), JSON.stringify({ ...config, model_type: 'llama' }));
      await page.setInputFiles('#open-folder', model);
      await page.waitForFunction(() => document.querySelector('#load-error')?.checkVisibility());
      const message = await page.textContent('#load-error');
      assert.match(message, /model_type `llama`; glassbox opens bert, gpt2/);
      assert.match(message, /already loaded is still in use/);
      assert.equal(await page.textContent('#provenance'), before);
    });
  });
}
