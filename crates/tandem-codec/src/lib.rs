//! Tandem's graphics codec: lossless, 64x64 tiles of BGRX pixels.
//!
//! An [`Encoder`] compares each new [`Frame`] with the previous one tile by
//! tile (whole rows first, so an unchanged frame costs one pass of
//! `memcmp`) and emits an [`EncodedUpdate`] holding a [`TileRecord`] per
//! changed tile: a solid colour, a copy of another tile of the previous
//! frame (found by tile hash, verified), zstd of the XOR against the
//! previous content (small edits), zstd of the pixels (replaced or
//! scrolled content), or raw pixels when compression does not pay. Each
//! changed tile is compressed once; which of XOR and plain is tried is
//! decided by counting pixels. Key frames and catch-ups use only
//! self-contained records, served from a lazily filled per-tile cache. A
//! [`Decoder`] applies updates in order and gives back the same pixels, bit
//! for bit.
//!
//! This crate is pure: no I/O, no threads, no async, no clock. Updates read
//! from the network go through [`EncodedUpdate::from_bytes`] and
//! [`Decoder::apply`], which bound their work and never panic.

mod decoder;
mod encoder;
mod error;
mod frame;
mod rect;
mod tile;
mod update;

pub use decoder::Decoder;
pub use encoder::{EncodeStats, Encoder, EncoderConfig};
pub use error::CodecError;
pub use frame::{Frame, MAX_DIMENSION};
pub use rect::Rect;
pub use tile::{tile_grid, TILE_SIZE};
pub use update::{EncodedUpdate, TileKind, TileRecord, UPDATE_MAGIC, UPDATE_VERSION};
