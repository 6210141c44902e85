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
// and the top byte, which no picture shows, is dropped.

import type { Inflated, Inflater } from "./zstd";

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

/** Little-endian u32 values of `src` (4 bytes each) as a view when aligned, else a copy. */
function u32View(src: Uint8Array, at: number, count: number): Uint32Array {
  const off = src.byteOffset + at;
  if (off % 4 === 0) return new Uint32Array(src.buffer, off, count);
  return new Uint32Array(src.slice(at, at + count * 4).buffer);
}

/** The same values as signed 32-bit integers (a view, no copy). */
function i32(a: Uint32Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length);
}

/** A wire pixel as canvas RGBA (little-endian u32; stored through a Uint32Array). */
function rgba(v: number): number {
  return 0xff000000 | ((v & 0xff) << 16) | (v & 0xff00) | ((v >>> 16) & 0xff);
}

/** A wire XOR value in the canvas's byte order (alpha untouched). */
function rgbaXor(v: number): number {
  return ((v & 0xff) << 16) | (v & 0xff00) | ((v >>> 16) & 0xff);
}

/**
 * Copies a `w`×`h` block of wire pixels (rows `sStride` apart from `s`) into
 * `dst` (rows `dStride` apart from `d`), converting to canvas RGBA on the
 * way: the one pass over a tile's pixels, with no allocation.
 */
function blitWire(
  dst: Int32Array,
  d: number,
  dStride: number,
  src: Int32Array,
  s: number,
  sStride: number,
  w: number,
  h: number,
): void {
  // Int32Array both sides: the swizzle stays in 32-bit integers (a
  // Uint32Array's values above 2^31 are not small integers to V8).
  for (let row = 0; row < h; row++) {
    for (let c = 0; c < w; c++) {
      const v = src[s + c];
      dst[d + c] = (((v << 16) | (v >>> 16)) & 0xff00ff) | (v & 0xff00) | -0x1000000;
    }
    d += dStride;
    s += sStride;
  }
}

/** Copies a `w`×`h` block of canvas pixels, packed rows, into `dst` (rows `dStride` apart from `d`). */
function blitPacked(dst: Uint32Array, d: number, dStride: number, src: Uint32Array, w: number, h: number): void {
  for (let row = 0, s = 0; row < h; row++, s += w, d += dStride) dst.set(src.subarray(s, s + w), d);
}

function readValues(src: Uint8Array, at: number, bpv: number, out: Uint32Array, count: number): void {
  if (bpv === 4) {
    // Every browser is little-endian, as the wire format is.
    out.set(u32View(src, at, count));
  } else {
    for (let i = 0, j = at; i < count; i++, j += 3) {
      out[i] = src[j] | (src[j + 1] << 8) | (src[j + 2] << 16);
    }
  }
}

/** A rectangle of the picture changed by the last update (for painting). */
export interface Dirty {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** Applies updates in order and holds the picture (tandem_codec::Decoder). */
export class Decoder {
  width = 0;
  height = 0;
  seq = 0;
  pixels: Uint32Array | null = null;
  /** Bounding box of what the last applied update changed. */
  dirty: Dirty = { x0: 0, y0: 0, x1: 0, y1: 0 };

  constructor(private readonly zstd: Inflater) {}

  /** Parses and applies one update's bytes. */
  applyBytes(bytes: Uint8Array): void {
    this.apply(parseUpdate(bytes));
  }

