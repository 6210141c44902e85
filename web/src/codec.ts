// Tandem's graphics codec, decoding side, for the browser: the update
// format of crates/tandem-codec/src/update.rs (version 2) and the
// Decoder of crates/tandem-codec/src/decoder.rs, pixel for pixel. Every
// update comes from the network, so every field is checked as the Rust
// decoder checks it; a failed update leaves the picture as it was.
// On the wire a pixel is a u32 0x00RRGGBB (the native Frame's); this
// decoder keeps the picture as the canvas wants it (bytes R, G, B, 255:
// 0xFFBBGGRR read little-endian), converting each value as it is decoded,
// so painting needs no pass over the picture. The channels are
// independent bytes, so XOR on converted values gives the converted XOR,
// and the top byte, which no picture shows, is dropped. The picture and
// all pixel work are in the wasm heap (zstd.ts, kernels.ts).

import type { Wasm } from "./zstd";

export const UPDATE_MAGIC = 0x54;
export const UPDATE_VERSION = 2;
export const TILE_SIZE = 64;
export const MAX_DIMENSION = 16384;
export const MAX_MOVES = 256;
const MAX_PALETTE = 256;

const FLAG_MOVES = 1;
const FLAG_STREAM_ZSTD = 2;
const FLAG_PACKED24 = 4;
const FLAG_PALETTE = 8;
const KNOWN_FLAGS = FLAG_MOVES | FLAG_STREAM_ZSTD | FLAG_PACKED24 | FLAG_PALETTE;
const KIND_SOLID = 0;
const KIND_RAW = 1;
const KIND_ZSTD = 2;
const KIND_COPY = 3;
const KIND_PIXELS = 4;
const KIND_XOR = 5;
const WHOLE_TILE = 0x10;
const MIN_RECORD_LEN = 2;
const MIN_MOVE_LEN = 6;

/** A malformed or inapplicable update. */
export class CodecError extends Error {}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Move {
  src: Rect;
  dstX: number;
  dstY: number;
}

export type Record =
  | { tile: number; kind: "solid"; colour: number }
  | { tile: number; kind: "raw"; data: Uint8Array }
  | { tile: number; kind: "zstd"; data: Uint8Array }
  | { tile: number; kind: "copy"; src: number }
  | { tile: number; kind: "pixels" | "xor"; area: Rect };

export interface Update {
  seq: number;
  baseSeq: number;
  width: number;
  height: number;
  moves: Move[];
  records: Record[];
  stream: { compressed: boolean; packed24: boolean; palette: boolean; data: Uint8Array };
}


class Grid {
  readonly tilesX: number;
  readonly tilesY: number;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.tilesX = Math.ceil(width / TILE_SIZE);
    this.tilesY = Math.ceil(height / TILE_SIZE);
  }
  get count(): number {
    return this.tilesX * this.tilesY;
  }
  rect(tile: number): Rect {
    const x = (tile % this.tilesX) * TILE_SIZE;
    const y = Math.floor(tile / this.tilesX) * TILE_SIZE;
    return { x, y, w: Math.min(TILE_SIZE, this.width - x), h: Math.min(TILE_SIZE, this.height - y) };
  }
}

class Reader {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}
  get remaining(): number {
    return this.bytes.length - this.at;
  }
  u8(): number {
    if (this.at >= this.bytes.length) throw new CodecError("update truncated");
    return this.bytes[this.at++];
  }
  u32le(): number {
    if (this.remaining < 4) throw new CodecError("update truncated");
    const b = this.bytes;
    const v = (b[this.at] | (b[this.at + 1] << 8) | (b[this.at + 2] << 16) | (b[this.at + 3] << 24)) >>> 0;
    this.at += 4;
    return v;
  }
  /** Canonical unsigned LEB128; values past 2^53 are refused (no valid update has them). */
  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new CodecError("non-canonical varint");
        if (v > Number.MAX_SAFE_INTEGER) throw new CodecError("varint too large");
        return v;
      }
      scale *= 0x80;
    }
    throw new CodecError("varint too long");
  }
  blob(): Uint8Array {
    const len = this.varint();
    if (len > this.remaining) throw new CodecError("update truncated");
    const out = this.bytes.subarray(this.at, this.at + len);
    this.at += len;
    return out;
  }
}

function unzigzag(u: number): number {
  return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
}

