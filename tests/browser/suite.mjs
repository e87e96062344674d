// The setup every single-page browser suite shares: serve dist/, launch Chromium for a backend,
// open the page at a query and wait until it has run once; close everything afterwards.
import { after, before } from 'node:test';

import { LOAD_TIMEOUT_MS, launch, onBackend, waitForApp, watchProblems } from './browser.mjs';
import { serve } from './serve.mjs';

/**
 * Registers the suite's before/after hooks (call it inside `describe`). Returns an object whose
 * `server`, `browser` and `page` are set once the hooks have run, with the `state` and
 * `problems` that `checker` and `watchProblems` share.
 */
export function pageSuite(dist, backend, query, { timeout, scale = 1 }) {
  const suite = { state: { current: 'page load' }, problems: [] };
  before(async () => {
    suite.server = await serve(dist);
    suite.browser = await launch(backend);
    suite.page = await suite.browser.newPage({ viewport: { width: 1280, height: 1400 }, acceptDownloads: true, deviceScaleFactor: scale });
    suite.page.setDefaultTimeout(timeout);
    watchProblems(suite.page, suite.problems, () => suite.state.current);
    await suite.page.goto(`${suite.server.url}${onBackend(query, backend)}`);
    await waitForApp(suite.page, { runs: 1 });
  }, { timeout: LOAD_TIMEOUT_MS + 60_000 });
  after(async () => {
    await suite.browser?.close();
    await suite.server?.close();
  });
  return suite;
}