  apply(u: Update): void {
    const { grid, streamValues } = validate(u);
    const keyFrame = u.baseSeq === 0;
    if (!keyFrame) {
      if (!this.pixels) throw new CodecError("a key frame is needed first");
      if (u.baseSeq !== this.seq) throw new CodecError(`update is based on ${u.baseSeq}, the picture is at ${this.seq}`);
      if (u.width !== this.width || u.height !== this.height) throw new CodecError("update size differs from the picture");
    }
    const W = u.width;
    const H = u.height;
    const records = u.records;
    const n = records.length;
    // 1. Everything that can fail, before the picture is touched: the
    // shared stream's values, then every zstd tile in one batch (left in
    // the wasm heap, read once in step 2).
    const values = streamValues > 0 ? this.unpackStream(u.stream, streamValues) : null;
    const streamAt = new Int32Array(n);
    const zIndex = new Int32Array(n);
    const zFrames: Uint8Array[] = [];
    const zCaps: number[] = [];
    let atStream = 0;
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
      }
    }
    let zOffsets: number[] = [];
    let zPixels: Int32Array | null = null;
    if (zFrames.length > 0) {
      const z = this.inflate(zFrames, zCaps);
      for (let i = 0; i < zCaps.length; i++) {
        if (z.lengths[i] !== zCaps[i]) throw new CodecError("decompressed data is too short");
      }
      zOffsets = z.offsets;
      zPixels = i32(u32View(z.bytes, 0, z.bytes.length >> 2));
    }
    // 2. Nothing fails from here on. A key frame writes every pixel, so
    // the picture's buffer is reused when the size stays.
    let frame: Uint32Array;
    if (keyFrame) {
      const reuse = this.pixels && this.width === W && this.height === H;
      frame = reuse ? this.pixels! : new Uint32Array(W * H);
    } else {
      frame = this.pixels!;
    }
    let x0 = W;
    let y0 = H;
    let x1 = 0;
    let y1 = 0;
    for (const m of u.moves) {
      const { x, y, w, h } = m.src;
      // Each copy reads the picture as it was just before it: rows in the
      // order that never reads a row already overwritten (copyWithin
      // handles the overlap inside a row).
      const down = m.dstY > y;
      for (let i = 0; i < h; i++) {
        const row = down ? h - 1 - i : i;
        const from = (y + row) * W + x;
        frame.copyWithin((m.dstY + row) * W + m.dstX, from, from + w);
      }
      x0 = Math.min(x0, m.dstX);
      y0 = Math.min(y0, m.dstY);
      x1 = Math.max(x1, m.dstX + w);
      y1 = Math.max(y1, m.dstY + h);
    }
    // Records reading the moved picture (Xor, CopyTile) read before any record writes.
    const read: (Uint32Array | null)[] = [];
    for (let i = 0; i < n; i++) {
      const rec = records[i];
      if (rec.kind === "xor") {
        const t = grid.rect(rec.tile);
        const a = rec.area;
        const src = values!;
        const res = new Uint32Array(a.w * a.h);
        for (let row = 0, k = 0, s = streamAt[i]; row < a.h; row++) {
          const base = (t.y + a.y + row) * W + t.x + a.x;
          for (let col = 0; col < a.w; col++, k++, s++) res[k] = rgbaXor(src[s]) ^ frame[base + col];
        }
        read[i] = res;
      } else if (rec.kind === "copy") {
        const s = grid.rect(rec.src);
        const res = new Uint32Array(s.w * s.h);
        for (let row = 0; row < s.h; row++) {
          const from = (s.y + row) * W + s.x;
          res.set(frame.subarray(from, from + s.w), row * s.w);
        }
        read[i] = res;
      } else {
        read[i] = null;
      }
    }
    const tilesX = grid.tilesX;
    const frame32 = i32(frame);
    const values32 = values ? i32(values) : null;
    for (let i = 0; i < n; i++) {
      const rec = records[i];
      const tx = (rec.tile % tilesX) * TILE_SIZE;
      const ty = Math.floor(rec.tile / tilesX) * TILE_SIZE;
      let ax = tx;
      let ay = ty;
      let aw = Math.min(TILE_SIZE, W - tx);
      let ah = Math.min(TILE_SIZE, H - ty);
      if (rec.kind === "pixels" || rec.kind === "xor") {
        ax += rec.area.x;
        ay += rec.area.y;
        aw = rec.area.w;
        ah = rec.area.h;
      }
      const d = ay * W + ax;
      switch (rec.kind) {
        case "solid": {
          const c = rgba(rec.colour);
          for (let row = 0, at = d; row < ah; row++, at += W) frame.fill(c, at, at + aw);
          break;
        }
        case "zstd":
          blitWire(frame32, d, W, zPixels!, zOffsets[zIndex[i]] >> 2, aw, aw, ah);
          break;
        case "raw":
          blitWire(frame32, d, W, i32(u32View(rec.data, 0, aw * ah)), 0, aw, aw, ah);
          break;
        case "pixels":
          blitWire(frame32, d, W, values32!, streamAt[i], aw, aw, ah);
          break;
        case "xor":
        case "copy":
          blitPacked(frame, d, W, read[i]!, aw, ah);
          break;
      }
      x0 = Math.min(x0, ax);
      y0 = Math.min(y0, ay);
      x1 = Math.max(x1, ax + aw);
      y1 = Math.max(y1, ay + ah);
    }
    if (keyFrame) {
      this.pixels = frame;
      this.width = W;
      this.height = H;
      this.dirty = { x0: 0, y0: 0, x1: W, y1: H };
    } else {
      this.dirty = { x0, y0, x1, y1 };
    }
    this.seq = u.seq;
  }

  private inflate(frames: Uint8Array[], caps: number[]): Inflated {
    try {
      return this.zstd.inflate(frames, caps);
    } catch (e) {
      throw new CodecError((e as Error).message);
    }
  }

  private unpackStream(s: Update["stream"], count: number): Uint32Array {
    let raw = s.data;
    if (s.compressed) {
      const z = this.inflate([s.data], [unpackedLen(s, count, s.palette ? MAX_PALETTE : 0)]);
      // A view into the wasm heap, read (copied) below before any other zstd call.
      raw = z.bytes.subarray(0, z.lengths[0]);
    }
    const bpv = bytesPerValue(s);
    const values = new Uint32Array(count);
    if (!s.palette) {
      if (raw.length !== count * bpv) throw new CodecError("stream length does not match the records' areas");
      readValues(raw, 0, bpv, values, count);
      return values;
    }
    if (raw.length === 0) throw new CodecError("palette stream is empty");
    const colours = raw[0] + 1;
    if (raw.length !== unpackedLen(s, count, colours)) throw new CodecError("stream length does not match the records' areas");
    const palette = new Uint32Array(colours);
    readValues(raw, 1, bpv, palette, colours);
    const base = 1 + colours * bpv;
    for (let i = 0; i < count; i++) {
      const idx = raw[base + i];
      if (idx >= colours) throw new CodecError("palette index out of range");
      values[i] = palette[idx];
    }
    return values;
  }
}
