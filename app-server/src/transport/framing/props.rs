//! Property tests of the framing reader: whatever bytes arrive, in whatever pieces, reading
//! ends in messages and a clean end or a typed error, never holds a message above the limit,
//! and gives back exactly what a well-behaved client framed.

use std::pin::Pin;
use std::task::{Context, Poll};

use proptest::prelude::*;
use tokio::io::{AsyncRead, BufReader, ReadBuf};

use super::{Framing, Incoming, MessageReader, TransportError, write_message};

/// Hands out `data` in pieces of the given sizes (cycled), like a pipe written in bursts.
struct Pieces {
    data: Vec<u8>,
    pos: usize,
    sizes: Vec<usize>,
    turn: usize,
}

impl AsyncRead for Pieces {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let size = this.sizes[this.turn % this.sizes.len()];
        this.turn += 1;
        let n = size.min(out.remaining()).min(this.data.len() - this.pos);
        out.put_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// Everything the reader yields, and how it ended.
fn read_all(
    data: Vec<u8>,
    sizes: Vec<usize>,
    buffer: usize,
    max: usize,
) -> (Vec<Incoming>, Result<(), TransportError>) {
    let len = data.len();
    let pieces = Pieces {
        data,
        pos: 0,
        sizes,
        turn: 0,
    };
    let mut reader = MessageReader::new(BufReader::with_capacity(buffer, pieces), max);
    let mut items = Vec::new();
    let end = futures::executor::block_on(async {
        loop {
            match reader.next().await {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
            // Every item consumes input: more items than bytes means it stopped advancing.
            assert!(items.len() <= len + 1, "the reader stopped advancing");
        }
    });
    (items, end)
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..64, 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_end_in_messages_and_an_end_or_a_typed_error(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            // Input that looks like headers, to reach the Content-Length paths often.
            prop::collection::vec(
                prop_oneof![
                    Just(b"Content-Length: ".to_vec()),
                    Just(b"content-length:9999999999999999999999".to_vec()),
                    Just(b"\r\n".to_vec()),
                    Just(b"\n".to_vec()),
                    Just(b"Content-Type: x".to_vec()),
                    prop::collection::vec(any::<u8>(), 0..12),
                    (0usize..200).prop_map(|n| n.to_string().into_bytes()),
                ],
                0..40,
            ).prop_map(|parts| parts.concat()),
        ],
        sizes in sizes(),
        buffer in 1usize..80,
        max in 0usize..128,
    ) {
        let (items, end) = read_all(data, sizes, buffer, max);
        match end {
            Ok(()) | Err(TransportError::UnexpectedEof) => {}
            Err(TransportError::Io(e)) => prop_assert!(false, "no I/O error can happen here: {e}"),
        }
        for item in items {
            match item {
                Incoming::Message(bytes) => prop_assert!(bytes.len() <= max),
                Incoming::TooLarge { size } => prop_assert!(size > max),
                Incoming::BadHeader(reason) => prop_assert!(!reason.is_empty()),
            }
        }
    }

    #[test]
    fn framed_messages_come_back_as_sent_in_any_pieces(
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..90), 1..12),
        content_length in any::<bool>(),
        sizes in sizes(),
        buffer in 1usize..80,
        max in 1usize..64,
    ) {
        let framing = if content_length { Framing::ContentLength } else { Framing::Lines };
        // A line cannot hold a newline (nor end in `\r`), and lines framing is detected by a
        // first byte that is not a letter.
        let bodies: Vec<Vec<u8>> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, mut b)| {
                if framing == Framing::Lines {
                    b.retain(|&c| c != b'\n' && c != b'\r');
                    if i == 0 {
                        b.insert(0, b'{');
                    }
                }
                b
            })
            .collect();
        let mut wire = Vec::new();
        for body in &bodies {
            futures::executor::block_on(write_message(&mut wire, framing, body)).unwrap();
        }
        let expected: Vec<Incoming> = bodies
            .iter()
            .filter_map(|b| {
                if b.len() > max {
                    Some(Incoming::TooLarge { size: b.len() })
                } else if b.iter().all(u8::is_ascii_whitespace) {
                    None // blank messages are skipped
                } else {
                    Some(Incoming::Message(b.clone()))
                }
            })
            .collect();
        let (items, end) = read_all(wire, sizes, buffer, max);
        prop_assert!(end.is_ok(), "{end:?}");
        prop_assert_eq!(items, expected);
    }
}
