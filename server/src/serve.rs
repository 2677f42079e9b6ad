//! The accept loops behind [`crate::run`]: one for the HTTP API (served by hyper: HTTP/1.1
//! with keep-alive and pipelining, and HTTP/2 over cleartext by prior knowledge, told apart
//! by the connection's first bytes) and one for the gRPC listener (handed to tonic), sharing one [`Gate`]: a cap on open connections
//! overall and per client address, counted over both listeners together. Each new
//! connection gets a short timeout for its TLS handshake (with [`Tls`]) and its first
//! request (an HTTP/1.1 head, or HTTP/2's connection preface); HTTP also has a timeout for
//! later request headers (which closes idle keep-alive connections) and graceful shutdown.
//!
//! `axum::serve` and tonic's own listener have none of these, so a client that opens
//! connections and sends nothing, or sends its headers a byte at a time, could hold
//! sockets and memory forever, and a few hundred such sockets would keep everyone else out.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Limits;

/// File descriptors kept back from the connection cap for the store, logs and listeners.
const RESERVED_FDS: u64 = 256;

/// The largest first request head read before hyper takes over; hyper enforces its own
/// limit on what follows.
const MAX_FIRST_HEAD: usize = 64 << 10;

/// What every HTTP/2 connection starts with (RFC 9113, section 3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The first byte of a TLS record carrying a handshake message (a ClientHello, here).
const TLS_HANDSHAKE: u8 = 0x16;

/// The connection caps, shared by the HTTP and gRPC listeners so that together they stay
/// within [`Limits::max_connections`] (and the open-file limit) and one client address
/// within [`Limits::max_connections_per_client`].
#[derive(Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
    per_client: Arc<PerClient>,
    first_request_timeout: Duration,
}

impl Gate {
    /// The caps of `limits`, the overall one lowered as [`connection_cap`] says.
    pub fn new(limits: &Limits) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(connection_cap(limits.max_connections))),
            per_client: Arc::new(PerClient::new(limits.max_connections_per_client)),
            first_request_timeout: limits.first_header_timeout.min(limits.header_timeout),
        }
    }
}

/// A server certificate chain and key for both listeners, loaded once at start-up.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls { .. }")
    }
}

impl Tls {
    /// Reads a PEM certificate chain (leaf first) from `cert` and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1) from `key`. The error names the file at fault and why.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let read = |path: &Path, what: &str| {
            std::fs::read(path)
                .map_err(|e| format!("cannot read the TLS {what} `{}`: {e}", path.display()))
        };
        let cert_pem = read(cert, "certificate")?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("TLS certificate `{}` is not PEM: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!(
                "TLS certificate `{}` holds no `BEGIN CERTIFICATE` block",
                cert.display()
            ));
        }
        let key_pem = read(key, "key")?;
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            format!(
                "TLS key `{}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
                key.display()
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| {
                format!(
                    "TLS key `{}` does not fit certificate `{}`: {e}",
                    key.display(),
                    cert.display()
                )
            })?;
        Ok(Tls {
            config: Arc::new(config),
        })
    }

    /// An acceptor offering `alpn` (`h2` for gRPC, whose clients require it, `http/1.1`
    /// for the HTTP API).
    fn acceptor(&self, alpn: &[u8]) -> tokio_rustls::TlsAcceptor {
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![alpn.to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// Which protocol a listener speaks, and so what its first request looks like.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    Http1,
    Http2,
}

/// A connection's byte stream: plain TCP or TLS over it.
pub enum Io {
    /// Plaintext.
    Plain(TcpStream),
    /// TLS, handshake done.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A connection let through the [`Gate`], its TLS handshake and first request bytes read
/// (they are replayed first). Holds its places in both caps until dropped, which hyper and
/// tonic do when the connection closes.
pub struct Admitted {
    io: Prefixed<Io>,
    local: Option<SocketAddr>,
    peer: SocketAddr,
    _slot: ClientSlot,
    _permit: OwnedSemaphorePermit,
}

impl tonic::transport::server::Connected for Admitted {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.local,
            remote_addr: Some(self.peer),
        }
    }
}

/// Accepts on `listener` under `gate` until `shutdown` resolves; each connection that
/// passes the caps, the TLS handshake and the first-request timeout is handed, on its own
/// task, to the handler `accepted` made for it when it was accepted.
///
/// The loop takes a permit after each `accept` and the connection returns it when it
/// closes; while none is free the loop accepts nothing more, so clients beyond the cap
/// wait in the kernel's listen backlog instead of consuming memory here. A client address over its cap has its new connection closed at
/// once.
async fn accept_loop<F, H, Fut>(
    listener: TcpListener,
    gate: Gate,
    tls: Option<tokio_rustls::TlsAcceptor>,
    protocol: Protocol,
    shutdown: impl Future<Output = ()>,
    mut accepted: F,
) where
    F: FnMut() -> H,
    H: FnOnce(Admitted) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
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
        // The permit is taken after the accept, not before: two listeners share the cap,
        // and a loop parked on a permit before its accept would take the next free place
        // from a connection waiting on the other listener. Until a place frees, this loop
        // holds the one accepted socket and accepts nothing more.
        let permit = tokio::select! {
            permit = gate.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = gate.per_client.enter(peer.ip()) else {
            tracing::debug!(client = %peer.ip(), "connection refused: too many from this client");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let serve = accepted();
        let tls = tls.clone();
        let timeout = gate.first_request_timeout;
        tokio::spawn(async move {
            let opened = tokio::time::timeout(timeout, open(stream, tls, protocol)).await;
            match opened {
                Ok(Ok((io, head))) => {
                    serve(Admitted {
                        io: Prefixed::new(head, io),
                        local,
                        peer,
                        _slot: slot,
                        _permit: permit,
                    })
                    .await;
                }
                Ok(Err(error)) => tracing::debug!(%error, "connection ended before a request"),
                Err(_) => tracing::debug!("connection closed: no request in time"),
            }
        });
    }
}

