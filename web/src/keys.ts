// X keysyms of browser keys, as crates/tandem-viewer/src/keys.rs maps
// characters and named keys (the node injects keysyms).

/** Keysym of one character: Latin-1 maps to itself, others to the Unicode range. */
export function keysymOfChar(c: string): number {
  const code = c.codePointAt(0)!;
  switch (c) {
    case "\n":
    case "\r":
      return 0xff0d;
    case "\t":
      return 0xff09;
    case "\b":
      return 0xff08;
    case "\u001b":
      return 0xff1b;
    case "\u007f":
      return 0xffff;
  }
  if ((code >= 0x20 && code <= 0x7e) || (code >= 0xa0 && code <= 0xff)) return code;
  return 0x0100_0000 + code;
}

const NAMED: Record<string, number> = {
  Enter: 0xff0d,
  Tab: 0xff09,
  Backspace: 0xff08,
  Escape: 0xff1b,
  Delete: 0xffff,
  Insert: 0xff63,
  Home: 0xff50,
  ArrowLeft: 0xff51,
  ArrowUp: 0xff52,
  ArrowRight: 0xff53,
  ArrowDown: 0xff54,
  PageUp: 0xff55,
  PageDown: 0xff56,
  End: 0xff57,
  Clear: 0xff0b,
  Pause: 0xff13,
  ScrollLock: 0xff14,
  PrintScreen: 0xff61,
  ContextMenu: 0xff67,
  Help: 0xff6a,
  NumLock: 0xff7f,
  CapsLock: 0xffe5,
  AltGraph: 0xfe03,
};

const SIDED: Record<string, [number, number]> = {
  Shift: [0xffe1, 0xffe2],
  Control: [0xffe3, 0xffe4],
  Meta: [0xffe7, 0xffe8],
  Alt: [0xffe9, 0xffea],
};

/** Keysym of a KeyboardEvent, or null for keys without one. */
export function keysymOfEvent(e: KeyboardEvent): number | null {
  const key = e.key;
  if (key in SIDED) return SIDED[key][e.location === 2 ? 1 : 0];
  if (key in NAMED) return NAMED[key];
  const f = /^F([1-9]|1[0-9]|2[0-4])$/.exec(key);
  if (f) return 0xffbe + Number(f[1]) - 1;
  if (key === " ") return 0x20;
  if ([...key].length === 1) return keysymOfChar(key);
  return null;
}
