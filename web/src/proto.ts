// Tandem's wire protocol for the browser: postcard encoding of the control
// messages (crates/tandem-proto/src/message.rs), the control-stream framing
// (u32 big-endian length, then the postcard payload), the graphics stream
// kind byte and the cursor-position datagram. Variant order is the wire
// format, exactly as in the Rust enums.

/** Largest control-stream frame payload (MAX_CONTROL_MESSAGE). */
export const MAX_CONTROL_MESSAGE = 64 * 1024;
/** Largest graphics stream, kind byte included (MAX_UPDATE_BYTES). */
export const MAX_UPDATE_BYTES = 64 * 1024 * 1024;
/** Kind byte of a graphics stream (STREAM_KIND_GRAPHICS). */
export const STREAM_KIND_GRAPHICS = 1;
/** First byte of a cursor-position datagram (DATAGRAM_KIND_CURSOR). */
export const DATAGRAM_KIND_CURSOR = 1;
/** Largest datagram (MAX_DATAGRAM_LEN). */
export const MAX_DATAGRAM_LEN = 64;
/** Kind byte of a channel data stream (STREAM_KIND_CHANNEL). */
export const STREAM_KIND_CHANNEL = 2;
/** Kind byte and big-endian u32 channel id (CHANNEL_HEADER_LEN). */
export const CHANNEL_HEADER_LEN = 5;
/** Largest message on a channel (MAX_CHANNEL_MESSAGE). */
export const MAX_CHANNEL_MESSAGE = MAX_CONTROL_MESSAGE - 16;
/** The built-in clipboard channel (CLIPBOARD_CHANNEL). */
export const CLIPBOARD_CHANNEL = "clipboard";
/** Hello::version (PROTOCOL_VERSION). */
export const PROTOCOL_VERSION = 1;

export type ControlLevel = "none" | "view" | "interactive";
const LEVELS: ControlLevel[] = ["none", "view", "interactive"];

