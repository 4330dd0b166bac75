//! Zero-copy relaying between two plain sockets: large chunk payloads move from one socket to the
//! other through a pipe with splice(2), so their bytes never enter the gateway's memory.
//!
//! Only plain TCP and unix sockets qualify (a TLS, WebSocket or SSH stream must be decrypted or
//! unframed in user space). The relay recognises them behind the `BoxedStream`s it is given
//! ([`SharedSocket::recover`]); each side's socket is then shared by the two directions: one
//! reads from it, the other writes to it, and both use it for readiness while splicing.
//!
//! The syscalls go through `nix`'s safe wrappers; readiness comes from tokio, so a splice that
//! would block yields to the runtime like any other socket operation.

use std::any::TypeId;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::sys::socket::{shutdown, Shutdown};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use xgate_messages::{BoxedStream, ByteStream};

use crate::upgrade::Prefixed;

/// The pipe size asked for: one 1 MiB draw fits in one splice pair. The kernel may give less
/// (`/proc/sys/fs/pipe-max-size`, per-user pipe limits); whatever it gives is used.
const PIPE_SIZE: i32 = 1 << 20;

/// A plain socket.
#[derive(Debug)]
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// One plain socket shared by the relay's two directions.
#[derive(Debug, Clone)]
pub struct SharedSocket(Arc<Socket>);

impl SharedSocket {
    /// Finds the plain socket behind `stream`, if there is one. `buf` holds bytes already read
    /// from the stream; bytes its sniffing prefix still held are appended to them, so nothing
    /// read before is lost. Otherwise the stream and the bytes come back unchanged.
    pub fn recover(
        stream: BoxedStream,
        buf: BytesMut,
    ) -> Result<(SharedSocket, BytesMut), (BoxedStream, BytesMut)> {
        if is::<TcpStream>(&*stream) {
            if let Ok(tcp) = ByteStream::into_any(stream).downcast::<TcpStream>() {
                return Ok((SharedSocket(Arc::new(Socket::Tcp(*tcp))), buf));
            }
            unreachable!("the type was checked");
        }
        if is::<UnixStream>(&*stream) {
            if let Ok(unix) = ByteStream::into_any(stream).downcast::<UnixStream>() {
                return Ok((SharedSocket(Arc::new(Socket::Unix(*unix))), buf));
            }
            unreachable!("the type was checked");
        }
        if is::<BoxedStream>(&*stream) {
            if let Ok(inner) = ByteStream::into_any(stream).downcast::<BoxedStream>() {
                return Self::recover(*inner, buf);
            }
            unreachable!("the type was checked");
        }
        if is::<Prefixed<BoxedStream>>(&*stream) {
            if let Ok(prefixed) = ByteStream::into_any(stream).downcast::<Prefixed<BoxedStream>>() {
                let (prefix, inner) = prefixed.into_parts();
                let mut buf = buf;
                // Bytes already read came before the prefix's rest; the socket's come after it.
                buf.extend_from_slice(&prefix);
                return Self::recover(inner, buf);
            }
            unreachable!("the type was checked");
        }
        Err((stream, buf))
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &*self.0 {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
        }
    }

    fn poll_ready(&self, cx: &mut Context<'_>, interest: Interest) -> Poll<io::Result<()>> {
        match (&*self.0, interest.is_readable()) {
            (Socket::Tcp(s), true) => s.poll_read_ready(cx),
            (Socket::Tcp(s), false) => s.poll_write_ready(cx),
            (Socket::Unix(s), true) => s.poll_read_ready(cx),
            (Socket::Unix(s), false) => s.poll_write_ready(cx),
        }
    }

    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match &*self.0 {
            Socket::Tcp(s) => s.try_io(interest, f),
            Socket::Unix(s) => s.try_io(interest, f),
        }
    }

    /// Waits until the socket is ready for `interest`, then runs `f` (a non-blocking syscall on
    /// it); a `WouldBlock` clears the readiness and waits again.
    async fn io<R>(
        &self,
        interest: Interest,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            std::future::poll_fn(|cx| self.poll_ready(cx, interest)).await?;
            match self.try_io(interest, &mut f) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }

    /// Waits until the socket has something to read (data, an end, an error), without reading:
    /// an idle connection waits with no buffer allocated.
    pub async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_ready(cx, Interest::READABLE)).await
    }
}

impl AsyncRead for SharedSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_ready(cx, Interest::READABLE))?;
            let unfilled = buf.initialize_unfilled();
            let read = match &*self.0 {
                Socket::Tcp(s) => s.try_read(unfilled),
                Socket::Unix(s) => s.try_read(unfilled),
            };
            match read {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(data)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.poll_ready(cx, Interest::WRITABLE))?;
            let written = match &*self.0 {
                Socket::Tcp(s) => s.try_write_vectored(bufs),
                Socket::Unix(s) => s.try_write_vectored(bufs),
            };
            match written {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(shutdown(self.fd().as_raw_fd(), Shutdown::Write).map_err(io::Error::from))
    }
}

