// The decoder's pixel loops as a small WebAssembly module (SIMD, 4 pixels
// an instruction), assembled here from opcodes: this machine has no wasm
// toolchain, and the loops are few and short. The module imports zstd's
// memory, so tiles are decompressed, converted and placed in the picture
// without leaving the wasm heap: per-pixel JavaScript (about 5 ns a pixel,
// 10 ms for a 1080p frame) and per-row TypedArray calls (slower still)
// both go.
//
// Pixels: on the wire a u32 0x00RRGGBB (bytes B, G, R, 0); in the picture
// what the canvas wants, bytes R, G, B, 255. Every pointer and stride is
// in bytes; widths and counts are in pixels. No function allocates, so no
// call grows the memory (views taken before a call stay valid).

/** The module's exports. */
export interface Kernels {
  /** Copies a w×h block of wire pixels into the picture, converting. */
  wire(dst: number, dstStride: number, src: number, srcStride: number, w: number, h: number): void;
  /** Copies a w×h block of picture pixels. */
  copy(dst: number, dstStride: number, src: number, srcStride: number, w: number, h: number): void;
  /** XORs a w×h block of picture-order values (alpha ignored) into the picture. */
  xor(dst: number, dstStride: number, src: number, srcStride: number, w: number, h: number): void;
  /** Fills a w×h block with one picture pixel. */
  fill(dst: number, dstStride: number, w: number, h: number, colour: number): void;
  /** Converts `count` packed 3-byte wire pixels (B, G, R) at `src` into picture pixels at `dst`. */
  unpack24(dst: number, src: number, count: number): void;
}

// Opcodes (WebAssembly core 2.0, with the SIMD and bulk-memory ones).
const BLOCK = 0x02;
const LOOP = 0x03;
const VOID = 0x40;
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const GET = 0x20;
const SET = 0x21;
const TEE = 0x22;
const I32_LOAD = [0x28, 2, 0];
const I32_STORE = [0x36, 2, 0];
const load8 = (offset: number) => [0x2d, 0, offset];
const I32_CONST = 0x41;
const I32_EQZ = 0x45;
const I32_LT_U = 0x49;
const I32_GE_U = 0x4f;
const I32_ADD = 0x6a;
const I32_SUB = 0x6b;
const I32_AND = 0x71;
const I32_OR = 0x72;
const I32_XOR = 0x73;
const I32_SHL = 0x74;
const I32_ROTL = 0x77;
const V128_LOAD = [0xfd, 0x00, 0, 0];
const V128_STORE = [0xfd, 0x0b, 0, 0];
const V128_CONST = [0xfd, 0x0c];
const I8X16_SHUFFLE = [0xfd, 0x0d];
const I32X4_SPLAT = [0xfd, 0x11];
const V128_AND = [0xfd, 0x4e];
const V128_OR = [0xfd, 0x50];
const V128_XOR = [0xfd, 0x51];
const MEMORY_COPY = [0xfc, 0x0a, 0, 0];
const I32 = 0x7f;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const i32c = (v: number) => [I32_CONST, ...sleb(v | 0)];
const get = (i: number) => [GET, i];
const set = (i: number) => [SET, i];
/** `local[i] += by` (`by` a local's index when `local` is true, else a constant). */
const addTo = (i: number, by: number, local = false) => [...get(i), ...(local ? get(by) : i32c(by)), I32_ADD, ...set(i)];
/** `while (!(cond)) { body }`: cond leaves an i32, non-zero ends the loop. */
const until = (cond: number[], body: number[]) => [BLOCK, VOID, LOOP, VOID, ...cond, BR_IF, 1, ...body, BR, 0, END, END];
const vconst = (bytes: number[]) => [...V128_CONST, ...bytes];
const ALPHA = vconst([0, 0, 0, 0xff, 0, 0, 0, 0xff, 0, 0, 0, 0xff, 0, 0, 0, 0xff]);
const RGB = vconst([0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0]);
/** Swaps bytes 0 and 2 of each u32: B, G, R, x to R, G, B, x. */
const SWAP_RB = [...I8X16_SHUFFLE, 2, 1, 0, 3, 6, 5, 4, 7, 10, 9, 8, 11, 14, 13, 12, 15];
/** Four 3-byte B, G, R pixels (12 bytes) to four R, G, B, x. */
const SPREAD24 = [...I8X16_SHUFFLE, 2, 1, 0, 0, 5, 4, 3, 0, 8, 7, 6, 0, 11, 10, 9, 0];

