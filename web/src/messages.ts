// Messages between the page and the decoding worker.

export type ToWorker =
  | { type: "canvas"; canvas: OffscreenCanvas }
  | { type: "update"; bytes: ArrayBuffer }
  | { type: "reset" }
  | { type: "snapshot"; id: number }
  | { type: "bench"; id: number; updates: ArrayBuffer[] };

export type FromWorker =
  | { type: "frame"; seq: number; width: number; height: number; ms: number }
  | { type: "error"; message: string }
  | { type: "snapshot"; id: number; width: number; height: number; rgba: ArrayBuffer }
  | {
      type: "bench";
      id: number;
      ms: number[];
      error: string | null;
      width: number;
      height: number;
      rgba: ArrayBuffer;
    };
