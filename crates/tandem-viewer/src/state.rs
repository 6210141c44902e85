//! The viewer's client-side state machine, one for both front ends (the
//! window's client task in [`live`](crate::live) and the headless viewer):
//! it takes what the node sends (the welcome, control messages, graphics
//! streams, cursor datagrams, channel stream headers) and answers with what
//! the front end should do or show ([`Effect`]s). It does no I/O and reads no
//! clock, so the two front ends follow the node the same way (the same
//! bounded pointer-image memory, the same checks, the same lines for the
//! user) and it is tested without a connection.
//!
//! The viewer does not take the node's word for what it may share: the
//! clipboard is shared only while the attendee's own control level is
//! `interactive`, whatever access the node announces ([`effective_access`]).
//! Text from the node is filtered of control characters before it reaches a
//! terminal ([`printable`]), and no picture larger than
//! [`ViewerLimits::max_frame_pixels`] is ever allocated.

use std::collections::BTreeMap;
use std::sync::Arc;

use tandem_codec::{Decoder, EncodedUpdate, Frame};
use tandem_proto::{
    ChannelAccess, ControlLevel, CursorPosition, CursorShape, DisconnectReason, ServerMessage,
    Welcome, CLIPBOARD_CHANNEL, MAX_GRAPHICS_PAYLOAD,
};

use crate::{ViewerError, ViewerEvent, ViewerOutcome};

/// Pointer images kept per connection; a sender never reuses an id, so the
/// oldest are dropped past this.
pub const MAX_CURSOR_SHAPES: usize = 64;

/// The default largest picture, in pixels: 8K UHD (7680x4320), about
/// 133 MB a copy. The window holds up to three copies (decoder, hand-over
/// slot, window buffer), so a node announcing the protocol's 16384x16384
/// would otherwise cost the attendee 3-4 GiB.
pub const DEFAULT_MAX_FRAME_PIXELS: u64 = 7680 * 4320;

/// What the viewer accepts from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewerLimits {
    /// Largest picture (width x height) the viewer decodes; a node that
    /// announces a larger one is refused with [`ViewerError::FrameTooLarge`].
    pub max_frame_pixels: u64,
}

impl Default for ViewerLimits {
    fn default() -> Self {
        ViewerLimits {
            max_frame_pixels: DEFAULT_MAX_FRAME_PIXELS,
        }
    }
}

impl ViewerLimits {
    /// Refuses a picture larger than the limit.
    pub fn check_size(&self, width: u32, height: u32) -> Result<(), ViewerError> {
        if u64::from(width) * u64::from(height) > self.max_frame_pixels {
            return Err(ViewerError::FrameTooLarge {
                width,
                height,
                max_pixels: self.max_frame_pixels,
            });
        }
        Ok(())
    }
}

/// What a front end does after the node said something.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// A line for the user (text from the node already [`printable`]).
    Notice(String),
    /// A short message the window shows for a while (also a notice).
    Show(String),
    /// The attendee's control level changed.
    Level {
        /// Before.
        from: ControlLevel,
        /// Now.
        to: ControlLevel,
    },
    /// The sharer answered a control request.
    Answered {
        /// Level asked for.
        requested: ControlLevel,
        /// Whether it was given.
        granted: bool,
    },
    /// Graphics paused (`true`) or resumed.
    Paused(bool),
    /// The shared area has this size now.
    Desktop(u32, u32),
    /// The pointer images changed ([`ViewerCore::cursor_shapes`]).
    Shapes,
    /// The channel asked for was joined, with this id.
    ChannelJoined(u32),
    /// The node refused to join the channel.
    ChannelRefused {
        /// Channel name.
        name: String,
        /// The node's line (printable).
        message: String,
    },
    /// What this viewer may now do on its joined channel: the node's
    /// announcement capped by the viewer's own rule ([`effective_access`]).
    Access(ChannelAccess),
    /// The node said goodbye; the connection ends.
    Bye {
        /// Why.
        reason: DisconnectReason,
        /// The node's line (printable).
        message: String,
    },
}

