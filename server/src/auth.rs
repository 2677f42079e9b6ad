//! Bearer-key authentication: [`ApiKey`], compared in constant time, and the middleware
//! that guards every route but `/healthz`.

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::AppState;

/// The preshared key. Its `Debug` form never shows the key, so it cannot reach a log.
#[derive(Clone)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKey {
    /// A key from text (surrounding whitespace trimmed); empty keys are refused.
    pub fn new(key: impl Into<String>) -> Result<Self, String> {
        let key = key.into().trim().to_string();
        if key.is_empty() {
            return Err("the API key is empty".to_string());
        }
        if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the API key contains whitespace or control characters".to_string());
        }
        Ok(ApiKey(key))
    }

    /// Whether `presented` is this key, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// The key text, for clients that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Where [`resolve_key`] found or put the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Read from `--key-file`.
    File(PathBuf),
    /// Read from the `PEMBA_KEY` environment variable.
    Env,
    /// Read from the data directory, where an earlier start generated it.
    Stored(PathBuf),
    /// Generated now and stored at this path (mode 0600).
    Generated(PathBuf),
}

/// The file in the data directory holding a generated key.
pub const KEY_FILE: &str = "api-key";

/// The key from `key_file`, else `env_key`, else the data directory's generated key (made
/// on first start, 32 random bytes in hex, mode 0600).
pub fn resolve_key(
    key_file: Option<&Path>,
    env_key: Option<String>,
    data_dir: &Path,
) -> Result<(ApiKey, KeySource), String> {
    if let Some(path) = key_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read key file `{}`: {e}", path.display()))?;
        let key = ApiKey::new(text).map_err(|e| format!("key file `{}`: {e}", path.display()))?;
        return Ok((key, KeySource::File(path.to_path_buf())));
    }
    if let Some(text) = env_key.filter(|k| !k.trim().is_empty()) {
        let key = ApiKey::new(text).map_err(|e| format!("PEMBA_KEY: {e}"))?;
        return Ok((key, KeySource::Env));
    }
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read key file `{}`: {e}", path.display()))?;
        let key = ApiKey::new(text).map_err(|e| format!("key file `{}`: {e}", path.display()))?;
        return Ok((key, KeySource::Stored(path)));
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create `{}`: {e}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot generate a key: {e}"))?;
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .map_err(|e| format!("cannot write key file `{}`: {e}", path.display()))?;
    writeln!(file, "{text}").map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    let key = ApiKey::new(text)?;
    Ok((key, KeySource::Generated(path)))
}

/// The key a request presents as `Authorization: Bearer KEY`, or why it presents none.
fn presented(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("missing `Authorization: Bearer KEY` header"))?;
    header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthenticated("the `Authorization` header must be `Bearer KEY`"))
}

/// Whether `headers` carry `Authorization: Bearer <the key>` (for public routes that show
/// more to a caller with the key).
pub fn presents_key(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    presented(headers).is_ok_and(|key| state.key.matches(key))
}

/// Refuses `headers` unless they carry `Authorization: Bearer <the key>` (401, code 16).
pub(crate) fn authorize(state: &AppState, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let presented = presented(headers)?;
    if !state.key.matches(presented) {
        return Err(ApiError::unauthenticated("invalid API key"));
    }
    Ok(())
}

/// Middleware: refuses a request without `Authorization: Bearer <key>` (401, code 16).
pub async fn require_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    authorize(&state, request.headers())?;
    Ok(next.run(request).await)
}
