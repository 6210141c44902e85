//! Keys as the node wants them: X keysyms. Characters map by
//! [`keysym_of`]; the window's logical keys (winit) by [`keysym_of_key`],
//! which covers named keys, keypad keys by location, dead keys and, on X11
//! and Wayland, any key winit cannot name through its native keysym.

use winit::keyboard::{Key, KeyLocation, NamedKey, NativeKey};

/// X keysym of a character: Latin-1 maps to itself, control keys to their
/// keysyms, anything else to the Unicode keysym range.
pub fn keysym_of(c: char) -> u32 {
    match c {
        '\n' | '\r' => 0xff0d,
        '\t' => 0xff09,
        '\u{8}' => 0xff08,
        '\u{1b}' => 0xff1b,
        '\u{7f}' => 0xffff,
        ' '..='~' | '\u{a0}'..='\u{ff}' => c as u32,
        other => 0x0100_0000 + other as u32,
    }
}

/// X keysym of a key of the window, `None` for keys with no keysym.
pub fn keysym_of_key(key: &Key, location: KeyLocation) -> Option<u32> {
    match key {
        Key::Character(text) => {
            let mut chars = text.chars();
            let c = chars.next()?;
            if chars.next().is_some() {
                // A key producing several characters (some layouts' ligature
                // keys) has no single keysym.
                return None;
            }
            if location == KeyLocation::Numpad {
                if let Some(sym) = keypad_keysym(c) {
                    return Some(sym);
                }
            }
            Some(keysym_of(c))
        }
        Key::Named(named) => named_keysym(*named, location),
        Key::Dead(c) => c.and_then(dead_keysym),
        Key::Unidentified(NativeKey::Xkb(sym)) if *sym != 0 => Some(*sym),
        Key::Unidentified(_) => None,
    }
}

fn keypad_keysym(c: char) -> Option<u32> {
    Some(match c {
        '0'..='9' => 0xffb0 + (c as u32 - '0' as u32),
        '.' => 0xffae,
        ',' => 0xffac,
        '+' => 0xffab,
        '-' => 0xffad,
        '*' => 0xffaa,
        '/' => 0xffaf,
        '=' => 0xffbd,
        _ => return None,
    })
}

fn dead_keysym(c: char) -> Option<u32> {
    Some(match c {
        '`' | '\u{300}' => 0xfe50,
        '\'' | '´' | '\u{301}' => 0xfe51,
        '^' | '\u{302}' => 0xfe52,
        '~' | '\u{303}' => 0xfe53,
        '¯' | '\u{304}' => 0xfe54,
        '˘' | '\u{306}' => 0xfe55,
        '˙' | '\u{307}' => 0xfe56,
        '¨' | '"' | '\u{308}' => 0xfe57,
        '˚' | '\u{30a}' => 0xfe58,
        '˝' | '\u{30b}' => 0xfe59,
        'ˇ' | '\u{30c}' => 0xfe5a,
        '¸' | '\u{327}' => 0xfe5b,
        '˛' | '\u{328}' => 0xfe5c,
        _ => return None,
    })
}

