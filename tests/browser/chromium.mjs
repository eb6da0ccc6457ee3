// Debian's Chromium, driven by npm playwright-core from WEB_DIR/node_modules, launched the way every
// browser test here needs it: headless, no sandbox, no GPU, no background networking.
import { createRequire } from 'node:module';
import path from 'node:path';

export function launchChromium(webDir) {
  const require = createRequire(path.resolve(webDir, 'package.json'));
  const { chromium } = require('playwright-core');
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