/// Text from the node made safe to print: control characters (escape
/// sequences, carriage returns, bidirectional overrides) become `?`, so a
/// node cannot move the cursor, recolour or rewrite the attendee's terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if is_unsafe(c) { '?' } else { c })
        .collect()
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        // Bidirectional embeddings, overrides and isolates reorder what follows.
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// What the viewer lets itself do on a channel: the clipboard only while
/// the attendee is `interactive` (the node's rule too, but a node is not
/// trusted with what the attendee copies); other channels as announced.
pub fn effective_access(
    channel: &str,
    announced: ChannelAccess,
    level: ControlLevel,
) -> ChannelAccess {
    if channel == CLIPBOARD_CHANNEL && !level.can_input() {
        ChannelAccess::None
    } else {
        announced
    }
}

/// The channel the viewer asked for, and what the node said of it.
#[derive(Debug)]
struct WantedChannel {
    name: String,
    id: Option<u32>,
    announced: ChannelAccess,
}

/// The client-side state of one viewer, across its connections (counters
/// and the channel asked for live on; the picture, pointer and level are
/// per connection).
pub struct ViewerCore {
    limits: ViewerLimits,
    level: ControlLevel,
    /// The level this viewer asked for and the node has not answered yet.
    requested: Option<ControlLevel>,
    paused: bool,
    desktop: (u32, u32),
    decoder: Decoder,
    shapes: BTreeMap<u32, Arc<CursorShape>>,
    cursor_seq: Option<u32>,
    channel: Option<WantedChannel>,
    outcome: ViewerOutcome,
}

impl ViewerCore {
    /// A viewer not yet connected.
    pub fn new(limits: ViewerLimits) -> ViewerCore {
        ViewerCore {
            limits,
            level: ControlLevel::None,
            requested: None,
            paused: false,
            desktop: (0, 0),
            decoder: Decoder::new(),
            shapes: BTreeMap::new(),
            cursor_seq: None,
            channel: None,
            outcome: ViewerOutcome::default(),
        }
    }

    /// Remembers the channel this viewer joins on every connection.
    pub fn want_channel(&mut self, name: &str) {
        self.channel = Some(WantedChannel {
            name: name.to_owned(),
            id: None,
            announced: ChannelAccess::None,
        });
    }

    /// A new connection was welcomed: starts its state afresh and returns
    /// the welcome with its text made printable. A picture over the limit
    /// is refused here, before anything is allocated.
    pub fn connected(&mut self, welcome: &Welcome) -> Result<Welcome, ViewerError> {
        self.limits.check_size(welcome.width, welcome.height)?;
        self.level = welcome.control_level;
        self.requested = None;
        self.paused = welcome.paused;
        self.desktop = (welcome.width, welcome.height);
        if let Some(frame) = self.decoder.frame() {
            // What the last connection showed stays the outcome's picture
            // until this one decodes its own.
            self.outcome.frame = Some(frame.clone());
        }
        self.decoder = Decoder::new();
        self.shapes.clear();
        self.cursor_seq = None;
        if let Some(c) = &mut self.channel {
            c.id = None;
            c.announced = ChannelAccess::None;
        }
        Ok(Welcome {
            session: printable(&welcome.session),
            ..welcome.clone()
        })
    }

    /// The attendee's control level as the node last said.
    pub fn level(&self) -> ControlLevel {
        self.level
    }

    /// This viewer asked the node for `level`. Asking for more than it has
    /// leaves a request pending until the node answers or changes the level
    /// (asking for less is answered at once); the pending level is shown
    /// the way the sharer sees it, `reqctrl-view` or `reqctrl-interactive`.
    pub fn requested(&mut self, level: ControlLevel) -> Vec<Effect> {
        if level <= self.level {
            return Vec::new();
        }
        self.requested = Some(level);
        vec![Effect::Show(format!(
            "control level: {} (asked the sharer for {level})",
            self.shown_level()
        ))]
    }

