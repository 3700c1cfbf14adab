// page.test.mjs — daed's web page (GET /) and API docs (GET /docs) in a real browser:
// Debian's headless Chromium driven by playwright-core (no browser download), against two
// real daeds on loopback ports (the shipped models; one started with --api-key). Each step
// leaves a screenshot in build/browser/. Run by `make browser-test`.
//
//   node tests/browser/page.test.mjs    (env: DAED_BUILD=build, CHROMIUM=/usr/bin/chromium,
//                                        SHOTS=build/browser)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BUILD = resolve(ROOT, process.env.DAED_BUILD || 'build');
const BROWSER = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = resolve(ROOT, process.env.SHOTS || join(BUILD, 'browser'));
const SAMPLES = join(ROOT, 'web/samples');
const TMP = mkdtempSync(join(tmpdir(), 'daed-browser-'));
const KEY = 'browser-test-key';

let passed = 0, failed = 0;
const ok = (what) => { passed++; console.log(`ok: ${what}`); };
const fail = (what) => { failed++; console.log(`FAIL: ${what}`); };
const check = (cond, what, detail) => (cond ? ok(what) : fail(detail ? `${what}: ${detail}` : what));

// ------------------------------------------------------------------ daed

const daeds = [];

async function startDaed(name, extra) {
  const portFile = join(TMP, `${name}.port`);
  const log = join(TMP, `${name}.log`);
  const { openSync } = await import('node:fs');
  const fd = openSync(log, 'w');
  const p = spawn(join(BUILD, 'daed'), ['--bind', '127.0.0.1', '--port', '0', '--port-file',
    portFile, '--models', join(ROOT, 'models'), '--web-dir', join(ROOT, 'web'), '--openapi',
    join(ROOT, 'openapi.yaml'), '--workers', '2',
    // fp32: with bf16 on AMX tiles the large photo's job could end before its Cancel
    '--precision', 'fp32', ...extra], { stdio: ['ignore', fd, fd] });
  daeds.push(p);
  for (let i = 0; i < 600; i++) {
    if (existsSync(portFile) && readFileSync(portFile, 'utf8').trim()) break;
    if (p.exitCode !== null) throw new Error(`daed ${name} exited: ${readFileSync(log, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const port = Number(readFileSync(portFile, 'utf8').trim());
  return `http://127.0.0.1:${port}`;
}

// ------------------------------------------------------------------ the page

// Console errors, uncaught exceptions and CSP violations; `expected` lists the HTTP
// statuses a step provokes on purpose (Chromium logs "Failed to load resource" for them).
function watch(page, log, base) {
  page.on('console', (m) => { if (m.type() === 'error') log.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => log.push(`exception: ${e.message}`));
  page.on('requestfailed', (r) => {
    const why = r.failure() ? r.failure().errorText : '';
    if (!/ERR_ABORTED/.test(why)) log.push(`request failed: ${r.url()} ${why}`);
  });
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['blob:', 'data:'].includes(u.protocol) && u.origin !== base)
      log.push(`request to another origin: ${r.url()}`);
  });
}

function unexpected(log, statuses) {
  const allowed = statuses.map((s) => `status of ${s} `);
  return log.filter((l) => !allowed.some((a) => l.includes(a)));
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, name), fullPage: true });
}

async function runAndWait(page, visibleSel) {
  await page.click('#run');
  // generous: a photo takes 1-4 s here, minutes under a sanitizer build
  await page.waitForSelector(`${visibleSel}:not([hidden]), #error:not([hidden])`, { timeout: 240000 });
  await page.waitForFunction(() => !document.body.classList.contains('busy'), null, { timeout: 240000 });
}

async function imgWidth(page, sel) {
  await page.waitForFunction((s) => {
    const i = document.querySelector(s);
    return i && i.complete && i.naturalWidth > 0;
  }, sel, { timeout: 20000 });
  return page.$eval(sel, (i) => i.naturalWidth);
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent);
const hidden = (page, sel) => page.$eval(sel, (e) => e.hidden);

