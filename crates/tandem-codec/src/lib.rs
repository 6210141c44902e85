//! Tandem's graphics codec: lossless, 64x64 tiles of BGRX pixels, with
//! copy-rects for moved and scrolled content.
//!
//! An [`Encoder`] turns each new [`Frame`] into an [`EncodedUpdate`]
//! against the previous one:
//! 1. **Copy-rects** ([`CopyRect`]): rectangles of the attendee's picture
//!    moved by any offset (a window dragged, text scrolled inside a
//!    terminal or a browser). Hints from the source
//!    ([`Encoder::encode_with_moves`]) and a bounded content search (row
//!    hashes voting for a vertical offset, then a row segment looked for
//!    nearby for a 2D move) propose them; every one is verified on the
//!    pixels, so a wrong hint costs bytes, never correctness.
//! 2. **Tile records** against the picture with the copy-rects applied
//!    (tiles compared whole rows first, so an unchanged frame costs one pass
//!    of `memcmp`): a solid colour, a copy of another tile (found by tile
//!    hash, verified), or only the changed sub-rectangle of the tile as new
//!    pixels or as XOR against what the attendee has.
//! 3. **One shared stream**: the pixel and XOR values of every record of
//!    the update, in one zstd frame (3 bytes a value when the top bytes are
//!    all zero, a palette of index bytes when there are at most 256
//!    colours), so a glyph repeated across tiles is coded once.
//!
//! The header is varints, so a one-glyph update is a few dozen bytes. Key
//! frames and catch-ups carry no copy-rects and only self-contained
//! whole-tile records (Solid, Raw, Zstd), served from a lazily filled
//! per-tile cache. A [`Decoder`] applies updates in order and gives back the
//! same pixels, bit for bit.
//!
//! This crate is pure: no I/O, no threads, no async, no clock. Updates read
//! from the network go through [`EncodedUpdate::from_bytes`] and
//! [`Decoder::apply`], which bound their work (at most [`MAX_MOVES`]
//! copy-rects, decompression capped at exactly what the records declare,
//! at most one frame of pixels) and never panic.

mod decoder;
mod encoder;
mod error;
mod frame;
mod motion;
mod rect;
mod tile;
mod update;
mod zst;

pub use decoder::Decoder;
#[doc(hidden)]
pub use encoder::{changed_tiles, search_moves};
pub use encoder::{EncodeStats, Encoder, EncoderConfig};
pub use error::CodecError;
pub use frame::{Frame, MAX_DIMENSION};
pub use rect::{CopyRect, Rect, MAX_MOVES};
pub use tile::{tile_grid, TILE_SIZE};
pub use update::{EncodedUpdate, SharedStream, TileKind, TileRecord, UPDATE_MAGIC, UPDATE_VERSION};
