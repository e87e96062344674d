// Real-browser tests of sharing: view settings in the address (round trip, back and forward,
// copy link) and a page that asks nothing of any other host and works from a sub-path.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { LOAD_TIMEOUT_MS, canvasStats, checker, launch, waitForApp, watchProblems } from './browser.mjs';
import { serve } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');

// The address logic does not depend on the backend: the CPU runs it fastest.
describe('sharing on cpu', () => {
  let root;
  let server;
  let browser;
  let context;
  const state = { current: 'setup' };
  const problems = [];

  before(async () => {
    // dist/ mounted two folders deep, as on a static host's sub-path.
    root = await mkdtemp(path.join(os.tmpdir(), 'glassbox-host-'));
    await mkdir(path.join(root, 'tutorials'));
    await symlink(DIST, path.join(root, 'tutorials', 'glassbox'));
    server = await serve(root);
    browser = await launch('cpu');
    context = await browser.newContext({ viewport: { width: 1280, height: 1200 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const check = checker(it, problems, state, { timeout: LOAD_TIMEOUT_MS + 120_000, notFound: () => server.notFound });
  const base = () => `${server.url}tutorials/glassbox/`;

  async function open(query, viewport) {
    const page = await context.newPage();
    watchProblems(page, problems, () => state.current);
    if (viewport) await page.setViewportSize(viewport);
    await page.goto(`${base()}${query}`);
    await waitForApp(page, { runs: 1 });
    return page;
  }

  // Clicks `button` and keeps the download: its name, path and bytes.
  async function save(page, button) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
    const file = path.join(root, download.suggestedFilename());
    await download.saveAs(file);
    return { name: download.suggestedFilename(), file, bytes: await readFile(file) };
  }

  // The share of pixels of `canvas` that no pixel of `svg` (drawn by the browser at the canvas'
  // size) within one pixel matches (summed RGB difference up to 60): a 1 px line may land half a
  // pixel apart in the two renderers, a missing or moved mark may not.
  const svgDifference = (page, canvas, svg) => page.evaluate(async ([selector, text]) => {
    const target = document.querySelector(selector);
    const { width, height } = target;
    const image = new Image();
    image.src = URL.createObjectURL(new Blob([text], { type: 'image/svg+xml' }));
    await image.decode();
    const drawn = document.createElement('canvas');
    drawn.width = width;
    drawn.height = height;
    drawn.getContext('2d').drawImage(image, 0, 0, width, height);
    const a = target.getContext('2d').getImageData(0, 0, width, height).data;
    const b = drawn.getContext('2d').getImageData(0, 0, width, height).data;
    const close = (i, j) => Math.abs(a[i] - b[j]) + Math.abs(a[i + 1] - b[j + 1]) + Math.abs(a[i + 2] - b[j + 2]) <= 60;
    let differing = 0;
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        const i = (y * width + x) * 4;
        let matched = false;
        for (let dy = -1; dy <= 1 && !matched; dy += 1) {
          for (let dx = -1; dx <= 1 && !matched; dx += 1) {
            const [u, v] = [x + dx, y + dy];
            if (u >= 0 && v >= 0 && u < width && v < height) matched = close(i, (v * width + u) * 4);
          }
        }
        if (!matched) differing += 1;
      }
    }
    return differing / (width * height);
  }, [canvas, svg]);

  const controls = (page) => page.evaluate(() => ({
    model: document.querySelector('#model').value,
    layer: document.querySelector('#layer').value,
    head: document.querySelector('#head').value,
    view: document.querySelector('#view').value,
    threshold: document.querySelector('#threshold').value,
    text: document.querySelector('#text').value,
  }));

  check('a link reopens exactly its view, and back and forward walk the changes', async () => {
    const page = await open('?model=sort&layer=1&head=2&view=flow&threshold=0.3&text=5+3+1+4');
    await page.waitForFunction(() => document.querySelector('#app').dataset.model === 'sort');
    assert.deepEqual(await controls(page), {
      model: 'sort', layer: '1', head: '2', view: 'flow', threshold: '0.3', text: '5 3 1 4',
    });
    // Every setting is written back into the address, in full.
    await page.waitForFunction(() => new URLSearchParams(location.search).get('tab') === 'explore');
    const shared = new URL(page.url());
    assert.equal(shared.searchParams.get('text'), '5 3 1 4');
    assert.equal(shared.searchParams.get('head'), '2');
    // A change is a new history entry; back and forward restore the controls.
    await page.selectOption('#layer', '0');
    await page.waitForFunction(() => new URLSearchParams(location.search).get('layer') === '0');
    await page.goBack();
    await page.waitForFunction(() => document.querySelector('#layer').value === '1');
    assert.equal(new URL(page.url()).searchParams.get('layer'), '1');
    await page.goForward();
    await page.waitForFunction(() => document.querySelector('#layer').value === '0');
    // Copy link puts the address on the clipboard.
    await page.click('#copy-link');
    await page.waitForFunction(() => document.querySelector('#link-status').textContent !== '');
    assert.equal(await page.textContent('#link-status'), 'Link copied.');
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, page.url());
    // Opening the copied link in a fresh page shows the same view.
    const again = await open(new URL(copied).search);
    await again.waitForFunction(() => document.querySelector('#app').dataset.model === 'sort');
    assert.deepEqual(await controls(again), { ...(await controls(page)) });
    await again.close();
    await page.close();
  });

  check('the page and every tab load from a sub-path and ask no other host for anything', async () => {
    const page = await context.newPage();
    watchProblems(page, problems, () => state.current);
    const requested = [];
    page.on('request', (request) => requested.push(request.url()));
    await page.goto(`${base()}?model=reverse`);
    await waitForApp(page, { runs: 1 });
    for (const tab of ['#tab-train', '#tab-inside', '#tab-diagnostics', '#tab-explore']) {
      await page.click(tab);
    }
    await page.waitForFunction(() => Number(document.querySelector('#diagnostics').dataset.params) > 0);
    const origin = new URL(server.url).origin;
    const foreign = requested.filter((url) => !url.startsWith('data:') && new URL(url).origin !== origin);
    assert.deepEqual(foreign, [], 'requests to other hosts');
    const local = requested.filter((url) => url.startsWith(origin));
    assert.ok(local.every((url) => new URL(url).pathname.startsWith('/tutorials/glassbox/')), local.join('\n'));
    assert.ok(local.some((url) => url.endsWith('.wasm')) && local.some((url) => url.endsWith('reverse.safetensors')));
    assert.deepEqual(server.notFound, []);
    await page.close();
  });

  check('after one visit the page works with the network cut', async () => {
    const page = await open('?model=reverse');
    await page.waitForFunction(() => document.documentElement.dataset.offline !== undefined);
    assert.equal(await page.evaluate(() => document.documentElement.dataset.offline), 'ready');
    await context.setOffline(true);
    try {
      await page.reload();
      await waitForApp(page, { runs: 1 });
      assert.equal(await page.evaluate(() => document.querySelector('#app').dataset.model), 'reverse');
      // A model not opened yet comes from the cache too.
      const models = Number(await page.evaluate(() => document.querySelector('#app').dataset.models));
      await page.selectOption('#model', 'sort');
      await page.waitForFunction((before) => Number(document.querySelector('#app').dataset.models) > before, models);
      assert.equal(await page.evaluate(() => document.querySelector('#app').dataset.model), 'sort');
      assert.ok(await page.$eval('#load-error', (e) => e.hidden || !e.checkVisibility()));
    } finally {
      await context.setOffline(false);
    }
    await page.close();
  });

  check('the view on screen exports as PNG, and its attention as JSON and CSV', async () => {
    const page = await open('?model=reverse&text=3+1+4+1+5');
    const save = async (button) => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
      const file = path.join(root, download.suggestedFilename());
      await download.saveAs(file);
      return { name: download.suggestedFilename(), bytes: await readFile(file) };
    };
    const png = await save('#export-png');
    assert.match(png.name, /^glassbox-reverse-layer\d-heatmap\.png$/);
    assert.deepEqual([...png.bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(png.bytes.length > 2000, `${png.bytes.length} bytes`);
    const tokens = await page.evaluate(() => document.querySelector('#heatmap-summary').dataset.keys.split(' ').length);
    const json = JSON.parse((await save('#export-view-json')).bytes.toString('utf8'));
    assert.equal(json.model, 'reverse');
    assert.equal(json.tokens.length, tokens);
    assert.equal(json.maps.length, 1);
    for (const row of json.maps[0].queries_by_keys) {
      assert.equal(row.length, tokens);
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-4, `a row sums to ${row}`);
    }
    const csv = (await save('#export-csv')).bytes.toString('utf8').trimEnd().split('\n');
    assert.equal(csv.length, tokens + 1);
    assert.equal(csv[1].split(',').length, tokens + 1);
    // The head grid exports every head of the layer.
    await page.selectOption('#view', 'heads');
    const heads = JSON.parse((await save('#export-view-json')).bytes.toString('utf8'));
    assert.equal(heads.view, 'heads');
    assert.equal(heads.maps.length, 4);
    // With the head-to-head similarity the view draws beside the grid: 1 on the diagonal.
    assert.equal(heads.head_similarity.length, 4);
    heads.head_similarity.forEach((row, i) => assert.ok(Math.abs(row[i] - 1) < 1e-5, `${row}`));
    assert.match(await page.textContent('#export-status'), /Saved glassbox-reverse-layer\d-heads\.json/);
    await page.close();
  });

  check('a download\'s object URL outlives the click, so the browser can read all of it', async () => {
    const page = await open('?model=reverse&text=3+1+4');
    // Record every object URL the page makes and revokes.
    await page.evaluate(() => {
      window.objectUrls = { created: [], revoked: [] };
      const create = URL.createObjectURL.bind(URL);
      const revoke = URL.revokeObjectURL.bind(URL);
      URL.createObjectURL = (blob) => {
        const url = create(blob);
        window.objectUrls.created.push(url);
        return url;
      };
      URL.revokeObjectURL = (url) => {
        window.objectUrls.revoked.push(url);
        revoke(url);
      };
    });
    const csv = await save(page, '#export-csv');
    const after = await page.evaluate(async () => {
      const [url] = window.objectUrls.created;
      const text = await fetch(url).then((response) => response.text(), (error) => `fetch failed: ${error}`);
      return { created: window.objectUrls.created.length, revoked: window.objectUrls.revoked.length, text };
    });
    assert.equal(after.created, 1);
    assert.equal(after.revoked, 0, 'the object URL was revoked right after the click');
    assert.equal(after.text, csv.bytes.toString('utf8'));
    await page.close();
  });

  check('the tutorial page embeds live views that its script drives and listens to', async () => {
    const page = await context.newPage();
    watchProblems(page, problems, () => state.current);
    const requested = [];
    page.on('request', (request) => requested.push(request.url()));
    await page.goto(`${base()}docs/`);
    assert.equal(await page.title(), 'What does attention look at? · glassbox');
    const frames = {};
    for (const id of ['reverse', 'flow', 'heads']) {
      const handle = await page.$(`iframe#${id}`);
      frames[id] = await handle.contentFrame();
      await frames[id].waitForFunction(() => {
        const app = document.querySelector('#app');
        return app && app.dataset.state === 'ready' && Number(app.dataset.runs) >= 1;
      }, null, { timeout: LOAD_TIMEOUT_MS });
    }
    // Embedded: no header, tabs or model picker; the heatmap frame hides its controls, the
    // heads frame shows them inert.
    for (const frame of Object.values(frames)) {
      assert.equal(await frame.isVisible('header'), false);
      assert.equal(await frame.isVisible('#model'), false);
    }
    assert.equal(await frames.reverse.isVisible('#text'), false);
    assert.equal(await frames.reverse.isVisible('#heatmap'), true);
    assert.equal(await frames.flow.isVisible('#flow'), true);
    assert.equal(await frames.heads.isVisible('#head-grid'), true);
    assert.ok(await frames.heads.$eval('#layer', (select) => select.closest('[inert]') !== null));
    // The host page sets the text by postMessage and hears the run and the hover.
    await page.click('button[data-text="1 2 3 4 5 6 7 8 9"]');
    await page.waitForFunction(() => document.body.dataset.reverseTokens === '1 2 3 4 5 6 7 8 9');
    assert.equal(await frames.reverse.inputValue('#text'), '1 2 3 4 5 6 7 8 9');
    const box = await (await page.$('iframe#reverse')).boundingBox();
    const heatmap = await frames.reverse.$('#heatmap');
    const inner = await heatmap.boundingBox();
    await page.mouse.move(inner.x + inner.width * 0.5, inner.y + inner.height * 0.5);
    await page.waitForFunction(() => /query \d+ → key \d+: weight \d/.test(document.querySelector('#hover-log').textContent));
    assert.ok(box.width > 0);
    const origin = new URL(server.url).origin;
    assert.deepEqual(requested.filter((url) => !url.startsWith('data:') && new URL(url).origin !== origin), []);
    await page.close();
  });

  check('clicking a cell pins its query token in every view; Escape lets it go', async () => {
    const page = await open('?model=reverse&text=3+1+4+1+5+9&layer=1');
    const draws = () => page.evaluate(() => Number(document.querySelector('#app').dataset.draws));
    const plain = await canvasStats(page, '#heatmap');
    const before = await draws();
    const box = await page.locator('#heatmap').boundingBox();
    await page.mouse.click(box.x + box.width * 0.5, box.y + box.height * 0.5);
    await page.waitForFunction(() => !document.querySelector('#pinned').hidden);
    const token = await page.$eval('#pinned', (p) => p.dataset.token);
    assert.match(token, /^\d+$/);
    assert.match(await page.textContent('#pinned'), new RegExp(`Pinned: “.+” \\(#${token}\\)`));
    await page.waitForFunction((n) => Number(document.querySelector('#app').dataset.draws) > n, before);
    assert.notEqual((await canvasStats(page, '#heatmap')).hash, plain.hash, 'the pinned row and column are not drawn');
    // The flow view and the head grid show the same pin.
    for (const [view, canvas] of [['flow', '#flow'], ['heads', '#head-grid']]) {
      await page.selectOption('#view', view);
      await page.waitForFunction((c) => document.querySelector(c).checkVisibility(), canvas);
      const pinnedStats = await canvasStats(page, canvas);
      const n = await draws();
      await page.keyboard.press('Escape');
      await page.waitForFunction(() => document.querySelector('#pinned').hidden);
      await page.waitForFunction((m) => Number(document.querySelector('#app').dataset.draws) > m, n);
      assert.notEqual((await canvasStats(page, canvas)).hash, pinnedStats.hash, `${view}: the pin made no difference`);
      // Pin again for the next view.
      await page.selectOption('#view', 'heatmap');
      await page.mouse.click(box.x + box.width * 0.5, box.y + box.height * 0.5);
      await page.waitForFunction(() => !document.querySelector('#pinned').hidden);
    }
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => document.querySelector('#pinned').hidden);
    await page.close();
  });

  check('the page fits a 360 px phone and a 4K screen, and its main controls work from the keyboard', async () => {
    const page = await context.newPage();
    watchProblems(page, problems, () => state.current);
    await page.setViewportSize({ width: 360, height: 740 });
    await page.goto(`${base()}?model=reverse`);
    await waitForApp(page, { runs: 1 });
    for (const tab of ['#tab-train', '#tab-inside', '#tab-diagnostics', '#tab-explore']) {
      await page.click(tab);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 360, `${tab}: the page is ${width} px wide on a 360 px screen`);
    }
    await page.setViewportSize({ width: 3840, height: 2160 });
    const fits = await page.$eval('#heatmap', (canvas) => canvas.getBoundingClientRect().right <= document.documentElement.clientWidth);
    assert.ok(fits);
    await page.setViewportSize({ width: 1280, height: 1200 });
    // Keyboard only: choose the layer and the view, switch tabs, export.
    await page.focus('#layer');
    const layer = await page.inputValue('#layer');
    await page.keyboard.press(layer === '0' ? 'ArrowDown' : 'ArrowUp');
    await page.waitForFunction((old) => document.querySelector('#layer').value !== old, layer);
    await page.focus('#view');
    await page.keyboard.press('ArrowDown');
    await page.waitForFunction(() => document.querySelector('#view').value === 'flow');
    await page.waitForFunction(() => document.querySelector('#flow').checkVisibility());
    await page.focus('#tab-train');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#train-tab').checkVisibility());
    await page.focus('#tab-explore');
    await page.keyboard.press('Enter');
    await page.focus('#export-csv');
    const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    assert.match(download.suggestedFilename(), /\.csv$/);
    // Pinning a token, from the keyboard.
    await page.focus('#pin');
    await page.keyboard.press('ArrowDown');
    await page.waitForFunction(() => !document.querySelector('#pinned').hidden);
    assert.equal(await page.$eval('#pinned', (p) => p.dataset.token), '0');
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => document.querySelector('#pinned').hidden);
    assert.equal(await page.inputValue('#pin'), '');
    await page.close();
  });
  check('every chart saves as SVG: the drawing on its canvas, as vectors and text', async () => {
    const page = await open('?model=reverse&text=3+1+4+1+5&layer=1');
    const heatmap = await save(page, '#export-svg');
    assert.equal(heatmap.name, 'glassbox-reverse-layer1-heatmap.svg');
    const svg = heatmap.bytes.toString('utf8');
    assert.ok(svg.startsWith('<svg') && svg.trimEnd().endsWith('</svg>'), svg.slice(0, 120));
    assert.match(svg, /width="760" height="700"/);
    // Every token labels a row and a column, as text; the 25 cells are rectangles, no image.
    for (const token of ['3', '1', '4', '5']) {
      assert.ok(svg.split(`>\n${token}\n</text>`).length - 1 >= 2, `token ${token} is not written as text`);
    }
    assert.ok(svg.includes('Layer 1 · mean of heads'));
    assert.ok(svg.split('<rect').length - 1 >= 25);
    assert.ok(!svg.includes('<image'));
    // Drawn by the browser, the SVG is the canvas' picture (fonts aside).
    const difference = await svgDifference(page, '#heatmap', svg);
    assert.ok(difference < 0.03, `${(difference * 100).toFixed(2)}% of the pixels differ`);
    // The other charts too: the head-to-head similarity, and a diagnostics chart.
    await page.selectOption('#view', 'heads');
    await page.waitForFunction(() => document.querySelector('#similarity').checkVisibility());
    const similarity = await save(page, '#similarity-svg');
    assert.equal(similarity.name, 'glassbox-head-similarity.svg');
    const similarityDifference = await svgDifference(page, '#similarity', similarity.bytes.toString('utf8'));
    assert.ok(similarityDifference < 0.03, `similarity: ${(similarityDifference * 100).toFixed(2)}% of the pixels differ`);
    await page.click('#tab-diagnostics');
    await page.waitForFunction(() => Number(document.querySelector('#diagnostics').dataset.params) > 0);
    await page.waitForFunction(() => document.querySelector('#flops-chart').checkVisibility());
    const flops = await save(page, '#flops-chart-svg');
    const flopsSvg = flops.bytes.toString('utf8');
    assert.ok(flopsSvg.includes('<polyline') || flopsSvg.includes('<path'), 'the FLOPs curves are not vectors');
    const flopsDifference = await svgDifference(page, '#flops-chart', flopsSvg);
    assert.ok(flopsDifference < 0.03, `FLOPs chart: ${(flopsDifference * 100).toFixed(2)}% of the pixels differ`);
    await page.close();
  });

  check('a trace exports as JSON and opens again without the model: same numbers, same picture', async () => {
    const page = await open('?model=reverse&text=3+1+4+1+5+9&layer=1');
    const original = await canvasStats(page, '#heatmap');
    const view = JSON.parse((await save(page, '#export-view-json')).bytes.toString('utf8'));
    const trace = await save(page, '#export-trace');
    assert.equal(trace.name, 'glassbox-reverse-trace.json');
    const binary = await save(page, '#export-trace-binary');
    assert.equal(binary.name, 'glassbox-reverse-trace.safetensors');
    assert.ok(binary.bytes.length * 1.5 < trace.bytes.length, `${binary.bytes.length} bytes binary, ${trace.bytes.length} JSON`);
    const json = JSON.parse(trace.bytes.toString('utf8'));
    assert.equal(json.format, 'glassbox.trace');
    assert.equal(json.text, '3 1 4 1 5 9');
    assert.deepEqual(json.tokens.map((t) => t.display), ['3', '1', '4', '1', '5', '9']);
    assert.ok(json.modules.length > 0 && json.modules.every((m) => m.values.length === m.shape.reduce((a, b) => a * b, 1)));
    // The trace holds the numbers the view showed: the mean of layer 1's heads.
    const layer = json.attention[1];
    for (let q = 0; q < 6; q += 1) {
      for (let k = 0; k < 6; k += 1) {
        let sum = 0;
        for (let h = 0; h < layer.heads; h += 1) sum += layer.values[(h * 6 + q) * 6 + k];
        assert.ok(Math.abs(sum / layer.heads - view.maps[0].queries_by_keys[q][k]) < 1e-6);
      }
    }
    // Another model, then the trace: the views show the file's numbers again, nothing runs.
    await page.selectOption('#model', 'sort');
    await page.waitForFunction(() => document.querySelector('#app').dataset.model === 'sort');
    await page.setInputFiles('#open', [trace.file]);
    await page.waitForFunction(() => document.querySelector('#app').dataset.source === 'trace');
    await page.waitForFunction(() => document.querySelector('#app').dataset.state === 'ready');
    assert.equal(await page.inputValue('#text'), '3 1 4 1 5 9');
    await page.waitForFunction((hash) => {
      const canvas = document.querySelector('#heatmap');
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      let h = 0x811c9dc5;
      for (let i = 0; i < data.length; i += 4) {
        h = Math.imul(h ^ (((data[i] << 24) | (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3]) >>> 0), 0x01000193) >>> 0;
      }
      return h.toString(16) === hash;
    }, original.hash);
    assert.match(await page.textContent('#provenance'), /Viewing the trace glassbox-reverse-trace\.json \(model: reverse/);
    assert.match(await page.textContent('#forward'), /imported trace: 6 tokens, 2 layers, no model run/);
    // An exported view is not a trace: it says so, and the view stays as it was.
    const single = await save(page, '#export-view-json');
    await page.setInputFiles('#open', [single.file]);
    await page.waitForFunction(() => !document.querySelector('#load-error').hidden);
    assert.match(await page.textContent('#load-error'), /one exported view .* not a whole trace/);
    assert.equal((await canvasStats(page, '#heatmap')).hash, original.hash);
    assert.equal(await page.evaluate(() => document.querySelector('#app').dataset.source), 'trace');
    // Typing runs the loaded model again.
    const runs = Number(await page.evaluate(() => document.querySelector('#app').dataset.runs));
    await page.fill('#text', '2 7 1 8');
    await page.waitForFunction((n) => Number(document.querySelector('#app').dataset.runs) > n, runs);
    assert.equal(await page.evaluate(() => document.querySelector('#app').dataset.source), 'model');
    assert.match(await page.textContent('#forward'), /last forward \+ capture/);
    // The binary trace opens the same way, to the same picture.
    await page.setInputFiles('#open', [binary.file]);
    await page.waitForFunction(() => document.querySelector('#app').dataset.source === 'trace');
    await page.waitForFunction(() => document.querySelector('#app').dataset.state === 'ready');
    assert.equal(await page.inputValue('#text'), '3 1 4 1 5 9');
    await page.waitForFunction(() => document.querySelector('#provenance').textContent.includes('glassbox-reverse-trace.safetensors'));
    assert.equal((await canvasStats(page, '#heatmap')).hash, original.hash);
    await page.close();
  });

  check('the training settings and a panel travel in the address', async () => {
    const small = { width: 1280, height: 600 };
    const page = await open('?tab=train&task=sort&train_optimizer=sgd&train_lr=0.003&train_steps=50&panel=report', small);
    assert.equal(await page.inputValue('#train-task'), 'sort');
    assert.equal(await page.inputValue('#train-optimizer'), 'sgd');
    assert.equal(Number(await page.inputValue('#train-lr')), 0.003);
    assert.equal(Number(await page.inputValue('#train-steps')), 50);
    // Before the first step the tab shows its invitation and no empty panel: the report the
    // link names waits for a run (the memory panel below checks the scrolling).
    assert.equal(await page.$eval('#train-invitation', (element) => element.checkVisibility()), true);
    assert.equal(await page.$eval('#panel-report', (element) => element.checkVisibility()), false);
    assert.equal(new URL(page.url()).searchParams.get('panel'), 'report');
    // A change of the form is written back; the rest of the address stays.
    await page.selectOption('#train-optimizer', 'adam');
    await page.waitForFunction(() => new URLSearchParams(location.search).get('train_optimizer') === 'adam');
    const params = new URL(page.url()).searchParams;
    assert.equal(params.get('task'), 'sort');
    assert.equal(params.get('train_steps'), '50');
    // A panel's "#" button puts it in the address; the link opens the tab scrolled to it.
    await page.click('#tab-diagnostics');
    await page.waitForFunction(() => Number(document.querySelector('#diagnostics').dataset.params) > 0);
    await page.click('#link-memory');
    await page.waitForFunction(() => new URLSearchParams(location.search).get('panel') === 'memory');
    const link = new URL(page.url()).search;
    assert.equal(new URLSearchParams(link).get('tab'), 'diagnostics');
    const again = await open(link, small);
    await again.waitForFunction(() => {
      const top = document.getElementById('panel-memory').getBoundingClientRect().top;
      return window.scrollY > 0 && top >= -2 && top < window.innerHeight;
    });
    assert.equal(await again.inputValue('#train-optimizer'), 'adam');
    assert.equal(await again.inputValue('#train-task'), 'sort');
    await again.close();
    await page.close();
  });
});
