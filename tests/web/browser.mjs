// browser.mjs BASE_URL OUT_DIR BUS_PHOTO — drive the imgsim page in Debian's chromium.
// Run by test_browser.sh; prints "ok   ..." / "FAIL ..." lines and exits non-zero on any failure.
// playwright-core is installed from tests/web/package.json into IMGSIM_WEB_NODE_DIR (build/web-node),
// outside tests/ (see test_browser.sh), so it is loaded from there.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const nodeDir = resolve(process.env.IMGSIM_WEB_NODE_DIR || fileURLToPath(new URL('../../build/web-node', import.meta.url)));
const { chromium } = createRequire(join(nodeDir, 'package.json'))('playwright-core');

const [base, outDir, busPhoto] = process.argv.slice(2);
if (!base || !outDir || !busPhoto) { console.error('usage: browser.mjs BASE_URL OUT_DIR BUS_PHOTO'); process.exit(2); }
const TIMEOUT = Number(process.env.IMGSIM_WEB_TIMEOUT_MS || 60000);   // ASan builds are slow
let fails = 0;
const ok = (name) => console.log('ok   ' + name);
const bad = (name, why) => { console.log('FAIL ' + name + (why ? ': ' + why : '')); fails++; };
function check(name, cond, why) { if (cond) ok(name); else bad(name, why); return cond; }

const profile = mkdtempSync(join(tmpdir(), 'imgsim-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
  offline: false,
});
context.setDefaultTimeout(TIMEOUT);
const page = context.pages()[0] || await context.newPage();
const pageErrors = [];
const badResponses = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error') console.log('  console: ' + m.text()); });
page.on('response', (r) => { if (r.status() >= 400) badResponses.push(r.status() + ' ' + r.url()); });
page.on('requestfailed', (r) => {
  const f = r.failure(); if (!(f && /ERR_ABORTED/.test(f.errorText))) badResponses.push('failed ' + r.url());
});
// nothing may leave the server: no CDN, no fonts, works offline
const foreign = [];
page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) foreign.push(r.url()); });

