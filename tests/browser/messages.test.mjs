// Real-browser tests of the embedding API's reach: an embedded view obeys the page that embeds it
// and no other window (a sibling frame, a popup, itself), and with ?host= only that origin, to
// which alone it replies. Two origins are one server reached as 127.0.0.1 and as localhost.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { LOAD_TIMEOUT_MS, checker, launch, waitForApp, watchProblems } from './browser.mjs';
import { serve } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.resolve(REPO, process.env.GLASSBOX_DIST ?? 'dist');

// The embedding page: it loads ?src= in a frame named glassbox and records what that frame posts.
const HOST_PAGE = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>host</title></head>
<body>
<iframe id="glassbox" name="glassbox" style="width: 1000px; height: 900px; border: 0"></iframe>
<script>
  const frame = document.getElementById('glassbox');
  window.received = [];
  addEventListener('message', (event) => {
    if (event.source === frame.contentWindow) received.push({ origin: event.origin, data: event.data });
  });
  window.drive = (text) => frame.contentWindow.postMessage({ type: 'glassbox:set', text }, '*');
  frame.src = new URLSearchParams(location.search).get('src');
</script>
</body></html>
`;

// Another window of the host's origin: as a sibling frame it posts to parent.frames.glassbox, as
// a popup to opener.frames.glassbox; then it tells the host page it has posted.
const OTHER_WINDOW = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>other</title></head>
<body><script>
  const host = window.opener ?? window.parent;
  const text = new URLSearchParams(location.search).get('text');
  host.frames.glassbox.postMessage({ type: 'glassbox:set', text }, '*');
  host.document.body.dataset.posted = (host.document.body.dataset.posted ?? '') + text + ';';
</script></body></html>
`;