async function pickFile(page, slot, file) {
  await page.setInputFiles(`#file-${slot}`, join(SAMPLES, file));
  await page.waitForFunction((s) => s === 'a'
    ? !document.getElementById('paint-wrap').hidden
    : !document.getElementById('input-b').hidden, slot);
}

// Every aria-valuetext the progress bar shows from now on, in window.__progress.
async function recordProgress(page) {
  await page.evaluate(() => {
    window.__progress = [];
    const bar = document.getElementById('busy');
    new MutationObserver(() => {
      const v = bar.getAttribute('aria-valuetext');
      if (v && window.__progress[window.__progress.length - 1] !== v) window.__progress.push(v);
    }).observe(bar, { attributes: true });
  });
}

// A photo of 1560x1200 (the sample scaled up) as a PNG, made by the page's canvas.
async function largePhoto(page) {
  const b64 = await page.evaluate(async () => {
    const bm = await createImageBitmap(await (await fetch('/web/samples/photo-noisy.png')).blob());
    const c = document.createElement('canvas');
    c.width = 1560; c.height = 1200;
    c.getContext('2d').drawImage(bm, 0, 0, c.width, c.height);
    return c.toDataURL('image/png').split(',')[1];
  });
  return { name: 'large-photo.png', mimeType: 'image/png', buffer: Buffer.from(b64, 'base64') };
}

// The jobs the page makes: 202 answers (Location) and DELETE answers (daed's last status).
function watchJobs(page, jobs) {
  page.on('response', async (r) => {
    const req = r.request();
    if (req.method() === 'POST' && r.status() === 202)
      jobs.push({ status: 202, location: r.headers().location || '',
        prefer: (await req.allHeaders()).prefer || '' });
    if (req.method() === 'DELETE')
      jobs.push({ deleted: new URL(r.url()).pathname, status: r.status(),
        body: await r.json().catch(() => null) });
  });
}

// Wait (up to 20 s) until the response listener has recorded a job entry matching pred:
// it reads the bodies asynchronously, after the page may already have moved on.
async function jobSeen(jobs, pred) {
  for (let i = 0; i < 200 && !jobs.some(pred); i++) await new Promise((r) => setTimeout(r, 100));
  return jobs.find(pred);
}

async function stepsJobCancel(page, url, jobs) {
  await page.setInputFiles('#file-a', await largePhoto(page));
  await page.waitForFunction(() => /1560x1200/.test(document.getElementById('input-info').textContent));
  const before = jobs.length;
  await page.click('#run');
  // progress: at least one tile done (generous: minutes under a sanitizer build)
  await page.waitForFunction(() => {
    const b = document.getElementById('busy');
    return !b.hidden && b.hasAttribute('value') && b.value >= 1;
  }, null, { timeout: 240000 });
  check(await page.$eval('#cancel', (b) => !b.disabled), 'large photo: cancel is enabled while it runs');
  const label = await page.$eval('#busy', (b) => b.getAttribute('aria-label'));
  check(/^request running: \d+ of \d+ tiles, \d+%$/.test(label),
    'large photo: the progress bar has a label for screen readers', label);
  check(/\d+ \/ \d+ tiles · \d+%/.test(await text(page, '#progress-text')),
    'large photo: tiles done / total and the percentage are shown', await text(page, '#progress-text'));
  await shot(page, '03b-running.png');
  await page.click('#cancel');
  await page.waitForFunction(() => !document.body.classList.contains('busy'));
  const err = await text(page, '#error');
  check(/^Cancelled: daed's job cancelled after \d+ of \d+ tiles\.$/.test(err),
    'large photo: the page shows the job cancelled', err);
  await shot(page, '03c-cancelled.png');
  const made = jobs.slice(before).find((j) => j.status === 202);
  check(made && made.prefer === 'respond-async', 'large photo: sent as a job', JSON.stringify(jobs));
  const del = await jobSeen(jobs, (j) => made && j.deleted === made.location);
  check(del && del.status === 200 && del.body && del.body.status === 'cancelled' &&
    del.body.tiles_done < del.body.tiles_total,
  'large photo: Cancel sends DELETE, daed answers "cancelled" before the last tile',
  JSON.stringify(del));
  // through the API: the job is gone, and daed counts it cancelled once its worker stops
  const gone = made ? (await fetch(url + made.location)).status : 0;
  check(gone === 404, 'large photo: GET on the cancelled job answers 404', String(gone));
  let counted = '';
  for (let i = 0; i < 600 && !/ [1-9]\d*$/.test(counted); i++) {
    const m = await (await fetch(url + '/metrics')).text();
    counted = (m.match(/^daed_jobs_finished_total\{status="cancelled"\} .*$/m) || [''])[0];
    if (!/ [1-9]\d*$/.test(counted)) await new Promise((r) => setTimeout(r, 100));
  }
  check(/ 1$/.test(counted), 'large photo: /metrics counts the job cancelled', counted);
}

