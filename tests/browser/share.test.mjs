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

  async function open(query) {
    const page = await context.newPage();
    watchProblems(page, problems, () => state.current);
    await page.goto(`${base()}${query}`);
    await waitForApp(page, { runs: 1 });
    return page;
  }

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
    assert.match(await page.textContent('#export-status'), /Saved glassbox-reverse-layer\d-heads\.json/);
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
    await page.close();
  });
});
