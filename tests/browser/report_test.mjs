// Opens a generated report.html from disk in Debian's Chromium (driven by playwright-core) and
// checks that the charts rendered: no console errors, every chart has drawn marks, picking a run
// in a legend dims the others, and the screenshot is not blank.
//   node tests/browser/report_test.mjs WEB_DIR REPORT_HTML SCREENSHOT_PNG
import { statSync } from 'node:fs';
import path from 'node:path';
import { launchChromium } from './chromium.mjs';

const [webDir, report, shot] = process.argv.slice(2);

function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exitCode = 1;
}

const browser = await launchChromium(webDir);
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('file://' + path.resolve(report));
  await page.waitForFunction(() => document.querySelectorAll('.chart[data-rendered="true"]').length === 4,
                             null, { timeout: 20000 }).catch(() => fail('not all 4 charts rendered'));
  const marks = await page.$$eval('.chart', (charts) => charts.map((c) =>
    c.querySelectorAll('g.mark-line path, g.mark-symbol path').length));
  console.log('marks per chart: ' + marks.join(', '));
  if (marks.length !== 4 || marks.some((n) => n < 1)) fail('a chart has no drawn marks');
  // Click the first legend entry of the loss chart: the other runs' lines fade.
  const lines = '#chart0 g.mark-line path';
  const before = await page.$$eval(lines, (ps) => ps.map((p) => getComputedStyle(p).opacity || p.getAttribute('opacity')));
  await page.click('#chart0 g.role-legend-symbol path, #chart0 .role-legend-label text');
  await page.waitForTimeout(300);
  const after = await page.$$eval(lines, (ps) => ps.map((p) => p.getAttribute('stroke-opacity') ?? p.getAttribute('opacity') ?? getComputedStyle(p).strokeOpacity));
  console.log('line opacity before: ' + before.join(',') + ' after: ' + after.join(','));
  if (after.length > 1 && !after.some((o) => Number(o) < 0.5)) fail('picking a run in the legend did not dim the others');
  const rows = await page.$$eval('table tr', (trs) => trs.length);
  if (rows < 2) fail('the results table is missing');
  await page.screenshot({ path: shot, fullPage: true });
  const size = statSync(shot).size;
  console.log('screenshot ' + shot + ': ' + size + ' bytes');
  if (size < 20000) fail('the screenshot looks blank (' + size + ' bytes)');
  if (errors.length) fail('console errors: ' + errors.join(' | '));
} finally {
  await browser.close();
}
if (!process.exitCode) console.log('1 passed, 0 failed');