/** Parses an update's bytes (EncodedUpdate::from_bytes), structure checked. */
export function parseUpdate(bytes: Uint8Array): Update {
  const r = new Reader(bytes);
  const magic = r.u8();
  if (magic !== UPDATE_MAGIC) throw new CodecError(`bad magic ${magic}`);
  const version = r.u8();
  if (version !== UPDATE_VERSION) throw new CodecError(`unsupported update version ${version}`);
  const flags = r.u8();
  if (flags & ~KNOWN_FLAGS) throw new CodecError(`unknown flags ${flags}`);
  const seq = r.varint();
  const gap = r.varint();
  if (seq === 0 || gap === 0 || gap > seq) throw new CodecError("bad sequence numbers");
  const width = r.varint();
  const height = r.varint();
  if (width > MAX_DIMENSION || height > MAX_DIMENSION) throw new CodecError(`bad dimensions ${width}x${height}`);
  const moves: Move[] = [];
  if (flags & FLAG_MOVES) {
    const count = r.varint();
    if (count === 0 || count > MAX_MOVES) throw new CodecError(`${count} copy-rects`);
    if (count > r.remaining / MIN_MOVE_LEN) throw new CodecError("update truncated");
    for (let i = 0; i < count; i++) {
      const src = { x: r.varint(), y: r.varint(), w: r.varint(), h: r.varint() };
      const dstX = src.x + unzigzag(r.varint());
      const dstY = src.y + unzigzag(r.varint());
      if (dstX < 0 || dstY < 0) throw new CodecError("copy-rect destination outside the frame");
      moves.push({ src, dstX, dstY });
    }
  }
  const grid = new Grid(width, height);
  const count = r.varint();
  if (count > grid.count) throw new CodecError(`${count} records for ${grid.count} tiles`);
  if (count > r.remaining / MIN_RECORD_LEN) throw new CodecError("update truncated");
  const records: Record[] = [];
  let usesStream = false;
  const tileIndex = (): number => {
    const i = r.varint();
    if (i >= grid.count) throw new CodecError(`tile ${i} out of range`);
    return i;
  };
  for (let i = 0; i < count; i++) {
    const tile = tileIndex();
    const tag = r.u8();
    const kind = tag & ~WHOLE_TILE;
    if (tag & WHOLE_TILE && kind !== KIND_PIXELS && kind !== KIND_XOR) throw new CodecError(`unknown tile kind ${tag}`);
    switch (kind) {
      case KIND_SOLID:
        records.push({ tile, kind: "solid", colour: r.u32le() });
        break;
      case KIND_RAW:
        records.push({ tile, kind: "raw", data: r.blob() });
        break;
      case KIND_ZSTD:
        records.push({ tile, kind: "zstd", data: r.blob() });
        break;
      case KIND_COPY:
        records.push({ tile, kind: "copy", src: tileIndex() });
        break;
      case KIND_PIXELS:
      case KIND_XOR: {
        usesStream = true;
        let area: Rect;
        if (tag & WHOLE_TILE) {
          const t = grid.rect(tile);
          area = { x: 0, y: 0, w: t.w, h: t.h };
        } else {
          area = { x: r.u8(), y: r.u8(), w: r.u8(), h: r.u8() };
        }
        records.push({ tile, kind: kind === KIND_PIXELS ? "pixels" : "xor", area });
        break;
      }
      default:
        throw new CodecError(`unknown tile kind ${tag}`);
    }
  }
  const stream: Update["stream"] = { compressed: false, packed24: false, palette: false, data: new Uint8Array(0) };
  if (usesStream) {
    stream.compressed = (flags & FLAG_STREAM_ZSTD) !== 0;
    stream.packed24 = (flags & FLAG_PACKED24) !== 0;
    stream.palette = (flags & FLAG_PALETTE) !== 0;
    stream.data = r.blob();
  } else if (flags & (FLAG_STREAM_ZSTD | FLAG_PACKED24 | FLAG_PALETTE)) {
    throw new CodecError("stream flags set but no record uses the stream");
  }
  if (r.remaining !== 0) throw new CodecError(`${r.remaining} trailing bytes`);
  return { seq, baseSeq: seq - gap, width, height, moves, records, stream };
}

function bytesPerValue(s: Update["stream"]): number {
  return s.packed24 ? 3 : 4;
}

function unpackedLen(s: Update["stream"], values: number, colours: number): number {
  return s.palette ? 1 + colours * bytesPerValue(s) + values : values * bytesPerValue(s);
}

