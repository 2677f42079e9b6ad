//! [`Limits`]: the request and batch bounds every route enforces (listed in the README).

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
        }
    }
}
