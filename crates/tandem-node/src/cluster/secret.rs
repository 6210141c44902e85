//! The cluster secret: where it comes from, how it is checked, and the
//! keyed hash everything derived from it uses (gossip cluster id, node
//! identity, link challenges).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable that holds the cluster secret.
pub const SECRET_ENV: &str = "TANDEM_CLUSTER_SECRET";
/// Largest secret file read.
const MAX_SECRET_FILE: u64 = 4096;

pub(super) fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() < 16 || secret.len() > 256 {
        return Err("secret must be 16 to 256 bytes".into());
    }
    Ok(())
}

pub(super) fn read_secret_file(path: &std::path::Path) -> Result<String, String> {
    let fail = |e: &dyn std::fmt::Display| format!("secret_file {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| fail(&e))?;
    if meta.len() > MAX_SECRET_FILE {
        return Err(fail(&format_args!(
            "{} bytes; a secret file may be at most {MAX_SECRET_FILE}",
            meta.len()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the cluster secret file is readable by other users: chmod 600 it");
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(&e))?;
    Ok(text.trim_end().to_owned())
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_tag(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("hmac takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}
