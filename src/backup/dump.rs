//! The database dump: `mongodump --archive` in a sidecar of the stack's own mongo image on the
//! project network, its stdout streamed through the tool (attached before start), parsed as it
//! passes (namespaces, counts, CRCs, digests), compressed by a parallel gzip and hashed on the
//! way to disk. Memory stays bounded by the pipe and the compressor's blocks.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bollard::Docker;
use gzp::ZWriter;
use gzp::deflate::Gzip;
use gzp::par::compress::{Compression, ParCompressBuilder};
use tokio_util::io::SyncIoBridge;

use age::stream::StreamWriter;

use super::bundle::HashingWriter;
use super::crypt::Recipients;
use crate::engine::sidecar::{SidecarError, SidecarSpec, run_to_writer};
use crate::util::private_file;
use mongo_archive::{ArchiveError, ArchiveReader, ArchiveSummary};

/// Why a dump failed; the partial archive file is left for the caller to discard.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Reading the stream or writing, syncing the file failed (a full disk, most often).
    #[error("writing the archive failed: {0}")]
    Write(std::io::Error),
    /// The bytes mongodump wrote are not an intact archive (cut short, a CRC mismatch).
    #[error("the archive mongodump produced is not valid: {0}")]
    Archive(ArchiveError),
    /// mongodump exited non-zero.
    #[error("mongodump failed (exit {code}): {stderr}")]
    Mongodump {
        /// mongodump's exit code.
        code: i64,
        /// The last 5 lines of its stderr.
        stderr: String,
    },
    /// The sidecar could not be created, started or attached.
    #[error(transparent)]
    Sidecar(SidecarError),
    /// The parallel gzip could not start or finish (or the writing thread panicked).
    #[error("the compressor failed: {0}")]
    Compress(String),
}

/// A dump written to disk.
#[derive(Debug, Clone)]
pub struct Dumped {
    /// sha256 (hex) of the compressed file, as the manifest records it.
    pub sha256: String,
    /// Size in bytes of the compressed file.
    pub size: u64,
    /// Size in bytes of the raw archive stream, before compression.
    pub raw_bytes: u64,
    /// What the archive holds, per namespace, read as it passed.
    pub summary: ArchiveSummary,
}

/// Where mongodump runs and what it reads.
pub struct DumpSource<'a> {
    /// The stack's own mongo image (`mongo:4.4`), which carries the mongodump of its server.
    pub image: &'a str,
    /// The compose project's network, where the mongo service's name resolves.
    pub network: &'a str,
    /// The connection string mongodump reads (`mongodb://mongo:27017`).
    pub uri: String,
    /// Labels for the sidecar container, so a cleanup finds it.
    pub labels: HashMap<String, String>,
}

/// Pipe capacity between the sidecar's output and the compressing thread.
const PIPE: usize = 4 * 1024 * 1024;

/// Dumps the whole server into `out` (a `.archive.gz` file created 0600), compressing with
/// `threads` threads; `progress` counts the raw archive bytes as they pass. With `recipients`,
/// the compressed stream is age-encrypted on its way to disk (the checksum is the ciphertext's).
///
/// # Errors
/// [`DumpError`]: the writer's failure first (it explains a sidecar's broken pipe), then the
/// sidecar's, then mongodump's exit code.
pub async fn dump(
    docker: &Docker,
    src: &DumpSource<'_>,
    out: PathBuf,
    threads: usize,
    progress: Arc<AtomicU64>,
    recipients: Option<Recipients>,
) -> Result<Dumped, DumpError> {
    let (mut tx, rx) = tokio::io::duplex(PIPE);
    let writer =
        tokio::task::spawn_blocking(move || write_archive(SyncIoBridge::new(rx), out, threads, &progress, recipients));
    let spec = SidecarSpec {
        image: src.image.to_string(),
        cmd: vec!["mongodump".into(), format!("--uri={}", src.uri), "--archive".into()],
        network: Some(src.network.to_string()),
        labels: src.labels.clone(),
        ..Default::default()
    };
    let ran = run_to_writer(docker, &spec, &mut tx).await;
    drop(tx);
    // The writer's failure (a full disk) explains the sidecar's broken pipe: report it first.
    let written = writer.await.map_err(|e| DumpError::Compress(e.to_string()))?;
    let outcome = match (written, ran) {
        (Err(e), _) => return Err(e),
        (Ok(_), Err(e)) => return Err(DumpError::Sidecar(e)),
        (Ok(w), Ok(o)) => (w, o),
    };
    let (dumped, sidecar) = outcome;
    if sidecar.exit_code != 0 {
        return Err(DumpError::Mongodump { code: sidecar.exit_code, stderr: tail(&sidecar.stderr) });
    }
    Ok(dumped)
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.trim().lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// Where the compressed stream goes: the hashed file, through age when the bundle is encrypted.
enum Sink {
    Plain(HashingWriter<BufWriter<File>>),
    Sealed(StreamWriter<HashingWriter<BufWriter<File>>>),
}

impl Sink {
    /// Writes age's last chunk (an encrypted stream without it does not decrypt).
    fn finish(self) -> std::io::Result<HashingWriter<BufWriter<File>>> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Sealed(w) => w.finish(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Sealed(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Sealed(w) => w.flush(),
        }
    }
}

fn write_archive(
    mut input: impl Read,
    out: PathBuf,
    threads: usize,
    progress: &AtomicU64,
    recipients: Option<Recipients>,
) -> Result<Dumped, DumpError> {
    let file = private_file(&out).map_err(DumpError::Write)?;
    // The hash is of the bytes on disk: the ciphertext of an encrypted bundle.
    let (hashing, hash) = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let sink = match &recipients {
        None => Sink::Plain(hashing),
        Some(r) => Sink::Sealed(r.encrypt(hashing).map_err(DumpError::Write)?),
    };
    let mut gz = ParCompressBuilder::<Gzip>::new()
        .num_threads(threads.max(1))
        .map_err(|e| DumpError::Compress(e.to_string()))?
        .compression_level(Compression::new(3))
        .from_writer(sink);
    let mut parser = ArchiveReader::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut raw = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(DumpError::Write)?;
        if n == 0 {
            break;
        }
        raw += n as u64;
        progress.store(raw, Ordering::Relaxed);
        parser.feed(&buf[..n]).map_err(DumpError::Archive)?;
        gz.write_all(&buf[..n]).map_err(DumpError::Write)?;
    }
    let sink = gz.finish().map_err(|e| match e {
        gzp::GzpError::Io(io) => DumpError::Write(io),
        other => DumpError::Compress(other.to_string()),
    })?;
    let hashing = sink.finish().map_err(DumpError::Write)?;
    let mut file = hashing.into_inner().into_inner().map_err(|e| DumpError::Write(e.into_error()))?;
    file.flush().map_err(DumpError::Write)?;
    file.sync_all().map_err(DumpError::Write)?;
    let summary = parser.finish().map_err(DumpError::Archive)?;
    let (sha256, size) = hash.result();
    Ok(Dumped { sha256, size, raw_bytes: raw, summary })
}