fn named_keysym(key: NamedKey, location: KeyLocation) -> Option<u32> {
    let right = location == KeyLocation::Right;
    let side = |left: u32, right_sym: u32| if right { right_sym } else { left };
    let f = |n: u32| 0xffbe + n - 1;
    Some(match key {
        NamedKey::Enter if location == KeyLocation::Numpad => 0xff8d,
        NamedKey::Enter => 0xff0d,
        NamedKey::Tab => 0xff09,
        NamedKey::Space => 0x20,
        NamedKey::Backspace => 0xff08,
        NamedKey::Escape => 0xff1b,
        NamedKey::Delete => 0xffff,
        NamedKey::Insert => 0xff63,
        NamedKey::Home => 0xff50,
        NamedKey::ArrowLeft => 0xff51,
        NamedKey::ArrowUp => 0xff52,
        NamedKey::ArrowRight => 0xff53,
        NamedKey::ArrowDown => 0xff54,
        NamedKey::PageUp => 0xff55,
        NamedKey::PageDown => 0xff56,
        NamedKey::End => 0xff57,
        NamedKey::Clear => 0xff0b,
        NamedKey::Pause => 0xff13,
        NamedKey::ScrollLock => 0xff14,
        NamedKey::PrintScreen => 0xff61,
        NamedKey::Execute => 0xff62,
        NamedKey::Undo => 0xff65,
        NamedKey::Redo => 0xff66,
        NamedKey::ContextMenu => 0xff67,
        NamedKey::Find => 0xff68,
        NamedKey::Cancel => 0xff69,
        NamedKey::Help => 0xff6a,
        NamedKey::Select => 0xff60,
        NamedKey::NumLock => 0xff7f,
        NamedKey::CapsLock => 0xffe5,
        NamedKey::Shift => side(0xffe1, 0xffe2),
        NamedKey::Control => side(0xffe3, 0xffe4),
        NamedKey::Meta => side(0xffe7, 0xffe8),
        NamedKey::Alt => side(0xffe9, 0xffea),
        NamedKey::Super => side(0xffeb, 0xffec),
        NamedKey::Hyper => side(0xffed, 0xffee),
        NamedKey::AltGraph => 0xfe03,
        NamedKey::Compose => 0xff20,
        NamedKey::ModeChange => 0xff7e,
        NamedKey::F1 => f(1),
        NamedKey::F2 => f(2),
        NamedKey::F3 => f(3),
        NamedKey::F4 => f(4),
        NamedKey::F5 => f(5),
        NamedKey::F6 => f(6),
        NamedKey::F7 => f(7),
        NamedKey::F8 => f(8),
        NamedKey::F9 => f(9),
        NamedKey::F10 => f(10),
        NamedKey::F11 => f(11),
        NamedKey::F12 => f(12),
        NamedKey::F13 => f(13),
        NamedKey::F14 => f(14),
        NamedKey::F15 => f(15),
        NamedKey::F16 => f(16),
        NamedKey::F17 => f(17),
        NamedKey::F18 => f(18),
        NamedKey::F19 => f(19),
        NamedKey::F20 => f(20),
        NamedKey::F21 => f(21),
        NamedKey::F22 => f(22),
        NamedKey::F23 => f(23),
        NamedKey::F24 => f(24),
        NamedKey::AudioVolumeDown => 0x1008_ff11,
        NamedKey::AudioVolumeMute => 0x1008_ff12,
        NamedKey::AudioVolumeUp => 0x1008_ff13,
        NamedKey::MediaPlayPause | NamedKey::MediaPlay => 0x1008_ff14,
        NamedKey::MediaStop => 0x1008_ff15,
        NamedKey::MediaTrackPrevious => 0x1008_ff16,
        NamedKey::MediaTrackNext => 0x1008_ff17,
        NamedKey::BrowserHome => 0x1008_ff18,
        NamedKey::LaunchMail => 0x1008_ff19,
        NamedKey::BrowserSearch => 0x1008_ff1b,
        NamedKey::BrowserBack => 0x1008_ff26,
        NamedKey::BrowserForward => 0x1008_ff27,
        NamedKey::BrowserStop => 0x1008_ff28,
        NamedKey::BrowserRefresh => 0x1008_ff29,
        NamedKey::BrowserFavorites => 0x1008_ff30,
        NamedKey::Copy => 0x1008_ff57,
        NamedKey::Cut => 0x1008_ff58,
        NamedKey::Paste => 0x1008_ff6d,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters() {
        assert_eq!(keysym_of('a'), 0x61);
        assert_eq!(keysym_of('>'), 0x3e);
        assert_eq!(keysym_of('\n'), 0xff0d);
        assert_eq!(keysym_of('é'), 0xe9);
        assert_eq!(keysym_of('€'), 0x0100_20ac);
    }

    #[test]
    fn window_keys() {
        let std = KeyLocation::Standard;
        let ch = |s: &str| Key::Character(s.into());
        assert_eq!(keysym_of_key(&ch("a"), std), Some(0x61));
        assert_eq!(keysym_of_key(&ch("A"), std), Some(0x41));
        assert_eq!(keysym_of_key(&ch("ß"), std), Some(0xdf));
        assert_eq!(keysym_of_key(&ch("ab"), std), None);
        assert_eq!(keysym_of_key(&ch("7"), KeyLocation::Numpad), Some(0xffb7));
        assert_eq!(keysym_of_key(&ch("7"), std), Some(0x37));
        let named = |k| Key::Named(k);
        assert_eq!(keysym_of_key(&named(NamedKey::Enter), std), Some(0xff0d));
        assert_eq!(
            keysym_of_key(&named(NamedKey::Enter), KeyLocation::Numpad),
            Some(0xff8d)
        );
        assert_eq!(
            keysym_of_key(&named(NamedKey::Shift), KeyLocation::Left),
            Some(0xffe1)
        );
        assert_eq!(
            keysym_of_key(&named(NamedKey::Control), KeyLocation::Right),
            Some(0xffe4)
        );
        assert_eq!(keysym_of_key(&named(NamedKey::F1), std), Some(0xffbe));
        assert_eq!(keysym_of_key(&named(NamedKey::F12), std), Some(0xffc9));
        assert_eq!(
            keysym_of_key(&named(NamedKey::ArrowLeft), std),
            Some(0xff51)
        );
        assert_eq!(keysym_of_key(&named(NamedKey::Space), std), Some(0x20));
        assert_eq!(keysym_of_key(&Key::Dead(Some('^')), std), Some(0xfe52));
        assert_eq!(
            keysym_of_key(&Key::Unidentified(NativeKey::Xkb(0x1008_ff2f)), std),
            Some(0x1008_ff2f)
        );
        assert_eq!(
            keysym_of_key(&Key::Unidentified(NativeKey::Unidentified), std),
            None
        );
    }
}
