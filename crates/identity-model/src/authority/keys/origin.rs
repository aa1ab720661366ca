//! Where an issuer's keys come from: its discovery document's `jwks_uri` (the default), a
//! `jwks_uri` given directly (no discovery: Kubernetes service-account and CI token issuers),
//! a JWK Set file (re-read when it changes; a version that does not parse leaves the last
//! good keys in use), or keys given inline. Every origin keeps the key cache's guarantees:
//! single-flight refreshes, the kid-miss cooldown, last-known-good keys within
//! `max_staleness`, readiness from [`super::KeyStatus`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use identity_model_core::{Error, ErrorKind, KeySet, KeySetLimits};

use super::{KeySource, unavailable};

/// How often a key file is looked at again (a `stat`; the file is read only when it changed).
pub(crate) const FILE_RECHECK: Duration = Duration::from_secs(5);
/// Inline keys never change: their "freshness" only paces the (free) background refresh.
pub(crate) const INLINE_FRESHNESS: Duration = Duration::from_secs(24 * 3600);

/// Where an [`crate::Authority`]'s keys come from ([`crate::AuthorityBuilder::keys_from`]).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum KeysFrom {
    /// The `jwks_uri` of the issuer's discovery document (the default).
    #[default]
    Discovery,
    /// This JWK Set URL, without discovery (the issuer string is still checked against `iss`).
    JwksUri(String),
    /// A JWK Set file, looked at again every 5 s and re-read when its size or modification
    /// time changed; a version that does not parse (or has no usable key) is refused and the
    /// last good keys stay in use.
    File(PathBuf),
    /// These keys, for good.
    Inline(Arc<KeySet>),
}

impl KeysFrom {
    /// `discovery`, `jwks_uri`, `jwks_file` or `keys`: for readiness reports and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeysFrom::Discovery => "discovery",
            KeysFrom::JwksUri(_) => "jwks_uri",
            KeysFrom::File(_) => "jwks_file",
            KeysFrom::Inline(_) => "keys",
        }
    }
}

/// What a key file looked like when it was last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

/// A read of a key file: unchanged since `stamp`, or its new keys.
pub(super) enum FileRead {
    Unchanged,
    Changed(KeySet, FileStamp),
}

impl KeySource {
    /// Reads the key file when it changed since `last` (on a blocking thread: the runtime's
    /// workers never wait on the disk).
    pub(super) async fn read_key_file(
        &self,
        path: &Path,
        last: Option<FileStamp>,
    ) -> Result<FileRead, Error> {
        let path = path.to_path_buf();
        let limits = KeySetLimits { max_bytes: self.cache.max_jwks_size, max_keys: self.cache.max_jwks_keys };
        let read = tokio::task::spawn_blocking(move || -> Result<FileRead, Error> {
            let shown = path.display().to_string();
            let meta = std::fs::metadata(&path).map_err(|e| unavailable(format!("key file {shown}: {e}")))?;
            let stamp = FileStamp { len: meta.len(), modified: meta.modified().ok() };
            if last == Some(stamp) {
                return Ok(FileRead::Unchanged);
            }
            if meta.len() > limits.max_bytes as u64 {
                return Err(unavailable(format!(
                    "key file {shown} is larger than {} bytes",
                    limits.max_bytes
                )));
            }
            let bytes = std::fs::read(&path).map_err(|e| unavailable(format!("key file {shown}: {e}")))?;
            let keys = KeySet::from_json_with(&bytes, limits)
                .map_err(|e| unavailable(format!("key file {shown}: {}", e.message())))?;
            if keys.is_empty() {
                return Err(unavailable(format!("key file {shown} has no usable key")));
            }
            Ok(FileRead::Changed(keys, stamp))
        });
        read.await
            .map_err(|e| Error::new(ErrorKind::KeysUnavailable, format!("key file read failed: {e}")))?
    }
}