async function stepsNoKey(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const log = [];
  const jobs = [];
  watch(page, log, url);
  watchJobs(page, jobs);
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });

  // 1. the page loads, lists the models, no console errors
  const resp = await page.goto(url + '/');
  check(resp.status() === 200, 'GET / answers 200');
  check((resp.headers()['content-security-policy'] || '').includes("script-src 'self'"),
    'GET / has the Content-Security-Policy');
  await page.waitForFunction(() => document.querySelectorAll('#model option').length > 1);
  const models = await page.$$eval('#model option', (o) => o.map((x) => x.value));
  check(models.includes('fmnist-denoise') && models.includes('photo-denoise-rgb'),
    'the model list comes from GET /v1/models', models.join(','));
  check(await page.$eval('#model', (s) => s.value) === 'fmnist-denoise',
    'the default denoise model is preselected');
  await shot(page, '01-page.png');

  // 2. denoise a digit (28x28) with mnist-denoise
  await pickFile(page, 'a', 'digit-7-noisy.png');
  await page.selectOption('#model', 'mnist-denoise');
  await runAndWait(page, '#compare');
  check(!(await hidden(page, '#compare')), 'digit: the before/after view is shown',
    await text(page, '#error'));
  check((await text(page, '#meta')).includes('X-Model: mnist-denoise'), 'digit: X-Model shown',
    await text(page, '#meta'));
  check(/\d+\.\d ms/.test(await text(page, '#meta')), 'digit: the time is shown');
  check(!jobs.length && !/job/.test(await text(page, '#meta')),
    'digit: a fixed-size model answers at once (no job)', JSON.stringify(jobs));
  check(await imgWidth(page, '#cmp-after') === 28, 'digit: the answer is 28 pixels wide');
  const dl = await page.$eval('#download', (a) => a.href.startsWith('blob:') && a.download);
  check(dl === 'daed-denoise.png', 'digit: the answer can be downloaded', String(dl));
  await shot(page, '02-denoise-digit.png');

  // 3. denoise a colour photo: the model switches to auto, daed picks a photo model
  await pickFile(page, 'a', 'photo-noisy.png');
  check(await page.$eval('#model', (s) => s.value) === 'mnist-denoise',
    'photo: a model picked by hand stays');
  await page.selectOption('#task', 'superres');
  await page.selectOption('#task', 'denoise');
  await pickFile(page, 'a', 'photo-noisy.png');
  check(await page.$eval('#model', (s) => s.value) === '', 'photo: the model switches to auto');
  await recordProgress(page);
  await runAndWait(page, '#compare');
  const seen = await page.evaluate(() => window.__progress);
  check(jobs.some((j) => j.status === 202 && /^\/v1\/jobs\/[0-9a-f]{32}$/.test(j.location)),
    'photo: sent with Prefer: respond-async, daed answers 202 with a Location',
    JSON.stringify(jobs));
  check(seen.some((v) => /^done: (\d+) of \1 tiles, 100%$/.test(v)),
    'photo: the progress bar reaches 100% (tiles done of total)', seen.join(' | '));
  check(/job of \d+ tiles?/.test(await text(page, '#meta')), 'photo: the answer names the job',
    await text(page, '#meta'));
  check((await text(page, '#meta')).includes('X-Model: photo-dncnn-rgb'),
    'photo: daed answered with photo-dncnn-rgb', await text(page, '#meta'));
  check(await imgWidth(page, '#cmp-after') === 260, 'photo: the answer is 260 pixels wide');
  await page.click('[data-zoom="2"]');
  const w2 = await page.$eval('#cmp-after', (i) => i.getBoundingClientRect().width);
  check(Math.abs(w2 - 520) < 2, 'photo: zoom 2x shows 520 pixels', String(w2));
  await page.click('[data-zoom="1"]');
  await page.focus('#split');
  for (let i = 0; i < 20; i++) await page.keyboard.press('ArrowLeft');
  const clip = await page.$eval('#before-clip', (e) => e.style.clipPath);
  check(clip === 'inset(0px 70% 0px 0px)' || clip === 'inset(0 70% 0 0)',
    'photo: the slider moves with the keyboard', clip);
  await shot(page, '03-denoise-photo.png');
  // a large photo runs as a job: progress in tiles, Cancel stops it in daed
  await stepsJobCancel(page, url, jobs);
  await pickFile(page, 'a', 'photo-noisy.png');
  await runAndWait(page, '#compare');
  await page.click('[data-zoom="fit"]');
  await page.fill('#split', '50');
  await page.dispatchEvent('#split', 'input');
  // the README's picture (docs/img/web-page.png is a copy, made by hand)
  await page.setViewportSize({ width: 1100, height: 1000 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, 'readme.png') });
  await page.setViewportSize({ width: 1280, height: 900 });

  // 4. inpaint a painted hole
  await page.selectOption('#task', 'inpaint');
  await pickFile(page, 'a', 'shoe.png');
  const box = await page.$eval('#mask-canvas', (c) => {
    const r = c.getBoundingClientRect();
    return { x: r.x, y: r.y, w: r.width, h: r.height };
  });
  await page.fill('#brush', '4');
  await page.mouse.move(box.x + box.w * 0.3, box.y + box.h * 0.4);
  await page.mouse.down();
  for (let i = 0; i <= 10; i++)
    await page.mouse.move(box.x + box.w * (0.3 + 0.04 * i), box.y + box.h * (0.4 + 0.02 * i));
  await page.mouse.up();
  const painted = await page.$eval('#mask-canvas', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
    return n;
  });
  check(painted > 10 && painted < 28 * 28 / 2, 'inpaint: the brush paints a hole', `${painted} pixels`);
  await runAndWait(page, '#compare');
  check((await text(page, '#meta')).includes('X-Model: fmnist-inpaint'), 'inpaint: answered',
    (await text(page, '#meta')) + (await text(page, '#error')));
  check(await imgWidth(page, '#cmp-after') === 28, 'inpaint: the answer is 28 pixels wide');
  await shot(page, '04-inpaint.png');

  // 5. score with the heatmap
  await page.selectOption('#task', 'score');
  await pickFile(page, 'a', 'digit-7-noisy.png');
  await runAndWait(page, '#score-view');
  const facts = await text(page, '#score-facts');
  check(!(await hidden(page, '#score-view')) && /threshold/.test(facts) && /percentile/.test(facts),
    'score: score, threshold and percentile shown', facts + (await text(page, '#error')));
  check(await imgWidth(page, '#heat-map') === 28, 'score: the heatmap is drawn over the image');
  const fill = await page.$eval('#gauge-fill', (e) => parseFloat(e.style.width));
  check(fill > 0 && fill <= 100, 'score: the gauge shows the score', String(fill));
  await shot(page, '05-score.png');

  // 6. interpolate between two images, and encode
  await page.selectOption('#task', 'interpolate');
  await pickFile(page, 'a', 'shoe.png');
  await pickFile(page, 'b', 'pullover.png');
  await page.fill('#steps', '6');
  await runAndWait(page, '#strip-view');
  check(await imgWidth(page, '#strip') === 6 * 28, 'interpolate: a strip of 6 decoded images',
    await text(page, '#error'));
  await shot(page, '06-interpolate.png');
  await page.selectOption('#task', 'encode');
  await pickFile(page, 'a', 'shoe.png');
  await runAndWait(page, '#latent-view');
  check(/values/.test(await text(page, '#latent-shape')) && await imgWidth(page, '#cmp-after') === 28,
    'encode: the code and its decoding are shown', await text(page, '#error'));

  await page.selectOption('#task', 'superres');
  await page.click('#samples-a button[data-sample="pullover-small.png"]');
  await page.waitForFunction(() => document.getElementById('input-info').textContent.includes('14x14'));
  await runAndWait(page, '#compare');
  check(await imgWidth(page, '#cmp-after') === 28 && await imgWidth(page, '#cmp-before') === 14,
    'superres: a sample 14x14 becomes 28x28', await text(page, '#error'));

  const clean = unexpected(log, []);
  check(clean.length === 0, 'no console errors, exceptions or foreign requests so far',
    clean.join(' | '));

  // 7. an error: a 14x14 image for a 28x28-only model shows daed's message
  await page.selectOption('#task', 'encode');
  await page.selectOption('#model', 'fmnist-ae');
  await pickFile(page, 'a', 'pullover-small.png');
  await runAndWait(page, '#latent-view');
  const err = await text(page, '#error');
  check(!(await hidden(page, '#error')) && err.includes('HTTP 422') &&
    err.includes('shape_mismatch') && err.includes('expected (1,28,28)'),
  'error: daed\'s message is shown', err);
  await shot(page, '07-error.png');
  // a job that fails: daed's error from the job's result is shown
  // (inpaint: fmnist-inpaint is an MLP for 28x28 only, the photo is 260x200)
  await page.selectOption('#task', 'inpaint');
  await page.selectOption('#model', 'fmnist-inpaint');
  await pickFile(page, 'a', 'photo-noisy.png');
  await page.click('#mask-block');
  const before = jobs.length;
  await runAndWait(page, '#compare');
  const jerr = await text(page, '#error');
  check(jobs.slice(before).some((j) => j.status === 202) && jerr.includes('HTTP 422') &&
    jerr.includes('shape_mismatch'), 'error: a failed job shows daed\'s message',
  jerr + (await text(page, '#meta')) + JSON.stringify(jobs.slice(before)));
  const csp = await page.evaluate(() => window.__csp);
  check(csp.length === 0, 'page: no Content-Security-Policy violation', csp.join(' | '));
  const rest = unexpected(log, [422]);
  check(rest.length === 0, 'page: no console errors but the 422 asked for', rest.join(' | '));

  // 8. a phone's width
  await page.setViewportSize({ width: 390, height: 844 });
  await page.selectOption('#task', 'denoise');
  await pickFile(page, 'a', 'shoe-noisy.png');
  await runAndWait(page, '#compare');
  const sw = await page.evaluate(() => document.documentElement.scrollWidth);
  check(sw <= 391, 'phone: no horizontal scrolling at 390 pixels', `scrollWidth ${sw}`);
  await shot(page, '08-phone.png');
  await page.close();
}

