// The WebSocket fallback for networks that drop UDP: the same control
// stream, graphics streams and pointer datagrams as WebTransport,
// multiplexed over one WebSocket to the page's own server
// (crates/tandem-node/src/browser/ws.rs has the message format), behind
// the small part of the WebTransport interface the page uses, so the rest
// of the page does not know which one it has.

/** What the page needs from its connection: WebTransport, or WsTransport below. */
export interface AttendeeTransport {
  readonly ready: Promise<unknown>;
  readonly closed: Promise<{ reason?: string }>;
  close(): void;
  createBidirectionalStream(): Promise<{ readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }>;
  /** A stream of the page's own (channel uploads). */
  createUnidirectionalStream(): Promise<WritableStream<Uint8Array>>;
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
  readonly datagrams: { readonly readable: ReadableStream<Uint8Array> };
}

const T_DATA = 0;
const T_FIN = 1;
const T_RESET = 2;
const T_DATAGRAM = 3;
const T_CLOSE = 4;
const T_KEEPALIVE = 5;
/** The node waits 45 s for a sign of life. */
const KEEPALIVE_MS = 15000;
/** Streams the node may have open at once (graphics updates in flight, channels). */
const MAX_STREAMS = 256;
/** The id bit of the page's own streams (PAGE_STREAM_BIT). */
const PAGE_STREAM_BIT = 0x8000_0000;
/** Largest data chunk in one message (the node takes messages of at most 64 KiB). */
const MAX_CHUNK = 60 * 1024;

function header(kind: number, id: number, body: Uint8Array | null): Uint8Array<ArrayBuffer> {
  const m = new Uint8Array(5 + (body?.length ?? 0));
  m[0] = kind;
  new DataView(m.buffer).setUint32(1, id, true);
  if (body) m.set(body, 5);
  return m;
}

/** One WebSocket as an AttendeeTransport. */
export class WsTransport implements AttendeeTransport {
  readonly ready: Promise<unknown>;
  readonly closed: Promise<{ reason?: string }>;
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
  readonly datagrams: { readonly readable: ReadableStream<Uint8Array> };
  private readonly ws: WebSocket;
  private readonly streams = new Map<number, ReadableStreamDefaultController<Uint8Array>>();
  private incoming!: ReadableStreamDefaultController<ReadableStream<Uint8Array>>;
  private dgrams!: ReadableStreamDefaultController<Uint8Array>;
  private control: ReadableStreamDefaultController<Uint8Array> | null = null;
  private reason = "";
  private done = false;
  private nextPageStream = PAGE_STREAM_BIT + 1;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer";
    this.incomingUnidirectionalStreams = new ReadableStream({ start: (c) => void (this.incoming = c) });
    this.datagrams = { readable: new ReadableStream({ start: (c) => void (this.dgrams = c) }) };
    this.ready = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", resolve, { once: true });
      this.ws.addEventListener("error", () => reject(new Error("WebSocket failed")), { once: true });
    });
    const timer = setInterval(() => this.send(new Uint8Array([T_KEEPALIVE])), KEEPALIVE_MS);
    this.closed = new Promise((resolve) => {
      this.ws.addEventListener("close", (e) => {
        clearInterval(timer);
        this.finishAll();
        resolve({ reason: this.reason || e.reason });
      });
    });
    this.ws.addEventListener("message", (e) => {
      if (e.data instanceof ArrayBuffer) this.onMessage(new Uint8Array(e.data));
    });
  }

  close(): void {
    this.ws.close(1000);
  }

  async createBidirectionalStream() {
    const readable = new ReadableStream<Uint8Array>({ start: (c) => void (this.control = c) });
    const writable = new WritableStream<Uint8Array>({
      write: (chunk) => this.send(header(T_DATA, 0, chunk)),
      close: () => this.send(header(T_FIN, 0, null)),
    });
    return { readable, writable };
  }

  /** A page stream: data messages under an id with PAGE_STREAM_BIT, fin at its end. */
  async createUnidirectionalStream(): Promise<WritableStream<Uint8Array>> {
    const id = this.nextPageStream++;
    return new WritableStream<Uint8Array>({
      write: (chunk) => {
        for (let at = 0; at < chunk.length; at += MAX_CHUNK) this.send(header(T_DATA, id, chunk.subarray(at, at + MAX_CHUNK)));
      },
      close: () => this.send(header(T_FIN, id, null)),
      abort: () => this.send(header(T_FIN, id, null)),
    });
  }

  private send(m: Uint8Array<ArrayBuffer>): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(m);
  }

  /** A message the node broke the format with ends the connection. */
  private broken(why: string): void {
    this.reason = `connection broken: ${why}`;
    this.ws.close(1002);
  }

  private finishAll(): void {
    if (this.done) return;
    this.done = true;
    const end = (c: { close(): void }) => {
      try {
        c.close();
      } catch {
        // Already closed or errored.
      }
    };
    this.streams.forEach((c) => {
      try {
        c.error(new Error("connection closed"));
      } catch {
        // Already finished.
      }
    });
    this.streams.clear();
    if (this.control) end(this.control);
    end(this.incoming);
    end(this.dgrams);
  }

  private onMessage(m: Uint8Array): void {
    if (m.length === 0) return this.broken("empty message");
    const kind = m[0];
    if (kind === T_DATAGRAM) return this.dgrams.enqueue(m.subarray(1));
    if (kind === T_CLOSE) {
      if (m.length < 5) return this.broken("short close");
      this.reason = new TextDecoder().decode(m.subarray(5));
      return;
    }
    if (m.length < 5 || (kind !== T_DATA && kind !== T_FIN && kind !== T_RESET)) return this.broken(`message type ${kind}`);
    const id = new DataView(m.buffer, m.byteOffset, m.length).getUint32(1, true);
    if (id === 0) {
      if (!this.control) return this.broken("control data before the control stream");
      if (kind === T_DATA) this.control.enqueue(m.subarray(5));
      else this.control.close();
      return;
    }
    let c = this.streams.get(id);
    if (!c) {
      if (kind !== T_DATA) return; // A stream abandoned before its first byte.
      if (this.streams.size >= MAX_STREAMS) return this.broken("too many streams");
      let ctl!: ReadableStreamDefaultController<Uint8Array>;
      const stream = new ReadableStream<Uint8Array>({ start: (x) => void (ctl = x) });
      c = ctl;
      this.streams.set(id, c);
      this.incoming.enqueue(stream);
    }
    if (kind === T_DATA) c.enqueue(m.subarray(5));
    else {
      this.streams.delete(id);
      if (kind === T_FIN) c.close();
      else c.error(new Error("stream reset"));
    }
  }
}