// The grid is drawn when #results carries a new data-seq and is no longer busy.
const seqOf = () => page.evaluate(() => document.getElementById('results').dataset.seq || '');
async function waitDrawn(prevSeq, view) {
  await page.waitForFunction(([prev, v]) => {
    const r = document.getElementById('results');
    return r.dataset.seq && r.dataset.seq !== prev && r.getAttribute('aria-busy') === 'false' &&
      (!v || r.dataset.view === v);
  }, [prevSeq, view]);
}
const cards = () => page.$$eval('#results .result', (els) => els.map((e) => ({
  id: e.dataset.id, label: e.dataset.label, score: e.dataset.score,
  alt: (e.querySelector('img') || {}).alt || '', text: e.textContent,
})));
// the first n thumbnails really decoded (served by /api/items/{id}/image)
async function thumbsLoaded(n) {
  await page.waitForFunction((n) => {
    const imgs = Array.from(document.querySelectorAll('#results .result img')).slice(0, n);
    return imgs.length === n && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, n);
}
const noHorizontalScroll = () => page.evaluate(() => {
  const d = document.documentElement;
  const grid = document.getElementById('results').getBoundingClientRect();
  const cardsOut = Array.from(document.querySelectorAll('#results .result'))
    .filter((c) => { const b = c.getBoundingClientRect(); return b.left < -0.5 || b.right > window.innerWidth + 0.5; }).length;
  return { scrollWidth: d.scrollWidth, clientWidth: d.clientWidth, innerWidth: window.innerWidth,
    gridRight: grid.right, cardsOut,
    columns: getComputedStyle(document.getElementById('results')).gridTemplateColumns.split(' ').length };
});

try {
  // ---- 1. initial view: random items, labels in the filter
  await page.goto(base, { waitUntil: 'load' });
  await waitDrawn('', 'random');
  let c = await cards();
  check('initial view shows random items', c.length > 0 && c.length <= 24, `${c.length} cards`);
  check('  ...random cards carry data-id and data-label', c.every((x) => x.id && x.label), JSON.stringify(c[0]));
  await thumbsLoaded(Math.min(4, c.length));
  ok('  ...thumbnails load');
  const labels = await page.$$eval('#label option', (o) => o.map((x) => x.value));
  check('label filter: "all labels" plus the 10 Wang-1k classes', labels[0] === '' && labels.length === 11 &&
    labels.includes('buses'), JSON.stringify(labels));
  check('k selector defaults to 10 and offers 5/10/20/50',
    (await page.$eval('#k', (s) => s.value + ':' + Array.from(s.options).map((o) => o.value).join(','))) === '10:5,10,20,50');
  check('form controls are labelled', await page.evaluate(() =>
    ['file', 'k', 'label', 'category'].every((id) => document.querySelector(`label[for="${id}"]`))));
  check('status is an aria-live region', await page.$eval('#status', (s) => s.getAttribute('aria-live') === 'polite'));

  // ---- 2. upload the bus photo (not in the collection) through the file input
  let seq = await seqOf();
  await page.setInputFiles('#file', busPhoto);
  await waitDrawn(seq, 'search');
  c = await cards();
  check('upload: exactly k = 10 results', c.length === 10, `${c.length}`);
  check('  ...the first 3 are labelled "buses"', c.length >= 3 && c.slice(0, 3).every((x) => x.label === 'buses'),
    c.slice(0, 5).map((x) => x.label).join(','));
  const scores = c.map((x) => Number(x.score));
  check('  ...scores present, in [-1, 1], descending', scores.every((s, i) => Number.isFinite(s) && s <= 1.0001 && s >= -1.0001 &&
    (i === 0 || s <= scores[i - 1] + 1e-6)) && c.every((x) => x.score !== ''), scores.join(','));
  check('  ...each card shows its score with 3 decimals and its label', c.every((x) =>
    x.text.includes(Number(x.score).toFixed(3)) && x.text.includes(x.label)), c[0].text);
  check('  ...alt text names label and id', c.every((x) => x.alt.includes(x.label) && x.alt.includes(x.id)), c[0].alt);
  check('  ...the uploaded photo is not a result (not in the collection)', c.every((x) => !/\b350\.jpg$/.test(x.id)));
  const st = await page.textContent('#status');
  check('  ...status line: count and took_ms', /10 results in [0-9.]+ ms/.test(st), st);
  check('  ...query preview shown', await page.isVisible('#query-img') &&
    await page.$eval('#query-img', (i) => i.complete && i.naturalWidth > 0));
  check('  ...no error shown', await page.isHidden('#error'));
  await thumbsLoaded(10);
  await page.screenshot({ path: join(outDir, 'desktop_upload.png'), fullPage: true });

  // ---- 3. click the 2nd result: search by it
  const before = c;
  seq = await seqOf();
  await page.click('#results li:nth-child(2) .result');
  await waitDrawn(seq, 'search');
  c = await cards();
  check('click a result: still k = 10 results', c.length === 10, `${c.length}`);
  const sameSet = c.map((x) => x.id).sort().join() === before.map((x) => x.id).sort().join();
  check('  ...the grid changed', c[0].id !== before[0].id || !sameSet, `first ${c[0].id}`);
  check('  ...the clicked item is not its own result', c.every((x) => x.id !== before[1].id), before[1].id);
  check('  ...results of a bus are mostly buses', c.filter((x) => x.label === 'buses').length >= 6,
    c.map((x) => x.label).join(','));
  check('  ...query caption names the clicked item', (await page.textContent('#query-caption')).includes(before[1].id));
  await thumbsLoaded(10);
  await page.screenshot({ path: join(outDir, 'desktop_similar.png'), fullPage: true });

  // ---- 4. k selector re-runs the current search
  for (const k of ['5', '20']) {
    seq = await seqOf();
    await page.selectOption('#k', k);
    await waitDrawn(seq, 'search');
    c = await cards();
    check(`k = ${k}: ${k} results`, c.length === Number(k), `${c.length}`);
  }
  seq = await seqOf();
  await page.selectOption('#k', '10');
  await waitDrawn(seq, 'search');

  // ---- 5. label filter: only that label
  seq = await seqOf();
  await page.selectOption('#label', 'flowers');
  await waitDrawn(seq, 'search');
  c = await cards();
  check('label filter "flowers": only flowers', c.length === 10 && c.every((x) => x.label === 'flowers'),
    c.map((x) => x.label).join(','));
  seq = await seqOf();
  await page.selectOption('#label', '');
  await waitDrawn(seq, 'search');

  // ---- 6. predict category with an uploaded image
  seq = await seqOf();
  await page.setInputFiles('#file', busPhoto);
  await waitDrawn(seq, 'search');
  seq = await seqOf();
  await page.check('#category');
  await waitDrawn(seq, 'search');
  c = await cards();
  const pred = await page.isVisible('#predicted') ? await page.textContent('#predicted') : '';
  check('predict category: the bus photo is predicted "buses"', /buses/.test(pred), pred);
  check('  ...and results stay inside it', c.length === 10 && c.every((x) => x.label === 'buses'),
    c.map((x) => x.label).join(','));
  seq = await seqOf();
  await page.uncheck('#category');
  await waitDrawn(seq, 'search');
  check('  ...unchecked: predicted label hidden', await page.isHidden('#predicted'));

  // ---- 7. keyboard: Tab reaches results, Enter and Space search by the focused one
  c = await cards();
  await page.focus('#results li:nth-child(2) .result');
  await page.keyboard.press('Tab');   // keyboard navigation, so :focus-visible applies
  check('results are focusable buttons with a visible focus ring', await page.evaluate(() => {
    const a = document.activeElement;
    if (!a || !a.classList.contains('result') || a.tagName !== 'BUTTON') return false;
    const s = getComputedStyle(a);
    return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
  }));
  seq = await seqOf();
  await page.keyboard.press('Enter');
  await waitDrawn(seq, 'search');
  let after = await cards();
  check('Enter on a result searches by it', (await page.textContent('#query-caption')).includes(c[2].id) &&
    after.every((x) => x.id !== c[2].id), c[2].id);
  check('  ...focus moves to the new first result', await page.evaluate(() =>
    document.activeElement === document.querySelector('#results .result')));
  seq = await seqOf();
  await page.keyboard.press('Space');
  await waitDrawn(seq, 'search');
  check('Space on a result searches by it', (await page.textContent('#query-caption')).includes(after[0].id));

  // ---- 8. a server error is shown clearly: upload a text file
  await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image\n') });
  await page.waitForSelector('#error:not([hidden])');
  const err = await page.textContent('#error');
  check('uploading a text file shows the server\'s error', /Error 4\d\d: \S/.test(err), err);
  check('  ...and no stale results under it', (await cards()).length === 0);
  await page.screenshot({ path: join(outDir, 'desktop_error.png') });
  // a good search clears it
  seq = await seqOf();
  await page.setInputFiles('#file', { name: 'bus.jpg', mimeType: 'image/jpeg', buffer: readFileSync(busPhoto) });
  await waitDrawn(seq, 'search');
  check('  ...the next good search clears the error', await page.isHidden('#error'));

  // ---- 9. random items button
  seq = await seqOf();
  await page.click('#random');
  await waitDrawn(seq, 'random');
  c = await cards();
  check('"Random items" shows a browse view without scores', c.length > 0 && c.every((x) => x.score === '') &&
    await page.isHidden('#query'), `${c.length}`);

  // ---- 10. phone: 360 x 740
  await page.setViewportSize({ width: 360, height: 740 });
  await page.reload({ waitUntil: 'load' });
  await waitDrawn('', 'random');
  await thumbsLoaded(2);
  let m = await noHorizontalScroll();
  check('phone 360x740, random view: no horizontal scroll', m.scrollWidth <= m.clientWidth && m.cardsOut === 0, JSON.stringify(m));
  check('  ...at least 2 columns', m.columns >= 2, JSON.stringify(m));
  await page.screenshot({ path: join(outDir, 'phone_random.png') });
  seq = await seqOf();
  await page.setInputFiles('#file', busPhoto);
  await waitDrawn(seq, 'search');
  c = await cards();
  await thumbsLoaded(2);
  m = await noHorizontalScroll();
  check('phone: upload shows k = 10 results, buses first', c.length === 10 && c[0].label === 'buses');
  check('  ...no horizontal scroll', m.scrollWidth <= m.clientWidth && m.cardsOut === 0, JSON.stringify(m));
  await page.screenshot({ path: join(outDir, 'phone_upload.png') });
  await page.screenshot({ path: join(outDir, 'phone_upload_full.png'), fullPage: true });

  // ---- overall
  check('no JavaScript errors on the page', pageErrors.length === 0, pageErrors.join(' | '));
  check('no requests outside the server (offline page)', foreign.length === 0, foreign.join(' '));
  const unexpected = badResponses.filter((r) => !/\/api\/search/.test(r));   // the text upload's 4xx is deliberate
  check('no failed requests besides the deliberate bad upload', unexpected.length === 0, unexpected.join(' | '));
} catch (e) {
  bad('browser run', e && e.stack ? e.stack.split('\n').slice(0, 4).join(' / ') : String(e));
  try { await page.screenshot({ path: join(outDir, 'failure.png'), fullPage: true }); } catch (_) { /* ignore */ }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(fails ? `${fails} browser checks failed` : 'all browser checks passed');
process.exit(fails ? 1 : 0);