const vload = (offset: number) => [0xfd, 0x00, 0, ...uleb(offset)];
const vstore = (offset: number) => [0xfd, 0x0b, 0, ...uleb(offset)];

/**
 * A w×h block loop for (dst=0, dstStride=1, src=2, srcStride=3, w=4, h=5).
 * Per row, `vec(k)` handles the 16 bytes at byte `k` from the row pointers
 * p (local 6, in the picture) and q (local 7, the source), four times per
 * 64 bytes while whole 64-byte runs remain, then once per 16; `one` handles
 * a last pixel (p and q at it). Locals: 6 p, 7 q, 8 q's end of 64-byte
 * runs, 9 of 16-byte groups, 10 of the row, 11 scratch i32, 12 scratch v128.
 */
function blockLoop(vec: (k: number) => number[], one: number[]): number[] {
  const rowEnd = (mask: number, local: number) => [...get(2), ...get(4), ...i32c(2), I32_SHL, ...i32c(mask), I32_AND, I32_ADD, ...set(local)];
  return until([...get(5), I32_EQZ], [
    ...get(0), ...set(6),
    ...get(2), ...set(7),
    ...rowEnd(-64, 8),
    ...rowEnd(-16, 9),
    ...rowEnd(-4, 10),
    ...until([...get(7), ...get(8), I32_GE_U], [...vec(0), ...vec(16), ...vec(32), ...vec(48), ...addTo(6, 64), ...addTo(7, 64)]),
    ...until([...get(7), ...get(9), I32_GE_U], [...vec(0), ...addTo(6, 16), ...addTo(7, 16)]),
    ...until([...get(7), ...get(10), I32_GE_U], [...one, ...addTo(6, 4), ...addTo(7, 4)]),
    ...addTo(0, 1, true),
    ...addTo(2, 3, true),
    ...get(5), ...i32c(1), I32_SUB, ...set(5),
  ]);
}
const BLOCK_LOCALS = [2, 6, I32, 1, V128];

