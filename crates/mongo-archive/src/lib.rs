//! A reader of the mongodump `--archive` format (mongo-tools `common/archive`): magic, a prelude
//! of a header and collection metadata, then interleaved blocks of documents per namespace, each
//! namespace closed by an EOF block carrying a CRC-64 of all its documents. It is fed bytes as
//! they come (a dump in progress, or a file through a gzip decoder), holds at most one document,
//! and answers what a backup must prove: which namespaces, how many documents, intact or not.

#![warn(missing_docs)]

use std::collections::BTreeMap;

use bson::RawDocument;
use crc::{CRC_64_XZ, Crc, Digest};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// `mongo-tools` writes its CRC with Go's crc64 ECMA table, which is CRC-64/XZ.
static CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_XZ);
const MAGIC: [u8; 4] = [0x6d, 0xe2, 0x99, 0x81];
const TERMINATOR: i32 = -1;
/// mongo-tools accepts documents up to db.MaxBSONSize.
const MAX_DOC: usize = 16 * 1024 * 1024;

/// Why an archive stream is not a complete, intact mongodump archive.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    /// The stream does not start with mongo-tools' magic number `0x8199e26d`: not an archive (or a
    /// gzip stream fed without its decoder).
    #[error("not a mongodump archive (the magic number is missing)")]
    NotAnArchive,
    /// An item is malformed: a length out of range, invalid BSON, a document without its
    /// trailing zero, data for a namespace after its EOF block.
    #[error("corrupt archive at byte {offset}: {what}")]
    Corrupt {
        /// Offset in bytes, in the uncompressed archive, of the item that is wrong.
        offset: u64,
        /// What was found there (`document length -7`, `invalid BSON: …`).
        what: String,
    },
    /// A namespace's documents do not give the CRC-64 its EOF block records: the documents were
    /// altered or lost after mongodump wrote them.
    #[error("CRC mismatch in {ns}: the archive says {expected:#018x}, its documents give {actual:#018x}")]
    Crc {
        /// The namespace, `db.collection`.
        ns: String,
        /// The CRC recorded in the namespace's EOF block.
        expected: u64,
        /// The CRC computed over the documents read.
        actual: u64,
    },
    /// The stream stopped before the archive was complete; says where (inside an item, inside a block,
    /// before which namespace's EOF block).
    #[error("truncated archive: it ends {0}")]
    Truncated(String),
}

/// What an archive holds, per namespace `db.collection`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// `server_version` of the archive header: the MongoDB server mongodump read (`4.4.x` with Mender 3.x).
    pub server_version: String,
    /// `tool_version` of the archive header: the mongodump that wrote it (mongo-tools, `100.x`).
    pub tool_version: String,
    /// Every namespace whose EOF block was read, keyed `db.collection` (`deployment_service.deployments`).
    pub namespaces: BTreeMap<String, Namespace>,
}

/// One namespace's content as the archive holds it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Namespace {
    /// Number of documents in the namespace's blocks.
    pub documents: u64,
    /// Sum of the documents' BSON sizes, in bytes (uncompressed, without archive framing).
    pub bytes: u64,
    /// Order-independent digest of the documents' BSON bytes (see [`DocDigest`]).
    pub digest: String,
    /// `""` for a collection, `view` or `timeseries`.
    pub kind: String,
}

/// An order-independent digest of a set of documents: the wrapping sum of the first 16 bytes of
/// each document's SHA-256, with the count. The same documents in any order (a dump's order,
/// a restored collection's order) give the same value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocDigest {
    sum: u128,
    count: u64,
}

impl DocDigest {
    /// Counts one document, given as its raw BSON bytes.
    pub fn add(&mut self, doc: &[u8]) {
        let h = sha2::Sha256::digest(doc);
        let mut first = [0u8; 16];
        first.copy_from_slice(&h[..16]);
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(first));
        self.count += 1;
    }

    /// The digest as `<32 hex digits of the sum>-<count>`, the form stored in a bundle's manifest.
    pub fn hex(&self) -> String {
        format!("{:032x}-{}", self.sum, self.count)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Magic,
    Header,
    Prelude,
    BlockHeader,
    Body,
}

struct Open {
    crc: Digest<'static, u64>,
    digest: DocDigest,
    documents: u64,
    bytes: u64,
    closed: bool,
}

