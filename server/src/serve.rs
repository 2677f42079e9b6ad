//! The accept loop behind [`crate::run`]: HTTP/1.1 connections served by hyper, with a cap
//! on open connections overall and per client address, a short timeout for a new
//! connection's first request headers, a timeout for later request headers (which also
//! closes idle keep-alive connections) and graceful shutdown.
//!
//! `axum::serve` has none of these, so a client that opens connections and sends nothing,
//! or sends its headers a byte at a time, could hold sockets and memory forever, and a few
//! hundred such sockets would keep everyone else out.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::Limits;

/// File descriptors kept back from the connection cap for the store, logs and listeners.
const RESERVED_FDS: u64 = 256;

/// The largest first request head read before hyper takes over; hyper enforces its own
/// limit on what follows.
const MAX_FIRST_HEAD: usize = 64 << 10;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and
/// waits for open connections to finish their requests.
///
/// At most [`Limits::max_connections`] connections are served at once (lowered to what
/// the open-file limit allows; see [`connection_cap`]): the loop takes a permit before
/// each `accept` and the connection's task returns it when the connection closes, so
/// further clients wait in the kernel's listen backlog instead of consuming memory here.
/// A client address over [`Limits::max_connections_per_client`] has its new connection
/// closed at once, and a connection that has not sent its first request's headers within
/// [`Limits::first_header_timeout`] is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(connection_cap(limits.max_connections)));
    let per_client = Arc::new(PerClient::new(limits.max_connections_per_client));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let first_header_timeout = limits.first_header_timeout.min(limits.header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = per_client.enter(peer.ip()) else {
            tracing::debug!(client = %peer.ip(), "connection refused: too many from this client");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let head = tokio::time::timeout(first_header_timeout, read_first_head(&stream)).await;
            match head {
                Ok(Ok(head)) => {
                    let io = TokioIo::new(Prefixed::new(head, stream));
                    let connection = watcher.watch(builder.serve_connection(io, service));
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                Ok(Err(error)) => tracing::debug!(%error, "connection ended before a request"),
                Err(_) => tracing::debug!("connection closed: no request headers in time"),
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The connection cap in force: `configured`, lowered so that every connection can have
/// a file descriptor. The process's soft open-file limit is first raised to its hard
/// limit, since the default soft limit (often 1024) would otherwise be the real cap.
pub fn connection_cap(configured: usize) -> usize {
    let soft = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let allowed = usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    configured.min(allowed).max(1)
}

/// Reads from `stream` until a whole request head (up to the blank line) has arrived, and
/// returns the bytes read. Ends with an error if the client closes first.
async fn read_first_head(stream: &TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        stream.readable().await?;
        let read = match stream.try_read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        };
        let searched_from = head.len().saturating_sub(3);
        head.extend_from_slice(chunk.get(..read).unwrap_or_default());
        let complete = head
            .get(searched_from..)
            .is_some_and(|tail| tail.windows(4).any(|w| w == b"\r\n\r\n"));
        if complete || head.len() >= MAX_FIRST_HEAD {
            return Ok(head);
        }
    }
}

/// Open connections per client address, and the most each may have.
struct PerClient {
    open: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

impl PerClient {
    fn new(max: usize) -> Self {
        PerClient {
            open: Mutex::new(HashMap::new()),
            max: max.max(1),
        }
    }

    /// Counts a new connection from `ip`, or `None` when `ip` is at its limit.
    fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            clients: self.clone(),
            ip,
        })
    }
}

/// One counted connection; uncounted when dropped.
struct ClientSlot {
    clients: Arc<PerClient>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.open.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A stream whose first bytes were already read (the first request head): they are
/// replayed before the rest of the stream.
struct Prefixed {
    prefix: Vec<u8>,
    offset: usize,
    inner: TcpStream,
}

impl Prefixed {
    fn new(prefix: Vec<u8>, inner: TcpStream) -> Self {
        Prefixed {
            prefix,
            offset: 0,
            inner,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(rest) = this.prefix.get(this.offset..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.offset += n;
            if this.offset == this.prefix.len() {
                this.prefix = Vec::new();
                this.offset = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[test]
    fn per_client_slots_are_counted_and_returned() {
        let clients = Arc::new(PerClient::new(2));
        let ip: IpAddr = [127, 0, 0, 2].into();
        let first = clients.enter(ip).unwrap();
        let _second = clients.enter(ip).unwrap();
        assert!(clients.enter(ip).is_none(), "a third connection is refused");
        assert!(
            clients.enter([127, 0, 0, 1].into()).is_some(),
            "others are not"
        );
        drop(first);
        assert!(
            clients.enter(ip).is_some(),
            "a closed connection frees its slot"
        );
    }

    #[tokio::test]
    async fn the_prefix_is_replayed_before_the_stream() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut stream, b"GET / HTTP/1.1\r\n\r\nrest")
                .await
                .unwrap();
        });
        let (stream, _) = listener.accept().await.unwrap();
        let head = read_first_head(&stream).await.unwrap();
        assert!(head.starts_with(b"GET / HTTP/1.1\r\n\r\n"));
        client.await.unwrap();
        let mut all = Vec::new();
        Prefixed::new(head, stream)
            .read_to_end(&mut all)
            .await
            .unwrap();
        assert_eq!(all, b"GET / HTTP/1.1\r\n\r\nrest");
    }
}
