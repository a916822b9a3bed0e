//! The asciicast v2 format as missiond writes and reads it: a JSON header line, then one JSON
//! array per event, `[seconds, code, data]` with code `o` (output), `r` (resize, `"COLSxROWS"`)
//! or `m` (marker). See docs/RECORDINGS.md for the marker labels.

use serde::{Deserialize, Serialize};

/// The first line of a `.cast` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub width: u16,
    pub height: u16,
    /// Start of the run, seconds since the Unix epoch.
    pub timestamp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// missiond's own key (players ignore it): which slot and run this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missiond: Option<Origin>,
}

/// Which run of which slot a recording is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    pub slot: String,
    pub run: u64,
    /// Start of the run, milliseconds since the Unix epoch (the header's `timestamp` is seconds).
    #[serde(rename = "startedAt")]
    pub started_at: u64,
}

/// One event after the header.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Output(f64, String),
    Resize(f64, u16, u16),
    Marker(f64, String),
}

impl Event {
    pub fn time(&self) -> f64 {
        match self {
            Event::Output(t, _) | Event::Resize(t, _, _) | Event::Marker(t, _) => *t,
        }
    }
}

/// `t` as the event time: microsecond precision, as asciinema writes it.
pub fn format_time(t: f64) -> String {
    format!("{t:.6}")
}

/// Appends one event line, `[t, "code", "data"]\n`: `data` is JSON-escaped straight into `out`
/// (no copy of it is made: this runs for every chunk of output).
pub fn event_line(out: &mut Vec<u8>, t: f64, code: &str, data: &str) {
    out.push(b'[');
    out.extend_from_slice(format_time(t).as_bytes());
    out.extend_from_slice(b", \"");
    out.extend_from_slice(code.as_bytes());
    out.extend_from_slice(b"\", ");
    if serde_json::to_writer(&mut *out, data).is_err() {
        // Writing a &str into a Vec cannot fail; an empty string keeps the line valid anyway.
        out.extend_from_slice(b"\"\"");
    }
    out.extend_from_slice(b"]\n");
}

/// A parsed recording: the header and every complete event line (a half-written last line,
/// from a run still being written or a crash, is left out).
#[derive(Debug, Clone)]
pub struct Cast {
    pub header: Header,
    pub events: Vec<Event>,
}

/// Parses a `.cast` file's text.
pub fn parse(text: &str) -> Result<Cast, String> {
    let mut lines = text.lines();
    let first = lines.next().ok_or("empty recording")?;
    let header: Header =
        serde_json::from_str(first).map_err(|e| format!("not an asciicast v2 header: {e}"))?;
    if header.version != 2 {
        return Err(format!(
            "asciicast version {} (only 2 is read)",
            header.version
        ));
    }
    let mut events = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let Ok((t, code, data)) = serde_json::from_str::<(f64, String, String)>(line) else {
            continue;
        };
        let event = match code.as_str() {
            "o" => Event::Output(t, data),
            "m" => Event::Marker(t, data),
            "r" => match data
                .split_once('x')
                .and_then(|(c, r)| Some((c.parse().ok()?, r.parse().ok()?)))
            {
                Some((cols, rows)) => Event::Resize(t, cols, rows),
                None => continue,
            },
            _ => continue,
        };
        events.push(event);
    }
    Ok(Cast { header, events })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_parse_back() {
        let mut text = br#"{"version":2,"width":80,"height":24,"timestamp":1}"#.to_vec();
        text.push(b'\n');
        event_line(&mut text, 0.5, "o", "a\"\x1b[0m\n");
        event_line(&mut text, 1.0, "r", "100x30");
        event_line(&mut text, 1.25, "m", "state:idle");
        text.extend_from_slice(b"[2.0, \"o\", \"half a li");
        let cast = parse(std::str::from_utf8(&text).unwrap()).unwrap();
        assert_eq!(cast.header.width, 80);
        assert_eq!(
            cast.events,
            vec![
                Event::Output(0.5, "a\"\x1b[0m\n".into()),
                Event::Resize(1.0, 100, 30),
                Event::Marker(1.25, "state:idle".into()),
            ]
        );
    }

    #[test]
    fn other_versions_and_junk_are_refused() {
        assert!(parse("").is_err());
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"version":1,"width":80,"height":24,"timestamp":1}"#).is_err());
    }
}