/** The checks of update.rs `validate`; returns the grid and the stream's value count. */
function validate(u: Update): { grid: Grid; streamValues: number } {
  const keyFrame = u.baseSeq === 0;
  if (keyFrame && u.moves.length > 0) throw new CodecError("copy-rects in a key frame");
  for (const m of u.moves) {
    const inside = (x: number, y: number) => x + m.src.w <= u.width && y + m.src.h <= u.height;
    if (m.src.w === 0 || m.src.h === 0) throw new CodecError("zero-area copy-rect");
    if (!inside(m.src.x, m.src.y)) throw new CodecError("copy-rect source is not inside the frame");
    if (!inside(m.dstX, m.dstY)) throw new CodecError("copy-rect destination is not inside the frame");
  }
  const grid = new Grid(u.width, u.height);
  const seen = new Uint8Array(grid.count);
  let streamValues = 0;
  for (const rec of u.records) {
    if (seen[rec.tile]) throw new CodecError(`tile ${rec.tile} twice`);
    seen[rec.tile] = 1;
    const selfContained = rec.kind === "solid" || rec.kind === "raw" || rec.kind === "zstd";
    if (keyFrame && !selfContained) throw new CodecError("key frame record is not self-contained");
    const dst = grid.rect(rec.tile);
    const rawLen = dst.w * dst.h * 4;
    switch (rec.kind) {
      case "raw":
        if (rec.data.length !== rawLen) throw new CodecError("raw payload length does not match the tile size");
        break;
      case "zstd":
        if (rec.data.length === 0 || rec.data.length >= rawLen) {
          throw new CodecError("compressed payload is empty or not smaller than the tile");
        }
        break;
      case "copy": {
        const src = grid.rect(rec.src);
        if (src.w !== dst.w || src.h !== dst.h) throw new CodecError("copy source has another size");
        break;
      }
      case "pixels":
      case "xor": {
        const a = rec.area;
        if (a.w === 0 || a.h === 0 || a.x + a.w > dst.w || a.y + a.h > dst.h) {
          throw new CodecError("area is empty or not inside the tile");
        }
        streamValues += a.w * a.h;
        break;
      }
      case "solid":
        break;
    }
  }
  if (keyFrame && u.records.length !== grid.count) throw new CodecError("incomplete key frame");
  const s = u.stream;
  if (streamValues === 0) {
    if (s.compressed || s.packed24 || s.palette || s.data.length > 0) throw new CodecError("stream present but no record uses it");
  } else if (s.compressed) {
    if (s.data.length === 0 || s.data.length >= unpackedLen(s, streamValues, MAX_PALETTE)) {
      throw new CodecError("compressed stream is empty or not smaller than its values");
    }
  } else {
    if (s.palette && s.data.length === 0) throw new CodecError("palette stream is empty");
    const colours = s.palette ? s.data[0] + 1 : 0;
    if (s.data.length !== unpackedLen(s, streamValues, colours)) {
      throw new CodecError("stream length does not match the records' areas");
    }
  }
  return { grid, streamValues };
}

/** A wire pixel (0x00RRGGBB) as a picture pixel (bytes R, G, B, 255), as an int32. */
function rgba(v: number): number {
  return 0xff000000 | ((v & 0xff) << 16) | (v & 0xff00) | ((v >>> 16) & 0xff);
}

/** `n` rounded up to a multiple of 16 (scratch regions start 16-aligned). */
function align16(n: number): number {
  return (n + 15) & ~15;
}

/** Bytes of one copy record's snapshot: a whole tile. */
const TILE_BYTES = TILE_SIZE * TILE_SIZE * 4;

/** A rectangle of the picture changed by the last update (for painting). */
export interface Dirty {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Applies updates in order and holds the picture (tandem_codec::Decoder).
 * The picture lives in the wasm heap, beside zstd's output, so that every
 * pixel loop runs in the kernels (kernels.ts); call `free` when done.
 */
export class Decoder {
  width = 0;
  height = 0;
  seq = 0;
  /** The picture's address in the heap (0: no picture yet). */
  private frame = 0;
  /** Bounding box of what the last applied update changed. */
  dirty: Dirty = { x0: 0, y0: 0, x1: 0, y1: 0 };

  constructor(private readonly wasm: Wasm) {}

  /**
   * The picture as canvas RGBA (a view into the heap: take it again after
   * the next update, which may grow the heap and detach this one).
   */
  get pixels(): Uint32Array | null {
    if (this.frame === 0) return null;
    return new Uint32Array(this.wasm.memory.buffer, this.frame, this.width * this.height);
  }

  /** Gives the picture's memory back to the heap. */
  free(): void {
    if (this.frame !== 0) this.wasm.free(this.frame);
    this.frame = 0;
    this.width = 0;
    this.height = 0;
  }

