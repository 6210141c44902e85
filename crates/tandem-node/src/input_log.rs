//! An input sink that appends every injected event to a file as JSON lines.
//!
//! The synthetic desktop has no real input; this sink lets a test (in another
//! process) see exactly which input events reached the session's sink.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use tandem_capture::{CaptureError, InputSink};
use tandem_proto::InputEvent;

/// The sink.
pub struct InputLogSink {
    file: File,
}

impl InputLogSink {
    /// Creates (or appends to) `path`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self { file })
    }

    fn write(&mut self, line: String) -> Result<(), CaptureError> {
        writeln!(self.file, "{line}")
            .and_then(|_| self.file.flush())
            .map_err(|e| CaptureError::Input {
                detail: format!("input log: {e}"),
            })
    }
}

impl InputSink for InputLogSink {
    fn inject(&mut self, event: &InputEvent) -> Result<(), CaptureError> {
        let line = serde_json::to_string(event).map_err(|e| CaptureError::Input {
            detail: format!("input log: {e}"),
        })?;
        self.write(line)
    }

    fn release_all(&mut self) -> Result<(), CaptureError> {
        self.write("\"ReleaseAll\"".to_owned())
    }
}
