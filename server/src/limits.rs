//! [`Limits`]: the request and batch bounds every route enforces (listed in the README).

use std::time::Duration;

/// Request and batch limits. Over a limit is a 4xx whose message names the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, except importbulk (default 4 MiB).
    pub max_body_bytes: usize,
    /// Largest importbulk body (default 64 MiB).
    pub max_import_body_bytes: usize,
    /// Most updates in one write (default 1000).
    pub max_updates_per_write: usize,
    /// Most preconditions in one write or delete (default 1000).
    pub max_preconditions: usize,
    /// Most items in one checkbulk (default 1000).
    pub max_checkbulk_items: usize,
    /// Largest `optionalLimit` / `optionalConcreteLimit` of read and lookups (default 1000).
    pub max_page_size: usize,
    /// Largest `optionalLimit` (page size) of exportbulk (default 10000).
    pub max_export_page_size: usize,
    /// Most relationships in one importbulk request (default 100000).
    pub max_import_relationships: usize,
    /// Largest `optionalLimit` of a delete (default 100000).
    pub max_delete_limit: usize,
    /// Most watch streams open at once (default 1000); more is a 429.
    pub max_watch_streams: usize,
    /// Most client connections open at once, HTTP and gRPC together (default 1024).
    /// Further connections wait in the listen backlog until one closes. [`crate::serve::serve`] lowers it to what the
    /// process's open-file limit allows, after raising that limit as far as it may.
    pub max_connections: usize,
    /// Most connections open at once from one client address, to both listeners together
    /// (default 256). Beyond it a
    /// new connection from that address is closed at once, so one client cannot take the
    /// whole connection cap by opening sockets and sending nothing.
    pub max_connections_per_client: usize,
    /// Time a new connection has to send its first request's headers (default 5 s, and
    /// never more than `header_timeout`). Shorter than `header_timeout` because a client
    /// that connected and sends nothing is the cheapest attack on the connection cap.
    pub first_header_timeout: Duration,
    /// Time a client has to send a request's headers, and how long an idle keep-alive
    /// connection stays open (default 30 s). Then the connection is closed.
    pub header_timeout: Duration,
    /// Time a client has to send a request body once its headers arrived (default 30 s);
    /// then 408.
    pub body_timeout: Duration,
    /// Time the server has to start answering a request (default 60 s); then 504. A write
    /// that timed out may still commit: its outcome is unknown, as with any lost answer.
    pub request_timeout: Duration,
    /// A streamed answer whose client reads nothing for this long is ended (default 60 s).
    pub stream_stall_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 << 20,
            max_import_body_bytes: 64 << 20,
            max_updates_per_write: 1000,
            max_preconditions: 1000,
            max_checkbulk_items: 1000,
            max_page_size: 1000,
            max_export_page_size: 10_000,
            max_import_relationships: 100_000,
            max_delete_limit: 100_000,
            max_watch_streams: 1000,
            max_connections: 1024,
            max_connections_per_client: 256,
            first_header_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            stream_stall_timeout: Duration::from_secs(60),
        }
    }
}
