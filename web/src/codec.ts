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

/** The 4-byte magic every zstd frame starts with; updates leave it out. */
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

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

/** zstd decompression of one whole frame into at most `cap` bytes. */
export type Decompress = (frame: Uint8Array, cap: number) => Uint8Array;

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

/** A wire pixel as canvas RGBA (little-endian u32). */
function rgba(v: number): number {
  return (0xff000000 | ((v & 0xff) << 16) | (v & 0xff00) | ((v >>> 16) & 0xff)) >>> 0;
}

/** A wire XOR value in the canvas's byte order (alpha untouched). */
function rgbaXor(v: number): number {
  return ((v & 0xff) << 16) | (v & 0xff00) | ((v >>> 16) & 0xff);
}

/** Converts wire pixels to canvas RGBA in place. */
function toCanvas(px: Uint32Array): Uint32Array {
  for (let i = 0; i < px.length; i++) px[i] = rgba(px[i]);
  return px;
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

  constructor(private readonly decompress: Decompress) {}

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
    // 1. Everything that can fail, staged, before the picture is touched.
    const values = streamValues > 0 ? this.unpackStream(u.stream, streamValues) : null;
    const staged: (Uint32Array | null)[] = [];
    let atStream = 0;
    for (const rec of u.records) {
      const t = grid.rect(rec.tile);
      switch (rec.kind) {
        case "raw":
          // A copy: the update's bytes are not ours to convert.
          staged.push(toCanvas(u32View(rec.data, 0, t.w * t.h).slice()));
          break;
        case "zstd": {
          const raw = this.inflate(rec.data, t.w * t.h * 4);
          if (raw.length !== t.w * t.h * 4) throw new CodecError("decompressed data is too short");
          staged.push(toCanvas(u32View(raw, 0, t.w * t.h)));
          break;
        }
        case "pixels":
        case "xor": {
          const n = rec.area.w * rec.area.h;
          const v = values!.subarray(atStream, atStream + n);
          if (rec.kind === "pixels") toCanvas(v);
          else for (let i = 0; i < n; i++) v[i] = rgbaXor(v[i]);
          staged.push(v);
          atStream += n;
          break;
        }
        default:
          staged.push(null);
      }
    }
    // 2. Nothing fails from here on.
    let frame: Uint32Array;
    if (keyFrame) {
      frame = new Uint32Array(u.width * u.height);
    } else {
      frame = this.pixels!;
    }
    const W = u.width;
    const dirty = { x0: u.width, y0: u.height, x1: 0, y1: 0 };
    const touch = (x: number, y: number, w: number, h: number) => {
      dirty.x0 = Math.min(dirty.x0, x);
      dirty.y0 = Math.min(dirty.y0, y);
      dirty.x1 = Math.max(dirty.x1, x + w);
      dirty.y1 = Math.max(dirty.y1, y + h);
    };
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
      touch(m.dstX, m.dstY, w, h);
    }
    // Records reading the moved picture (Xor, CopyTile) read before any record writes.
    const out: (Uint32Array | null)[] = new Array(u.records.length).fill(null);
    u.records.forEach((rec, i) => {
      const t = grid.rect(rec.tile);
      if (rec.kind === "xor") {
        const a = rec.area;
        const src = staged[i]!;
        const res = new Uint32Array(a.w * a.h);
        for (let row = 0; row < a.h; row++) {
          const base = (t.y + a.y + row) * W + t.x + a.x;
          for (let col = 0; col < a.w; col++) res[row * a.w + col] = (src[row * a.w + col] ^ frame[base + col]) >>> 0;
        }
        out[i] = res;
      } else if (rec.kind === "copy") {
        const s = grid.rect(rec.src);
        const res = new Uint32Array(s.w * s.h);
        for (let row = 0; row < s.h; row++) {
          res.set(frame.subarray((s.y + row) * W + s.x, (s.y + row) * W + s.x + s.w), row * s.w);
        }
        out[i] = res;
      } else {
        out[i] = staged[i];
      }
    });
    u.records.forEach((rec, i) => {
      const t = grid.rect(rec.tile);
      let ax = t.x;
      let ay = t.y;
      let aw = t.w;
      let ah = t.h;
      if (rec.kind === "pixels" || rec.kind === "xor") {
        ax += rec.area.x;
        ay += rec.area.y;
        aw = rec.area.w;
        ah = rec.area.h;
      }
      if (rec.kind === "solid") {
        const c = rgba(rec.colour);
        for (let row = 0; row < ah; row++) frame.fill(c, (ay + row) * W + ax, (ay + row) * W + ax + aw);
      } else {
        const px = out[i]!;
        for (let row = 0; row < ah; row++) frame.set(px.subarray(row * aw, row * aw + aw), (ay + row) * W + ax);
      }
      touch(ax, ay, aw, ah);
    });
    if (keyFrame) {
      this.pixels = frame;
      this.width = u.width;
      this.height = u.height;
      this.dirty = { x0: 0, y0: 0, x1: u.width, y1: u.height };
    } else {
      this.dirty = dirty;
    }
    this.seq = u.seq;
  }

  /** zstd of a magic-less frame into at most `cap` bytes. */
  private inflate(z: Uint8Array, cap: number): Uint8Array {
    const framed = new Uint8Array(z.length + 4);
    framed.set(ZSTD_MAGIC, 0);
    framed.set(z, 4);
    const out = this.decompress(framed, cap);
    if (out.length > cap) throw new CodecError("invalid or oversized zstd data");
    return out;
  }

  private unpackStream(s: Update["stream"], count: number): Uint32Array {
    const raw = s.compressed ? this.inflate(s.data, unpackedLen(s, count, s.palette ? MAX_PALETTE : 0)) : s.data;
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