  /** Parses and applies one update's bytes. */
  applyBytes(bytes: Uint8Array): void {
    this.apply(parseUpdate(bytes));
  }

  apply(u: Update): void {
    const { grid, streamValues } = validate(u);
    const keyFrame = u.baseSeq === 0;
    if (!keyFrame) {
      if (this.frame === 0) throw new CodecError("a key frame is needed first");
      if (u.baseSeq !== this.seq) throw new CodecError(`update is based on ${u.baseSeq}, the picture is at ${this.seq}`);
      if (u.width !== this.width || u.height !== this.height) throw new CodecError("update size differs from the picture");
    }
    const W = u.width;
    const H = u.height;
    const records = u.records;
    const n = records.length;
    const k = this.wasm.kernels;
    // 1. Everything that can fail or grow the heap, before the picture is
    // touched: scratch, the shared stream's values (converted to picture
    // pixels in scratch), every zstd tile in one batch (left in zstd's
    // output buffer), and a key frame's new picture.
    const streamAt = new Int32Array(n);
    const zIndex = new Int32Array(n);
    const zFrames: Uint8Array[] = [];
    const zCaps: number[] = [];
    let atStream = 0;
    let copies = 0;
    let rawBytes = 0;
    for (let i = 0; i < n; i++) {
      const rec = records[i];
      if (rec.kind === "zstd") {
        const t = grid.rect(rec.tile);
        zIndex[i] = zFrames.length;
        zFrames.push(rec.data);
        zCaps.push(t.w * t.h * 4);
      } else if (rec.kind === "pixels" || rec.kind === "xor") {
        streamAt[i] = atStream;
        atStream += rec.area.w * rec.area.h;
      } else if (rec.kind === "copy") {
        copies++;
      } else if (rec.kind === "raw") {
        rawBytes += align16(rec.data.length);
      }
    }
    // Scratch: the stream's values, copy records' snapshots, raw tiles,
    // and an uncompressed stream's bytes.
    const stage = streamValues > 0 && !u.stream.compressed ? u.stream.data.length : 0;
    const valuesLen = align16(streamValues * 4);
    const copiesLen = copies * TILE_BYTES;
    const scratch = this.heap(() => this.wasm.scratch(valuesLen + copiesLen + rawBytes + stage));
    const valuesPtr = scratch;
    const copiesPtr = valuesPtr + valuesLen;
    const rawPtr = copiesPtr + copiesLen;
    if (streamValues > 0) this.unpackStream(u.stream, streamValues, valuesPtr, rawPtr + rawBytes);
    let zOffsets: number[] = [];
    let zPtr = 0;
    if (zFrames.length > 0) {
      const z = this.heap(() => this.wasm.inflate(zFrames, zCaps));
      for (let i = 0; i < zCaps.length; i++) {
        if (z.lengths[i] !== zCaps[i]) throw new CodecError("decompressed data is too short");
      }
      zOffsets = z.offsets;
      zPtr = z.bytes.byteOffset;
    }
    // A key frame writes every pixel, so the picture is reused when the size stays.
    let frame = this.frame;
    if (keyFrame && (frame === 0 || W !== this.width || H !== this.height)) {
      frame = this.heap(() => this.wasm.malloc(Math.max(4, W * H * 4)));
    }
    // 2. Nothing fails or allocates from here on: these views stay valid.
    const heap8 = new Uint8Array(this.wasm.memory.buffer);
    const heap32 = new Uint32Array(this.wasm.memory.buffer);
    const stride = W * 4;
    let x0 = W;
    let y0 = H;
    let x1 = 0;
    let y1 = 0;
    const base = frame >> 2;
    for (const m of u.moves) {
      const { x, y, w, h } = m.src;
      // Each copy reads the picture as it was just before it: rows in the
      // order that never reads a row already overwritten (copyWithin
      // handles the overlap inside a row).
      const down = m.dstY > y;
      for (let i = 0; i < h; i++) {
        const row = down ? h - 1 - i : i;
        const from = base + (y + row) * W + x;
        heap32.copyWithin(base + (m.dstY + row) * W + m.dstX, from, from + w);
      }
      x0 = Math.min(x0, m.dstX);
      y0 = Math.min(y0, m.dstY);
      x1 = Math.max(x1, m.dstX + w);
      y1 = Math.max(y1, m.dstY + h);
    }
    // Copy records read the moved picture before any record writes (their
    // source may be another record's tile). An XOR reads only its own
    // tile, which no other record writes, so it works in place.
    const tilesX = grid.tilesX;
    const at = (tile: number) => {
      const tx = (tile % tilesX) * TILE_SIZE;
      const ty = Math.floor(tile / tilesX) * TILE_SIZE;
      return { tx, ty, tw: Math.min(TILE_SIZE, W - tx), th: Math.min(TILE_SIZE, H - ty) };
    };
    for (let i = 0, c = copiesPtr; i < n; i++) {
      const rec = records[i];
      if (rec.kind !== "copy") continue;
      const s = at(rec.src);
      k.copy(c, s.tw * 4, frame + (s.ty * W + s.tx) * 4, stride, s.tw, s.th);
      c += TILE_BYTES;
    }
    for (let i = 0, c = copiesPtr, r = rawPtr; i < n; i++) {
      const rec = records[i];
      const { tx, ty, tw, th } = at(rec.tile);
      let ax = tx;
      let ay = ty;
      let aw = tw;
      let ah = th;
      if (rec.kind === "pixels" || rec.kind === "xor") {
        ax += rec.area.x;
        ay += rec.area.y;
        aw = rec.area.w;
        ah = rec.area.h;
      }
      const d = frame + (ay * W + ax) * 4;
      switch (rec.kind) {
        case "solid":
          k.fill(d, stride, aw, ah, rgba(rec.colour));
          break;
        case "zstd":
          k.wire(d, stride, zPtr + zOffsets[zIndex[i]], aw * 4, aw, ah);
          break;
        case "raw":
          heap8.set(rec.data, r);
          k.wire(d, stride, r, aw * 4, aw, ah);
          r += align16(rec.data.length);
          break;
        case "pixels":
          k.copy(d, stride, valuesPtr + streamAt[i] * 4, aw * 4, aw, ah);
          break;
        case "xor":
          k.xor(d, stride, valuesPtr + streamAt[i] * 4, aw * 4, aw, ah);
          break;
        case "copy":
          k.copy(d, stride, c, aw * 4, aw, ah);
          c += TILE_BYTES;
          break;
      }
      x0 = Math.min(x0, ax);
      y0 = Math.min(y0, ay);
      x1 = Math.max(x1, ax + aw);
      y1 = Math.max(y1, ay + ah);
    }
    if (keyFrame) {
      if (frame !== this.frame && this.frame !== 0) this.wasm.free(this.frame);
      this.frame = frame;
      this.width = W;
      this.height = H;
      this.dirty = { x0: 0, y0: 0, x1: W, y1: H };
    } else {
      this.dirty = { x0, y0, x1, y1 };
    }
    this.seq = u.seq;
  }