    /// The level as the sharer sees it: `reqctrl-view` or
    /// `reqctrl-interactive` while a request is pending, else the level.
    pub fn shown_level(&self) -> String {
        match self.requested {
            Some(l) if l > self.level => format!("reqctrl-{l}"),
            _ => self.level.to_string(),
        }
    }

    /// Whether graphics are paused.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// The shared area's size.
    pub fn desktop(&self) -> (u32, u32) {
        self.desktop
    }

    /// The picture as decoded so far.
    pub fn frame(&self) -> Option<&Frame> {
        self.decoder.frame()
    }

    /// The pointer images of this connection (at most [`MAX_CURSOR_SHAPES`]).
    pub fn cursor_shapes(&self) -> &BTreeMap<u32, Arc<CursorShape>> {
        &self.shapes
    }

    /// What has been seen so far, over every connection.
    pub fn outcome(&self) -> &ViewerOutcome {
        &self.outcome
    }

    /// Records how viewing ended.
    pub fn set_disconnected(&mut self, reason: DisconnectReason, message: String) {
        self.outcome.disconnected = Some((reason, message));
    }

    /// The outcome, with the last picture and the pointer images.
    pub fn finish(mut self) -> ViewerOutcome {
        if let Some(frame) = self.decoder.frame() {
            self.outcome.frame = Some(frame.clone());
        }
        self.outcome.cursor_shapes = self
            .shapes
            .iter()
            .map(|(id, s)| (*id, CursorShape::clone(s)))
            .collect();
        self.outcome
    }

    /// What the viewer may do on its joined channel now.
    pub fn channel_access(&self) -> ChannelAccess {
        match &self.channel {
            Some(c) if c.id.is_some() => effective_access(&c.name, c.announced, self.level),
            _ => ChannelAccess::None,
        }
    }

    /// Whether the viewer may share its clipboard now (joined the clipboard
    /// channel, the node allows writing, and the attendee is interactive).
    pub fn may_share_clipboard(&self) -> bool {
        self.clipboard_refusal().is_none()
    }

