// Real-browser tests of offline updates: dist/ is a clean release build whose offline.json lists
// every file, and after a redeploy with a changed shipped model a returning visitor sees the new
// model, while the old build's cached files are deleted.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, readdir, rename, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { LOAD_TIMEOUT_MS, checker, launch, waitForApp, watchProblems } from './browser.mjs';
import { serve } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');
const MANIFEST_SCRIPT = path.join(REPO, 'scripts/offline-manifest');

const sha256 = async (file) => createHash('sha256').update(await readFile(file)).digest('hex');

/** Every file under `dir` (relative paths, `/`-separated), hidden ones left out. */
async function filesUnder(dir, prefix = '') {
  const out = [];
  for (const entry of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await filesUnder(dir, name)));
    else out.push(name);
  }
  return out;
}

describe('dist/ as built', () => {
  it('is a clean release build: no live-reload script, and offline.json lists every file with its hash', async () => {
    const index = await readFile(path.join(DIST, 'index.html'), 'utf8');
    assert.ok(!index.includes('.well-known/trunk/ws') && !index.includes('__TRUNK_ADDRESS__'),
      'dist/index.html holds trunk serve\'s live-reload script');
    const manifest = JSON.parse(await readFile(path.join(DIST, 'offline.json'), 'utf8'));
    assert.equal(manifest.format, 'glassbox.offline');
    assert.match(manifest.version, /^[0-9a-f]{16}$/);
    const files = (await filesUnder(DIST)).filter((name) => name !== 'offline.json').sort();
    assert.deepEqual(Object.keys(manifest.files).sort(), files);
    for (const name of ['index.html', 'sw.js', 'models/reverse.safetensors', 'docs/index.html']) {
      assert.ok(files.includes(name), `${name} is not in dist/`);
    }
    assert.ok(files.some((name) => name.endsWith('.wasm')));
    for (const name of files) assert.equal(manifest.files[name], await sha256(path.join(DIST, name)), name);
  });
});

describe('offline updates on cpu', () => {
  let root;
  let server;
  let browser;
  let context;
  const state = { current: 'setup' };
  const problems = [];

  before(async () => {
    // Build A is dist/ as it is; build B is A with reverse.safetensors swapped for the sort
    // model's bytes and its manifest written again, as a redeploy would. `site` points at one.
    root = await mkdtemp(path.join(os.tmpdir(), 'glassbox-offline-'));
    await cp(DIST, path.join(root, 'a'), { recursive: true });
    await cp(DIST, path.join(root, 'b'), { recursive: true });
    await cp(path.join(root, 'b/models/sort.safetensors'), path.join(root, 'b/models/reverse.safetensors'));
    await promisify(execFile)('bash', [MANIFEST_SCRIPT, path.join(root, 'b')]);
    await symlink('a', path.join(root, 'site'));
    server = await serve(root);
    browser = await launch('cpu');
    context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const check = checker(it, problems, state, { timeout: 2 * LOAD_TIMEOUT_MS + 120_000, notFound: () => server.notFound });

  /** Points `site` at build `name` at once, as a deployment swaps the served folder. */
  async function deploy(name) {
    const next = path.join(root, `site-${name}`);
    await symlink(name, next);
    await rename(next, path.join(root, 'site'));
  }

  /** Waits until the page has kept its build for offline use; returns the build's version. */
  async function offlineReady(page) {
    await page.waitForFunction(() => document.documentElement.dataset.offline !== undefined, null, { timeout: LOAD_TIMEOUT_MS });
    assert.equal(await page.evaluate(() => document.documentElement.dataset.offline), 'ready');
    return page.evaluate(() => document.documentElement.dataset.offlineBuild);
  }

  /** The glassbox caches, and the SHA-256 of reverse.safetensors in each. */
  const cacheState = (page) => page.evaluate(async () => {
    const out = {};
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      const model = await cache.match(new URL('models/reverse.safetensors', location.href).href);
      const bytes = model ? await model.arrayBuffer() : undefined;
      const digest = bytes ? new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)) : undefined;
      out[name] = digest ? Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('') : null;
    }
    return out;
  });

  check('after a redeploy with a changed model, a reload shows the new model and drops the old build', async () => {
    const a = JSON.parse(await readFile(path.join(root, 'a/offline.json'), 'utf8'));
    const b = JSON.parse(await readFile(path.join(root, 'b/offline.json'), 'utf8'));
    assert.notEqual(a.version, b.version);
    assert.equal(b.files['models/reverse.safetensors'], a.files['models/sort.safetensors']);

    const page = await context.newPage();
    watchProblems(page, problems, () => state.current);
    await page.goto(`${server.url}site/?model=reverse`);
    await waitForApp(page, { runs: 1 });
    assert.match(await page.textContent('#provenance'), /on the reverse task/);
    assert.equal(await offlineReady(page), a.version);
    assert.deepEqual(await cacheState(page), {
      'glassbox-meta': null,
      [`glassbox-${a.version}`]: a.files['models/reverse.safetensors'],
    });

    // Build B goes live; the visitor comes back.
    await deploy('b');
    await page.reload();
    await waitForApp(page, { runs: 1 });
    assert.match(await page.textContent('#provenance'), /on the sort task/, 'the reload showed the old build\'s model');
    assert.equal(await offlineReady(page), b.version);
    assert.deepEqual(await cacheState(page), {
      'glassbox-meta': null,
      [`glassbox-${b.version}`]: b.files['models/reverse.safetensors'],
    });

    // Offline, the new build is what was kept.
    await context.setOffline(true);
    try {
      await page.reload();
      await waitForApp(page, { runs: 1 });
      assert.match(await page.textContent('#provenance'), /on the sort task/);
    } finally {
      await context.setOffline(false);
    }
    await page.close();
  });
});