const REJECT_REASONS = [
  "unsupported_version",
  "unknown_session",
  "unknown_invitation",
  "wrong_password",
  "invitation_revoked",
  "attendee_limit_reached",
  "session_closed",
  "too_many_attempts",
  "malformed",
  "node_shutting_down",
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

const DISCONNECT_REASONS = [
  "by_sharer",
  "by_attendee",
  "error",
  "timeout",
  "session_closed",
  "node_shutdown",
  "node_restarted",
] as const;
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

export interface Welcome {
  attendeeId: number;
  session: string;
  controlLevel: ControlLevel;
  width: number;
  height: number;
  paused: boolean;
}

export interface CursorShape {
  id: number;
  width: number;
  height: number;
  hotX: number;
  hotY: number;
  /** B, G, R, A per pixel, premultiplied alpha. */
  bgra: Uint8Array;
}

export type ChannelAccess = "none" | "read" | "read-write";
const ACCESSES: ChannelAccess[] = ["none", "read", "read-write"];
export type ChannelPriority = "low" | "normal" | "high";
const PRIORITIES: ChannelPriority[] = ["low", "normal", "high"];

/** A channel as this attendee sees it (ChannelInfo). */
export interface ChannelInfo {
  id: number;
  name: string;
  priority: ChannelPriority;
  flags: number;
  access: ChannelAccess;
}

/** One frame on a channel data stream (ChannelFrame). */
export type ChannelFrame = { type: "data"; data: Uint8Array } | { type: "dropped"; count: number };

export type ServerMessage =
  | { type: "welcome"; welcome: Welcome }
  | { type: "rejected"; reason: RejectReason; message: string }
  | { type: "control_level_changed"; level: ControlLevel }
  | { type: "control_request_answered"; requested: ControlLevel; granted: boolean; message: string }
  | { type: "graphics_paused" }
  | { type: "graphics_resumed" }
  | { type: "shared_rect_changed"; width: number; height: number }
  | { type: "input_refused"; message: string }
  | { type: "bye"; reason: DisconnectReason; message: string }
  | { type: "cursor_shape"; shape: CursorShape }
  | { type: "channel_joined"; channel: ChannelInfo }
  | { type: "channel_join_refused"; name: string; message: string }
  | { type: "channel_access_changed"; channel: number; access: ChannelAccess }
  | { type: "channel_overflow"; channel: number; dropped: number }
  | { type: "channel_write_refused"; channel: number; message: string }
  /** A later variant this page does not know. */
  | { type: "other"; variant: number };

export type MouseButton = "left" | "middle" | "right" | "back" | "forward";
const BUTTONS: MouseButton[] = ["left", "middle", "right", "back", "forward"];

export type InputEvent =
  | { type: "mouse_move"; x: number; y: number }
  | { type: "mouse_button"; button: MouseButton; pressed: boolean }
  | { type: "wheel"; dx: number; dy: number }
  | { type: "key"; keysym: number; pressed: boolean };

export type ClientMessage =
  | {
      type: "hello";
      session: string;
      invitation: string;
      name: string;
      password: string;
    }
  | { type: "request_control"; level: ControlLevel }
  | { type: "input"; event: InputEvent }
  | { type: "bye"; reason: string }
  | { type: "channel_join"; name: string };

export interface CursorPosition {
  seq: number;
  x: number;
  y: number;
  shape: number;
  visible: boolean;
}

/** A malformed message or frame. */
export class ProtoError extends Error {}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Postcard writer. */
class Writer {
  private bytes: number[] = [];

  varint(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) {
      throw new ProtoError(`varint out of range: ${v}`);
    }
    while (v >= 0x80) {
      this.bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.bytes.push(v);
  }

  zigzag(v: number): void {
    if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) {
      throw new ProtoError(`i32 out of range: ${v}`);
    }
    this.varint(v < 0 ? -2 * v - 1 : 2 * v);
  }

  bool(b: boolean): void {
    this.bytes.push(b ? 1 : 0);
  }

  string(s: string): void {
    const b = utf8.encode(s);
    this.varint(b.length);
    for (const x of b) this.bytes.push(x);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** Postcard reader over untrusted bytes: every read is bounds-checked. */
export class Reader {
  private at = 0;
  constructor(private readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.length - this.at;
  }

  u8(): number {
    if (this.at >= this.bytes.length) throw new ProtoError("message truncated");
    return this.bytes[this.at++];
  }

  /** Unsigned LEB128 of at most `maxBits` bits, as a safe integer. */
  varint(maxBits = 32): number {
    let v = 0;
    let scale = 1;
    const maxBytes = Math.ceil(maxBits / 7);
    for (let i = 0; i < maxBytes; i++) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (v > Number.MAX_SAFE_INTEGER || v >= 2 ** maxBits) throw new ProtoError("varint out of range");
        return v;
      }
      scale *= 0x80;
    }
    throw new ProtoError("varint too long");
  }

  zigzag(): number {
    const u = this.varint(32);
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new ProtoError("bad bool");
    return b === 1;
  }

  bytesField(max: number): Uint8Array {
    const len = this.varint(32);
    if (len > max || len > this.remaining) throw new ProtoError("byte string too long or truncated");
    const out = this.bytes.subarray(this.at, this.at + len);
    this.at += len;
    return out;
  }

  string(): string {
    try {
      return fromUtf8.decode(this.bytesField(MAX_CONTROL_MESSAGE));
    } catch (e) {
      if (e instanceof ProtoError) throw e;
      throw new ProtoError("invalid utf-8");
    }
  }

  variant<T>(names: readonly T[]): T {
    const i = this.varint(32);
    if (i >= names.length) throw new ProtoError(`unknown variant ${i}`);
    return names[i];
  }
}

function writeLevel(w: Writer, level: ControlLevel): void {
  w.varint(LEVELS.indexOf(level));
}

