//! Example-based tests of encoder and decoder behaviour: catch-up caching,
//! damage hints, tile copies, sub-tile records, sequence checks and payload
//! validation.

mod common;

use common::*;
use tandem_codec::{
    CodecError, CopyRect, Decoder, EncodedUpdate, Encoder, EncoderConfig, Frame, Rect,
    SharedStream, TileKind, TileRecord, TILE_SIZE,
};

/// An encoder without content search, for tests of the tile records alone.
fn tiles_only() -> Encoder {
    Encoder::new(EncoderConfig {
        motion_search: false,
        ..EncoderConfig::default()
    })
}

fn text_frame(w: u32, h: u32, seed: u64) -> Frame {
    let mut f = Frame::new(w, h);
    let all = f.bounds();
    draw_text(&mut f, all, seed);
    f
}

#[test]
fn catch_up_reuses_cached_tiles() {
    let mut enc = Encoder::new(EncoderConfig::default());
    let f0 = text_frame(256, 192, 1);
    enc.encode(f0.clone(), None).unwrap();
    // The key frame's records fill the cache for free.
    enc.key_frame().unwrap();
    assert_eq!(enc.cache_fills(), 0);

    let mut f1 = f0.clone();
    f1.set(5, 5, 0xff0000);
    let u = enc.encode(f1.clone(), None).unwrap();
    assert_eq!(u.records.len(), 1);
    // Only the changed pixel is coded.
    assert!(matches!(
        u.records[0].kind,
        TileKind::Pixels(a) | TileKind::Xor(a) if a == Rect::new(5, 5, 1, 1)
    ));

    let c = enc.catch_up(1).unwrap();
    assert_eq!(c.records.len(), 1);
    assert_eq!(enc.cache_fills(), 1);
    enc.catch_up(1).unwrap();
    enc.key_frame().unwrap();
    assert_eq!(
        enc.cache_fills(),
        1,
        "unchanged tiles must come from the cache"
    );

    let mut f2 = f1.clone();
    f2.set(200, 100, 0x00ff00);
    enc.encode(f2, None).unwrap();
    let c = enc.catch_up(1).unwrap();
    assert_eq!(c.records.len(), 2);
    assert_eq!(enc.cache_fills(), 2);
    enc.key_frame().unwrap();
    assert_eq!(enc.cache_fills(), 2);
}

#[test]
fn catch_up_edge_cases() {
    let mut enc = Encoder::new(EncoderConfig::default());
    assert!(enc.catch_up(0).is_none());
    assert!(enc.key_frame().is_none());
    enc.encode(text_frame(100, 100, 1), None).unwrap();
    enc.encode(text_frame(100, 100, 2), None).unwrap();
    assert_eq!(enc.seq(), 2);
    assert!(enc.catch_up(2).is_none());
    assert!(enc.catch_up(0).unwrap().is_key_frame());
    assert!(enc.catch_up(9).unwrap().is_key_frame());
    assert_eq!(enc.catch_up(1).unwrap().base_seq, 1);
    // A size change makes older states unusable.
    enc.encode(text_frame(90, 100, 3), None).unwrap();
    enc.encode(text_frame(90, 100, 4), None).unwrap();
    assert!(enc.catch_up(2).unwrap().is_key_frame());
    assert_eq!(enc.catch_up(3).unwrap().base_seq, 3);
}

#[test]
fn damage_hint_restricts_comparison() {
    let mut enc = Encoder::new(EncoderConfig::default());
    let f0 = Frame::filled(256, 128, 0xffffff);
    enc.encode(f0.clone(), None).unwrap();
    let mut f1 = f0.clone();
    f1.set(10, 10, 1); // tile (0, 0)
    f1.set(200, 100, 2); // tile (3, 1)
    let hint = [Rect::new(0, 0, 20, 20)];
    let u = enc.encode(f1.clone(), Some(&hint)).unwrap();
    let tiles: Vec<_> = u.records.iter().map(|r| (r.tile_x, r.tile_y)).collect();
    assert_eq!(tiles, vec![(0, 0)]);
    assert_eq!(enc.last_stats().tiles_changed, 1);
    // An empty or out-of-frame hint compares nothing.
    let mut f2 = f1.clone();
    f2.set(30, 30, 3);
    assert!(enc.encode(f2.clone(), Some(&[])).is_none());
    assert!(enc.encode(f2, Some(&[Rect::new(500, 500, 9, 9)])).is_none());
    // Without a hint every tile is compared.
    let mut f3 = f1.clone();
    f3.set(255, 127, 4);
    let u = enc.encode(f3, None).unwrap();
    let tiles: Vec<_> = u.records.iter().map(|r| (r.tile_x, r.tile_y)).collect();
    assert_eq!(tiles, vec![(0, 0), (3, 1)]);
}

