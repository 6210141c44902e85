//! Control-stream messages: what a client and a server say to each other.
//!
//! Messages are serialized with postcard, which encodes an enum variant by
//! its index: variant order is the wire format, so new variants are only
//! ever appended and existing ones never reordered or removed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{ProtoError, MAX_ID_LEN, MAX_NAME_LEN, MAX_PASSWORD_LEN, PROTOCOL_VERSION};

/// Whether `s` is a valid session or invitation id: 1 to [`MAX_ID_LEN`]
/// characters from `A-Z a-z 0-9 _ -`.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What an attendee may do (the Desktop Sharing API's `CTRL_LEVEL`).
///
/// Ordered from least to most privileged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlLevel {
    /// Connected but receives no graphics and sends no input.
    None,
    /// Watches the desktop.
    View,
    /// Watches the desktop and drives it with mouse and keyboard.
    Interactive,
}

impl ControlLevel {
    /// All levels, least privileged first.
    pub const ALL: [ControlLevel; 3] = [
        ControlLevel::None,
        ControlLevel::View,
        ControlLevel::Interactive,
    ];

    /// The lowercase name used in text: `none`, `view` or `interactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlLevel::None => "none",
            ControlLevel::View => "view",
            ControlLevel::Interactive => "interactive",
        }
    }

    /// Whether this level receives graphics.
    pub fn can_view(self) -> bool {
        self >= ControlLevel::View
    }

    /// Whether this level may send input.
    pub fn can_input(self) -> bool {
        self == ControlLevel::Interactive
    }
}

impl fmt::Display for ControlLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`ControlLevel`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown control level {input:?}: expected none, view or interactive")]
pub struct ParseControlLevelError {
    /// The rejected text (cut to 32 characters).
    pub input: String,
}

impl FromStr for ControlLevel {
    type Err = ParseControlLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        ControlLevel::ALL
            .into_iter()
            .find(|l| t.eq_ignore_ascii_case(l.as_str()))
            .ok_or_else(|| ParseControlLevelError {
                input: s.chars().take(32).collect(),
            })
    }
}

/// First message of a client on the control stream: which session it joins
/// with which invitation, as whom. Its `Debug` output never shows the
/// password (logs and panics print it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version spoken by the client ([`PROTOCOL_VERSION`]).
    pub version: u16,
    /// Session id from the connection string.
    pub session: String,
    /// Invitation id from the connection string.
    pub invitation: String,
    /// Attendee's display name (the remote name of `net session`).
    pub name: String,
    /// Invitation password, given to the attendee apart from the connection string; may be empty.
    pub password: String,
}

impl fmt::Debug for Hello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hello")
            .field("version", &self.version)
            .field("session", &self.session)
            .field("invitation", &self.invitation)
            .field("name", &self.name)
            .field(
                "password",
                &if self.password.is_empty() {
                    "(none)"
                } else {
                    "(redacted)"
                },
            )
            .finish()
    }
}

impl Hello {
    /// A `Hello` for the current [`PROTOCOL_VERSION`].
    pub fn new(
        session: impl Into<String>,
        invitation: impl Into<String>,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Hello {
            version: PROTOCOL_VERSION,
            session: session.into(),
            invitation: invitation.into(),
            name: name.into(),
            password: password.into(),
        }
    }

    /// Checks field lengths and the id charset.
    ///
    /// The version is not checked here: a server answers a version it does
    /// not speak with [`RejectReason::UnsupportedVersion`], and any error
    /// from this method with [`RejectReason::Malformed`].
    pub fn validate(&self) -> Result<(), ProtoError> {
        if !is_valid_id(&self.session) {
            return Err(ProtoError::InvalidId { field: "session" });
        }
        if !is_valid_id(&self.invitation) {
            return Err(ProtoError::InvalidId {
                field: "invitation",
            });
        }
        check_text("name", &self.name, MAX_NAME_LEN)?;
        if self.password.len() > MAX_PASSWORD_LEN {
            return Err(ProtoError::FieldTooLong {
                field: "password",
                len: self.password.len(),
                max: MAX_PASSWORD_LEN,
            });
        }
        Ok(())
    }
}

fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), ProtoError> {
    if s.len() > max {
        return Err(ProtoError::FieldTooLong {
            field,
            len: s.len(),
            max,
        });
    }
    if s.chars().any(char::is_control) {
        return Err(ProtoError::ControlCharacter { field });
    }
    Ok(())
}

