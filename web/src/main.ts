// The attendee page: asks for a name and the password, joins the session
// of the link over WebTransport (the node's QUIC port, certificate pinned
// by the hash the node publishes on this page's own origin) or, when that
// fails or the link says `transport=ws`, over a WebSocket to the page's own
// server (networks that drop UDP; see wsmux.ts), hands every
// graphics update to the decoding worker, draws the shared pointer,
// sends mouse and keyboard input only while the sharer lets it, and joins
// the session's clipboard channel: what the sharer copies shows in the
// page, and text typed there is shared while the node gives write access.

import {
  CHANNEL_HEADER_LEN,
  CLIPBOARD_CHANNEL,
  MAX_CHANNEL_MESSAGE,
  STREAM_KIND_CHANNEL,
  channelStreamHeader,
  decodeChannelFrame,
  encodeChannelData,
  encodeClientMessage,
  decodeServerPayload,
  FrameDecoder,
  ProtoError,
  parseCursorDatagram,
  MAX_UPDATE_BYTES,
  STREAM_KIND_GRAPHICS,
  type ChannelAccess,
  type ClientMessage,
  type ControlLevel,
  type CursorShape,
  type InputEvent,
  type MouseButton,
  type ServerMessage,
} from "./proto";
import { keysymOfEvent } from "./keys";
import type { FromWorker, ToWorker } from "./messages";
import { WsTransport, type AttendeeTransport } from "./wsmux";

/** What /api/web/v1/transport answers. */
interface TransportInfo {
  port: number;
  path: string;
  certificate_hashes: string[];
}