#[test]
fn moved_tiles_become_copies() {
    let mut enc = tiles_only();
    let mut dec = Decoder::new();
    let f0 = text_frame(256, 256, 7);
    dec.apply(&enc.encode(f0.clone(), None).unwrap()).unwrap();
    // Scroll by exactly one tile row: every tile but the bottom row is a copy.
    let mut f1 = f0.clone();
    Op::ScrollUp(TILE_SIZE).apply(&mut f1);
    let u = enc.encode(f1.clone(), None).unwrap();
    let copies = u
        .records
        .iter()
        .filter(|r| matches!(r.kind, TileKind::CopyTile { .. }))
        .count();
    assert_eq!(copies, 12);
    assert!(u.encoded_len() < 400, "{} bytes", u.encoded_len());
    dec.apply(&u).unwrap();
    assert_eq!(dec.frame(), Some(&f1));
    // With content search the same scroll is one copy-rect and the cleared
    // bottom row of tiles.
    let mut searching = Encoder::new(EncoderConfig::default());
    searching.encode(f0.clone(), None).unwrap();
    let s = searching.encode(f1.clone(), None).unwrap();
    assert_eq!(s.moves.len(), 1, "{:?}", s.moves);
    assert_eq!(s.moves[0].src.y - s.moves[0].dst_y, TILE_SIZE);
    assert!(
        s.encoded_len() <= u.encoded_len(),
        "{} > {}",
        s.encoded_len(),
        u.encoded_len()
    );
    // Swapping two tiles reads both sources from the previous frame.
    let mut f2 = f1.clone();
    let a = f1.crop(Rect::new(0, 0, 64, 64));
    let b = f1.crop(Rect::new(64, 64, 64, 64));
    f2.blit(&a, 64, 64);
    f2.blit(&b, 0, 0);
    let u = enc.encode(f2.clone(), None).unwrap();
    assert!(u
        .records
        .iter()
        .all(|r| matches!(r.kind, TileKind::CopyTile { .. })));
    dec.apply(&u).unwrap();
    assert_eq!(dec.frame(), Some(&f2));
    // Catch-up never uses copies.
    assert!(enc.catch_up(1).unwrap().is_self_contained());
}

#[test]
fn noise_falls_back_to_raw() {
    let mut enc = Encoder::new(EncoderConfig::default());
    let mut f = Frame::new(64, 64);
    Op::Noise(f.bounds(), 3).apply(&mut f);
    let u = enc.encode(f, None).unwrap();
    assert!(matches!(u.records[0].kind, TileKind::Raw(ref b) if b.len() == 64 * 64 * 4));
    let stats = enc.last_stats();
    assert_eq!((stats.tiles_total, stats.tiles_changed), (1, 1));
    assert_eq!(stats.raw_bytes, 64 * 64 * 4);
    assert_eq!(stats.encoded_bytes, u.encoded_len() as u64);
}

#[test]
fn base_mismatch_leaves_decoder_unchanged() {
    let mut enc = Encoder::new(EncoderConfig::default());
    let mut dec = Decoder::new();
    let f0 = text_frame(128, 128, 1);
    let key = enc.encode(f0.clone(), None).unwrap();
    let u2 = enc.encode(text_frame(128, 128, 2), None).unwrap();
    let u3 = enc.encode(text_frame(128, 128, 3), None).unwrap();
    assert_eq!(dec.apply(&u2), Err(CodecError::NeedKeyFrame));
    dec.apply(&key).unwrap();
    assert_eq!(
        dec.apply(&u3),
        Err(CodecError::BaseMismatch {
            expected: 1,
            found: 2
        })
    );
    assert_eq!(dec.seq(), 1);
    assert_eq!(dec.frame(), Some(&f0));
    let mut wrong_size = u2.clone();
    wrong_size.width = 129;
    assert!(matches!(
        dec.apply(&wrong_size),
        Err(CodecError::SizeMismatch { .. })
    ));
    dec.apply(&u2).unwrap();
    dec.apply(&u3).unwrap();
    assert_eq!(dec.frame(), enc.current_frame());
}

