//! The daemon's standard input and output as streams of the runtime's event loop.
//!
//! The runtime's own `stdin()`/`stdout()` hand every read and every write to a blocking
//! thread and wait for it: a burst of replies then costs a thread wake-up per write, on
//! both sides. When stdin or stdout is a pipe (what `spawn` with piped stdio gives on Unix)
//! or a socket (Node's child processes get socket pairs), it is put in non-blocking mode
//! and driven by the event loop instead, like any other socket. A terminal or a regular
//! file keeps the runtime's blocking streams.
//!
//! Non-blocking mode belongs to the open file, which may be shared: stdout is kept blocking
//! when stderr is the same pipe or socket (`2>&1`), since the log lines written to stderr
//! by plain blocking writes would otherwise fail while the pipe is full.

use tokio::io::{AsyncRead, AsyncWrite};

/// The daemon's input.
pub(crate) type StdInput = Box<dyn AsyncRead + Unpin + Send>;
/// The daemon's output.
pub(crate) type StdOutput = Box<dyn AsyncWrite + Unpin + Send>;

/// Standard input and output for the protocol. Call within the runtime.
pub(crate) fn stdio() -> (StdInput, StdOutput) {
    (input(), output())
}

#[cfg(unix)]
fn input() -> StdInput {
    use std::os::fd::AsFd;
    match unix::stream(std::io::stdin().as_fd(), unix::Direction::Read) {
        Some(Ok(s)) => s.into_input(),
        Some(Err(e)) => {
            tracing::debug!(error = %e, "stdin stays a blocking stream");
            Box::new(tokio::io::stdin())
        }
        None => Box::new(tokio::io::stdin()),
    }
}

#[cfg(unix)]
fn output() -> StdOutput {
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    if unix::same_file(stdout.as_fd(), std::io::stderr().as_fd()) {
        return Box::new(tokio::io::stdout());
    }
    match unix::stream(stdout.as_fd(), unix::Direction::Write) {
        Some(Ok(s)) => s.into_output(),
        Some(Err(e)) => {
            tracing::debug!(error = %e, "stdout stays a blocking stream");
            Box::new(tokio::io::stdout())
        }
        None => Box::new(tokio::io::stdout()),
    }
}

#[cfg(not(unix))]
fn input() -> StdInput {
    Box::new(tokio::io::stdin())
}

#[cfg(not(unix))]
fn output() -> StdOutput {
    Box::new(tokio::io::stdout())
}

#[cfg(unix)]
mod unix {
    use std::fs::File;
    use std::io;
    use std::os::fd::{BorrowedFd, OwnedFd};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use tokio::net::UnixStream;
    use tokio::net::unix::pipe;

    use super::{StdInput, StdOutput};

    #[derive(Clone, Copy)]
    pub(super) enum Direction {
        Read,
        Write,
    }

    pub(super) enum Stream {
        PipeIn(pipe::Receiver),
        PipeOut(pipe::Sender),
        Socket(UnixStream),
    }

    impl Stream {
        pub(super) fn into_input(self) -> StdInput {
            match self {
                Stream::PipeIn(p) => Box::new(p),
                Stream::PipeOut(_) => unreachable!("opened for reading"),
                Stream::Socket(s) => Box::new(s),
            }
        }

        pub(super) fn into_output(self) -> StdOutput {
            match self {
                Stream::PipeOut(p) => Box::new(p),
                Stream::PipeIn(_) => unreachable!("opened for writing"),
                Stream::Socket(s) => Box::new(s),
            }
        }
    }

    fn metadata(fd: BorrowedFd<'_>) -> io::Result<std::fs::Metadata> {
        File::from(fd.try_clone_to_owned()?).metadata()
    }

    /// Whether two descriptors are the same pipe or socket (a terminal or file is never
    /// made non-blocking, so only those matter).
    pub(super) fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
        match (metadata(a), metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    /// A copy of `fd` driven by the event loop when it is a pipe or a socket; `None` for
    /// anything else.
    pub(super) fn stream(fd: BorrowedFd<'_>, direction: Direction) -> Option<io::Result<Stream>> {
        let kind = match metadata(fd) {
            Ok(m) => m.file_type(),
            Err(e) => return Some(Err(e)),
        };
        if !(kind.is_fifo() || kind.is_socket()) {
            return None;
        }
        let owned: OwnedFd = match fd.try_clone_to_owned() {
            Ok(fd) => fd,
            Err(e) => return Some(Err(e)),
        };
        Some(if kind.is_fifo() {
            match direction {
                Direction::Read => pipe::Receiver::from_owned_fd(owned).map(Stream::PipeIn),
                Direction::Write => pipe::Sender::from_owned_fd(owned).map(Stream::PipeOut),
            }
        } else {
            let socket = std::os::unix::net::UnixStream::from(owned);
            socket
                .set_nonblocking(true)
                .and_then(|()| UnixStream::from_std(socket))
                .map(Stream::Socket)
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::fd::AsFd;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::unix::{Direction, same_file, stream};

    #[tokio::test]
    async fn pipes_go_through_the_event_loop_and_files_keep_blocking_streams() {
        let (r, w) = std::io::pipe().unwrap();
        let file = tempfile::tempfile().unwrap();
        // A pipe's two ends are one pipe (what `2>&1` looks like); a file is another.
        assert!(same_file(r.as_fd(), w.as_fd()));
        assert!(!same_file(r.as_fd(), file.as_fd()));
        assert!(stream(file.as_fd(), Direction::Read).is_none());

        let mut input = stream(r.as_fd(), Direction::Read)
            .unwrap()
            .unwrap()
            .into_input();
        let mut output = stream(w.as_fd(), Direction::Write)
            .unwrap()
            .unwrap()
            .into_output();
        output.write_all(b"{\"id\":1}\n").await.unwrap();
        let mut got = [0u8; 9];
        input.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"{\"id\":1}\n");
        // Non-blocking now: an empty pipe is a pending read, not a blocked thread.
        let mut more = [0u8; 1];
        let pending =
            tokio::time::timeout(std::time::Duration::from_millis(50), input.read(&mut more)).await;
        assert!(pending.is_err(), "nothing to read yet");
    }
}