const DISCONNECTS: Record<string, string> = {
  by_sharer: "disconnected by the sharer",
  by_attendee: "disconnected by the attendee",
  error: "disconnected after an error",
  timeout: "connection timed out",
  session_closed: "session closed",
  node_shutdown: "node shut down",
  node_restarted: "node restarted: connect again",
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const statusLine = $("status");
const notice = $("notice");
const form = $<HTMLFormElement>("join");
const canvas = $<HTMLCanvasElement>("screen");
const pointer = $<HTMLCanvasElement>("pointer");
const requestButton = $<HTMLButtonElement>("request");
const levelLine = $("level");
const clipPanel = $("clipboard");
const clipIn = $<HTMLTextAreaElement>("clip-in");
const clipOut = $<HTMLTextAreaElement>("clip-out");
const clipSend = $<HTMLButtonElement>("clip-send");
const clipStatus = $("clip-status");

/** State the tests read (window.tandem.state); also what the UI shows. */
const state = {
  phase: "idle" as "idle" | "connecting" | "joined" | "rejected" | "closed",
  level: "none" as ControlLevel,
  paused: false,
  width: 0,
  height: 0,
  seq: 0,
  frames: 0,
  joinedAt: 0,
  firstFrameMs: -1,
  lastDecodeMs: 0,
  message: "",
  /** Which connection the page joined over. */
  transport: "" as "" | "webtransport" | "websocket",
  notices: [] as string[],
  errors: [] as string[],
  /** The clipboard channel: this page's access, the last text received, counts. */
  clipboard: { joined: false, access: "none" as ChannelAccess, text: "", received: 0, sent: 0 },
};

function setStatus(text: string): void {
  statusLine.textContent = text;
}

function addNotice(text: string): void {
  state.notices.push(text);
  notice.textContent = text;
}

const worker = new Worker("worker.js");
const offscreen = canvas.transferControlToOffscreen();
toWorker({ type: "canvas", canvas: offscreen }, [offscreen]);
const pending = new Map<number, (m: FromWorker) => void>();
let nextId = 1;

function toWorker(msg: ToWorker, transfer: Transferable[] = []): void {
  worker.postMessage(msg, transfer);
}

worker.onmessage = (ev: MessageEvent<FromWorker>) => {
  const m = ev.data;
  switch (m.type) {
    case "frame":
      state.seq = m.seq;
      state.frames++;
      state.lastDecodeMs = m.ms;
      if (state.firstFrameMs < 0 && state.joinedAt > 0) state.firstFrameMs = performance.now() - state.joinedAt;
      if (m.width !== state.width || m.height !== state.height) {
        state.width = m.width;
        state.height = m.height;
        pointer.width = m.width;
        pointer.height = m.height;
      }
      break;
    case "error":
      state.errors.push(m.message);
      break;
    case "snapshot":
    case "bench":
      pending.get(m.id)?.(m);
      pending.delete(m.id);
      break;
  }
};

function ask(msg: ToWorker & { id: number }, transfer: Transferable[] = []): Promise<FromWorker> {
  return new Promise((resolve) => {
    pending.set(msg.id, resolve);
    toWorker(msg, transfer);
  });
}

let send: ((msg: ClientMessage) => void) | null = null;
let transport: AttendeeTransport | null = null;
/** How long WebTransport gets before the page falls back to a WebSocket. */
const WEBTRANSPORT_TIMEOUT_MS = 4000;

function hexBytes(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

async function join(name: string, password: string): Promise<void> {
  const params = new URLSearchParams(location.search);
  const session = params.get("session") ?? "";
  const invitation = params.get("invitation") ?? "";
  state.phase = "connecting";
  setStatus("connecting…");
  const wt = await connect(params.get("transport") === "ws");
  transport = wt;
  resetClipboard();
  wt.closed.then(
    (c) => closed(c.reason ?? ""),
    (e) => closed(String(e)),
  );
  const control = await wt.createBidirectionalStream();
  const writer = control.writable.getWriter();
  send = (msg) => {
    writer.write(encodeClientMessage(msg)).catch(() => {});
  };
  state.joinedAt = performance.now();
  send({ type: "hello", session, invitation, name, password });
  void readGraphics(wt);
  void readDatagrams(wt);
  await readControl(control.readable);
}

/** WebTransport if it can be had in time, else the WebSocket fallback. */
async function connect(wsOnly: boolean): Promise<AttendeeTransport> {
  if (!wsOnly && typeof WebTransport !== "undefined") {
    let wt: WebTransport | null = null;
    try {
      const info = (await (await fetch("api/web/v1/transport", { cache: "no-store" })).json()) as TransportInfo;
      const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
      wt = new WebTransport(`https://${host}:${info.port}${info.path}`, {
        serverCertificateHashes: info.certificate_hashes.map((h) => ({ algorithm: "sha-256", value: hexBytes(h) })),
      });
      wt.closed.catch(() => {});
      let timer = 0;
      await Promise.race([
        wt.ready,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("timed out")), WEBTRANSPORT_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      state.transport = "webtransport";
      return wt;
    } catch (e) {
      wt?.close();
      state.notices.push(`WebTransport failed (${(e as Error).message}); using a WebSocket`);
    }
  }
  const url = new URL("api/web/v1/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WsTransport(url.href);
  await ws.ready;
  state.transport = "websocket";
  return ws;
}

function closed(reason: string): void {
  if (state.phase === "rejected" || state.phase === "closed") return;
  state.phase = "closed";
  state.message = state.message || reason || "connection closed";
  setStatus(state.message);
  send = null;
}

async function readControl(readable: ReadableStream<Uint8Array>): Promise<void> {
  const frames = new FrameDecoder();
  const reader = readable.getReader();
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch {
      return; // The session closed: `closed` says why.
    }
    const { value, done } = chunk;
    if (done) return;
    frames.push(value);
    for (let p = frames.next(); p; p = frames.next()) {
      let msg: ServerMessage;
      try {
        msg = decodeServerPayload(p);
      } catch (e) {
        state.errors.push(`bad control message: ${(e as Error).message}`);
        continue;
      }
      onMessage(msg);
    }
  }
}

function setLevel(level: ControlLevel): void {
  state.level = level;
  clipSend.disabled = !maySendClipboard();
  levelLine.textContent = `control: ${level}`;
  canvas.classList.toggle("interactive", level === "interactive");
  requestButton.disabled = level === "interactive" || state.phase !== "joined";
}

function onMessage(msg: ServerMessage): void {
  switch (msg.type) {
    case "welcome":
      state.phase = "joined";
      // Joined on every connection; the node answers with this page's
      // access and tells every change (it follows the control level).
      send?.({ type: "channel_join", name: CLIPBOARD_CHANNEL });
      form.hidden = true;
      state.paused = msg.welcome.paused;
      setLevel(msg.welcome.controlLevel);
      setStatus(`joined session ${msg.welcome.session}`);
      if (state.paused) addNotice("paused by the sharer");
      break;
    case "rejected":
      state.phase = "rejected";
      state.message = msg.message || msg.reason.replace(/_/g, " ");
      setStatus(`not admitted: ${state.message}`);
      form.hidden = false;
      transport?.close();
      break;
    case "control_level_changed":
      setLevel(msg.level);
      addNotice(`the sharer set your control to ${msg.level}`);
      break;
    case "control_request_answered":
      addNotice(msg.granted ? `control request granted: ${msg.requested}` : `control request refused${msg.message ? `: ${msg.message}` : ""}`);
      break;
    case "graphics_paused":
      state.paused = true;
      addNotice("paused by the sharer");
      break;
    case "graphics_resumed":
      state.paused = false;
      addNotice("resumed");
      break;
    case "shared_rect_changed":
      addNotice(`the shared area is now ${msg.width}x${msg.height}`);
      break;
    case "input_refused":
      addNotice(`input refused: ${msg.message}`);
      break;
    case "bye": {
      const why = DISCONNECTS[msg.reason] ?? msg.reason;
      state.message = msg.message && msg.message !== why ? `${why}: ${msg.message}` : why;
      state.phase = "closed";
      setStatus(state.message);
      send = null;
      transport?.close();
      break;
    }
    case "cursor_shape":
      shapes.set(msg.shape.id, msg.shape);
      drawPointer();
      break;
    case "channel_joined":
      if (msg.channel.name === CLIPBOARD_CHANNEL) {
        clip.id = msg.channel.id;
        state.clipboard.joined = true;
        clipPanel.hidden = false;
        setClipAccess(msg.channel.access);
        clip.joined();
      }
      break;
    case "channel_join_refused":
      addNotice(`clipboard unavailable: ${msg.message}`);
      break;
    case "channel_access_changed":
      if (msg.channel === clip.id) setClipAccess(msg.access);
      break;
    case "channel_overflow":
      if (msg.channel === clip.id) addNotice(`clipboard: the node dropped ${msg.dropped} copies for this page`);
      break;
    case "channel_write_refused":
      if (msg.channel === clip.id) addNotice(`clipboard: not shared: ${msg.message}`);
      break;
    case "other":
      break;
  }
}

// The clipboard channel of this connection.
let clip = newClip();

function newClip() {
  let joined = () => {};
  const whenJoined = new Promise<void>((resolve) => (joined = resolve));
  return { id: -1, joined, whenJoined, writer: null as WritableStreamDefaultWriter<Uint8Array> | null };
}

function resetClipboard(): void {
  clip = newClip();
  Object.assign(state.clipboard, { joined: false, access: "none", text: "", received: 0, sent: 0 });
  clipPanel.hidden = true;
  clipIn.value = "";
  setClipAccess("none");
}

/** The page may share only while interactive with write access (the node checks both too). */
function maySendClipboard(): boolean {
  return state.clipboard.access === "read-write" && state.level === "interactive";
}

function setClipAccess(access: ChannelAccess): void {
  state.clipboard.access = access;
  clipSend.disabled = !maySendClipboard();
  clipStatus.textContent = `clipboard: ${access}`;
}

async function shareClipboard(text: string): Promise<void> {
  const wt = transport;
  const data = new TextEncoder().encode(text);
  if (!maySendClipboard() || !wt) {
    addNotice("clipboard: not shared: this page has no write access");
    return;
  }
  if (data.length > MAX_CHANNEL_MESSAGE) {
    addNotice(`clipboard: text over ${MAX_CHANNEL_MESSAGE} bytes is not shared`);
    return;
  }
  const c = clip;
  if (!c.writer) {
    // One stream per direction of a channel, opened at the first copy.
    const stream = await wt.createUnidirectionalStream();
    c.writer = stream.getWriter();
    await c.writer.write(channelStreamHeader(c.id));
  }
  await c.writer.write(encodeChannelData(data));
  state.clipboard.sent++;
  addNotice(`clipboard: shared ${data.length} bytes`);
}

/** A channel data stream from the node (the header's kind byte already seen in `head`). */
async function readChannel(reader: ReadableStreamDefaultReader<Uint8Array>, head: Uint8Array): Promise<void> {
  const c = clip;
  const frames = new FrameDecoder();
  let buf = head;
  try {
    while (buf.length < CHANNEL_HEADER_LEN) {
      const { value, done } = await reader.read();
      if (done) return;
      const grown = new Uint8Array(buf.length + value.length);
      grown.set(buf);
      grown.set(value, buf.length);
      buf = grown;
    }
    const id = new DataView(buf.buffer, buf.byteOffset, buf.length).getUint32(1, false);
    // The stream may overtake the control stream's answer to the join.
    let timer = 0;
    await Promise.race([c.whenJoined, new Promise((r) => (timer = setTimeout(r, 10000)))]);
    clearTimeout(timer);
    if (id !== c.id || c !== clip) {
      reader.cancel().catch(() => {});
      return;
    }
    frames.push(buf.subarray(CHANNEL_HEADER_LEN));
    for (;;) {
      for (let p = frames.next(); p; p = frames.next()) {
        const frame = decodeChannelFrame(p);
        if (frame.type === "dropped") {
          addNotice(`clipboard: the node dropped ${frame.count} copies for this page`);
          continue;
        }
        let text: string;
        try {
          text = new TextDecoder("utf-8", { fatal: true }).decode(frame.data);
        } catch {
          addNotice("clipboard: a copy that is not UTF-8 text was not shown");
          continue;
        }
        state.clipboard.text = text;
        state.clipboard.received++;
        clipIn.value = text;
        addNotice(`clipboard: received ${frame.data.length} bytes`);
      }
      const { value, done } = await reader.read();
      if (done) return;
      frames.push(value);
    }
  } catch (e) {
    // A reset stream ends quietly; a malformed one is reported and dropped.
    if (e instanceof ProtoError) state.errors.push(`bad clipboard stream: ${e.message}`);
    reader.cancel().catch(() => {});
  }
}

async function readGraphics(wt: AttendeeTransport): Promise<void> {
  const streams = wt.incomingUnidirectionalStreams.getReader();
  for (;;) {
    const { value, done } = await streams.read();
    if (done) return;
    void readStream(value);
  }
}

/** A stream from the node: a graphics update, or a channel's data by its kind byte. */
async function readStream(stream: ReadableStream<Uint8Array>): Promise<void> {
  const reader = stream.getReader();
  let head: Uint8Array;
  try {
    do {
      const { value, done } = await reader.read();
      if (done) return;
      head = value;
    } while (head.length === 0);
  } catch {
    return; // Reset by the node: a superseded update.
  }
  if (head[0] === STREAM_KIND_CHANNEL) return readChannel(reader, head);
  return readUpdate(reader, head);
}

async function readUpdate(reader: ReadableStreamDefaultReader<Uint8Array>, head: Uint8Array): Promise<void> {
  const chunks: Uint8Array[] = [head];
  let len = head.length;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      len += value.length;
      if (len > MAX_UPDATE_BYTES) {
        reader.cancel().catch(() => {});
        state.errors.push("graphics stream over the size limit");
        return;
      }
      chunks.push(value);
    }
  } catch {
    return; // Reset by the node: a superseded update.
  }
  const all = new Uint8Array(len);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  if (all.length === 0 || all[0] !== STREAM_KIND_GRAPHICS) {
    state.errors.push(`unknown stream kind ${all[0]}`);
    return;
  }
  const payload = all.buffer.slice(1);
  toWorker({ type: "update", bytes: payload }, [payload]);
}

const shapes = new Map<number, CursorShape>();
let cursor = { seq: -1, x: 0, y: 0, shape: 0, visible: false };

async function readDatagrams(wt: AttendeeTransport): Promise<void> {
  const reader = wt.datagrams.readable.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    try {
      const pos = parseCursorDatagram(value);
      if (pos.seq > cursor.seq) {
        cursor = pos;
        drawPointer();
      }
    } catch {
      // A malformed datagram is dropped; the next one repaints.
    }
  }
}

