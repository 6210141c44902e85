//! PNG snapshots of a decoded frame (RGBA, 8 bits per channel), and reading
//! them back for comparisons.

use std::path::Path;

use tandem_codec::Frame;

use crate::ViewerError;

/// Writes a frame as an RGBA PNG.
pub fn write_png(frame: &Frame, path: &Path) -> Result<(), ViewerError> {
    let err = |detail: String| ViewerError::Snapshot {
        path: path.display().to_string(),
        detail,
    };
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let mut encoder =
        png::Encoder::new(std::io::BufWriter::new(file), frame.width(), frame.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| err(e.to_string()))?;
    writer
        .write_image_data(&frame.to_rgba8())
        .map_err(|e| err(e.to_string()))?;
    writer.finish().map_err(|e| err(e.to_string()))
}

/// Reads an RGBA or RGB 8-bit PNG into a frame.
pub fn read_png(path: &Path) -> Result<Frame, ViewerError> {
    let err = |detail: String| ViewerError::Snapshot {
        path: path.display().to_string(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .map_err(|e| err(e.to_string()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| err(e.to_string()))?;
    let data = &buf[..info.buffer_size()];
    let rgba: Vec<u8> = match info.color_type {
        png::ColorType::Rgba => data.to_vec(),
        png::ColorType::Rgb => data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => return Err(err(format!("unsupported colour type {other:?}"))),
    };
    Frame::from_rgba8(info.width, info.height, &rgba).map_err(|e| err(e.to_string()))
}
