//! Splitting a streamed HTTP body into NDJSON lines, whatever the chunk boundaries.
//!
//! The network cuts a reply wherever it likes: in the middle of a line, of a
//! JSON string, or of a multi-byte UTF-8 character. Bytes are kept until their
//! line is complete, so a line is only ever parsed whole.

/// Longest line accepted (Ollama's longest lines carry a `context` array of a
/// whole conversation's tokens, far below this). Bounds memory when a server
/// or a proxy sends something that is not NDJSON.
pub(crate) const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// A line went on past [`MAX_LINE_BYTES`] without a newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineTooLong {
    /// How many bytes of the line had arrived.
    pub(crate) bytes: usize,
}

/// Buffers body chunks and hands out complete lines.
#[derive(Debug)]
pub(crate) struct LineDecoder {
    buffer: Vec<u8>,
    /// Start of the first line not yet handed out.
    start: usize,
    /// Bytes before this offset are known to hold no newline.
    scanned: usize,
    max_line_bytes: usize,
}

impl LineDecoder {
    /// A decoder that refuses lines longer than `max_line_bytes`.
    pub(crate) fn new(max_line_bytes: usize) -> LineDecoder {
        LineDecoder {
            buffer: Vec::new(),
            start: 0,
            scanned: 0,
            max_line_bytes,
        }
    }

    /// Adds the next chunk of the body.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete, non-blank line, without its line ending.
    ///
    /// `Ok(None)` means the rest of the line has not arrived yet.
    pub(crate) fn next_line(&mut self) -> Result<Option<&[u8]>, LineTooLong> {
        loop {
            let Some(offset) = self.buffer[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = self.buffer.len();
                let pending = self.buffer.len() - self.start;
                if pending > self.max_line_bytes {
                    return Err(LineTooLong { bytes: pending });
                }
                return Ok(None);
            };
            let end = self.scanned + offset;
            let line_start = self.start;
            self.start = end + 1;
            self.scanned = self.start;
            if end - line_start > self.max_line_bytes {
                return Err(LineTooLong {
                    bytes: end - line_start,
                });
            }
            let line = self.buffer[line_start..end].trim_ascii();
            if !line.is_empty() {
                return Ok(Some(line));
            }
        }
    }

    /// What is left once the body has ended: a last line without a newline,
    /// if there is one.
    pub(crate) fn finish(&mut self) -> Option<&[u8]> {
        let rest = self.buffer[self.start..].trim_ascii();
        self.start = self.buffer.len();
        self.scanned = self.start;
        (!rest.is_empty()).then_some(rest)
    }
}

#[cfg(test)]
mod tests;
