// Drives the page of a running `tailor serve` in Debian's Chromium (playwright-core): draw a stroke,
// upload a test picture and compare run 0's answer with `tailor predict`, tick runs off and on,
// click a confusion-matrix cell and one of its images, and see that an API error is shown.
//   node tests/browser/serve_test.mjs WEB_DIR URL ITEM_PNG EXPECTED_CLASS_OF_RUN_0 SCREENSHOT_PNG
import { statSync } from 'node:fs';
import path from 'node:path';
import { launchChromium } from './chromium.mjs';

const [webDir, url, itemPng, expected, shot] = process.argv.slice(2);
if (!shot) {
  console.error('usage: node serve_test.mjs WEB_DIR URL ITEM_PNG EXPECTED_CLASS SCREENSHOT_PNG');
  process.exit(2);
}
const WAIT = { timeout: 20000 };

let failures = 0;
function fail(msg) {
  console.error('FAIL: ' + msg);
  failures += 1;
}
function check(ok, passed, failed) {
  if (ok) console.log('ok: ' + passed); else fail(failed || passed);
}
// Waits for a condition in the page; a timeout is a failure with this message, not an exception.
async function waitFor(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, WAIT);
    return true;
  } catch (e) {
    fail('timed out waiting for ' + what);
    return false;
  }
}

const runs = (await (await fetch(url + '/api/runs')).json()).runs;
const classes = runs[0].classes;
console.log('server ' + url + ': runs ' + runs.map((r) => r.id + '=' + r.name).join(', '));

// Waits until the page has finished a prediction after `before`, made from the given source.
async function predictionDone(page, before, source) {
  return waitFor(page, 'a prediction from ' + source,
    ([n, src, count]) => Number(document.body.dataset.predictions) > n && document.body.dataset.source === src &&
      document.querySelectorAll('#results .result[data-rendered="true"]').length === count,
    [before, source, runs.length]);
}
const predictions = (page) => page.evaluate(() => Number(document.body.dataset.predictions));
const predictedOf = (page, id) => page.$eval(`.result[data-run="${id}"] .predicted`, (e) => e.textContent);

// Counts the pixels of a canvas that are not black, and the spread of their values.
const inkOf = (page, selector) => page.$eval(selector, (c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  const values = new Set();
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] + d[i + 1] + d[i + 2] > 0) lit++;
    values.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
  }
  return { lit, distinct: values.size };
});

// Every chart lists its bars longest first, and the class the card names has a longest bar.
async function chartsAgree(page, when) {
  const cards = await page.$$eval('#results .result', (rs) => rs.map((r) => {
    const bars = [...r.querySelectorAll('.chart g.mark-rect path')].map((p) => {
      const b = p.getBBox();
      return { y: b.y, width: b.width, label: p.getAttribute('aria-label') || '' };
    }).sort((a, b) => a.y - b.y);
    return { run: r.dataset.run, predicted: r.querySelector('.predicted').textContent, bars };
  }));
  for (const card of cards) {
    const sorted = card.bars.every((b, i) => i === 0 || b.width <= card.bars[i - 1].width + 0.5);
    // The predicted class's bar is a longest one (ties are possible, so not always the first).
    const mine = card.bars.find((b) => b.label.includes('class: ' + card.predicted + ';'));
    check(card.bars.length > 0 && sorted && mine && mine.width >= card.bars[0].width - 0.5,
          `${when}: run ${card.run}'s chart has ${card.bars.length} bars, longest first, "${card.predicted}" longest`,
          `${when}: run ${card.run}'s chart does not match "${card.predicted}": ` +
          card.bars.map((b) => Math.round(b.width) + ' ' + b.label).join(' / '));
  }
}