/** The postcard payload of a client message (no frame header). */
export function encodeClientPayload(msg: ClientMessage): Uint8Array {
  const w = new Writer();
  switch (msg.type) {
    case "hello":
      w.varint(0);
      w.varint(PROTOCOL_VERSION);
      w.string(msg.session);
      w.string(msg.invitation);
      w.string(msg.name);
      w.string(msg.password);
      break;
    case "request_control":
      w.varint(1);
      writeLevel(w, msg.level);
      break;
    case "input": {
      w.varint(2);
      const e = msg.event;
      switch (e.type) {
        case "mouse_move":
          w.varint(0);
          w.varint(e.x);
          w.varint(e.y);
          break;
        case "mouse_button":
          w.varint(1);
          w.varint(BUTTONS.indexOf(e.button));
          w.bool(e.pressed);
          break;
        case "wheel":
          w.varint(2);
          w.zigzag(e.dx);
          w.zigzag(e.dy);
          break;
        case "key":
          w.varint(3);
          w.varint(e.keysym);
          w.bool(e.pressed);
          break;
      }
      break;
    }
    case "bye":
      w.varint(3);
      w.string(msg.reason);
      break;
    case "channel_join":
      w.varint(4);
      w.string(msg.name);
      break;
  }
  return w.finish();
}

/** One control frame: u32 big-endian payload length, then the payload. */
export function encodeClientMessage(msg: ClientMessage): Uint8Array {
  const payload = encodeClientPayload(msg);
  if (payload.length > MAX_CONTROL_MESSAGE) throw new ProtoError("message too large");
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, false);
  out.set(payload, 4);
  return out;
}

/** Decodes one server message payload; trailing bytes are an error. */
export function decodeServerPayload(payload: Uint8Array): ServerMessage {
  const r = new Reader(payload);
  const variant = r.varint(32);
  let msg: ServerMessage;
  switch (variant) {
    case 0:
      msg = {
        type: "welcome",
        welcome: {
          attendeeId: r.varint(64),
          session: r.string(),
          controlLevel: r.variant(LEVELS),
          width: r.varint(32),
          height: r.varint(32),
          paused: r.bool(),
        },
      };
      break;
    case 1:
      msg = { type: "rejected", reason: r.variant(REJECT_REASONS), message: r.string() };
      break;
    case 2:
      msg = { type: "control_level_changed", level: r.variant(LEVELS) };
      break;
    case 3:
      msg = {
        type: "control_request_answered",
        requested: r.variant(LEVELS),
        granted: r.bool(),
        message: r.string(),
      };
      break;
    case 4:
      msg = { type: "graphics_paused" };
      break;
    case 5:
      msg = { type: "graphics_resumed" };
      break;
    case 6:
      msg = { type: "shared_rect_changed", width: r.varint(32), height: r.varint(32) };
      break;
    case 7:
      msg = { type: "input_refused", message: r.string() };
      break;
    case 8:
      msg = { type: "bye", reason: r.variant(DISCONNECT_REASONS), message: r.string() };
      break;
    case 9: {
      const id = r.varint(32);
      const width = r.varint(16);
      const height = r.varint(16);
      const hotX = r.varint(16);
      const hotY = r.varint(16);
      const bgra = r.bytesField(96 * 96 * 4).slice();
      if (width < 1 || height < 1 || width > 96 || height > 96 || bgra.length !== width * height * 4) {
        throw new ProtoError("invalid cursor shape");
      }
      msg = { type: "cursor_shape", shape: { id, width, height, hotX, hotY, bgra } };
      break;
    }
    case 10: {
      const channel: ChannelInfo = {
        id: r.varint(32),
        name: r.string(),
        priority: r.variant(PRIORITIES),
        flags: r.varint(32),
        access: r.variant(ACCESSES),
      };
      msg = { type: "channel_joined", channel };
      break;
    }
    case 11:
      msg = { type: "channel_join_refused", name: r.string(), message: r.string() };
      break;
    case 12:
      msg = { type: "channel_access_changed", channel: r.varint(32), access: r.variant(ACCESSES) };
      break;
    case 13:
      msg = { type: "channel_overflow", channel: r.varint(32), dropped: r.varint(64) };
      break;
    case 14:
      msg = { type: "channel_write_refused", channel: r.varint(32), message: r.string() };
      break;
    default:
      // A later variant: framed, so skipping one is safe.
      return { type: "other", variant };
  }
  if (r.remaining !== 0) throw new ProtoError(`${r.remaining} trailing bytes`);
  return msg;
}

