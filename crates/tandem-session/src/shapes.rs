//! Which pointer images a receiver already has.

use std::collections::VecDeque;

/// Shapes remembered per receiver; an older one is sent again when it comes
/// back (pointers cycle among a handful, so this is rarely reached).
pub const MAX_SHAPES_REMEMBERED: usize = 32;

/// The ids of the pointer images one receiver (an attendee, a relay link)
/// has been sent, newest last, at most [`MAX_SHAPES_REMEMBERED`].
#[derive(Clone, Debug, Default)]
pub struct ShapeMemory {
    ids: VecDeque<u32>,
}

impl ShapeMemory {
    /// Nothing sent yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the receiver has shape `id`.
    pub fn has(&self, id: u32) -> bool {
        self.ids.contains(&id)
    }

    /// Notes that shape `id` is about to be sent; `false` (and nothing
    /// changes) when the receiver has it already. The oldest is forgotten
    /// when the memory is full.
    pub fn remember(&mut self, id: u32) -> bool {
        if self.has(id) {
            return false;
        }
        if self.ids.len() == MAX_SHAPES_REMEMBERED {
            self.ids.pop_front();
        }
        self.ids.push_back(id);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_is_sent_once_while_remembered_and_again_once_forgotten() {
        let mut m = ShapeMemory::new();
        assert!(m.remember(7));
        assert!(!m.remember(7));
        for id in 100..100 + MAX_SHAPES_REMEMBERED as u32 {
            assert!(m.remember(id));
        }
        // 7 was the oldest: forgotten, so it is sent again.
        assert!(!m.has(7));
        assert!(m.remember(7));
        assert!(!m.remember(7));
    }
}
