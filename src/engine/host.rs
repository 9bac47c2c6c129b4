//! The host's own filesystem facts.

use std::path::Path;

/// Bytes available to this user on the filesystem holding `path` (or its nearest existing parent).
///
/// # Errors
/// What `statvfs` answers.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let mut p = path;
    while !p.exists() {
        p = p.parent().unwrap_or(Path::new("/"));
    }
    let st = nix::sys::statvfs::statvfs(p).map_err(std::io::Error::from)?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}