/// The Raw bytes of one tile of `f`.
fn raw_tile(f: &Frame, tx: u32, ty: u32) -> Vec<u8> {
    let c = f.crop(Rect::new(
        tx * TILE_SIZE,
        ty * TILE_SIZE,
        TILE_SIZE,
        TILE_SIZE,
    ));
    c.pixels().iter().flat_map(|p| p.to_le_bytes()).collect()
}

/// zstd of `data` without its 4-byte magic, as updates carry it.
fn magicless(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 1).unwrap()[4..].to_vec()
}

#[test]
fn bad_payload_after_good_records_changes_nothing() {
    let mut enc = Encoder::new(EncoderConfig::default());
    let mut dec = Decoder::new();
    let f0 = text_frame(192, 64, 1);
    dec.apply(&enc.encode(f0.clone(), None).unwrap()).unwrap();
    let f1 = text_frame(192, 64, 2);
    let u = enc.encode(f1.clone(), None).unwrap();
    assert_eq!(u.records.len(), 3);
    assert!(u.stream.compressed);
    // A shared stream that decompresses to the wrong length, or is not zstd.
    let mut bad = u.clone();
    bad.stream.data = magicless(&[0u8; 100]);
    assert!(matches!(dec.apply(&bad), Err(CodecError::BadStream { .. })));
    bad.stream.data = vec![1, 2, 3, 4];
    assert!(matches!(dec.apply(&bad), Err(CodecError::BadStream { .. })));
    // Good self-contained records, then a bad one.
    let mut bad = u.clone();
    bad.stream = SharedStream::default();
    bad.records[0].kind = TileKind::Raw(raw_tile(&f1, 0, 0));
    bad.records[1].kind = TileKind::Zstd(magicless(&raw_tile(&f1, 1, 0)));
    bad.records[2].kind = TileKind::Zstd(magicless(&[0u8; 100]));
    assert!(matches!(
        dec.apply(&bad),
        Err(CodecError::BadPayload { .. })
    ));
    bad.records[2].kind = TileKind::Zstd(vec![1, 2, 3, 4]);
    assert!(matches!(
        dec.apply(&bad),
        Err(CodecError::BadPayload { .. })
    ));
    // Too long: more than the tile's bytes.
    bad.records[2].kind = TileKind::Zstd(magicless(&[0u8; 64 * 64 * 4 + 4]));
    assert!(matches!(
        dec.apply(&bad),
        Err(CodecError::BadPayload { .. })
    ));
    assert_eq!(dec.frame(), Some(&f0));
    assert_eq!(dec.seq(), 1);
    // The repaired update applies.
    bad.records[2].kind = TileKind::Zstd(magicless(&raw_tile(&f1, 2, 0)));
    dec.apply(&bad).unwrap();
    assert_eq!(dec.frame(), Some(&f1));
    dec.apply(&enc.catch_up(0).unwrap()).unwrap();
    assert_eq!(dec.frame(), Some(&f1));
}

#[test]
fn key_frames_must_be_complete_and_self_contained() {
    let mut dec = Decoder::new();
    let mut key = EncodedUpdate {
        seq: 1,
        base_seq: 0,
        width: 100,
        height: 10,
        moves: vec![],
        records: vec![TileRecord {
            tile_x: 0,
            tile_y: 0,
            kind: TileKind::Solid(5),
        }],
        stream: SharedStream::default(),
    };
    assert_eq!(
        dec.apply(&key),
        Err(CodecError::IncompleteKeyFrame { missing: 1 })
    );
    key.records.push(TileRecord {
        tile_x: 1,
        tile_y: 0,
        kind: TileKind::CopyTile { src_x: 0, src_y: 0 },
    });
    assert!(matches!(
        dec.apply(&key),
        Err(CodecError::NotSelfContained { .. })
    ));
    // Pixels from the shared stream are not for key frames either.
    key.records[1].kind = TileKind::Pixels(Rect::new(0, 0, 36, 10));
    key.stream.data = vec![0; 36 * 10 * 4];
    assert!(matches!(
        dec.apply(&key),
        Err(CodecError::NotSelfContained { .. })
    ));
    key.stream = SharedStream::default();
    key.records[1].kind = TileKind::Solid(6);
    // Nor copy-rects.
    key.moves.push(CopyRect {
        src: Rect::new(0, 0, 5, 5),
        dst_x: 1,
        dst_y: 1,
    });
    assert_eq!(dec.apply(&key), Err(CodecError::MovesInKeyFrame));
    key.moves.clear();
    dec.apply(&key).unwrap();
    assert_eq!(dec.frame().unwrap().get(99, 9), 6);
    key.seq = 0;
    assert!(matches!(dec.apply(&key), Err(CodecError::BadSeq { .. })));
}

