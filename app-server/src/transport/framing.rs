use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// How messages are delimited on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON message per line (`\n`, optional `\r`).
    Lines,
    /// `Content-Length: N` header block, blank line, N bytes of JSON.
    ContentLength,
}

/// One unit read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// The bytes of one message (not yet parsed as JSON).
    Message(Vec<u8>),
    /// A message larger than the limit was skipped.
    TooLarge { size: usize },
    /// A header block that cannot be understood; the reader resynchronised after it.
    BadHeader(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("reading the input stream failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the input stream ended in the middle of a message")]
    UnexpectedEof,
}

/// Reads framed messages from a buffered byte stream.
pub struct MessageReader<R> {
    reader: R,
    framing: Option<Framing>,
    max_bytes: usize,
}

const HEADER_LINE_LIMIT: usize = 8 * 1024;

impl<R: AsyncBufRead + Unpin> MessageReader<R> {
    pub fn new(reader: R, max_bytes: usize) -> Self {
        Self {
            reader,
            framing: None,
            max_bytes,
        }
    }

    /// The framing detected from the first message, once known.
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// The next message, or `None` at a clean end of stream.
    pub async fn next(&mut self) -> Result<Option<Incoming>, TransportError> {
        loop {
            let item = match self.framing {
                Some(Framing::Lines) => self.next_line().await?,
                Some(Framing::ContentLength) => self.next_content_length(None).await?,
                None => self.first().await?,
            };
            match item {
                Some(Incoming::Message(bytes)) if bytes.iter().all(u8::is_ascii_whitespace) => {
                    continue;
                }
                other => return Ok(other),
            }
        }
    }

    /// Reads the first non-blank line and chooses the framing from it: a header block
    /// only when the line is a `Content-Length:` (or `Content-Type:`) header, in any case;
    /// anything else, JSON or not, makes the connection line-delimited, so a typo on the
    /// first line is answered as a parse error and the next line is read as usual.
    async fn first(&mut self) -> Result<Option<Incoming>, TransportError> {
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                return Ok(None);
            }
            let blank = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            if blank == 0 {
                break;
            }
            self.reader.consume(blank);
        }
        let limit = self.max_bytes.max(HEADER_LINE_LIMIT);
        let (line, total, newline) = self.read_line_bounded(limit).await?;
        if is_header_line(&line) {
            self.framing = Some(Framing::ContentLength);
            if !newline {
                return Err(TransportError::UnexpectedEof);
            }
            return self.next_content_length(Some((line, total))).await;
        }
        self.framing = Some(Framing::Lines);
        if total > self.max_bytes {
            return Ok(Some(Incoming::TooLarge { size: total }));
        }
        Ok(Some(Incoming::Message(line)))
    }

    /// Reads up to and including `\n`, keeping at most `limit` bytes. Returns the kept
    /// bytes, the total length and whether a newline ended it (false at EOF).
    async fn read_line_bounded(
        &mut self,
        limit: usize,
    ) -> Result<(Vec<u8>, usize, bool), TransportError> {
        let mut kept = Vec::new();
        let mut total = 0usize;
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                return Ok((kept, total, false));
            }
            let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            if total + chunk.len() <= limit {
                kept.extend_from_slice(chunk);
            }
            total += chunk.len();
            let consumed = done.unwrap_or(chunk.len());
            self.reader.consume(consumed);
            if done.is_some() {
                if kept.last() == Some(&b'\r') {
                    kept.pop();
                }
                return Ok((kept, total, true));
            }
        }
    }

    async fn next_line(&mut self) -> Result<Option<Incoming>, TransportError> {
        let (line, total, _newline) = self.read_line_bounded(self.max_bytes).await?;
        if total == 0 && line.is_empty() {
            // Either EOF or an empty line: check which.
            if self.reader.fill_buf().await?.is_empty() {
                return Ok(None);
            }
            return Ok(Some(Incoming::Message(Vec::new())));
        }
        if total > self.max_bytes {
            return Ok(Some(Incoming::TooLarge { size: total }));
        }
        Ok(Some(Incoming::Message(line)))
    }

    /// Reads one header block and its body; `first` is a header line already read.
    async fn next_content_length(
        &mut self,
        mut first: Option<(Vec<u8>, usize)>,
    ) -> Result<Option<Incoming>, TransportError> {
        let mut length: Option<usize> = None;
        let mut bad: Option<String> = None;
        let mut saw_header = false;
        loop {
            let (line, total, newline) = match first.take() {
                Some((line, total)) => (line, total, true),
                None => self.read_line_bounded(HEADER_LINE_LIMIT).await?,
            };
            if !newline {
                if !saw_header && total == 0 {
                    return Ok(None);
                }
                return Err(TransportError::UnexpectedEof);
            }
            if line.is_empty() {
                if !saw_header {
                    continue; // blank lines between messages
                }
                break;
            }
            saw_header = true;
            if total > HEADER_LINE_LIMIT {
                bad.get_or_insert_with(|| "a header line is too long".to_string());
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            let Some((name, value)) = text.split_once(':') else {
                bad.get_or_insert_with(|| format!("malformed header line {text:?}"));
                continue;
            };
            if name.trim().eq_ignore_ascii_case("content-length") {
                match value.trim().parse::<usize>() {
                    Ok(n) => length = Some(n),
                    Err(_) => {
                        bad.get_or_insert_with(|| {
                            format!("Content-Length {:?} is not a number", value.trim())
                        });
                    }
                }
            }
        }
        let Some(length) = length else {
            return Ok(Some(Incoming::BadHeader(bad.unwrap_or_else(|| {
                "the header block has no Content-Length".to_string()
            }))));
        };
        if length > self.max_bytes {
            self.skip(length).await?;
            return Ok(Some(Incoming::TooLarge { size: length }));
        }
        let mut body = vec![0u8; length];
        tokio::io::AsyncReadExt::read_exact(&mut self.reader, &mut body)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => TransportError::UnexpectedEof,
                _ => TransportError::Io(e),
            })?;
        if let Some(reason) = bad {
            return Ok(Some(Incoming::BadHeader(reason)));
        }
        Ok(Some(Incoming::Message(body)))
    }

    async fn skip(&mut self, mut n: usize) -> Result<(), TransportError> {
        while n > 0 {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                return Err(TransportError::UnexpectedEof);
            }
            let take = buf.len().min(n);
            self.reader.consume(take);
            n -= take;
        }
        Ok(())
    }
}

