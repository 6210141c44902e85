// The decoding worker: applies graphics updates in order with the codec
// port, and paints the picture on the page's canvas (an OffscreenCanvas
// handed over by the page). Latest-wins like the native viewer: every
// update is applied, but updates that arrived together are painted once.

import { Decoder } from "./codec";
import type { ToWorker, FromWorker } from "./messages";
import { WasmZstd } from "./zstd";

let zstd: WasmZstd | null = null;
const ready = WasmZstd.create().then((z) => {
  zstd = z;
  decoder = new Decoder(z);
});

// Replaced once zstd is ready; updates wait for `ready` (drain, bench).
let decoder: Decoder;
let canvas: OffscreenCanvas | null = null;
let ctx: OffscreenCanvasRenderingContext2D | null = null;
let image: ImageData | null = null;
const queue: Uint8Array[] = [];
let scheduled = false;

function post(msg: FromWorker, transfer: Transferable[] = []): void {
  (self as unknown as Worker).postMessage(msg, transfer);
}

/**
 * The ImageData over the decoder's picture, in the wasm heap: made again
 * when the picture moved (a key frame of another size) or the heap grew
 * (which detaches the old buffer).
 */
function ensureImage(): void {
  const px = decoder.pixels;
  if (!canvas || !ctx || !px) return;
  const data = image?.data;
  if (!image || !data || data.buffer !== px.buffer || data.byteOffset !== px.byteOffset || data.byteLength !== px.byteLength) {
    if (canvas.width !== decoder.width || canvas.height !== decoder.height) {
      canvas.width = decoder.width;
      canvas.height = decoder.height;
    }
    image = new ImageData(new Uint8ClampedArray(px.buffer as ArrayBuffer, px.byteOffset, px.byteLength), decoder.width, decoder.height);
  }
}

async function drain(): Promise<void> {
  scheduled = false;
  await ready;
  const t0 = performance.now();
  const dirty = { x0: Infinity, y0: Infinity, x1: 0, y1: 0 };
  let applied = 0;
  while (queue.length > 0) {
    const bytes = queue.shift()!;
    try {
      decoder.applyBytes(bytes);
      applied++;
      const d = decoder.dirty;
      dirty.x0 = Math.min(dirty.x0, d.x0);
      dirty.y0 = Math.min(dirty.y0, d.y0);
      dirty.x1 = Math.max(dirty.x1, d.x1);
      dirty.y1 = Math.max(dirty.y1, d.y1);
    } catch (e) {
      post({ type: "error", message: `graphics update refused: ${(e as Error).message}` });
    }
  }
  if (applied === 0 || !decoder.pixels) return;
  const before = image;
  ensureImage();
  if (image !== before) Object.assign(dirty, { x0: 0, y0: 0, x1: decoder.width, y1: decoder.height });
  if (ctx && image && dirty.x1 > dirty.x0 && dirty.y1 > dirty.y0) {
    ctx.putImageData(image, 0, 0, dirty.x0, dirty.y0, dirty.x1 - dirty.x0, dirty.y1 - dirty.y0);
  }
  post({
    type: "frame",
    seq: decoder.seq,
    width: decoder.width,
    height: decoder.height,
    ms: performance.now() - t0,
  });
}

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  switch (msg.type) {
    case "canvas":
      canvas = msg.canvas;
      ctx = canvas.getContext("2d", { alpha: false, willReadFrequently: false });
      break;
    case "update":
      queue.push(new Uint8Array(msg.bytes));
      if (!scheduled) {
        scheduled = true;
        setTimeout(() => void drain(), 0);
      }
      break;
    case "reset":
      if (zstd) {
        decoder.free();
        decoder = new Decoder(zstd);
        image = null;
      }
      queue.length = 0;
      break;
    case "snapshot": {
      // Read back what the canvas shows, not the decoder's buffer.
      if (!ctx || !canvas || canvas.width === 0) {
        post({ type: "snapshot", id: msg.id, width: 0, height: 0, rgba: new ArrayBuffer(0) });
        break;
      }
      const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
      post({ type: "snapshot", id: msg.id, width: img.width, height: img.height, rgba: img.data.buffer }, [img.data.buffer]);
      break;
    }
    case "bench":
      void ready.then(() => bench(msg.id, msg.updates));
      break;
  }
};

/** Decodes recorded updates with a fresh decoder, timing each (figures, not assertions). */
function bench(id: number, updates: ArrayBuffer[]): void {
  const d = new Decoder(zstd!);
  const ms: number[] = [];
  let error: string | null = null;
  for (const u of updates) {
    const t0 = performance.now();
    try {
      d.applyBytes(new Uint8Array(u));
    } catch (e) {
      error = (e as Error).message;
      break;
    }
    ms.push(performance.now() - t0);
  }
  // The decoder's picture is already the canvas's RGBA.
  const out = d.pixels ? d.pixels.slice().buffer : new ArrayBuffer(0);
  const { width, height } = d;
  d.free();
  post({ type: "bench", id, ms, error, width, height, rgba: out as ArrayBuffer }, [out as ArrayBuffer]);
}