describe('embedding messages on cpu', () => {
  let root;
  let server;
  let browser;
  const state = { current: 'setup' };
  const problems = [];

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'glassbox-messages-'));
    await writeFile(path.join(root, 'host.html'), HOST_PAGE);
    await writeFile(path.join(root, 'other.html'), OTHER_WINDOW);
    await symlink(DIST, path.join(root, 'glassbox'));
    server = await serve(root);
    browser = await launch('cpu');
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const check = checker(it, problems, state, { timeout: 2 * LOAD_TIMEOUT_MS + 120_000, notFound: () => server.notFound });
  const port = () => new URL(server.url).port;
  // The view is served as 127.0.0.1, the embedding page as localhost: two origins.
  const viewOrigin = () => `http://127.0.0.1:${port()}`;
  const hostOrigin = () => `http://localhost:${port()}`;

  /** Opens the host page embedding the view with `query`; resolves once the view has run once. */
  async function embed(query) {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    watchProblems(page, problems, () => state.current);
    const src = `${viewOrigin()}/glassbox/?embed=1&model=reverse&text=3+1+4${query}`;
    await page.goto(`${hostOrigin()}/host.html?src=${encodeURIComponent(src)}`);
    const frame = await (await page.waitForSelector('iframe#glassbox')).contentFrame();
    await frame.waitForFunction(() => {
      const app = document.querySelector('#app');
      return app?.dataset.state === 'ready' && Number(app.dataset.runs) >= 1;
    }, null, { timeout: LOAD_TIMEOUT_MS });
    return { page, frame };
  }

  const view = (frame) => frame.evaluate(() => ({
    text: document.querySelector('#text').value,
    runs: Number(document.querySelector('#app').dataset.runs),
    accepted: Number(document.documentElement.dataset.messagesAccepted ?? 0),
    refused: Number(document.documentElement.dataset.messagesRefused ?? 0),
  }));
  const runsReceived = (page) => page.evaluate(() => received.filter((m) => m.data?.type === 'glassbox:run'));
  const waitRefused = (frame, count) => frame.waitForFunction(
    (n) => Number(document.documentElement.dataset.messagesRefused ?? 0) >= n, count);

  check('the embedding page drives the view; a sibling frame, a popup and the view itself cannot', async () => {
    const { page, frame } = await embed('');
    // Without host=, the replies go to the parent's origin as the browser names it.
    await page.waitForFunction(() => received.some((m) => m.data?.type === 'glassbox:run'));
    const [first] = await runsReceived(page);
    assert.equal(first.origin, viewOrigin());
    assert.deepEqual(first.data.tokens, ['3', '1', '4']);

    await page.evaluate(() => drive('4 5 6'));
    await frame.waitForFunction(() => document.querySelector('#text').value === '4 5 6');
    await page.waitForFunction(() => received.some((m) => m.data?.tokens?.join(' ') === '4 5 6'));
    const driven = await view(frame);
    assert.equal(driven.accepted, 1);

    // A sibling frame of the host's origin posts to the view: refused, nothing changes.
    await page.evaluate(() => {
      const sibling = document.createElement('iframe');
      sibling.src = 'other.html?text=9+9+9';
      document.body.append(sibling);
    });
    await page.waitForFunction(() => (document.body.dataset.posted ?? '').includes('9 9 9'));
    await waitRefused(frame, driven.refused + 1);
    // A popup the host page opens: refused too.
    const [popup] = await Promise.all([
      page.waitForEvent('popup'),
      page.evaluate(() => window.open('other.html?text=8+8+8', 'other')),
    ]);
    await page.waitForFunction(() => (document.body.dataset.posted ?? '').includes('8 8 8'));
    await waitRefused(frame, driven.refused + 2);
    await popup.close();
    // The view posting to itself: refused.
    await frame.evaluate(() => window.postMessage({ type: 'glassbox:set', text: '7 7 7' }, '*'));
    await waitRefused(frame, driven.refused + 3);
    // Give a wrongly accepted message time to start a run, then check none did.
    await page.waitForTimeout(500);
    const after = await view(frame);
    assert.deepEqual(after, { ...driven, refused: driven.refused + 3 });
    assert.ok((await runsReceived(page)).every((m) => !/[987] [987] [987]/.test(m.data.tokens.join(' '))));

    // The parent still drives it.
    await page.evaluate(() => drive('2 7 1'));
    await frame.waitForFunction(() => document.querySelector('#text').value === '2 7 1');
    assert.equal((await view(frame)).accepted, 2);
    await page.close();
  });

  check('with host= only that origin drives the view, and only it hears the view', async () => {
    // The host parameter names the embedding page's origin: its messages work both ways.
    const named = await embed(`&host=${encodeURIComponent(hostOrigin())}`);
    await named.page.waitForFunction(() => received.some((m) => m.data?.type === 'glassbox:run'));
    await named.page.evaluate(() => drive('5 3 5'));
    await named.frame.waitForFunction(() => document.querySelector('#text').value === '5 3 5');
    await named.page.waitForFunction(() => received.some((m) => m.data?.tokens?.join(' ') === '5 3 5'));
    assert.ok((await runsReceived(named.page)).every((m) => m.origin === viewOrigin()));
    await named.page.close();

    // It names another origin: the real parent is refused and hears nothing.
    const other = await embed(`&host=${encodeURIComponent('https://tutorial.example')}`);
    const before = await view(other.frame);
    await other.page.evaluate(() => drive('6 6 6'));
    await waitRefused(other.frame, before.refused + 1);
    await other.page.waitForTimeout(500);
    const after = await view(other.frame);
    assert.equal(after.text, '3 1 4');
    assert.equal(after.runs, before.runs);
    assert.deepEqual(await other.page.evaluate(() => received), [], 'the view posted to an origin host= does not name');
    await other.page.close();
  });

  check('a host= that is not an origin is named in the page, and messages stay off', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    watchProblems(page, problems, () => state.current);
    await page.goto(`${viewOrigin()}/glassbox/?embed=1&model=reverse&text=3+1+4&host=not-an-origin`);
    await waitForApp(page, { runs: 1 });
    const problem = await page.textContent('#host-problem');
    assert.match(problem, /not-an-origin/);
    assert.match(problem, /Messages to and from the embedding page are off/);
    await page.close();
  });
});
