// Opens xpra's HTML5 client in Debian's headless chromium and waits until a remote window draws.
//   node attach.js URL SCREENSHOT.png TIMEOUT_MS
// Prints one JSON line: {windows: [{title, colours, width, height}], logs: [...], ok: bool}.
// Exit status 0 when a drawn window (two colours at least: xterm's text on its background) other than
// xpra's startup xmessage appeared in time, 1 otherwise.
const { chromium } = require('playwright-core');

const [url, shot, timeoutArg] = process.argv.slice(2);
const timeout = Number(timeoutArg || 60000);

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const logs = [];
  let windows = [];
  let ok = false;
  try {
    // The gateway's certificate is self-signed (generated on first run).
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1024, height: 768 } });
    const page = await context.newPage();
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push('pageerror: ' + e));
    await page.goto(url, { timeout });
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
      windows = await page.evaluate(() => {
        return Array.from(document.querySelectorAll('div.window')).map((w) => {
          const title = (w.querySelector('.windowtitle') || {}).textContent || '';
          const canvas = w.querySelector('canvas');
          let colours = 0;
          let width = 0;
          let height = 0;
          if (canvas) {
            width = canvas.width;
            height = canvas.height;
            try {
              const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
              const seen = new Set();
              const step = 4 * 7;
              for (let i = 0; i < data.length && seen.size < 1000; i += step) {
                seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
              }
              colours = seen.size;
            } catch (e) {
              colours = -1;
            }
          }
          return { title, colours, width, height };
        });
      });
      if (windows.some((w) => w.colours >= 2 && w.width >= 100 && w.title !== 'xmessage')) {
        ok = true;
        // Let the window finish drawing before the screenshot.
        await page.waitForTimeout(2000);
        break;
      }
      await page.waitForTimeout(1000);
    }
    await page.screenshot({ path: shot });
  } catch (e) {
    logs.push('driver error: ' + e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify({ ok, windows, logs: logs.slice(-80) }));
  process.exit(ok ? 0 : 1);
})();
