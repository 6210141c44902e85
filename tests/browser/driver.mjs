// Drives Debian's headless Chromium for tests/tests/browser.rs with
// playwright-core (from web/node_modules): one JSON command per line on
// stdin, one JSON answer per line on stdout ({"ok": value} or {"error": text}).
//
// Commands: open {url}; join {name, password}; wait {expr, timeout_ms}
// (until the page expression is truthy; answers its value); eval {expr}
// (an async expression, answers its JSON value); click {x, y} (picture
// coordinates on the attendee canvas); type {text}; bench {file} (a file
// of length-prefixed updates, decoded in the page's worker); quit.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  // Playwright gives every launch a fresh, empty user-data-dir. No
  // --disable-quic: WebTransport runs on QUIC. The closed network refuses
  // Chromium's background connections, so they are all switched off.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // More from the test (Browser::start_with_args), a JSON array.
    ...JSON.parse(process.env.TANDEM_CHROMIUM_ARGS ?? "[]"),
  ],
});
// bypassCSP: the page forbids eval, which the test commands use (the page itself does not).
const context = await browser.newContext({ viewport: { width: 2200, height: 1400 }, deviceScaleFactor: 1, bypassCSP: true });
const page = await context.newPage();
const log = [];
page.on("console", (m) => log.push(`${m.type()}: ${m.text()}`));
page.on("pageerror", (e) => log.push(`pageerror: ${e.message}`));

function answer(v) {
  process.stdout.write(JSON.stringify(v) + "\n");
}

async function canvasPoint(x, y) {
  return page.evaluate(
    ([x, y]) => {
      const c = document.getElementById("screen");
      const r = c.getBoundingClientRect();
      const s = window.tandem.state;
      return { x: r.left + ((x + 0.5) * r.width) / s.width, y: r.top + ((y + 0.5) * r.height) / s.height };
    },
    [x, y],
  );
}

function readUpdates(file) {
  const bytes = readFileSync(file);
  const out = [];
  for (let at = 0; at < bytes.length; ) {
    const n = bytes.readUInt32LE(at);
    out.push(bytes.subarray(at + 4, at + 4 + n).toString("base64"));
    at += 4 + n;
  }
  return out;
}

const commands = {
  async open({ url }) {
    await page.goto(url);
    return page.title();
  },
  async join({ name, password }) {
    await page.fill("input[name=name]", name);
    await page.fill("input[name=password]", password);
    await page.click("button[type=submit]");
    return true;
  },
  async wait({ expr, timeout_ms }) {
    const handle = await page.waitForFunction(expr, null, { timeout: timeout_ms ?? 10000, polling: 50 });
    return handle.jsonValue();
  },
  async eval({ expr }) {
    return page.evaluate(`(async () => (${expr}))()`);
  },
  async click({ x, y }) {
    const p = await canvasPoint(x, y);
    await page.mouse.click(p.x, p.y);
    return p;
  },
  async type({ text }) {
    await page.focus("#stage");
    await page.keyboard.type(text, { delay: 20 });
    return true;
  },
  async bench({ file }) {
    const updates = readUpdates(file);
    return page.evaluate((u) => window.tandem.bench(u), updates);
  },
  async log() {
    return log;
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    answer({ error: `bad command: ${e}` });
    continue;
  }
  if (cmd.op === "quit") break;
  const f = commands[cmd.op];
  if (!f) {
    answer({ error: `unknown command ${cmd.op}` });
    continue;
  }
  try {
    answer({ ok: (await f(cmd)) ?? null });
  } catch (e) {
    answer({ error: String(e && e.message ? e.message : e), log });
  }
}
await browser.close();
