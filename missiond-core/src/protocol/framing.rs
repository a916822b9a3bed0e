//! Output framing: how a run's output bytes become `{"type":"data"}` frames on `/pty`.
//!
//! The server assembles data frames from chunks escaped once and shared by every viewer, so
//! the frame's JSON is written by hand here, next to [`super::PtyServerMsg::Data`] whose
//! serialisation it must equal byte for byte.

use bytes::Bytes;

/// A `{"type":"data"}` frame up to its `data` string's content: [`DATA_FRAME_HEAD`], escaped
/// output ([`json_escape`], [`Chunk::json_escaped`]), [`DATA_FRAME_TAIL`].
pub const DATA_FRAME_HEAD: &str = r#"{"type":"data","data":""#;
/// What closes a data frame after its escaped output.
pub const DATA_FRAME_TAIL: &str = "\"}";

/// Output bytes `[start, start + bytes.len())` of a run, shared by every viewer.
#[derive(Debug)]
pub struct Chunk {
    pub start: u64,
    pub bytes: Bytes,
    /// The bytes as the inside of a JSON string, made by the first viewer that needs it:
    /// sixteen viewers cost one escaping, not sixteen.
    escaped: std::sync::OnceLock<String>,
}

impl Chunk {
    pub fn new(start: u64, bytes: Bytes) -> Chunk {
        Chunk {
            start,
            bytes,
            escaped: std::sync::OnceLock::new(),
        }
    }

    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// The chunk as JSON string content (no quotes); chunks end on character boundaries, so
    /// escaped chunks concatenate to the escaping of the whole stream.
    pub fn json_escaped(&self) -> &str {
        self.escaped.get_or_init(|| json_escape(&self.bytes))
    }
}

/// `bytes` (lossily decoded as UTF-8) as the inside of a JSON string.
pub fn json_escape(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut quoted = serde_json::to_string(text.as_ref()).unwrap_or_else(|_| "\"\"".to_string());
    // Drop the quotes in place: no second copy of a 64 KiB frame.
    quoted.pop();
    if !quoted.is_empty() {
        quoted.remove(0);
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escape_is_the_inside_of_a_json_string() {
        assert_eq!(json_escape(b""), "");
        assert_eq!(
            json_escape(b"a\"\x1b[0m\n\xff"),
            "a\\\"\\u001b[0m\\n\u{fffd}"
        );
    }

    #[test]
    fn head_escaped_tail_is_the_data_message() {
        let bytes = "\x1b[1m\"é\"\r\n".as_bytes();
        let frame = format!("{DATA_FRAME_HEAD}{}{DATA_FRAME_TAIL}", json_escape(bytes));
        let expected = super::super::PtyServerMsg::Data {
            data: String::from_utf8(bytes.to_vec()).unwrap(),
        };
        assert_eq!(frame, serde_json::to_string(&expected).unwrap());
    }
}