/// Server's answer to an accepted [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Id the node gave this attendee.
    pub attendee_id: u64,
    /// Session joined.
    pub session: String,
    /// Control level granted on joining.
    pub control_level: ControlLevel,
    /// Width of the shared rectangle, in pixels.
    pub width: u32,
    /// Height of the shared rectangle, in pixels.
    pub height: u32,
    /// Whether graphics are paused at the time of joining.
    pub paused: bool,
}

/// Why a server refused a [`Hello`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The client speaks a protocol version the server does not.
    UnsupportedVersion,
    /// No such session on this node.
    UnknownSession,
    /// No such invitation in the session.
    UnknownInvitation,
    /// The password does not match the invitation's.
    WrongPassword,
    /// The invitation was revoked.
    InvitationRevoked,
    /// The invitation's attendee limit is reached.
    AttendeeLimitReached,
    /// The session has been closed by its sharer.
    SessionClosed,
    /// Too many failed attempts from this peer.
    TooManyAttempts,
    /// The `Hello` was malformed or invalid.
    Malformed,
    /// The node is shutting down.
    NodeShuttingDown,
}

impl RejectReason {
    /// One line telling the user what happened and what to do about it.
    pub fn describe(&self) -> &'static str {
        match self {
            RejectReason::UnsupportedVersion => {
                "unsupported protocol version: use a viewer of the same Tandem version as the node"
            }
            RejectReason::UnknownSession => {
                "unknown session: check the connection string, or the session may have ended"
            }
            RejectReason::UnknownInvitation => {
                "unknown invitation: check the connection string, or ask the sharer for a new one"
            }
            RejectReason::WrongPassword => {
                "wrong password: check the password given with the invitation"
            }
            RejectReason::InvitationRevoked => {
                "invitation revoked: ask the sharer for a new invitation"
            }
            RejectReason::AttendeeLimitReached => {
                "attendee limit reached: ask the sharer to raise the limit or for another invitation"
            }
            RejectReason::SessionClosed => "session closed: the sharer has ended this session",
            RejectReason::TooManyAttempts => {
                "too many failed attempts: wait a while before trying again"
            }
            RejectReason::Malformed => {
                "malformed request: check that the viewer and the node run the same Tandem version"
            }
            RejectReason::NodeShuttingDown => {
                "node shutting down: try again later or another address of the connection string"
            }
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectReason {
    /// The sharer disconnected the attendee.
    BySharer,
    /// The attendee left.
    ByAttendee,
    /// A protocol or internal error.
    Error,
    /// The peer stopped answering.
    Timeout,
    /// The sharer closed the session.
    SessionClosed,
    /// The node shut down.
    NodeShutdown,
    /// The node restarted and lost the connection.
    NodeRestarted,
}

impl DisconnectReason {
    /// Every reason.
    pub const ALL: [DisconnectReason; 7] = [
        DisconnectReason::BySharer,
        DisconnectReason::ByAttendee,
        DisconnectReason::Error,
        DisconnectReason::Timeout,
        DisconnectReason::SessionClosed,
        DisconnectReason::NodeShutdown,
        DisconnectReason::NodeRestarted,
    ];

    /// The reason whose [`Self::as_str`] name is `name`.
    pub fn from_name(name: &str) -> Option<DisconnectReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The short name shown in listings (and stored in attendee records
    /// before they were typed).
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::BySharer => "by sharer",
            DisconnectReason::ByAttendee => "by attendee",
            DisconnectReason::Error => "error",
            DisconnectReason::Timeout => "timeout",
            DisconnectReason::SessionClosed => "session closed",
            DisconnectReason::NodeShutdown => "node shutdown",
            DisconnectReason::NodeRestarted => "node restarted",
        }
    }

    /// One line telling the user what happened.
    pub fn describe(&self) -> &'static str {
        match self {
            DisconnectReason::BySharer => "disconnected by the sharer",
            DisconnectReason::ByAttendee => "disconnected by the attendee",
            DisconnectReason::Error => "disconnected after an error",
            DisconnectReason::Timeout => "connection timed out",
            DisconnectReason::SessionClosed => "session closed",
            DisconnectReason::NodeShutdown => "node shut down",
            DisconnectReason::NodeRestarted => "node restarted: connect again",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A mouse button.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MouseButton {
    /// Primary button.
    Left,
    /// Middle button (wheel click).
    Middle,
    /// Secondary button.
    Right,
    /// "Back" side button.
    Back,
    /// "Forward" side button.
    Forward,
}

/// One input event from an interactive attendee, in shared-rectangle coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputEvent {
    /// Pointer moved to an absolute position.
    MouseMove {
        /// Column, from the left edge of the shared rectangle.
        x: u32,
        /// Row, from the top edge of the shared rectangle.
        y: u32,
    },
    /// A mouse button was pressed or released.
    MouseButton {
        /// Which button.
        button: MouseButton,
        /// `true` on press, `false` on release.
        pressed: bool,
    },
    /// Wheel scrolled, in notches (positive: right and down).
    Wheel {
        /// Horizontal notches (negative: left).
        dx: i32,
        /// Vertical notches (negative: up, away from the user).
        dy: i32,
    },
    /// A key was pressed or released.
    Key {
        /// X11 keysym.
        keysym: u32,
        /// `true` on press, `false` on release.
        pressed: bool,
    },
}

/// Client -> server, on the control stream.  Variant order is the wire format: only ever append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Join a session; must be the first message.
    Hello(Hello),
    /// Ask the sharer for another control level.
    RequestControl {
        /// Level asked for.
        level: ControlLevel,
    },
    /// An input event (honoured only at [`ControlLevel::Interactive`]).
    Input(InputEvent),
    /// The client is leaving.
    Bye {
        /// Free text for the log.
        reason: String,
    },
    /// Join the sharer's channel of this name (the node answers
    /// `ChannelJoined` or `ChannelJoinRefused`); data then flows on channel
    /// streams.
    ChannelJoin {
        /// Channel name.
        name: String,
    },
    /// From now on, send graphics as stamped streams carrying each
    /// update's capture time (`STREAM_KIND_STAMPED_GRAPHICS`), so the viewer
    /// can measure capture-to-decoded latency. Opt-in because a node that
    /// predates it closes the connection on an unknown message.
    StampGraphics,
}

/// Server -> client, on the control stream. Only ever append variants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The `Hello` was accepted.
    Welcome(Welcome),
    /// The `Hello` was refused; the server closes the connection after this.
    Rejected {
        /// Why.
        reason: RejectReason,
        /// Extra detail for the user; may be empty.
        message: String,
    },
    /// The attendee's control level changed.
    ControlLevelChanged {
        /// New level.
        level: ControlLevel,
    },
    /// The sharer answered a `RequestControl`.
    ControlRequestAnswered {
        /// Level that was asked for.
        requested: ControlLevel,
        /// Whether it was granted.
        granted: bool,
        /// Extra detail for the user; may be empty.
        message: String,
    },
    /// Graphics updates stop until `GraphicsResumed`.
    GraphicsPaused,
    /// Graphics updates start again.
    GraphicsResumed,
    /// The shared rectangle changed size.
    SharedRectChanged {
        /// New width, in pixels.
        width: u32,
        /// New height, in pixels.
        height: u32,
    },
    /// An input event was dropped.
    InputRefused {
        /// Why, for the user.
        message: String,
    },
    /// The server is ending the connection.
    Bye {
        /// Why.
        reason: DisconnectReason,
        /// Extra detail for the user; may be empty.
        message: String,
    },
    /// A pointer image; positions naming its id follow as datagrams.
    CursorShape(crate::CursorShape),
    /// Answer to `ChannelJoin`: the channel, with this attendee's access.
    ChannelJoined(crate::ChannelInfo),
    /// Answer to `ChannelJoin`: no such channel (or the name is invalid).
    ChannelJoinRefused {
        /// Name asked for.
        name: String,
        /// Why, for the user.
        message: String,
    },
    /// The sharer changed this attendee's access to a joined channel.
    ChannelAccessChanged {
        /// Channel id.
        channel: u32,
        /// New access.
        access: crate::ChannelAccess,
    },
    /// Messages for this attendee on a channel were dropped because its
    /// queue was full (also marked in the channel stream where they were lost).
    ChannelOverflow {
        /// Channel id.
        channel: u32,
        /// Messages dropped since the last notice.
        dropped: u64,
    },
    /// A message from this attendee on a channel was refused.
    ChannelWriteRefused {
        /// Channel id.
        channel: u32,
        /// Why, for the user.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_debug_hides_the_password() {
        let hello = Hello::new("sess", "inv", "alice", "hunter2-secret");
        for text in [
            format!("{hello:?}"),
            format!("{hello:#?}"),
            format!("{:?}", ClientMessage::Hello(hello.clone())),
        ] {
            assert!(!text.contains("hunter2-secret"), "{text}");
            assert!(
                text.contains("(redacted)") && text.contains("alice"),
                "{text}"
            );
        }
        let open = Hello::new("sess", "inv", "alice", "");
        assert!(format!("{open:?}").contains("(none)"));
    }