/// Whether a first line opens a header block: `Content-Length:` or `Content-Type:`, the
/// two header names of base-protocol framing, in any case.
fn is_header_line(line: &[u8]) -> bool {
    ["content-length:", "content-type:"].iter().any(|name| {
        line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
    })
}

/// Writes one message in the given framing and flushes.
pub async fn write_message<W: AsyncWrite + Unpin>(
    writer: &mut W,
    framing: Framing,
    json: &[u8],
) -> std::io::Result<()> {
    write_frame(writer, framing, json).await?;
    writer.flush().await
}

/// Writes one message in the given framing without flushing (for a buffered writer that
/// flushes when it runs out of messages).
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    framing: Framing,
    json: &[u8],
) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(json.len() + 32);
    encode_frame(&mut frame, framing, json);
    writer.write_all(&frame).await
}

/// Appends one message in the given framing to `out` (a writer that sends several
/// messages with one write).
pub(crate) fn encode_frame(out: &mut Vec<u8>, framing: Framing, json: &[u8]) {
    match framing {
        Framing::Lines => {
            out.extend_from_slice(json);
            out.push(b'\n');
        }
        Framing::ContentLength => {
            use std::io::Write as _;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "Content-Length: {}\r\n\r\n", json.len());
            out.extend_from_slice(json);
        }
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncWriteExt, BufReader, duplex};

    async fn read_all(input: &[u8], max: usize) -> (Vec<Incoming>, Option<Framing>) {
        let mut reader = MessageReader::new(BufReader::new(input), max);
        let mut out = Vec::new();
        while let Some(item) = reader.next().await.unwrap() {
            out.push(item);
        }
        (out, reader.framing())
    }

    fn msg(s: &str) -> Incoming {
        Incoming::Message(s.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn lines_framing_splits_messages_and_skips_blank_lines() {
        let (items, framing) = read_all(b"{\"a\":1}\n\n  \r\n{\"b\":2}\r\n{\"c\":3}", 1024).await;
        assert_eq!(framing, Some(Framing::Lines));
        assert_eq!(
            items,
            vec![msg("{\"a\":1}"), msg("{\"b\":2}"), msg("{\"c\":3}")]
        );
    }

    #[tokio::test]
    async fn content_length_framing_reads_exact_bodies() {
        let input = b"Content-Length: 7\r\n\r\n{\"a\":1}Content-Type: application/json\r\ncontent-length: 7\r\n\r\n{\"b\":2}";
        let (items, framing) = read_all(input, 1024).await;
        assert_eq!(framing, Some(Framing::ContentLength));
        assert_eq!(items, vec![msg("{\"a\":1}"), msg("{\"b\":2}")]);
    }

    #[tokio::test]
    async fn oversized_line_is_skipped_and_reading_goes_on() {
        let big = format!("{{\"x\":\"{}\"}}\n{{\"ok\":1}}\n", "a".repeat(100));
        let (items, _) = read_all(big.as_bytes(), 50).await;
        assert_eq!(
            items,
            vec![Incoming::TooLarge { size: 108 }, msg("{\"ok\":1}")]
        );
    }

    #[tokio::test]
    async fn oversized_content_length_body_is_skipped_without_buffering() {
        let body = "x".repeat(100);
        let input = format!("Content-Length: 100\r\n\r\n{body}Content-Length: 2\r\n\r\n{{}}");
        let (items, _) = read_all(input.as_bytes(), 50).await;
        assert_eq!(items, vec![Incoming::TooLarge { size: 100 }, msg("{}")]);
    }

    #[tokio::test]
    async fn header_block_without_length_is_reported() {
        let input = b"Content-Type: x\r\n\r\nContent-Length: 2\r\n\r\n{}";
        let (items, _) = read_all(input, 50).await;
        assert!(matches!(&items[0], Incoming::BadHeader(m) if m.contains("Content-Length")));
        assert_eq!(items[1], msg("{}"));
    }

    #[tokio::test]
    async fn truncated_body_is_an_error() {
        let mut reader =
            MessageReader::new(BufReader::new(&b"Content-Length: 10\r\n\r\n{}"[..]), 50);
        assert!(matches!(
            reader.next().await,
            Err(TransportError::UnexpectedEof)
        ));
    }

    #[tokio::test]
    async fn message_split_across_reads_is_reassembled() {
        for framing in [Framing::Lines, Framing::ContentLength] {
            let (mut tx, rx) = duplex(4);
            let mut wire = Vec::new();
            write_message(&mut wire, framing, b"{\"method\":\"first\"}")
                .await
                .unwrap();
            write_message(&mut wire, framing, b"{\"method\":\"second\"}")
                .await
                .unwrap();
            let writer = tokio::spawn(async move {
                for chunk in wire.chunks(3) {
                    tx.write_all(chunk).await.unwrap();
                    tokio::task::yield_now().await;
                }
            });
            let mut reader = MessageReader::new(BufReader::new(rx), 1024);
            assert_eq!(
                reader.next().await.unwrap(),
                Some(msg("{\"method\":\"first\"}"))
            );
            assert_eq!(
                reader.next().await.unwrap(),
                Some(msg("{\"method\":\"second\"}"))
            );
            writer.await.unwrap();
            assert_eq!(reader.next().await.unwrap(), None);
            assert_eq!(reader.framing(), Some(framing));
        }
    }

    #[tokio::test]
    async fn writer_uses_the_requested_framing() {
        let mut out = Vec::new();
        write_message(&mut out, Framing::ContentLength, b"{}")
            .await
            .unwrap();
        write_message(&mut out, Framing::Lines, b"{}")
            .await
            .unwrap();
        assert_eq!(out, b"Content-Length: 2\r\n\r\n{}{}\n");
    }

    #[tokio::test]
    async fn a_first_line_that_is_not_json_keeps_line_framing() {
        // A typo on the first line of a hand-typed session: answered as a parse error
        // by the caller, and the next line is read as a message.
        for first in ["hello", "initialize", "Content-Lenght: 2", "{oops"] {
            let input = format!("{first}\n{{\"a\":1}}\n");
            let (items, framing) = read_all(input.as_bytes(), 1024).await;
            assert_eq!(framing, Some(Framing::Lines), "{first}");
            assert_eq!(items, vec![msg(first), msg("{\"a\":1}")], "{first}");
        }
    }

    #[tokio::test]
    async fn a_header_in_any_case_chooses_content_length_framing() {
        let (items, framing) = read_all(b"\r\ncontent-LENGTH: 2\r\n\r\n{}", 50).await;
        assert_eq!(framing, Some(Framing::ContentLength));
        assert_eq!(items, vec![msg("{}")]);
        let (items, framing) =
            read_all(b"CONTENT-TYPE: x\r\nContent-Length: 2\r\n\r\n{}", 50).await;
        assert_eq!(framing, Some(Framing::ContentLength));
        assert_eq!(items, vec![msg("{}")]);
    }

    #[tokio::test]
    async fn an_oversized_first_line_is_skipped_in_line_framing() {
        let input = format!("{}\n{{}}\n", "x".repeat(10_000));
        let (items, framing) = read_all(input.as_bytes(), 50).await;
        assert_eq!(framing, Some(Framing::Lines));
        assert_eq!(items, vec![Incoming::TooLarge { size: 10_000 }, msg("{}")]);
    }

    #[tokio::test]
    async fn empty_input_is_a_clean_end() {
        assert_eq!(read_all(b"", 10).await.0, vec![]);
        assert_eq!(read_all(b"\n\n  ", 10).await.0, vec![]);
    }
}