const browser = await launchChromium(webDir);
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  page.on('requestfailed', (r) => errors.push('request failed: ' + r.url()));
  await page.goto(url + '/');

  // The run list: one checkbox per run, all ticked.
  if (await waitFor(page, 'the run list', (n) => document.querySelectorAll('#runs input[type=checkbox]').length === n,
                    runs.length)) {
    const ticked = await page.$$eval('#runs input[type=checkbox]', (bs) => bs.filter((b) => b.checked).length);
    check(ticked === runs.length, `run list shows ${runs.length} runs, all ticked`, `only ${ticked} runs ticked`);
    const text = await page.$eval('#runs', (e) => e.textContent);
    check(runs.every((r) => text.includes(r.name)), 'run list names every run', 'run list lacks a run name: ' + text);
  }

  // Draw a stroke: a long U, like the outline of a bag.
  const box = await page.$eval('#draw', (c) => { const b = c.getBoundingClientRect(); return [b.x, b.y, b.width, b.height]; });
  const at = (fx, fy) => [box[0] + fx * box[2], box[1] + fy * box[3]];
  let n0 = await predictions(page);
  await page.mouse.move(...at(0.25, 0.2));
  await page.mouse.down();
  for (const [fx, fy] of [[0.25, 0.5], [0.3, 0.75], [0.5, 0.82], [0.7, 0.75], [0.75, 0.5], [0.75, 0.2]]) {
    await page.mouse.move(...at(fx, fy), { steps: 6 });
    await page.waitForTimeout(60);
  }
  await page.mouse.up();
  if (await predictionDone(page, n0, 'drawing')) {
    // Let any request still out finish, so the answer read is the last one.
    await page.waitForTimeout(400);
    for (const run of runs) {
      const got = await predictedOf(page, run.id);
      check(classes.includes(got), `drawing: run ${run.name} predicts "${got}"`, `run ${run.name} predicted "${got}", not a class`);
    }
    const bars = await page.$$eval('#results .result', (rs) => rs.map((r) => r.querySelectorAll('.chart g.mark-rect path').length));
    check(bars.length === runs.length && bars.every((b) => b >= 1), 'bars per chart: ' + bars.join(', '),
          'a chart has no bars: ' + bars.join(', '));
    await chartsAgree(page, 'drawing');
    const spill = await page.$$eval('#results .result', (rs) => rs.filter((r) => {
      const card = r.getBoundingClientRect();
      const svg = r.querySelector('.chart svg').getBoundingClientRect();
      return svg.width < 50 || svg.right > card.right + 1;
    }).length);
    check(spill === 0, 'every chart fits inside its card', spill + ' charts spill out of (or collapse in) their cards');
    const converted = await inkOf(page, '#converted');
    check(converted.lit > 100 && converted.distinct > 2, `#converted shows the image (${converted.lit} lit pixels)`,
          '#converted is blank');
    const saliency = await inkOf(page, `.result[data-run="${runs[0].id}"] .saliency`);
    check(saliency.lit > 100 && saliency.distinct > 2, `saliency overlay drawn (${saliency.distinct} colours)`,
          'the saliency canvas is blank');
  }

  // Upload a test picture: run 0 must agree with `tailor predict` on the same file.
  n0 = await predictions(page);
  await page.setInputFiles('#upload', itemPng);
  if (await predictionDone(page, n0, 'upload')) {
    const got = await predictedOf(page, runs[0].id);
    check(got === expected, `upload: run ${runs[0].name} predicts "${got}", as tailor predict does`,
          `upload: run ${runs[0].name} predicts "${got}", tailor predict says "${expected}"`);
    await chartsAgree(page, 'upload');
  }

  // Untick the last run: its card goes; tick it again: it comes back.
  if (runs.length > 1) {
    const last = runs[runs.length - 1];
    const box2 = `#runs input[value="${last.id}"]`;
    await page.uncheck(box2);
    await waitFor(page, 'the unticked run to leave the results',
      ([id, count]) => !document.querySelector(`.result[data-run="${id}"]`) &&
        document.querySelectorAll('#results .result[data-rendered="true"]').length === count,
      [last.id, runs.length - 1]);
    n0 = await predictions(page);
    await page.check(box2);
    if (await predictionDone(page, n0, 'upload')) console.log('ok: unticking and ticking a run updates the results');
  }

  // The confusion matrix of run 0: 100 cells whose counts add up to the test set.
  if (await waitFor(page, 'the confusion matrix', () => document.querySelectorAll('#confusion td[data-true]').length === 100)) {
    const cells = await page.$$eval('#confusion td[data-true]', (tds) => tds.map((td) =>
      ({ t: Number(td.dataset.true), p: Number(td.dataset.pred), count: Number(td.textContent) })));
    const total = cells.reduce((a, c) => a + c.count, 0);
    check(total === 10000, 'confusion matrix counts add up to 10000', 'confusion counts add up to ' + total);
    const headers = await page.$$eval('#confusion thead th.pred', (ths) => ths.map((th) => th.textContent));
    check(JSON.stringify(headers) === JSON.stringify(classes), 'confusion columns are the class names',
          'confusion column headers: ' + headers.join(', '));

    // A big diagonal cell (more than 60 images) and, if there is one, a small mistake cell.
    const picks = [cells.filter((c) => c.t === c.p && c.count > 0).sort((a, b) => b.count - a.count)[0],
                   cells.find((c) => c.t !== c.p && c.count > 0 && c.count < 60)].filter(Boolean);
    for (const cell of picks) {
      const want = Math.min(cell.count, 60);
      await page.click(`#confusion td[data-true="${cell.t}"][data-pred="${cell.p}"]`);
      const ok = await waitFor(page, `the ${want} images of cell (${cell.t}, ${cell.p})`,
        (n) => { const imgs = [...document.querySelectorAll('#cell-images img')];
                 return imgs.length === n && imgs.every((i) => i.complete && i.naturalWidth > 0); }, want);
      if (!ok) continue;
      const caption = await page.$eval('#cell-caption', (e) => e.textContent);
      check(caption.includes(`${classes[cell.t]} predicted as ${classes[cell.p]}: ${cell.count} image`),
            `cell ${classes[cell.t]} -> ${classes[cell.p]}: ${want} of ${cell.count} images loaded`,
            `cell caption is "${caption}"`);
    }

    // Click the first image of the last cell: run 0 classifies it (as is) into that cell's column.
    const last = picks[picks.length - 1];
    if (last) {
      n0 = await predictions(page);
      await page.click('#cell-images img');
      if (await predictionDone(page, n0, 'testimage')) {
        const got = await predictedOf(page, runs[0].id);
        check(got === classes[last.p], `test image from the cell: run ${runs[0].name} predicts "${got}"`,
              `a test image from column ${classes[last.p]} was predicted as "${got}"`);
        await chartsAgree(page, 'test image');
      }
    }
  }

  await page.screenshot({ path: shot, fullPage: true });
  const size = statSync(shot).size;
  check(size > 30000, `screenshot ${shot}: ${size} bytes`, `the screenshot looks blank (${size} bytes)`);
  check(errors.length === 0, 'no console errors', 'console errors: ' + errors.join(' | '));

  // An error from the API is shown on the page, not thrown (the 415 logs a console error, so last).
  await page.setInputFiles('#upload', { name: 'bad.png', mimeType: 'image/png', buffer: Buffer.from('not an image') });
  if (await waitFor(page, 'the upload error in #error',
                    () => !document.getElementById('error').hidden && document.getElementById('error-text').innerText.trim().length > 0)) {
    console.log('ok: a bad upload shows "' + (await page.$eval('#error-text', (e) => e.innerText.trim())) + '"');
  }
  const thrown = errors.filter((e) => e.startsWith('page error'));
  check(thrown.length === 0, 'no uncaught exceptions', 'uncaught exceptions: ' + thrown.join(' | '));
} finally {
  await browser.close();
}
if (failures) {
  console.error(`${failures} checks failed`);
  process.exitCode = 1;
} else {
  console.log('1 passed, 0 failed');
}
