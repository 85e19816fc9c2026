//! An incremental `text/event-stream` parser for MCP answers streamed as Server-Sent Events.

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

/// An incremental `text/event-stream` parser (WHATWG HTML, server-sent events): lines end
/// with LF, CRLF or CR; `data` lines join with LF; a blank line dispatches; `:` starts a
/// comment. Chunks may split lines and UTF-8 sequences anywhere.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF at the start of the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &byte in chunk {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&String::from_utf8_lossy(&line)) {
                        out.push(event);
                    }
                }
                _ => self.line.push(byte),
            }
        }
        out
    }

    fn line_done(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take()?;
            return Some(SseEvent {
                event: self.event.take(),
                data,
                id: self.id.clone(),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        chunks.iter().flat_map(|c| p.push(c)).collect()
    }

    #[test]
    fn sse_events_across_chunks_and_line_endings() {
        let events = parse_all(&[
            b": comment\r\nid: 7\r\nevent: message\r\nda",
            b"ta: {\"a\":\r\ndata: 1}\r\n\r\n",
            b"data: x\rdata: y\r",
            b"\n\ndata:z\n\n",
        ]);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("message".into()),
                    data: "{\"a\":\n1}".into(),
                    id: Some("7".into())
                },
                SseEvent {
                    event: None,
                    data: "x\ny".into(),
                    id: Some("7".into())
                },
                SseEvent {
                    event: None,
                    data: "z".into(),
                    id: Some("7".into())
                },
            ]
        );
    }

    #[test]
    fn sse_priming_event_without_data_is_not_dispatched() {
        assert!(parse_all(&[b"id: 1\nretry: 500\n\n"]).is_empty());
    }

    #[test]
    fn sse_split_utf8_survives() {
        let text = "data: \u{e9}t\u{e9}\n\n".as_bytes();
        let (a, b) = text.split_at(7);
        assert_eq!(parse_all(&[a, b])[0].data, "\u{e9}t\u{e9}");
    }
}