/// The push parser: fed the archive's bytes in order ([`ArchiveReader::feed`]), it checks each
/// namespace's CRC at its EOF block and gives the [`ArchiveSummary`] at the end
/// ([`ArchiveReader::finish`]).
pub struct ArchiveReader {
    state: State,
    buf: Vec<u8>,
    offset: u64,
    current: Option<String>,
    open: BTreeMap<String, Open>,
    kinds: BTreeMap<String, String>,
    summary: ArchiveSummary,
}

impl Default for ArchiveReader {
    fn default() -> Self {
        ArchiveReader {
            state: State::Magic,
            buf: Vec::new(),
            offset: 0,
            current: None,
            open: BTreeMap::new(),
            kinds: BTreeMap::new(),
            summary: ArchiveSummary::default(),
        }
    }
}

impl ArchiveReader {
    /// A reader expecting the magic number.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes the next bytes of the archive, in any chunking; a partial item is kept until the
    /// rest arrives.
    ///
    /// # Errors
    /// [`ArchiveError::NotAnArchive`], [`ArchiveError::Corrupt`] or [`ArchiveError::Crc`] at the
    /// first item that is wrong; the reader is not to be fed after an error.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), ArchiveError> {
        while !data.is_empty() {
            // A whole item at the front of `data`: parse it in place.
            if self.buf.is_empty()
                && let Some(n) = self.item_len(data)?
                && data.len() >= n
            {
                self.complete(&data[..n])?;
                data = &data[n..];
                continue;
            }
            let want = self.item_len(&self.buf)?.unwrap_or(4);
            let take = want.saturating_sub(self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.item_len(&self.buf)?.is_some_and(|n| self.buf.len() >= n) {
                let item = std::mem::take(&mut self.buf);
                self.complete(&item)?;
            }
        }
        Ok(())
    }

    /// The length of the item that starts with `bytes`, once its 4-byte prefix is there.
    fn item_len(&self, bytes: &[u8]) -> Result<Option<usize>, ArchiveError> {
        if bytes.len() < 4 {
            return Ok(None);
        }
        if self.state == State::Magic {
            return Ok(Some(4));
        }
        let len = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if len == TERMINATOR {
            return Ok(Some(4));
        }
        usize::try_from(len)
            .ok()
            .filter(|l| (5..=MAX_DOC).contains(l))
            .map(Some)
            .ok_or_else(|| self.corrupt(format!("document length {len}")))
    }

    /// Handles one whole item: the magic number, a terminator, or a document.
    fn complete(&mut self, item: &[u8]) -> Result<(), ArchiveError> {
        if self.state == State::Magic {
            if item != MAGIC {
                return Err(ArchiveError::NotAnArchive);
            }
            self.state = State::Header;
        } else if item.len() == 4 {
            self.terminator()?;
        } else {
            if item[item.len() - 1] != 0 {
                return Err(self.corrupt("document does not end with a zero byte".into()));
            }
            self.document(item)?;
        }
        self.offset += item.len() as u64;
        Ok(())
    }

    fn corrupt(&self, what: String) -> ArchiveError {
        ArchiveError::Corrupt { offset: self.offset, what }
    }