/// Whether the stream behind a trait object is a `T`. (Called on `&dyn ByteStream`: on a
/// `&BoxedStream` the method would answer for the box itself, which is a `ByteStream` too.)
fn is<T: 'static>(stream: &dyn ByteStream) -> bool {
    stream.is_a(TypeId::of::<T>())
}

/// How a splice of one payload failed.
#[derive(Debug, thiserror::Error)]
pub enum SpliceError {
    /// The source closed before the payload was complete.
    #[error("the source closed in the middle of a chunk")]
    SourceClosed,
    /// Reading the source failed.
    #[error("reading: {0}")]
    Source(io::Error),
    /// Writing the destination failed (or it stopped reading).
    #[error("writing: {0}")]
    Destination(io::Error),
}

/// The kernel pipe that payloads pass through, created on the first large chunk (an idle or
/// small-packet connection never holds one).
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// The pipe's capacity: the most one splice into it moves.
    capacity: usize,
}

impl Pipe {
    /// A non-blocking pipe, as large as the kernel allows up to [`PIPE_SIZE`].
    pub fn new() -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        // Best effort: a smaller pipe only means more splices per chunk.
        let _ = fcntl(write.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        let capacity = fcntl(write.as_raw_fd(), FcntlArg::F_GETPIPE_SZ)
            .map_or(64 * 1024, |n| n.max(4096) as usize);
        Ok(Pipe {
            read,
            write,
            capacity,
        })
    }

    /// Moves exactly `len` bytes from `src` to `dst` through the pipe. On an error some of them
    /// may have been written: the destination's stream is then cut inside a chunk.
    pub async fn transfer(
        &self,
        src: &SharedSocket,
        dst: &SharedSocket,
        len: usize,
    ) -> Result<(), SpliceError> {
        let mut remaining = len;
        while remaining > 0 {
            let want = remaining.min(self.capacity);
            let moved = src
                .io(Interest::READABLE, || {
                    splice(
                        src.fd(),
                        None,
                        self.write.as_fd(),
                        None,
                        want,
                        SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK,
                    )
                    .map_err(io::Error::from)
                })
                .await
                .map_err(SpliceError::Source)?;
            if moved == 0 {
                return Err(SpliceError::SourceClosed);
            }
            remaining -= moved;
            let mut in_pipe = moved;
            while in_pipe > 0 {
                // More of this chunk follows: let the socket wait for it rather than send a
                // short segment.
                let more = if remaining > 0 {
                    SpliceFFlags::SPLICE_F_MORE
                } else {
                    SpliceFFlags::empty()
                };
                let out = dst
                    .io(Interest::WRITABLE, || {
                        splice(
                            self.read.as_fd(),
                            None,
                            dst.fd(),
                            None,
                            in_pipe,
                            SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK | more,
                        )
                        .map_err(io::Error::from)
                    })
                    .await
                    .map_err(SpliceError::Destination)?;
                if out == 0 {
                    return Err(SpliceError::Destination(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "peer stopped reading",
                    )));
                }
                in_pipe -= out;
            }
        }
        Ok(())
    }
}

/// One end of a relay direction: a shared plain socket, or a half of any other stream. One type
/// for both, so that the relay drives either kind of connection with the same code.
pub enum Side {
    /// A plain socket (both directions hold a clone).
    Plain(SharedSocket),
    /// The reading half of another stream.
    Read(tokio::io::ReadHalf<BoxedStream>),
    /// The writing half of another stream.
    Write(tokio::io::WriteHalf<BoxedStream>),
}

impl AsyncRead for Side {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Side::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Side::Read(r) => Pin::new(r).poll_read(cx, buf),
            Side::Write(_) => Poll::Ready(Err(io::Error::other("read from a writing half"))),
        }
    }
}

impl AsyncWrite for Side {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Side::Plain(s) => Pin::new(s).poll_write(cx, data),
            Side::Write(w) => Pin::new(w).poll_write(cx, data),
            Side::Read(_) => Poll::Ready(Err(io::Error::other("write to a reading half"))),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Side::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Side::Write(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            Side::Read(_) => Poll::Ready(Err(io::Error::other("write to a reading half"))),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Side::Plain(s) => s.is_write_vectored(),
            Side::Write(w) => w.is_write_vectored(),
            Side::Read(_) => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Side::Plain(s) => Pin::new(s).poll_flush(cx),
            Side::Write(w) => Pin::new(w).poll_flush(cx),
            Side::Read(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Side::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Side::Write(w) => Pin::new(w).poll_shutdown(cx),
            Side::Read(_) => Poll::Ready(Ok(())),
        }
    }
}
