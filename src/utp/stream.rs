//! [`UtpStream`]: a uTP connection as a byte stream (`AsyncRead` + `AsyncWrite`), so that
//! encryption and the peer protocol run over it exactly as over TCP. It can be split into a
//! reading and a writing half; dropping the writing side sends a FIN, as TCP's shutdown does.
//!
//! [`Entry`] is what the socket task and the stream share: the connection behind a lock, the
//! wakers of the tasks waiting on it, and the UDP socket it sends on.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use super::conn::{Conn, ReadOutcome, WriteOutcome};
use super::packet::Packet;
use crate::sync::MutexExt;

/// How long a connection nobody holds any more waits for the peer's FIN.
const ABANDONED: Duration = Duration::from_secs(60);

/// One connection, shared by the socket task and its stream handles.
pub(super) struct Entry {
    state: Mutex<EntryState>,
    socket: Arc<std::net::UdpSocket>,
    peer: SocketAddr,
}

struct EntryState {
    conn: Conn,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    /// Told when a dial connects or fails.
    connected: Option<oneshot::Sender<Result<(), io::ErrorKind>>>,
    /// Stream handles that read, and that write.
    readers: u8,
    writers: u8,
    closed_at: Option<Instant>,
    abandoned_at: Option<Instant>,
    /// An inbound connection not yet handed to the session: since when it waits for the
    /// peer's first data.
    half_open_since: Option<Instant>,
    datagram: Vec<u8>,
}

impl Entry {
    pub(super) fn new(
        conn: Conn,
        socket: Arc<std::net::UdpSocket>,
        peer: SocketAddr,
        connected: Option<oneshot::Sender<Result<(), io::ErrorKind>>>,
    ) -> Self {
        Self {
            state: Mutex::new(EntryState {
                conn,
                read_waker: None,
                write_waker: None,
                connected,
                readers: 0,
                writers: 0,
                closed_at: None,
                abandoned_at: None,
                half_open_since: None,
                datagram: Vec::with_capacity(1500),
            }),
            socket,
            peer,
        }
    }

    pub(super) fn on_packet(&self, packet: &Packet<'_>, now: Instant) {
        let mut state = self.state.locked();
        state.conn.on_packet(packet, now);
        let held = state.readers > 0 || state.writers > 0;
        if !held && state.half_open_since.is_none() && state.conn.unread() > 0 {
            // Data for a connection nobody reads: answered with a RESET, as TCP would.
            state.conn.reset();
        }
    }

    /// Marks an inbound connection as waiting for the peer's first data.
    pub(super) fn await_inbound_data(&self, now: Instant) {
        self.state.locked().half_open_since = Some(now);
    }

    pub(super) fn is_half_open(&self) -> bool {
        self.state.locked().half_open_since.is_some()
    }