    fn raw<'a>(&self, doc: &'a [u8]) -> Result<&'a RawDocument, ArchiveError> {
        RawDocument::from_bytes(doc).map_err(|e| self.corrupt(format!("invalid BSON: {e}")))
    }

    fn terminator(&mut self) -> Result<(), ArchiveError> {
        match self.state {
            State::Prelude => self.state = State::BlockHeader,
            State::Body => {
                self.state = State::BlockHeader;
                self.current = None;
            }
            State::Header | State::BlockHeader => {
                return Err(self.corrupt("terminator where a header was expected".into()));
            }
            State::Magic => return Err(ArchiveError::NotAnArchive),
        }
        Ok(())
    }

    fn document(&mut self, doc: &[u8]) -> Result<(), ArchiveError> {
        match self.state {
            State::Header => {
                let d = self.raw(doc)?;
                self.summary.server_version = d.get_str("server_version").unwrap_or_default().to_string();
                self.summary.tool_version = d.get_str("tool_version").unwrap_or_default().to_string();
                self.state = State::Prelude;
            }
            State::Prelude => {
                let d = self.raw(doc)?;
                let ns =
                    format!("{}.{}", d.get_str("db").unwrap_or_default(), d.get_str("collection").unwrap_or_default());
                self.kinds.insert(ns, d.get_str("type").unwrap_or_default().to_string());
            }
            State::BlockHeader => self.block_header(doc)?,
            State::Body => {
                let ns = self.current.clone().unwrap_or_default();
                if let Some(o) = self.open.get_mut(&ns) {
                    o.crc.update(doc);
                    o.digest.add(doc);
                    o.documents += 1;
                    o.bytes += doc.len() as u64;
                }
            }
            State::Magic => return Err(ArchiveError::NotAnArchive),
        }
        Ok(())
    }

    fn block_header(&mut self, doc: &[u8]) -> Result<(), ArchiveError> {
        let d = self.raw(doc)?;
        let ns = format!("{}.{}", d.get_str("db").unwrap_or_default(), d.get_str("collection").unwrap_or_default());
        let eof = d.get_bool("EOF").unwrap_or(false);
        let crc = d.get_i64("CRC").unwrap_or(0) as u64;
        let entry = self.open.entry(ns.clone()).or_insert_with(|| Open {
            crc: CRC64.digest(),
            digest: DocDigest::default(),
            documents: 0,
            bytes: 0,
            closed: false,
        });
        if entry.closed {
            return Err(ArchiveError::Corrupt {
                offset: self.offset,
                what: format!("data for {ns} after its EOF block"),
            });
        }
        if eof {
            entry.closed = true;
            let actual = std::mem::replace(&mut entry.crc, CRC64.digest()).finalize();
            // A namespace that never had data (an empty collection, a view) closes with CRC 0.
            if crc != actual && !(crc == 0 && entry.documents == 0) {
                return Err(ArchiveError::Crc { ns, expected: crc, actual });
            }
            let kind = self.kinds.get(&ns).cloned().unwrap_or_default();
            let e = &self.open[&ns];
            let summary = Namespace { documents: e.documents, bytes: e.bytes, digest: e.digest.hex(), kind };
            self.summary.namespaces.insert(ns.clone(), summary);
        }
        self.current = Some(ns);
        self.state = State::Body;
        Ok(())
    }

    /// The summary, once the stream has ended; any unfinished item or open namespace is truncation.
    ///
    /// # Errors
    /// [`ArchiveError::Truncated`] when the stream ended before the archive was complete.
    pub fn finish(self) -> Result<ArchiveSummary, ArchiveError> {
        if !self.buf.is_empty() || matches!(self.state, State::Magic | State::Header | State::Prelude) {
            return Err(ArchiveError::Truncated(format!("inside an item at byte {}", self.offset)));
        }
        if self.state == State::Body {
            return Err(ArchiveError::Truncated("inside a block (no terminator)".into()));
        }
        if let Some((ns, _)) = self.open.iter().find(|(_, o)| !o.closed) {
            return Err(ArchiveError::Truncated(format!("before the EOF block of {ns}")));
        }
        Ok(self.summary)
    }
}

/// Reads a whole archive, gzip-compressed (any number of members, as `mongodump --archive --gzip`
/// or a parallel gzip writes it) or raw, told apart by the gzip magic `1f 8b`.
///
/// # Errors
/// [`ReadError::Io`] when the input cannot be read or decompressed; [`ReadError::Archive`] when
/// its content is not an intact, complete archive.
pub fn read_archive(mut input: impl std::io::Read) -> Result<ArchiveSummary, ReadError> {
    let mut head = [0u8; 2];
    input.read_exact(&mut head).map_err(ReadError::Io)?;
    let chained = std::io::Read::chain(&head[..], input);
    if head == [0x1f, 0x8b] { read_raw(flate2::read::MultiGzDecoder::new(chained)) } else { read_raw(chained) }
}

fn read_raw(mut input: impl std::io::Read) -> Result<ArchiveSummary, ReadError> {
    let mut reader = ArchiveReader::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut buf).map_err(ReadError::Io)?;
        if n == 0 {
            break;
        }
        reader.feed(&buf[..n]).map_err(ReadError::Archive)?;
    }
    reader.finish().map_err(ReadError::Archive)
}

/// Why [`read_archive`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading the input (the file, or the gzip decoder over it) failed; an input shorter than
    /// 2 bytes lands here too.
    #[error("cannot read the archive: {0}")]
    Io(std::io::Error),
    /// The bytes read are not an intact archive.
    #[error(transparent)]
    Archive(ArchiveError),
}

#[cfg(test)]
mod tests;