let drawn: { x: number; y: number; w: number; h: number } | null = null;

function drawPointer(): void {
  const ctx = pointer.getContext("2d");
  if (!ctx) return;
  if (drawn) ctx.clearRect(drawn.x, drawn.y, drawn.w, drawn.h);
  drawn = null;
  const shape = shapes.get(cursor.shape);
  if (!cursor.visible || !shape) return;
  const img = new ImageData(shape.width, shape.height);
  for (let i = 0; i < shape.width * shape.height; i++) {
    const a = shape.bgra[4 * i + 3];
    // Premultiplied BGRA to straight RGBA.
    const un = (v: number) => (a === 0 ? 0 : Math.min(255, Math.round((v * 255) / a)));
    img.data[4 * i] = un(shape.bgra[4 * i + 2]);
    img.data[4 * i + 1] = un(shape.bgra[4 * i + 1]);
    img.data[4 * i + 2] = un(shape.bgra[4 * i]);
    img.data[4 * i + 3] = a;
  }
  const x = cursor.x - shape.hotX;
  const y = cursor.y - shape.hotY;
  // putImageData replaces pixels; draw through a bitmap to blend.
  void createImageBitmap(img).then((bmp) => {
    ctx.drawImage(bmp, x, y);
    drawn = { x, y, w: shape.width, h: shape.height };
  });
}