async function stepsDocs(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const log = [];
  watch(page, log, url);
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const resp = await page.goto(url + '/docs');
  check(resp.status() === 200, 'GET /docs answers 200');
  await page.waitForSelector('.swagger-ui .info .title', { timeout: 30000 });
  check((await text(page, '.swagger-ui .info .title')).includes('daed'), 'docs: openapi.yaml rendered');
  // try it out: GET /healthz against this daed
  const op = page.locator('.opblock-summary-path[data-path="/healthz"]').first();
  await op.click();
  const block = page.locator('.opblock.is-open').first();
  const tryBtn = block.locator('button.try-out__btn');
  if (await tryBtn.count() && /try it out/i.test(await tryBtn.textContent())) await tryBtn.click();
  await block.locator('button.execute').click();
  const cell = block.locator('.live-responses-table tbody .response-col_status').first();
  await cell.waitFor({ timeout: 20000 });
  const status = await cell.textContent();
  const reqUrl = await block.locator('.request-url pre').first().textContent().catch(() => '');
  check(status.trim().startsWith('200') && reqUrl.startsWith(url),
    'docs: "try it out" reaches this daed', `${status} ${reqUrl}`);
  await block.screenshot({ path: join(SHOTS, '09-docs-try-it-out.png') });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, '09-docs.png') });
  const csp = await page.evaluate(() => window.__csp);
  check(csp.length === 0, 'docs: no Content-Security-Policy violation', csp.join(' | '));
  const rest = unexpected(log, []);
  check(rest.length === 0, 'docs: no console errors', rest.join(' | '));
  await page.close();
}

