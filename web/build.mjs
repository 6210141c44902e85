// Builds the attendee page into dist/: index.html, app.js, worker.js.
// Deterministic for a given package-lock.json, so the committed dist/ can
// be checked against the sources (tests/tests/browser.rs). `node build.mjs OUT`
// builds into OUT instead.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, "dist");
mkdirSync(out, { recursive: true });
// zstd's wasm as zstddec ships it (base64 inside its plain decoder's
// module), for src/zstd.ts, which drives the wasm directly.
const zstdWasm = {
  name: "zstd-wasm",
  setup(b) {
    b.onResolve({ filter: /^virtual:zstd-wasm$/ }, () => ({ path: "zstd-wasm", namespace: "zstd-wasm" }));
    b.onLoad({ filter: /.*/, namespace: "zstd-wasm" }, () => {
      const file = join(here, "node_modules/zstddec/dist/zstddec.mjs");
      const m = /const wasm = "([A-Za-z0-9+/=]+)"/.exec(readFileSync(file, "utf8"));
      if (!m) throw new Error(`no wasm module in ${file}`);
      return { contents: `export default ${JSON.stringify(m[1])};`, loader: "js" };
    });
  },
};
const common = {
  plugins: [zstdWasm],
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
