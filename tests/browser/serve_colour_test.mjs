// Colour in the page of a running `tailor serve` with an RGB run: the uploaded picture is shown
// converted in colour (the #converted canvas is red where the picture is), the run's card shows
// the prediction `tailor predict` gives, and its saliency canvas is drawn.
//   node tests/browser/serve_colour_test.mjs WEB_DIR URL RED_PNG EXPECTED_CLASS
import { launchChromium } from './chromium.mjs';

const [webDir, url, redPng, expected] = process.argv.slice(2);
if (!expected) {
  console.error('usage: node serve_colour_test.mjs WEB_DIR URL RED_PNG EXPECTED_CLASS');
  process.exit(2);
}
let failures = 0;
function check(ok, passed, failed) {
  if (ok) {
    console.log('ok: ' + passed);
  } else {
    console.error('FAIL: ' + (failed || passed));
    failures += 1;
  }
}

const browser = await launchChromium(webDir);
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => check(false, '', 'page error: ' + e.message));
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => document.querySelectorAll('#runs input[type=checkbox]').length > 0, null,
                             { timeout: 20000 });
  await page.setInputFiles('#upload', redPng);
  await page.waitForFunction(() => Number(document.body.dataset.predictions) > 0 &&
    document.querySelectorAll('#results .result[data-rendered="true"]').length === 1, null, { timeout: 20000 });
  // Pixels that are clearly red, and clearly green or blue, on the converted picture.
  const tally = await page.$eval('#converted', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let red = 0, other = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] > 150 && d[i + 1] < 90 && d[i + 2] < 90) red++;
      if (d[i + 1] > d[i] + 60 || d[i + 2] > d[i] + 60) other++;
    }
    return { red, other, total: d.length / 4 };
  });
  check(tally.red > tally.total / 5 && tally.other === 0,
        `#converted shows the upload in colour (${tally.red} of ${tally.total} pixels red)`,
        `#converted is not the red upload in colour (${tally.red} red, ${tally.other} green or blue of ${tally.total})`);
  const got = await page.$eval('#results .result .predicted', (e) => e.textContent);
  check(got === expected, `the RGB run predicts "${got}", as tailor predict does`,
        `the RGB run predicts "${got}", tailor predict says "${expected}"`);
  const lit = await page.$eval('#results .result canvas.saliency', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) n += d[i] + d[i + 1] + d[i + 2] > 0;
    return n;
  });
  check(lit > 100, `the saliency canvas is drawn (${lit} lit pixels)`, 'the saliency canvas is blank');
} finally {
  await browser.close();
}
process.exit(failures ? 1 : 0);