    /// Why the clipboard may not be shared now, for the user; `None` when
    /// it may.
    pub fn clipboard_refusal(&self) -> Option<&'static str> {
        if !self.is_clipboard() {
            return Some("the clipboard channel is not joined");
        }
        if self.level != ControlLevel::Interactive {
            return Some("this attendee is not interactive");
        }
        if self.channel_access() != ChannelAccess::ReadWrite {
            return Some("the node gives this attendee no write access to the clipboard");
        }
        None
    }

    /// A channel stream the node opened for channel `id`: only for the
    /// channel asked for (the node may open it before its `ChannelJoined`
    /// is read here).
    pub fn check_channel_stream(&self, id: u32) -> Result<(), ViewerError> {
        match &self.channel {
            Some(c) if c.id.is_none_or(|joined| joined == id) => Ok(()),
            _ => Err(ViewerError::Protocol(
                "a channel stream for no joined channel".into(),
            )),
        }
    }

    /// Decodes one graphics stream (`payload`: the bytes after its kind
    /// byte). A failed update changes nothing.
    pub fn graphics(&mut self, payload: &[u8]) -> Result<ViewerEvent, ViewerError> {
        if payload.len() > MAX_GRAPHICS_PAYLOAD {
            return Err(ViewerError::Protocol(format!(
                "graphics update of {} bytes exceeds the {MAX_GRAPHICS_PAYLOAD}-byte limit",
                payload.len()
            )));
        }
        let update =
            EncodedUpdate::from_bytes(payload).map_err(|e| ViewerError::Protocol(e.to_string()))?;
        // Before the decoder allocates the picture.
        self.limits.check_size(update.width, update.height)?;
        self.decoder
            .apply(&update)
            .map_err(|e| ViewerError::Protocol(format!("update {}: {e}", update.seq)))?;
        let o = &mut self.outcome;
        o.updates += 1;
        let catch_up = !update.is_key_frame()
            && update.is_self_contained()
            && update.base_seq + 1 != update.seq;
        if update.is_key_frame() {
            o.key_frames += 1;
        } else if catch_up {
            o.catch_ups += 1;
        }
        o.last_seq = update.seq;
        self.desktop = (update.width, update.height);
        Ok(ViewerEvent::Update {
            seq: update.seq,
            base_seq: update.base_seq,
            width: update.width,
            height: update.height,
            catch_up,
        })
    }

    /// A cursor datagram: the position when it is newer than the last one
    /// (datagrams may arrive out of order), `None` when stale.
    pub fn datagram(&mut self, bytes: &[u8]) -> Result<Option<CursorPosition>, ViewerError> {
        let pos = CursorPosition::from_datagram(bytes)
            .map_err(|e| ViewerError::Protocol(format!("datagram: {e}")))?;
        if self.cursor_seq.is_some_and(|old| pos.seq <= old) {
            return Ok(None);
        }
        self.cursor_seq = Some(pos.seq);
        self.outcome.cursor = Some(pos);
        self.outcome.cursor_moves += 1;
        Ok(Some(pos))
    }

    /// A control message from the node (after the welcome).
    pub fn message(&mut self, msg: ServerMessage) -> Result<Vec<Effect>, ViewerError> {
        let mut out = Vec::new();
        match msg {
            ServerMessage::Bye { reason, message } => {
                let message = printable(&message);
                out.push(Effect::Notice(format!(
                    "disconnected: {}",
                    bye_line(reason, &message)
                )));
                out.push(Effect::Bye { reason, message });
            }
            ServerMessage::ControlLevelChanged { level } => {
                let before = self.channel_access();
                let from = std::mem::replace(&mut self.level, level);
                // The node answers a pending request by changing the level.
                self.requested = None;
                out.push(Effect::Level { from, to: level });
                out.push(Effect::Show(format!("control level: {level}")));
                let after = self.channel_access();
                if after != before {
                    out.push(Effect::Access(after));
                }
            }
            ServerMessage::ControlRequestAnswered {
                requested,
                granted,
                message,
            } => {
                let message = printable(&message);
                self.requested = None;
                out.push(Effect::Notice(format!("control request: {message}")));
                out.push(Effect::Answered { requested, granted });
                let line = match (granted, message.is_empty()) {
                    (true, _) => format!("request for {requested} control granted"),
                    (false, true) => format!("request for {requested} control denied"),
                    (false, false) => format!("request for {requested} control denied: {message}"),
                };
                out.push(Effect::Show(line));
            }
            ServerMessage::GraphicsPaused => {
                self.paused = true;
                out.push(Effect::Notice("graphics paused by the sharer".into()));
                out.push(Effect::Paused(true));
            }
            ServerMessage::GraphicsResumed => {
                self.paused = false;
                out.push(Effect::Notice("graphics resumed".into()));
                out.push(Effect::Paused(false));
            }
            ServerMessage::SharedRectChanged { width, height } => {
                self.limits.check_size(width, height)?;
                self.desktop = (width, height);
                out.push(Effect::Notice(format!(
                    "shared area is now {width}x{height}"
                )));
                out.push(Effect::Desktop(width, height));
            }
            ServerMessage::InputRefused { message } => {
                out.push(Effect::Show(printable(&message)));
            }
            ServerMessage::CursorShape(shape) => {
                shape
                    .validate()
                    .map_err(|e| ViewerError::Protocol(e.to_string()))?;
                self.shapes.insert(shape.id, Arc::new(shape));
                while self.shapes.len() > MAX_CURSOR_SHAPES {
                    self.shapes.pop_first();
                }
                out.push(Effect::Shapes);
            }
            other @ (ServerMessage::Welcome(_) | ServerMessage::Rejected { .. }) => {
                return Err(ViewerError::Protocol(format!("unexpected {other:?}")));
            }
            ServerMessage::ChannelJoined(info) => {
                info.validate()
                    .map_err(|e| ViewerError::Protocol(e.to_string()))?;
                let Some(c) = self.channel.as_mut().filter(|c| c.name == info.name) else {
                    return Err(ViewerError::Protocol(format!(
                        "joined channel {} that was not asked for",
                        info.name
                    )));
                };
                c.id = Some(info.id);
                c.announced = info.access;
                out.push(Effect::Notice(format!(
                    "channel {} joined (access {})",
                    info.name, info.access
                )));
                out.push(Effect::ChannelJoined(info.id));
                out.push(Effect::Access(self.channel_access()));
            }
            ServerMessage::ChannelJoinRefused { name, message } => {
                let name = printable(&name);
                let message = printable(&message);
                out.push(Effect::Notice(format!(
                    "cannot join channel {name}: {message}"
                )));
                out.push(Effect::ChannelRefused { name, message });
            }
            ServerMessage::ChannelAccessChanged { channel, access } => {
                if let Some(c) = self.channel.as_mut().filter(|c| c.id == Some(channel)) {
                    c.announced = access;
                    out.push(Effect::Notice(format!("channel access: {access}")));
                    out.push(Effect::Access(self.channel_access()));
                }
            }
            ServerMessage::ChannelOverflow { .. } => {
                out.push(Effect::Notice(if self.is_clipboard() {
                    "clipboard: copies dropped by the node (this viewer's queue was full)".into()
                } else {
                    "channel: messages dropped by the node (this viewer's queue was full)".into()
                }));
            }
            ServerMessage::ChannelWriteRefused { message, .. } => {
                let message = printable(&message);
                out.push(Effect::Show(if self.is_clipboard() {
                    format!("clipboard not sent: {message}")
                } else {
                    format!("channel write refused: {message}")
                }));
            }
        }
        Ok(out)
    }

    /// Whether the channel asked for is the clipboard.
    pub fn is_clipboard(&self) -> bool {
        self.channel
            .as_ref()
            .is_some_and(|c| c.name == CLIPBOARD_CHANNEL)
    }
}