async function stepsKey(browser, url) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const log = [];
  watch(page, log, url);
  await page.goto(url + '/');
  await page.waitForSelector('#error:not([hidden])');
  const err = await text(page, '#error');
  check(err.includes('HTTP 401') && err.includes('Authorization: Bearer'),
    'key: without the key daed\'s 401 is shown', err);
  check(await page.$eval('details.key', (d) => d.open), 'key: the key field is opened');
  await shot(page, '10-key-missing.png');
  await page.fill('#key', 'wrong');
  await page.press('#key', 'Tab');
  await page.waitForFunction(() => document.getElementById('error').textContent.includes('401'));
  check(true, 'key: a wrong key is refused');
  await page.fill('#key', KEY);
  await page.press('#key', 'Tab');
  await page.waitForFunction(() => document.querySelectorAll('#model option').length > 1);
  await pickFile(page, 'a', 'digit-7-noisy.png');
  await runAndWait(page, '#compare');
  check((await text(page, '#meta')).startsWith('200'), 'key: with the key the denoise answers',
    await text(page, '#error'));
  await shot(page, '11-key.png');
  // the job path sends the key on every call: POST, status, result, DELETE
  const jobs = [];
  watchJobs(page, jobs);
  await pickFile(page, 'a', 'photo-noisy.png');
  await runAndWait(page, '#compare');
  const meta = await text(page, '#meta');
  const freed = await jobSeen(jobs, (j) => j.deleted && j.status === 200);
  check(meta.startsWith('200') && /job of/.test(meta) && jobs.some((j) => j.status === 202) &&
    freed && freed.body.status === 'done',
  'key: a photo runs as a job with the key', meta + (await text(page, '#error')) + JSON.stringify(jobs));
  // the key is kept for this tab only: a new tab (a new context here) starts without it
  const stored = await page.evaluate(() => sessionStorage.getItem('daed-key'));
  check(stored === KEY, 'key: kept in sessionStorage');
  const rest = unexpected(log, [401]);
  check(rest.length === 0, 'key: no console errors but the 401s', rest.join(' | '));
  await ctx.close();
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  const url = await startDaed('open', []);
  const urlKey = await startDaed('key', ['--api-key', KEY]);
  const browser = await chromium.launch({
    executablePath: BROWSER,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    await stepsNoKey(browser, url);
    await stepsDocs(browser, url);
    await stepsKey(browser, urlKey);
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (e) {
  fail(`the test stopped: ${e.stack || e}`);
} finally {
  for (const p of daeds) p.kill('SIGKILL');
  rmSync(TMP, { recursive: true, force: true });
}
console.log(`screenshots: ${SHOTS}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
