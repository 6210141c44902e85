//! The latest-wins choice of a graphics sender.

/// What kind of update went out (the `tandem_updates_sent_total` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    /// A delta that applies to what the receiver has.
    Delta,
    /// A self-contained key frame.
    Key,
    /// A catch-up from the receiver's last whole update.
    CatchUp,
}

impl UpdateKind {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Delta => "delta",
            Self::Key => "key",
            Self::CatchUp => "catch_up",
        }
    }
}

/// What to send next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Nothing: the receiver has the newest update.
    Nothing,
    /// The newest update as it is.
    Newest(UpdateKind),
    /// A catch-up from `since` (ask the encoder); `coalesced` updates
    /// between the receiver's and the newest are folded into it.
    CatchUp {
        /// The receiver's last whole update (0: none, a key frame comes back).
        since: u64,
        /// Updates skipped.
        coalesced: u64,
    },
}

/// One receiver's position in a session's update sequence: latest wins.
/// While a send is in flight nothing queues; when it completes, the
/// receiver gets the newest update if it applies to what it has, else a
/// catch-up from its last delivered one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdatePicker {
    delivered: u64,
}

impl UpdatePicker {
    /// A receiver that has nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sequence number of the last update the receiver has whole (0: none).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// What to send given the newest update's `seq` and `base_seq` (0 for
    /// a key frame).
    pub fn pick(&self, seq: u64, base_seq: u64) -> Pick {
        if seq == self.delivered {
            return Pick::Nothing;
        }
        if self.delivered != 0 && base_seq == self.delivered {
            return Pick::Newest(UpdateKind::Delta);
        }
        if base_seq == 0 {
            return Pick::Newest(UpdateKind::Key);
        }
        let coalesced = if self.delivered == 0 {
            0
        } else {
            seq.saturating_sub(self.delivered + 1)
        };
        Pick::CatchUp {
            since: self.delivered,
            coalesced,
        }
    }

    /// The update `seq` was delivered whole.
    pub fn sent(&mut self, seq: u64) {
        self.delivered = seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_when_they_apply_key_frames_as_they_are_catch_ups_otherwise() {
        let mut p = UpdatePicker::new();
        // A joiner gets a catch-up from nothing (a key frame) unless the newest is one.
        assert_eq!(
            p.pick(5, 4),
            Pick::CatchUp {
                since: 0,
                coalesced: 0
            }
        );
        assert_eq!(p.pick(5, 0), Pick::Newest(UpdateKind::Key));
        p.sent(5);
        assert_eq!(p.pick(5, 4), Pick::Nothing);
        assert_eq!(p.pick(6, 5), Pick::Newest(UpdateKind::Delta));
        // The receiver was slow: 6..9 are folded into one catch-up.
        assert_eq!(
            p.pick(10, 9),
            Pick::CatchUp {
                since: 5,
                coalesced: 4
            }
        );
        assert_eq!(p.pick(10, 0), Pick::Newest(UpdateKind::Key));
    }
}