    /// How long an inbound connection has waited for the peer's first data (zero once it
    /// came, or for one we dialled).
    pub(super) fn half_open_since(&self, now: Instant) -> Duration {
        self.state
            .locked()
            .half_open_since
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at))
    }

    /// True, once, when an inbound connection's peer has sent data: it is real (its first
    /// packets acknowledged our random sequence number) and goes to the session.
    pub(super) fn confirm_inbound(&self) -> bool {
        let mut state = self.state.locked();
        let confirmed = state.half_open_since.is_some() && state.conn.unread() > 0;
        if confirmed {
            state.half_open_since = None;
        }
        confirmed
    }

    /// Ends the connection at once: a RESET to the peer, an error for its reader and writer.
    pub(super) fn abort(&self) {
        let mut state = self.state.locked();
        state.conn.reset();
        state.half_open_since = None;
        self.flush_locked(&mut state, Instant::now());
    }

    /// Sends what the connection has to send, and wakes whoever can go on.
    pub(super) fn flush(&self, now: Instant) {
        let mut state = self.state.locked();
        self.flush_locked(&mut state, now);
    }

    fn flush_locked(&self, state: &mut EntryState, now: Instant) {
        let EntryState { conn, datagram, .. } = state;
        while conn.poll_transmit(now, datagram) {
            if let Err(e) = self.socket.send_to(datagram, self.peer)
                && e.kind() != io::ErrorKind::WouldBlock
            {
                tracing::trace!(peer = %self.peer, error = %e, "uTP send failed");
            }
        }
        if state.conn.readable()
            && let Some(waker) = state.read_waker.take()
        {
            waker.wake();
        }
        if state.conn.writable()
            && let Some(waker) = state.write_waker.take()
        {
            waker.wake();
        }
        if (state.conn.is_connected() || state.conn.is_closed())
            && let Some(tx) = state.connected.take()
        {
            let result = match state.conn.error() {
                Some(e) => Err(e),
                None if state.conn.is_connected() => Ok(()),
                None => Err(io::ErrorKind::ConnectionRefused),
            };
            let _ = tx.send(result);
        }
    }

    /// Runs the connection's timers and gives it `memory` bytes as its share; true when it
    /// is done and can be forgotten.
    pub(super) fn on_tick(&self, now: Instant, linger: Duration, memory: usize) -> bool {
        let mut state = self.state.locked();
        state.conn.set_memory_limit(memory);
        state.conn.on_tick(now);
        self.flush_locked(&mut state, now);
        let held = state.readers > 0 || state.writers > 0;
        if state.conn.is_closed() {
            let closed_at = *state.closed_at.get_or_insert(now);
            // A clean close lingers to answer a peer that missed our last ACK.
            let lingered = state.conn.error().is_some() || now.duration_since(closed_at) >= linger;
            return !held && lingered;
        }
        !held
            && state
                .abandoned_at
                .is_some_and(|at| now.duration_since(at) >= ABANDONED)
    }

    /// A stream takes hold: one reading and one writing half.
    fn hold(&self) {
        let mut state = self.state.locked();
        state.readers += 1;
        state.writers += 1;
    }

    fn release(&self, reads: bool, writes: bool) {
        let mut state = self.state.locked();
        state.readers -= u8::from(reads);
        state.writers -= u8::from(writes);
        if writes && state.writers == 0 {
            state.conn.close();
        }
        if state.readers == 0 && state.writers == 0 {
            state.abandoned_at = Some(Instant::now());
        }
        self.flush_locked(&mut state, Instant::now());
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut state = self.state.locked();
        let outcome = state.conn.read_with(|chunk| {
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            n
        });
        match outcome {
            ReadOutcome::Data(_) => {
                // Reading may have reopened the window: the peer hears at once.
                self.flush_locked(&mut state, Instant::now());
                Poll::Ready(Ok(()))
            }
            ReadOutcome::Eof => Poll::Ready(Ok(())),
            ReadOutcome::Failed(kind) => Poll::Ready(Err(kind.into())),
            ReadOutcome::Pending => {
                state.read_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.state.locked();
        match state.conn.write(data) {
            WriteOutcome::Accepted(n) => {
                self.flush_locked(&mut state, Instant::now());
                Poll::Ready(Ok(n))
            }
            WriteOutcome::Failed(kind) => Poll::Ready(Err(kind.into())),
            WriteOutcome::Pending => {
                state.write_waker = Some(cx.waker().clone());
                self.flush_locked(&mut state, Instant::now());
                Poll::Pending
            }
        }
    }

    fn shutdown(&self) {
        let mut state = self.state.locked();
        state.conn.close();
        self.flush_locked(&mut state, Instant::now());
    }
}

/// A uTP connection as a byte stream: its reading and writing halves together.
pub struct UtpStream {
    read: UtpReadHalf,
    write: UtpWriteHalf,
}

impl std::fmt::Debug for UtpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UtpStream")
            .field("peer", &self.peer_addr())
            .finish()
    }
}

impl UtpStream {
    pub(super) fn new(entry: Arc<Entry>) -> Self {
        entry.hold();
        Self {
            read: UtpReadHalf {
                entry: entry.clone(),
            },
            write: UtpWriteHalf { entry },
        }
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.read.entry.peer
    }

    /// The connection's figures now.
    pub fn stats(&self) -> super::conn::ConnStats {
        self.read.entry.state.locked().conn.stats()
    }

    /// A reading and a writing half, for two tasks.
    pub fn into_split(self) -> (UtpReadHalf, UtpWriteHalf) {
        (self.read, self.write)
    }
}

impl AsyncRead for UtpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl AsyncWrite for UtpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_shutdown(cx)
    }
}

/// The reading half of a [`UtpStream`].
pub struct UtpReadHalf {
    entry: Arc<Entry>,
}

impl Drop for UtpReadHalf {
    fn drop(&mut self) {
        self.entry.release(true, false);
    }
}

impl AsyncRead for UtpReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.entry.poll_read(cx, buf)
    }
}

/// The writing half of a [`UtpStream`]; dropping it sends a FIN after what was written.
pub struct UtpWriteHalf {
    entry: Arc<Entry>,
}

impl Drop for UtpWriteHalf {
    fn drop(&mut self) {
        self.entry.release(false, true);
    }
}

impl AsyncWrite for UtpWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.entry.poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.entry.shutdown();
        Poll::Ready(Ok(()))
    }
}
