//! The clipboard channel's access rule, in one place.

use tandem_proto::{ChannelAccess, ControlLevel};

/// The clipboard channel's access for an attendee at `level` while the
/// session's clipboard switch is `enabled`: read-write for interactive
/// attendees, nothing otherwise (a view attendee's clipboard never reaches
/// the desktop, and the desktop's never reaches it).
pub fn clipboard_access(enabled: bool, level: ControlLevel) -> ChannelAccess {
    if enabled && level.can_input() {
        ChannelAccess::ReadWrite
    } else {
        ChannelAccess::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_interactive_attendees_of_a_clipboard_session_share_it() {
        let table = [
            (true, ControlLevel::Interactive, ChannelAccess::ReadWrite),
            (true, ControlLevel::View, ChannelAccess::None),
            (true, ControlLevel::None, ChannelAccess::None),
            (false, ControlLevel::Interactive, ChannelAccess::None),
            (false, ControlLevel::View, ChannelAccess::None),
        ];
        for (enabled, level, want) in table {
            assert_eq!(clipboard_access(enabled, level), want, "{enabled} {level}");
        }
    }
}