    #[test]
    fn control_level_text_round_trips() {
        for level in ControlLevel::ALL {
            assert_eq!(level.to_string().parse::<ControlLevel>(), Ok(level));
        }
        assert_eq!("View".parse::<ControlLevel>(), Ok(ControlLevel::View));
        let err = "admin".parse::<ControlLevel>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown control level \"admin\": expected none, view or interactive"
        );
        assert!(ControlLevel::None < ControlLevel::View);
        assert!(ControlLevel::View < ControlLevel::Interactive);
        assert!(!ControlLevel::None.can_view());
        assert!(ControlLevel::View.can_view() && !ControlLevel::View.can_input());
        assert!(ControlLevel::Interactive.can_input());
    }

    #[test]
    fn enum_wire_indices_are_stable() {
        // Variant order is the wire format: these bytes must never change.
        let level = postcard::to_allocvec(&ControlLevel::Interactive).unwrap();
        assert_eq!(level, [2]);
        let reject = postcard::to_allocvec(&RejectReason::NodeShuttingDown).unwrap();
        assert_eq!(reject, [9]);
        let bye = postcard::to_allocvec(&DisconnectReason::NodeRestarted).unwrap();
        assert_eq!(bye, [6]);
        let msg = postcard::to_allocvec(&ServerMessage::GraphicsResumed).unwrap();
        assert_eq!(msg, [5]);
        let msg = postcard::to_allocvec(&ClientMessage::RequestControl {
            level: ControlLevel::View,
        })
        .unwrap();
        assert_eq!(msg, [1, 1]);
        let msg = postcard::to_allocvec(&ClientMessage::StampGraphics).unwrap();
        assert_eq!(msg, [5]);
    }

    #[test]
    fn reasons_describe_themselves() {
        assert_eq!(
            RejectReason::WrongPassword.describe(),
            "wrong password: check the password given with the invitation"
        );
        assert_eq!(
            DisconnectReason::BySharer.to_string(),
            "disconnected by the sharer"
        );
        assert_eq!(
            DisconnectReason::SessionClosed.to_string(),
            "session closed"
        );
        let all = [
            RejectReason::UnsupportedVersion,
            RejectReason::UnknownSession,
            RejectReason::UnknownInvitation,
            RejectReason::WrongPassword,
            RejectReason::InvitationRevoked,
            RejectReason::AttendeeLimitReached,
            RejectReason::SessionClosed,
            RejectReason::TooManyAttempts,
            RejectReason::Malformed,
            RejectReason::NodeShuttingDown,
        ];
        for r in all {
            let line = r.describe();
            assert!(line.starts_with(|c: char| c.is_ascii_lowercase()), "{line}");
            assert!(!line.ends_with('.'), "{line}");
        }
    }

    #[test]
    fn hello_validation() {
        let ok = Hello::new("sess-1", "inv_A", "Ada Lovelace", "secret");
        assert_eq!(ok.version, PROTOCOL_VERSION);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(Hello::new("s", "i", "", "").validate(), Ok(()));

        let cases: Vec<(Hello, ProtoError)> = vec![
            (
                Hello::new("", "i", "n", ""),
                ProtoError::InvalidId { field: "session" },
            ),
            (
                Hello::new("a b", "i", "n", ""),
                ProtoError::InvalidId { field: "session" },
            ),
            (
                Hello::new("s".repeat(MAX_ID_LEN + 1), "i", "n", ""),
                ProtoError::InvalidId { field: "session" },
            ),
            (
                Hello::new("s", "i/", "n", ""),
                ProtoError::InvalidId {
                    field: "invitation",
                },
            ),
            (
                Hello::new("s", "i", "n".repeat(MAX_NAME_LEN + 1), ""),
                ProtoError::FieldTooLong {
                    field: "name",
                    len: MAX_NAME_LEN + 1,
                    max: MAX_NAME_LEN,
                },
            ),
            (
                Hello::new("s", "i", "bad\nname", ""),
                ProtoError::ControlCharacter { field: "name" },
            ),
            (
                Hello::new("s", "i", "n", "p".repeat(MAX_PASSWORD_LEN + 1)),
                ProtoError::FieldTooLong {
                    field: "password",
                    len: MAX_PASSWORD_LEN + 1,
                    max: MAX_PASSWORD_LEN,
                },
            ),
        ];
        for (hello, expected) in cases {
            assert_eq!(hello.validate(), Err(expected), "{hello:?}");
        }
        assert!(Hello::new("s".repeat(MAX_ID_LEN), "i", "n", "")
            .validate()
            .is_ok());
    }

    #[test]
    fn ids() {
        assert!(is_valid_id("abc-DEF_123"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("é"));
        assert!(!is_valid_id("a.b"));
        assert!(is_valid_id(&"x".repeat(MAX_ID_LEN)));
        assert!(!is_valid_id(&"x".repeat(MAX_ID_LEN + 1)));
    }
}