// Input: only while interactive, in the shared picture's coordinates.
function input(event: InputEvent): void {
  if (state.level !== "interactive" || !send) return;
  send({ type: "input", event });
}

function picturePoint(e: MouseEvent): { x: number; y: number } {
  const r = canvas.getBoundingClientRect();
  const sx = state.width / r.width;
  const sy = state.height / r.height;
  const clamp = (v: number, max: number) => Math.max(0, Math.min(max - 1, Math.floor(v)));
  return { x: clamp((e.clientX - r.left) * sx, state.width), y: clamp((e.clientY - r.top) * sy, state.height) };
}

const BUTTON_NAMES: MouseButton[] = ["left", "middle", "right", "back", "forward"];
const stage = $("stage");
stage.addEventListener("mousemove", (e) => input({ type: "mouse_move", ...picturePoint(e) }));
for (const [name, pressed] of [
  ["mousedown", true],
  ["mouseup", false],
] as const) {
  stage.addEventListener(name, (e) => {
    const button = BUTTON_NAMES[e.button];
    if (!button || state.level !== "interactive") return;
    e.preventDefault();
    stage.focus();
    input({ type: "mouse_move", ...picturePoint(e) });
    input({ type: "mouse_button", button, pressed });
  });
}
stage.addEventListener("contextmenu", (e) => {
  if (state.level === "interactive") e.preventDefault();
});
stage.addEventListener(
  "wheel",
  (e) => {
    if (state.level !== "interactive") return;
    e.preventDefault();
    input({ type: "wheel", dx: Math.sign(e.deltaX), dy: Math.sign(e.deltaY) });
  },
  { passive: false },
);
for (const [name, pressed] of [
  ["keydown", true],
  ["keyup", false],
] as const) {
  stage.addEventListener(name, (e) => {
    if (state.level !== "interactive") return;
    const keysym = keysymOfEvent(e);
    if (keysym === null) return;
    e.preventDefault();
    input({ type: "key", keysym, pressed });
  });
}