/// The TLS handshake (if any), then the first request's bytes: up to the end of an
/// HTTP/1.1 head, or HTTP/2's preface.
async fn open(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    protocol: Protocol,
) -> io::Result<(Io, Vec<u8>)> {
    let mut io = match tls {
        None => Io::Plain(stream),
        Some(acceptor) => {
            let mut first = [0u8; 1];
            let peeked = stream.peek(&mut first).await?;
            if peeked == 1 && first != [TLS_HANDSHAKE] {
                return Err(plaintext_on_tls(stream, protocol).await);
            }
            Io::Tls(Box::new(acceptor.accept(stream).await?))
        }
    };
    let head = match protocol {
        Protocol::Http1 => read_first_head(&mut io).await?,
        Protocol::Http2 => read_preface(&mut io).await?,
    };
    Ok((io, head))
}

/// A client spoke plaintext to a TLS listener. An HTTP/1.1 client gets a 400 saying so
/// (as Go's `net/http` answers); HTTP/2 has no way to say it before TLS, so the connection
/// is just closed (clients report it as unavailable).
async fn plaintext_on_tls(mut stream: TcpStream, protocol: Protocol) -> io::Error {
    if protocol == Protocol::Http1 {
        let body = "client sent a plaintext HTTP request to a TLS port: use https://\n";
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
    io::Error::new(
        io::ErrorKind::InvalidData,
        "plaintext sent to a TLS listener",
    )
}

/// Largest header block an HTTP/2 client may send in one request (hyper's default is
/// 16 MiB); the same bound as the first HTTP/1.1 request head.
const MAX_HTTP2_HEADERS: u32 = MAX_FIRST_HEAD as u32;

/// Most requests one HTTP/2 connection may have in flight at once, as tonic's and Go's
/// servers bound it by default (more are refused with `REFUSED_STREAM`, which clients
/// retry).
const MAX_HTTP2_STREAMS: u32 = 256;

/// Serves `api` on `listener` until `shutdown` resolves, then stops accepting and
/// waits for open connections to finish their requests.
///
/// Each connection speaks HTTP/1.1 (keep-alive; pipelined requests are answered in order,
/// their answers written together) or, when it opens with HTTP/2's preface, HTTP/2 over
/// cleartext (h2c with prior knowledge; over TLS the listener offers only `http/1.1`).
/// Connections are admitted by `gate` (see [`accept_loop`]), over TLS when `tls` is given;
/// a connection that has not sent its first request's headers (or HTTP/2 preface) within
/// [`Limits::first_header_timeout`] is closed. HTTP/1.1 connections have
/// [`Limits::header_timeout`] for each later request head and when idle; HTTP/2 ones are
/// pinged at that interval and closed when a ping goes unanswered.
pub async fn serve(
    listener: TcpListener,
    api: crate::HttpApi,
    limits: Limits,
    gate: Gate,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        // Answers to pipelined requests that are ready together go out in one write.
        .pipeline_flush(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HTTP2_HEADERS)
        .max_concurrent_streams(MAX_HTTP2_STREAMS)
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let acceptor = tls.map(|tls| tls.acceptor(b"http/1.1"));
    accept_loop(listener, gate, acceptor, Protocol::Http1, shutdown, || {
        // Taken at accept time, so a connection still in its handshake when shutdown
        // begins is told at once when it starts.
        let watcher = graceful.watcher();
        let service = TowerToHyperService::new(api.clone());
        let builder = builder.clone();
        move |admitted: Admitted| async move {
            let connection =
                watcher.watch(builder.serve_connection(TokioIo::new(admitted), service));
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
    })
    .await;
    graceful.shutdown().await;
    Ok(())
}

/// The gRPC listener's connections, admitted by `gate` (over TLS offering `h2` when `tls`
/// is given), as the stream of connections tonic serves. Accepting stops when `shutdown`
/// resolves, which ends the stream.
pub fn grpc_incoming(
    listener: TcpListener,
    gate: Gate,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Admitted>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    let acceptor = tls.map(|tls| tls.acceptor(b"h2"));
    tokio::spawn(async move {
        let closed = sender.clone();
        let shutdown = async move {
            tokio::select! {
                () = shutdown => {}
                // tonic stopped taking connections.
                () = closed.closed() => {}
            }
        };
        accept_loop(listener, gate, acceptor, Protocol::Http2, shutdown, || {
            let sender = sender.clone();
            move |admitted: Admitted| async move {
                let _ = sender.send(Ok(admitted)).await;
            }
        })
        .await;
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
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
async fn read_first_head(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
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

/// Reads the first bytes of an HTTP/2 connection, as many as its preface has, and returns
/// them (hyper checks that they are the preface). Ends with an error if the client closes
/// first.
async fn read_preface(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut preface = vec![0u8; HTTP2_PREFACE.len()];
    stream.read_exact(&mut preface).await?;
    Ok(preface)
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
struct Prefixed<S> {
    prefix: Vec<u8>,
    offset: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            offset: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
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

impl AsyncRead for Admitted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(stream) => stream.is_write_vectored(),
            Io::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
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
        let mut stream = stream;
        let head = read_first_head(&mut stream).await.unwrap();
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
