//! zstd frames without their 4-byte magic number. Every compressed payload
//! of an update is one zstd frame whose magic is implied by the record or
//! flag that announces it: four bytes saved per payload, which matters for
//! a one-glyph update of a few dozen bytes.

use zstd::bulk::{Compressor, Decompressor};

/// The magic number that starts every zstd frame (little-endian on the wire).
const MAGIC: [u8; 4] = 0xFD2F_B528u32.to_le_bytes();

/// zstd of `input` without the magic, if strictly smaller than `input`.
/// `scratch` is reused; its output room is capped so incompressible data
/// fails fast instead of being compressed to the end.
pub(crate) fn compress(
    compressor: &mut Compressor<'static>,
    input: &[u8],
    scratch: &mut Vec<u8>,
) -> Option<Vec<u8>> {
    let cap = input.len().checked_sub(1)? + MAGIC.len();
    if scratch.len() < cap {
        scratch.resize(cap, 0);
    }
    let n = compressor
        .compress_to_buffer(input, &mut scratch[..cap])
        .ok()?;
    if n <= MAGIC.len() || scratch[..MAGIC.len()] != MAGIC {
        return None;
    }
    Some(scratch[MAGIC.len()..n].to_vec())
}

/// Decompresses a magic-less frame `z` into exactly `out.len()` bytes;
/// more or fewer is an error. `framed` is reused scratch space.
pub(crate) fn decompress(
    decompressor: &mut Decompressor<'static>,
    framed: &mut Vec<u8>,
    z: &[u8],
    out: &mut [u8],
) -> Result<(), &'static str> {
    match decompress_upto(decompressor, framed, z, out)? {
        n if n == out.len() => Ok(()),
        _ => Err("decompressed data is too short"),
    }
}

/// Decompresses a magic-less frame `z` into at most `out.len()` bytes
/// (more is an error); returns how many.
pub(crate) fn decompress_upto(
    decompressor: &mut Decompressor<'static>,
    framed: &mut Vec<u8>,
    z: &[u8],
    out: &mut [u8],
) -> Result<usize, &'static str> {
    framed.clear();
    framed.extend_from_slice(&MAGIC);
    framed.extend_from_slice(z);
    decompressor
        .decompress_to_buffer(framed.as_slice(), out)
        .map_err(|_| "invalid or oversized zstd data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_exact_size() {
        let mut c = Compressor::new(1).unwrap();
        let mut d = Decompressor::new().unwrap();
        let (mut s, mut f) = (Vec::new(), Vec::new());
        let input = vec![7u8; 1000];
        let z = compress(&mut c, &input, &mut s).unwrap();
        assert!(z.len() < 40);
        let mut out = vec![0u8; 1000];
        decompress(&mut d, &mut f, &z, &mut out).unwrap();
        assert_eq!(out, input);
        assert!(decompress(&mut d, &mut f, &z, &mut [0u8; 999]).is_err());
        assert!(decompress(&mut d, &mut f, &z, &mut [0u8; 1001]).is_err());
        assert!(compress(&mut c, &[1, 2, 3], &mut s).is_none());
    }
}