#[test]
fn oversized_dimensions_are_rejected() {
    let u = EncodedUpdate {
        seq: 1,
        base_seq: 0,
        width: 16385,
        height: 1,
        moves: vec![],
        records: vec![],
        stream: SharedStream::default(),
    };
    assert!(matches!(
        EncodedUpdate::from_bytes(&u.to_bytes()),
        Err(CodecError::BadDimensions { .. })
    ));
    assert!(matches!(
        Decoder::new().apply(&u),
        Err(CodecError::BadDimensions { .. })
    ));
}

#[test]
fn replaced_content_is_coded_as_pixels() {
    let mut enc = tiles_only();
    let mut dec = Decoder::new();
    let f0 = text_frame(256, 256, 1);
    dec.apply(&enc.encode(f0.clone(), None).unwrap()).unwrap();
    // Without motion, scrolling by a non-tile amount replaces every tile's
    // content: new pixels are chosen (for nearly every tile: the choice is
    // a pixel-count estimate), all in the update's one shared stream.
    let mut f1 = f0.clone();
    Op::ScrollUp(12).apply(&mut f1);
    let u = enc.encode(f1.clone(), None).unwrap();
    let dependent = u
        .records
        .iter()
        .filter(|r| matches!(r.kind, TileKind::Xor(_) | TileKind::CopyTile { .. }))
        .count();
    assert!(dependent <= 2, "{dependent} of {} tiles", u.records.len());
    assert!(u.stream.compressed && u.stream.packed24);
    dec.apply(&u).unwrap();
    assert_eq!(dec.frame(), Some(&f1));
    // The catch-up cache is filled lazily, once per non-solid tile.
    let solid = u
        .records
        .iter()
        .filter(|r| matches!(r.kind, TileKind::Solid(_)))
        .count();
    let c = enc.catch_up(1).unwrap();
    assert!(c.is_self_contained());
    assert_eq!(enc.cache_fills(), (u.records.len() - solid) as u64);
    enc.catch_up(1).unwrap();
    assert_eq!(enc.cache_fills(), (u.records.len() - solid) as u64);
}

#[test]
fn bad_palette_streams_change_nothing() {
    let mut enc = Encoder::new(EncoderConfig::default());
    let mut dec = Decoder::new();
    let f0 = Frame::filled(128, 64, 0xffffff);
    dec.apply(&enc.encode(f0.clone(), None).unwrap()).unwrap();
    let mut f1 = f0.clone();
    f1.fill_rect(Rect::new(3, 3, 10, 4), 0x202020);
    f1.set(5, 5, 0x808080);
    let u = enc.encode(f1.clone(), None).unwrap();
    assert!(u.stream.palette, "{:?}", u.stream);
    // The same values, uncompressed: one count byte, three colours, 40 indices.
    let mut plain = u.clone();
    let mut data = vec![2u8];
    for c in [0x202020u32, 0x808080, 0xffffff] {
        data.extend_from_slice(&c.to_le_bytes()[..3]);
    }
    data.extend((0..40).map(|i| u8::from(i == 22)));
    plain.stream.compressed = false;
    plain.stream.data = data.clone();
    let mut dec2 = Decoder::new();
    dec2.apply(&enc.catch_up(0).unwrap()).unwrap();
    // An index past the palette, a count that does not match the length.
    let mut bad = plain.clone();
    bad.stream.data[10 + 3] = 3;
    assert!(matches!(dec.apply(&bad), Err(CodecError::BadStream { .. })));
    bad.stream.data = data.clone();
    bad.stream.data[0] = 3;
    assert!(matches!(dec.apply(&bad), Err(CodecError::BadStream { .. })));
    // Compressed, the same checks apply after decompression.
    bad.stream.compressed = true;
    bad.stream.data = zstd::bulk::compress(&bad.stream.data.clone(), 1).unwrap()[4..].to_vec();
    assert!(matches!(dec.apply(&bad), Err(CodecError::BadStream { .. })));
    assert_eq!((dec.seq(), dec.frame()), (1, Some(&f0)));
    assert_eq!(u.records.len(), 1);
    assert_eq!(u.records[0].kind, TileKind::Pixels(Rect::new(3, 3, 10, 4)));
    dec.apply(&plain).unwrap();
    assert_eq!(dec.frame(), Some(&f1));
}