const wire = blockLoop(
  (k) => [...get(6), ...get(7), ...vload(k), TEE, 12, ...get(12), ...SWAP_RB, ...ALPHA, ...V128_OR, ...vstore(k)],
  [
    ...get(6), ...get(7), ...I32_LOAD, TEE, 11, ...i32c(16), I32_ROTL, ...i32c(0xff00ff), I32_AND,
    ...get(11), ...i32c(0xff00), I32_AND, I32_OR, ...i32c(0xff000000), I32_OR, ...I32_STORE,
  ],
);
const xor = blockLoop(
  (k) => [...get(6), ...get(6), ...vload(k), ...get(7), ...vload(k), ...RGB, ...V128_AND, ...V128_XOR, ...vstore(k)],
  [...get(6), ...get(6), ...I32_LOAD, ...get(7), ...I32_LOAD, ...i32c(0xffffff), I32_AND, I32_XOR, ...I32_STORE],
);
// copy (dst=0, dstStride=1, src=2, srcStride=3, w=4, h=5): memmove per row.
const copy = [
  ...get(4), ...i32c(2), I32_SHL, ...set(4),
  ...until([...get(5), I32_EQZ], [
    ...get(0), ...get(2), ...get(4), ...MEMORY_COPY,
    ...addTo(0, 1, true),
    ...addTo(2, 3, true),
    ...get(5), ...i32c(1), I32_SUB, ...set(5),
  ]),
];
// fill (dst=0, dstStride=1, w=2, h=3, colour=4); locals 5 i, 6 group
// bytes, 7 row bytes, 8 the colour four times (v128).
const fill = [
  ...get(4), ...I32X4_SPLAT, ...set(8),
  ...get(2), ...i32c(2), I32_SHL, ...set(7),
  ...get(7), ...i32c(-16), I32_AND, ...set(6),
  ...until([...get(3), I32_EQZ], [
    ...i32c(0), ...set(5),
    ...until([...get(5), ...get(6), I32_GE_U], [...get(0), ...get(5), I32_ADD, ...get(8), ...V128_STORE, ...addTo(5, 16)]),
    ...until([...get(5), ...get(7), I32_GE_U], [...get(0), ...get(5), I32_ADD, ...get(4), ...I32_STORE, ...addTo(5, 4)]),
    ...addTo(0, 1, true),
    ...get(3), ...i32c(1), I32_SUB, ...set(3),
  ]),
];
const FILL_LOCALS = [2, 3, I32, 1, V128];
// unpack24 (dst=0, src=1, count=2); local 3 scratch v128. Four pixels at a
// time while 16 bytes can be read without passing the input's end (at
// least 6 pixels left), then one at a time.
const unpack24 = [
  ...until([...get(2), ...i32c(6), I32_LT_U], [
    ...get(0), ...get(1), ...V128_LOAD, TEE, 3, ...get(3), ...SPREAD24, ...ALPHA, ...V128_OR, ...V128_STORE,
    ...addTo(0, 16), ...addTo(1, 12), ...get(2), ...i32c(4), I32_SUB, ...set(2),
  ]),
  ...until([...get(2), I32_EQZ], [
    ...get(0),
    ...get(1), ...load8(2),
    ...get(1), ...load8(1), ...i32c(8), I32_SHL, I32_OR,
    ...get(1), ...load8(0), ...i32c(16), I32_SHL, I32_OR,
    ...i32c(0xff000000), I32_OR, ...I32_STORE,
    ...addTo(0, 4), ...addTo(1, 3), ...get(2), ...i32c(1), I32_SUB, ...set(2),
  ]),
];
const UNPACK_LOCALS = [1, 1, V128];

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  return [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

/** The module's bytes. */
export function kernelsModule(): Uint8Array<ArrayBuffer> {
  const block6 = [0x60, 6, I32, I32, I32, I32, I32, I32, 0];
  const fill5 = [0x60, 5, I32, I32, I32, I32, I32, 0];
  const three = [0x60, 3, I32, I32, I32, 0];
  const funcs: [string, number, number[], number[]][] = [
    ["wire", 0, BLOCK_LOCALS, wire],
    ["copy", 0, [0], copy],
    ["xor", 0, BLOCK_LOCALS, xor],
    ["fill", 1, FILL_LOCALS, fill],
    ["unpack24", 2, UNPACK_LOCALS, unpack24],
  ];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([block6, fill5, three])),
    // (import "env" "memory" (memory 1)): zstd's.
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, 0x00, 0x01]])),
    ...section(3, vec(funcs.map((f) => [f[1]]))),
    ...section(7, vec(funcs.map((f, i) => [...name(f[0]), 0x00, i]))),
    ...section(10, vec(funcs.map((f) => {
      const body = [...f[2], ...f[3], END];
      return [...uleb(body.length), ...body];
    }))),
  ];
  return new Uint8Array(bytes);
}

/** Instantiates the kernels over `memory`. */
export async function createKernels(memory: WebAssembly.Memory): Promise<Kernels> {
  const { instance } = await WebAssembly.instantiate(kernelsModule(), { env: { memory } });
  return instance.exports as unknown as Kernels;
}