  /** Runs a heap call, its ZstdError (bad data, a full heap) as a CodecError. */
  private heap<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw new CodecError((e as Error).message);
    }
  }

  /**
   * The stream's `count` values as picture pixels at `out` in the heap.
   * An uncompressed stream is first copied to `stage` (scratch of its length).
   */
  private unpackStream(s: Update["stream"], count: number, out: number, stage: number): void {
    let at = stage;
    let len = s.data.length;
    if (s.compressed) {
      const z = this.heap(() => this.wasm.inflate([s.data], [unpackedLen(s, count, s.palette ? MAX_PALETTE : 0)]));
      at = z.bytes.byteOffset;
      len = z.lengths[0];
    } else {
      new Uint8Array(this.wasm.memory.buffer).set(s.data, stage);
    }
    const k = this.wasm.kernels;
    const bpv = bytesPerValue(s);
    if (!s.palette) {
      if (len !== count * bpv) throw new CodecError("stream length does not match the records' areas");
      if (bpv === 4) k.wire(out, 0, at, 0, count, 1);
      else k.unpack24(out, at, count);
      return;
    }
    const raw = new Uint8Array(this.wasm.memory.buffer, at, len);
    if (len === 0) throw new CodecError("palette stream is empty");
    const colours = raw[0] + 1;
    if (len !== unpackedLen(s, count, colours)) throw new CodecError("stream length does not match the records' areas");
    const palette = new Int32Array(colours);
    for (let i = 0, j = 1; i < colours; i++, j += bpv) {
      const v = raw[j] | (raw[j + 1] << 8) | (raw[j + 2] << 16) | (bpv === 4 ? raw[j + 3] << 24 : 0);
      palette[i] = rgba(v);
    }
    const values = new Int32Array(this.wasm.memory.buffer, out, count);
    const idx = raw.subarray(1 + colours * bpv);
    for (let i = 0; i < count; i++) {
      const p = idx[i];
      if (p >= colours) throw new CodecError("palette index out of range");
      values[i] = palette[p];
    }
  }
}
