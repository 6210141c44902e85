//! Property tests: encode then decode gives the source frames bit for bit,
//! also through the wire format, catch-ups and key frames, with moved and
//! scrolled rectangles, right and wrong hints.

mod common;

use common::*;
use proptest::prelude::*;
use tandem_codec::{Decoder, EncodedUpdate, Encoder, EncoderConfig, Frame};

fn through_wire(u: &EncodedUpdate) -> EncodedUpdate {
    let bytes = u.to_bytes();
    assert_eq!(bytes.len(), u.encoded_len());
    let back = EncodedUpdate::from_bytes(&bytes).expect("own updates parse");
    assert_eq!(&back, u);
    back
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn decoded_frames_match_sources(
        (w, h, seed) in initial(),
        steps in prop::collection::vec(step(), 1..8),
    ) {
        let mut enc = Encoder::new(EncoderConfig::default());
        let mut dec = Decoder::new();
        let mut cur = start_frame(w, h, seed);
        let first = enc.encode(cur.clone(), None).expect("first frame gives an update");
        prop_assert!(first.is_key_frame() && first.is_self_contained());
        dec.apply(&through_wire(&first)).unwrap();
        prop_assert_eq!(dec.frame(), Some(&cur));
        for (ops, use_damage) in &steps {
            let (next, damage) = next_frame(&cur, ops, *use_damage);
            let resized = (next.width(), next.height()) != (cur.width(), cur.height());
            let before = enc.seq();
            match enc.encode(next.clone(), damage.as_deref()) {
                Some(u) => {
                    prop_assert_eq!(u.seq, before + 1);
                    prop_assert_eq!(u.is_key_frame(), resized);
                    if !resized {
                        prop_assert_eq!(u.base_seq, before);
                    }
                    prop_assert_eq!(enc.last_stats().tiles_changed as usize, u.records.len());
                    dec.apply(&through_wire(&u)).unwrap();
                }
                None => {
                    prop_assert!(!resized);
                    prop_assert_eq!(enc.seq(), before);
                    prop_assert_eq!(enc.last_stats().tiles_changed, 0);
                }
            }
            prop_assert_eq!(dec.seq(), enc.seq());
            prop_assert_eq!(dec.frame(), Some(&next));
            prop_assert_eq!(enc.current_frame(), Some(&next));
            cur = next;
        }
    }

    #[test]
    fn lagging_decoders_catch_up(
        (w, h, seed) in initial(),
        steps in prop::collection::vec((step(), any::<bool>(), any::<bool>()), 1..8),
    ) {
        let mut enc = Encoder::new(EncoderConfig::default());
        let mut live = Decoder::new();
        let mut lagging = Decoder::new();
        let mut cur = start_frame(w, h, seed);
        // The lagging decoder may even miss the first key frame.
        live.apply(&enc.encode(cur.clone(), None).unwrap()).unwrap();
        for ((ops, use_damage), receives, catches_up) in &steps {
            let (next, damage) = next_frame(&cur, ops, *use_damage);
            if let Some(u) = enc.encode(next.clone(), damage.as_deref()) {
                live.apply(&u).unwrap();
                if *receives && lagging.seq() == u.base_seq && lagging.seq() != 0 {
                    lagging.apply(&u).unwrap();
                }
            }
            if *catches_up {
                if let Some(c) = enc.catch_up(lagging.seq()) {
                    prop_assert!(c.is_self_contained());
                    prop_assert_eq!(c.seq, enc.seq());
                    lagging.apply(&through_wire(&c)).unwrap();
                    prop_assert_eq!(lagging.frame(), Some(&next));
                }
            }
            cur = next;
        }
        if let Some(c) = enc.catch_up(lagging.seq()) {
            prop_assert!(c.is_self_contained());
            lagging.apply(&c).unwrap();
        }
        prop_assert_eq!(lagging.seq(), enc.seq());
        prop_assert_eq!(lagging.frame(), Some(&cur));
        prop_assert_eq!(live.frame(), Some(&cur));

        let key = enc.key_frame().unwrap();
        prop_assert!(key.is_key_frame() && key.is_self_contained());
        let mut fresh = Decoder::new();
        fresh.apply(&through_wire(&key)).unwrap();
        prop_assert_eq!(fresh.frame(), Some(&cur));
        prop_assert_eq!(fresh.seq(), enc.seq());
        // A stale decoder that gets the key frame jumps to the present too.
        let mut stale = Decoder::new();
        stale.apply(&key).unwrap();
        prop_assert_eq!(stale.frame(), live.frame());
    }

    #[test]
    fn moves_and_hints_decode_exactly(
        (w, h, seed) in initial(),
        steps in prop::collection::vec(
            (step(), prop::collection::vec(junk_hint(), 0..3), any::<bool>(), any::<bool>()),
            1..8,
        ),
    ) {
        let mut enc = Encoder::new(EncoderConfig::default());
        let mut live = Decoder::new();
        let mut lagging = Decoder::new();
        let mut cur = start_frame(w, h, seed);
        let key = enc.encode(cur.clone(), None).unwrap();
        live.apply(&through_wire(&key)).unwrap();
        lagging.apply(&key).unwrap();
        for ((ops, use_damage), junk, right_hints, catches_up) in &steps {
            let (next, damage, mut hints) = next_frame_with_hints(&cur, ops, *use_damage);
            if !*right_hints {
                hints.clear();
            }
            hints.extend(junk.iter().copied());
            if let Some(u) = enc.encode_with_moves(next.clone(), damage.as_deref(), &hints) {
                prop_assert!(u.moves.len() <= tandem_codec::MAX_MOVES);
                prop_assert!(!u.is_key_frame() || u.moves.is_empty());
                prop_assert_eq!(enc.last_stats().moves as usize, u.moves.len());
                live.apply(&through_wire(&u)).unwrap();
            }
            prop_assert_eq!(live.frame(), Some(&next));
            prop_assert_eq!(live.seq(), enc.seq());
            if *catches_up {
                if let Some(c) = enc.catch_up(lagging.seq()) {
                    prop_assert!(c.is_self_contained());
                    lagging.apply(&through_wire(&c)).unwrap();
                }
                prop_assert_eq!(lagging.frame(), Some(&next));
            }
            cur = next;
        }
        let key = enc.key_frame().unwrap();
        prop_assert!(key.is_self_contained());
        let mut fresh = Decoder::new();
        fresh.apply(&through_wire(&key)).unwrap();
        prop_assert_eq!(fresh.frame(), Some(&cur));
    }

    #[test]
    fn from_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = EncodedUpdate::from_bytes(&bytes);
    }

    #[test]
    fn corrupted_updates_fail_cleanly(
        (w, h, seed) in initial(),
        ops in prop::collection::vec(op(), 1..3),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut enc = Encoder::new(EncoderConfig::default());
        let mut dec = Decoder::new();
        let cur = start_frame(w, h, seed);
        let key = enc.encode(cur.clone(), None).unwrap();
        let (next, _) = next_frame(&cur, &ops, false);
        for u in [Some(key.clone()), enc.encode(next, None)].into_iter().flatten() {
            let mut bytes = u.to_bytes();
            for (i, v) in &flips {
                let i = i.index(bytes.len());
                bytes[i] ^= v | 1;
            }
            let before = (dec.seq(), dec.frame().cloned());
            if let Ok(bad) = EncodedUpdate::from_bytes(&bytes) {
                if dec.apply(&bad).is_err() {
                    prop_assert_eq!((dec.seq(), dec.frame().cloned()), before);
                }
            }
            dec = Decoder::new();
            dec.apply(&key).unwrap();
        }
    }
}

#[test]
fn tiny_and_empty_frames() {
    for (w, h) in [(0, 0), (0, 5), (1, 1), (65, 63), (64, 64)] {
        let mut enc = Encoder::new(EncoderConfig::default());
        let mut dec = Decoder::new();
        let f = Frame::filled(w, h, 0x123456);
        let u = enc.encode(f.clone(), None).unwrap();
        dec.apply(&through_wire(&u)).unwrap();
        assert_eq!(dec.frame(), Some(&f));
        assert!(enc.encode(f.clone(), None).is_none());
    }
}

#[test]
fn encoder_and_decoder_are_send() {
    fn send<T: Send>() {}
    send::<Encoder>();
    send::<Decoder>();
}
