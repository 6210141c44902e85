// zstd for the decoding worker: the wasm build of zstd that the zstddec
// package ships (its plain decoder: ZSTD_decompress, malloc, free,
// ZSTD_isError), instantiated here rather than through zstddec's class so
// that a whole update's payloads go through two long-lived buffers in the
// wasm heap: no allocation, copy or heap slice per tile (a 1080p key frame
// has about 510 of them). build.mjs lifts the module out of the package
// as the virtual import below. The same heap holds the decoder's picture
// and scratch, worked on by the pixel kernels (kernels.ts), which share
// this memory.

import wasmBase64 from "virtual:zstd-wasm";
import { createKernels, type Kernels } from "./kernels";

/** The 4-byte magic every zstd frame starts with; updates leave it out. */
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

interface Exports {
  memory: WebAssembly.Memory;
  malloc(size: number): number;
  free(ptr: number): void;
  ZSTD_decompress(dst: number, dstCap: number, src: number, srcSize: number): number;
  ZSTD_isError(code: number): number;
}

/** Where each frame's output lies in a batch's output (byte offsets, lengths). */
export interface Inflated {
  /** The outputs, valid until the next call; output `i` starts at `offsets[i]` (a multiple of 4). */
  bytes: Uint8Array;
  offsets: number[];
  lengths: number[];
}

/** Decompresses magic-less zstd frames; frame `i` into at most `caps[i]` bytes. */
export interface Inflater {
  inflate(frames: Uint8Array[], caps: number[]): Inflated;
}

/** zstd plus the heap it runs in: what the decoder needs. */
export interface Wasm extends Inflater {
  readonly memory: WebAssembly.Memory;
  readonly kernels: Kernels;
  /** `n` bytes of the heap (freed with `free`); throws ZstdError when there is no room. */
  malloc(n: number): number;
  free(ptr: number): void;
  /** At least `n` bytes of reused scratch, 16-aligned, valid until the next call. */
  scratch(n: number): number;
}

/** A malformed or oversized frame, or a full heap. */
export class ZstdError extends Error {}

class Arena {
  ptr = 0;
  size = 0;
  constructor(private readonly x: Exports) {}
  /** At least `n` bytes; the old contents are not kept. */
  reserve(n: number): number {
    if (n <= this.size && this.ptr !== 0) return this.ptr;
    if (this.ptr !== 0) this.x.free(this.ptr);
    // Grow by half again so a run of slightly larger frames reallocates rarely.
    const size = Math.max(n, Math.ceil(this.size * 1.5), 65536);
    const ptr = this.x.malloc(size);
    if (ptr === 0) {
      this.ptr = 0;
      this.size = 0;
      throw new ZstdError(`cannot allocate ${size} bytes for zstd`);
    }
    this.ptr = ptr;
    this.size = size;
    return ptr;
  }
}

/** zstd in wasm with reused input and output buffers. */
export class WasmZstd implements Wasm {
  private readonly input: Arena;
  private readonly output: Arena;
  private readonly scratchArena: Arena;
  private constructor(
    private readonly x: Exports,
    readonly kernels: Kernels,
  ) {
    this.input = new Arena(x);
    this.output = new Arena(x);
    this.scratchArena = new Arena(x);
  }

  get memory(): WebAssembly.Memory {
    return this.x.memory;
  }

  malloc(n: number): number {
    const ptr = this.x.malloc(n);
    if (ptr === 0) throw new ZstdError(`cannot allocate ${n} bytes`);
    return ptr;
  }

  free(ptr: number): void {
    this.x.free(ptr);
  }

  scratch(n: number): number {
    // malloc's blocks are 8-aligned: 15 bytes more make a 16-aligned start.
    const ptr = this.scratchArena.reserve(n + 15);
    return (ptr + 15) & ~15;
  }

  static async create(): Promise<WasmZstd> {
    const bin = Uint8Array.from(atob(wasmBase64), (c) => c.charCodeAt(0));
    // zstd's emscripten build tells JS when memory grows; the views below
    // are taken from memory.buffer after the calls that may grow it.
    const imports = { env: { emscripten_notify_memory_growth: () => {} } };
    const { instance } = await WebAssembly.instantiate(bin, imports);
    const x = instance.exports as unknown as Exports;
    return new WasmZstd(x, await createKernels(x.memory));
  }

  inflate(frames: Uint8Array[], caps: number[]): Inflated {
    let inLen = 0;
    let outLen = 0;
    const offsets: number[] = new Array(frames.length);
    for (let i = 0; i < frames.length; i++) {
      inLen += frames[i].length + 4;
      offsets[i] = outLen;
      outLen += (caps[i] + 3) & ~3;
    }
    const inPtr = this.input.reserve(inLen);
    const outPtr = this.output.reserve(outLen);
    const heap = new Uint8Array(this.x.memory.buffer);
    let at = inPtr;
    for (const f of frames) {
      heap.set(ZSTD_MAGIC, at);
      heap.set(f, at + 4);
      at += f.length + 4;
    }
    const lengths: number[] = new Array(frames.length);
    at = inPtr;
    for (let i = 0; i < frames.length; i++) {
      const n = frames[i].length + 4;
      const r = this.x.ZSTD_decompress(outPtr + offsets[i], caps[i], at, n);
      if (this.x.ZSTD_isError(r)) throw new ZstdError("invalid or oversized zstd data");
      lengths[i] = r >>> 0;
      at += n;
    }
    // ZSTD_decompress allocates its context, which may have grown memory.
    return { bytes: new Uint8Array(this.x.memory.buffer, outPtr, outLen), offsets, lengths };
  }
}