/**
 * Sans-IO receiver of control frames: push bytes as they arrive, pop
 * whole payloads. An announced length above MAX_CONTROL_MESSAGE is final.
 */
export class FrameDecoder {
  private buf = new Uint8Array(0);
  private len = 0;

  push(bytes: Uint8Array): void {
    if (this.len + bytes.length > this.buf.length) {
      const grown = new Uint8Array(Math.max(this.len + bytes.length, this.buf.length * 2, 1024));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** The next whole payload, or null when more bytes are needed. */
  next(): Uint8Array | null {
    if (this.len < 4) return null;
    const n = new DataView(this.buf.buffer, this.buf.byteOffset).getUint32(0, false);
    if (n > MAX_CONTROL_MESSAGE) throw new ProtoError(`control frame of ${n} bytes is over the limit`);
    if (this.len < 4 + n) return null;
    const payload = this.buf.slice(4, 4 + n);
    this.buf.copyWithin(0, 4 + n, this.len);
    this.len -= 4 + n;
    return payload;
  }
}

/** Parses a cursor-position datagram. */
export function parseCursorDatagram(bytes: Uint8Array): CursorPosition {
  if (bytes.length > MAX_DATAGRAM_LEN || bytes.length === 0) throw new ProtoError("bad datagram length");
  if (bytes[0] !== DATAGRAM_KIND_CURSOR) throw new ProtoError(`unknown datagram kind ${bytes[0]}`);
  const r = new Reader(bytes.subarray(1));
  const pos = { seq: r.varint(32), x: r.zigzag(), y: r.zigzag(), shape: r.varint(32), visible: r.bool() };
  if (r.remaining !== 0) throw new ProtoError("trailing bytes in datagram");
  return pos;
}

/** The bytes a channel data stream starts with (channel_stream_header). */
export function channelStreamHeader(channel: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(CHANNEL_HEADER_LEN);
  out[0] = STREAM_KIND_CHANNEL;
  new DataView(out.buffer).setUint32(1, channel, false);
  return out;
}

/** One whole ChannelFrame::Data frame (length prefix included). */
export function encodeChannelData(data: Uint8Array): Uint8Array<ArrayBuffer> {
  if (data.length > MAX_CHANNEL_MESSAGE) throw new ProtoError(`channel message of ${data.length} bytes is over the limit`);
  const w = new Writer();
  w.varint(0);
  w.varint(data.length);
  const head = w.finish();
  const out = new Uint8Array(4 + head.length + data.length);
  new DataView(out.buffer).setUint32(0, head.length + data.length, false);
  out.set(head, 4);
  out.set(data, 4 + head.length);
  return out;
}

/** Decodes one channel frame payload; trailing bytes are an error. */
export function decodeChannelFrame(payload: Uint8Array): ChannelFrame {
  const r = new Reader(payload);
  let frame: ChannelFrame;
  switch (r.varint(32)) {
    case 0:
      frame = { type: "data", data: r.bytesField(MAX_CHANNEL_MESSAGE).slice() };
      break;
    case 1:
      frame = { type: "dropped", count: r.varint(64) };
      break;
    default:
      throw new ProtoError("unknown channel frame");
  }
  if (r.remaining !== 0) throw new ProtoError(`${r.remaining} trailing bytes`);
  return frame;
}
