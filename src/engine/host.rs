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

/// How far process `pid` has moved in its open file whose path ends with `path` (whole components;
/// a container's process names its files by their path in the container), in bytes: the `pos:` of
/// `/proc/PID/fdinfo/FD`, as `pv --watchfd` reads it. `None` when the process is gone, does not
/// hold the file open, or its `/proc` entries are not readable by this user (another user's
/// process, without root).
pub fn open_file_offset(pid: u32, path: &str) -> Option<u64> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else { continue };
        if !target.ends_with(path) {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy())).ok()?;
        return info.lines().find_map(|l| l.strip_prefix("pos:")).and_then(|v| v.trim().parse().ok());
    }
    None
}

/// [`open_file_offset`] of the main process of the running container `name` (its pid from the
/// daemon); `None` when it is not running (yet) or the offset cannot be read.
pub async fn container_file_offset(docker: &bollard::Docker, name: &str, path: &str) -> Option<u64> {
    let c = docker.inspect_container(name, None).await.ok()?;
    let pid = c.state?.pid.filter(|p| *p > 0)?;
    open_file_offset(u32::try_from(pid).ok()?, path)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    /// The offset read from /proc is where this process stands in a file it reads.
    #[test]
    fn open_file_offset_follows_a_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive");
        std::fs::File::create(&path).unwrap().write_all(&[7u8; 10_000]).unwrap();
        let mut f = std::fs::File::open(&path).unwrap();
        let me = std::process::id();
        let name = path.to_str().unwrap();
        assert_eq!(super::open_file_offset(me, name), Some(0));
        let mut buf = [0u8; 4096];
        f.read_exact(&mut buf).unwrap();
        assert_eq!(super::open_file_offset(me, name), Some(4096));
        assert_eq!(super::open_file_offset(me, "archive"), Some(4096), "the file name alone finds it");
        assert_eq!(super::open_file_offset(me, "chive"), None, "only whole components match");
        drop(f);
        assert_eq!(super::open_file_offset(me, name), None, "a closed file has no offset");
    }
}
