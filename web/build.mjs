// Builds the attendee page into dist/: index.html, app.js, worker.js.
// Deterministic for a given package-lock.json, so the committed dist/ can
// be checked against the sources (tests/tests/browser.rs). `node build.mjs OUT`
// builds into OUT instead.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, "dist");
mkdirSync(out, { recursive: true });
const common = {
  bundle: true,
  minify: true,
  format: "iife",
  target: "chrome120",
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
};
await build({ ...common, entryPoints: [join(here, "src/main.ts")], outfile: join(out, "app.js") });
await build({ ...common, entryPoints: [join(here, "src/worker.ts")], outfile: join(out, "worker.js") });
copyFileSync(join(here, "index.html"), join(out, "index.html"));