clipSend.addEventListener("click", () => {
  shareClipboard(clipOut.value).catch((e: unknown) => addNotice(`clipboard: not shared: ${String(e)}`));
});

requestButton.addEventListener("click", () => {
  send?.({ type: "request_control", level: "interactive" });
  addNotice("control requested: waiting for the sharer");
});

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const data = new FormData(form);
  const name = String(data.get("name") ?? "").trim() || "browser";
  const password = String(data.get("password") ?? "");
  state.message = "";
  join(name, password).catch((err: unknown) => {
    // A rejection or a goodbye already said why the session ended.
    if (state.phase === "rejected" || state.phase === "closed") return;
    state.phase = "closed";
    state.message = `could not connect: ${String(err)}`;
    setStatus(state.message);
  });
});

if (!new URLSearchParams(location.search).get("session")) {
  setStatus("this link names no session: open the browser link the sharer gave you");
}
if (typeof WebTransport === "undefined") {
  setStatus("this browser has no WebTransport: the page will use a WebSocket (slower)");
}

function toBase64(buf: ArrayBuffer): string {
  const b = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

async function sha256(buf: ArrayBuffer): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

// Hooks for the browser tests (tests/tests/browser.rs) and for anyone
// debugging a page: read-only state, the canvas's own pixels, a decode bench.
(window as unknown as { tandem: unknown }).tandem = {
  state,
  /** The canvas's pixels as RGBA, with their SHA-256. */
  async snapshot(withPixels = false) {
    const m = (await ask({ type: "snapshot", id: nextId++ })) as Extract<FromWorker, { type: "snapshot" }>;
    return { width: m.width, height: m.height, sha256: await sha256(m.rgba), rgba: withPixels ? toBase64(m.rgba) : "" };
  },
  /** Decodes base64 updates with a fresh decoder in the worker; per-update times and the result's SHA-256. */
  async bench(updates: string[]) {
    const bufs = updates.map((u) => Uint8Array.from(atob(u), (c) => c.charCodeAt(0)).buffer);
    const m = (await ask({ type: "bench", id: nextId++, updates: bufs }, bufs)) as Extract<FromWorker, { type: "bench" }>;
    return { ms: m.ms, error: m.error, width: m.width, height: m.height, sha256: await sha256(m.rgba) };
  },
};