/// The line shown for a node's `Bye`.
pub(crate) fn bye_line(reason: DisconnectReason, message: &str) -> String {
    if message.is_empty() {
        reason.to_string()
    } else {
        format!("{reason}: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_codec::{Encoder, EncoderConfig};
    use tandem_proto::{ChannelFlags, ChannelInfo, ChannelPriority};

    fn welcome(level: ControlLevel, width: u32, height: u32) -> Welcome {
        Welcome {
            attendee_id: 1,
            session: "s".into(),
            control_level: level,
            width,
            height,
            paused: false,
        }
    }

    #[test]
    fn a_pending_request_shows_as_reqctrl_until_the_node_answers() {
        let mut core = ViewerCore::new(ViewerLimits::default());
        core.connected(&welcome(ControlLevel::View, 8, 8)).unwrap();
        assert_eq!(core.shown_level(), "view");
        // Asking for what it has, or less, is never pending.
        assert!(core.requested(ControlLevel::View).is_empty());
        assert_eq!(core.shown_level(), "view");
        let effects = core.requested(ControlLevel::Interactive);
        assert_eq!(core.shown_level(), "reqctrl-interactive");
        assert_eq!(
            effects,
            vec![Effect::Show(
                "control level: reqctrl-interactive (asked the sharer for interactive)".into()
            )]
        );
        // Denied: back to the level.
        core.message(ServerMessage::ControlRequestAnswered {
            requested: ControlLevel::Interactive,
            granted: false,
            message: String::new(),
        })
        .unwrap();
        assert_eq!(core.shown_level(), "view");
        // Asked again, then the sharer sets a level: no longer pending.
        core.requested(ControlLevel::Interactive);
        core.message(ServerMessage::ControlLevelChanged {
            level: ControlLevel::None,
        })
        .unwrap();
        assert_eq!(core.shown_level(), "none");
        // A new connection starts with nothing asked.
        core.requested(ControlLevel::View);
        assert_eq!(core.shown_level(), "reqctrl-view");
        core.connected(&welcome(ControlLevel::None, 8, 8)).unwrap();
        assert_eq!(core.shown_level(), "none");
    }

    fn joined(name: &str, access: ChannelAccess) -> ServerMessage {
        ServerMessage::ChannelJoined(ChannelInfo {
            id: 1,
            name: name.into(),
            priority: ChannelPriority::Normal,
            flags: ChannelFlags(0),
            access,
        })
    }

    fn shape(id: u32) -> CursorShape {
        CursorShape {
            id,
            width: 1,
            height: 1,
            hot_x: 0,
            hot_y: 0,
            bgra: vec![0; 4],
        }
    }

    #[test]
    fn pointer_images_are_bounded() {
        let mut core = ViewerCore::new(ViewerLimits::default());
        core.connected(&welcome(ControlLevel::View, 8, 8)).unwrap();
        for id in 0..1000 {
            let effects = core.message(ServerMessage::CursorShape(shape(id))).unwrap();
            assert_eq!(effects, vec![Effect::Shapes]);
        }
        assert_eq!(core.cursor_shapes().len(), MAX_CURSOR_SHAPES);
        // The newest are kept.
        assert!(core.cursor_shapes().contains_key(&999));
        assert!(!core.cursor_shapes().contains_key(&0));
        assert_eq!(core.finish().cursor_shapes.len(), MAX_CURSOR_SHAPES);
    }

    #[test]
    fn a_view_level_attendee_never_shares_its_clipboard() {
        let mut core = ViewerCore::new(ViewerLimits::default());
        core.want_channel(CLIPBOARD_CHANNEL);
        core.connected(&welcome(ControlLevel::View, 8, 8)).unwrap();
        let effects = core
            .message(joined(CLIPBOARD_CHANNEL, ChannelAccess::ReadWrite))
            .unwrap();
        assert!(
            effects.contains(&Effect::Access(ChannelAccess::None)),
            "{effects:?}"
        );
        assert!(!core.may_share_clipboard());
        // Given control: the node's announcement now holds.
        let effects = core
            .message(ServerMessage::ControlLevelChanged {
                level: ControlLevel::Interactive,
            })
            .unwrap();
        assert!(
            effects.contains(&Effect::Access(ChannelAccess::ReadWrite)),
            "{effects:?}"
        );
        assert!(core.may_share_clipboard());
        // Taken back: off at once, before the node's word on the access.
        let effects = core
            .message(ServerMessage::ControlLevelChanged {
                level: ControlLevel::View,
            })
            .unwrap();
        assert!(
            effects.contains(&Effect::Access(ChannelAccess::None)),
            "{effects:?}"
        );
        assert!(!core.may_share_clipboard());
        // An interactive attendee whose node says none shares nothing either.
        core.message(ServerMessage::ControlLevelChanged {
            level: ControlLevel::Interactive,
        })
        .unwrap();
        core.message(ServerMessage::ChannelAccessChanged {
            channel: 1,
            access: ChannelAccess::Read,
        })
        .unwrap();
        assert!(!core.may_share_clipboard());
    }

    #[test]
    fn other_channels_follow_the_node() {
        assert_eq!(
            effective_access("chat", ChannelAccess::ReadWrite, ControlLevel::View),
            ChannelAccess::ReadWrite
        );
        assert_eq!(
            effective_access(CLIPBOARD_CHANNEL, ChannelAccess::Read, ControlLevel::None),
            ChannelAccess::None
        );
    }

    #[test]
    fn channel_messages_must_be_for_the_channel_asked_for() {
        let mut core = ViewerCore::new(ViewerLimits::default());
        core.connected(&welcome(ControlLevel::View, 8, 8)).unwrap();
        assert!(core.check_channel_stream(1).is_err());
        assert!(core.message(joined("chat", ChannelAccess::Read)).is_err());
        core.want_channel("chat");
        core.connected(&welcome(ControlLevel::View, 8, 8)).unwrap();
        assert!(core.check_channel_stream(1).is_ok(), "before ChannelJoined");
        assert!(core.message(joined("other", ChannelAccess::Read)).is_err());
        core.message(joined("chat", ChannelAccess::Read)).unwrap();
        assert!(core.check_channel_stream(1).is_ok());
        assert!(core.check_channel_stream(2).is_err());
    }

    #[test]
    fn node_text_cannot_drive_the_terminal() {
        assert_eq!(printable("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(printable("a\x1b[2J\x1b]0;owned\x07b"), "a?[2J?]0;owned?b");
        assert_eq!(printable("line\r\nover"), "line??over");
        assert_eq!(printable("\u{9b}31m\u{202e}evil"), "?31m?evil");
        let mut core = ViewerCore::new(ViewerLimits::default());
        let w = Welcome {
            session: "s\x1b[31m".into(),
            ..welcome(ControlLevel::View, 8, 8)
        };
        assert_eq!(core.connected(&w).unwrap().session, "s?[31m");
        let effects = core
            .message(ServerMessage::Bye {
                reason: DisconnectReason::BySharer,
                message: "bye\x1b[1A\x1b[2K".into(),
            })
            .unwrap();
        for e in effects {
            let text = format!("{e:?}");
            assert!(
                !text.contains('\x1b') && !text.contains("\\u{1b}"),
                "{text}"
            );
        }
        let effects = core
            .message(ServerMessage::InputRefused {
                message: "\x1b]52;c;ZXZpbA==\x07".into(),
            })
            .unwrap();
        assert_eq!(effects, vec![Effect::Show("?]52;c;ZXZpbA==?".into())]);
    }

    #[test]
    fn an_oversized_picture_is_refused_before_it_is_allocated() {
        let limits = ViewerLimits::default();
        let mut core = ViewerCore::new(limits);
        let err = core
            .connected(&welcome(ControlLevel::View, 16384, 16384))
            .unwrap_err();
        assert!(
            matches!(
                err,
                ViewerError::FrameTooLarge {
                    width: 16384,
                    height: 16384,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("16384x16384"), "{err}");
        core.connected(&welcome(ControlLevel::View, 64, 64))
            .unwrap();
        assert!(matches!(
            core.message(ServerMessage::SharedRectChanged {
                width: 16384,
                height: 16384
            }),
            Err(ViewerError::FrameTooLarge { .. })
        ));
        // A key frame announcing a too-large picture is refused by its header.
        let mut small = ViewerCore::new(ViewerLimits {
            max_frame_pixels: 64 * 63,
        });
        small.connected(&welcome(ControlLevel::View, 8, 8)).unwrap();
        let mut encoder = Encoder::new(EncoderConfig::default());
        let update = encoder.encode(Frame::filled(64, 64, 7), None).unwrap();
        let err = small.graphics(&update.to_bytes()).unwrap_err();
        assert!(matches!(err, ViewerError::FrameTooLarge { .. }), "{err}");
        assert!(small.frame().is_none());
        // Within the limit it decodes.
        let ok = core.graphics(&update.to_bytes()).unwrap();
        assert!(matches!(
            ok,
            ViewerEvent::Update {
                width: 64,
                height: 64,
                ..
            }
        ));
        assert_eq!(core.frame().unwrap().get(3, 3), 7);
        assert_eq!(core.outcome().key_frames, 1);
    }

    #[test]
    fn stale_cursor_datagrams_are_ignored() {
        let mut core = ViewerCore::new(ViewerLimits::default());
        core.connected(&welcome(ControlLevel::View, 8, 8)).unwrap();
        let pos = |seq| CursorPosition {
            seq,
            x: seq as i32,
            y: 0,
            visible: true,
            shape: 1,
        };
        assert!(core.datagram(&pos(5).to_datagram()).unwrap().is_some());
        assert!(core.datagram(&pos(3).to_datagram()).unwrap().is_none());
        assert!(core.datagram(&pos(6).to_datagram()).unwrap().is_some());
        assert_eq!(core.outcome().cursor_moves, 2);
        assert!(core.datagram(&[9, 9]).is_err());
        // A new connection starts its sequence afresh.
        core.connected(&welcome(ControlLevel::View, 8, 8)).unwrap();
        assert!(core.datagram(&pos(1).to_datagram()).unwrap().is_some());
    }
}
