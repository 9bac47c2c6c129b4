//! Encrypted bundles: every file of a bundle but the manifest and its checksum is an age file
//! (X25519 recipients, the `age` crate), written as a stream and read back as one. The manifest
//! says a bundle is encrypted and to whom; [`BundleReader`] is the one way the stages read a
//! bundle's files, decrypting when the manifest says so.
//!
//! Identities are secrets: only the identity file's path is ever shown; its content never reaches
//! a log, an error or a report.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::stream::{StreamReader, StreamWriter};
use serde::{Deserialize, Serialize};

use super::bundle::{ARCHIVE, MANIFEST, MANIFEST_SUM};
use super::manifest::Manifest;

/// The environment variable that names the identity file when `--identity` is not given.
pub const IDENTITY_ENV: &str = "MENDER_COMPOSE_UPGRADE_IDENTITY";

/// What the manifest records of an encrypted bundle (`encryption` in `manifest.json`; absent for a
/// plain bundle).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Encryption {
    /// `age` (age v1 files, <https://age-encryption.org/v1>).
    pub scheme: String,
    /// The recipients every file is encrypted to (`age1…` public keys; not secret).
    pub recipients: Vec<String>,
    /// What `files[].sha256` covers: `ciphertext` (the bytes on disk), so that `verify` proves a
    /// bundle's integrity without the identity.
    pub checksums: String,
}

/// Why a bundle cannot be encrypted or read.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    /// A `--encrypt-to` value is not an age X25519 recipient.
    #[error("{0:?} is not an age recipient (an X25519 public key `age1…`)")]
    BadRecipient(String),
    /// A recipients file cannot be read (its path, the error).
    #[error("cannot read the recipients file {0}: {1}")]
    RecipientsFile(String, io::Error),
    /// A recipients file holds a line that is not a recipient (its path, the line number).
    #[error("the recipients file {0}: line {1} is not an age recipient (`age1…`)")]
    RecipientsLine(String, usize),
    /// `--encrypt-to-file` named files that hold no recipient.
    #[error("no recipient: the recipients file(s) are empty")]
    NoRecipients,
    /// The bundle is encrypted and no identity was given.
    #[error(
        "the bundle {bundle} is encrypted (to {}) and no identity was given",
        .recipients.join(", ")
    )]
    NoIdentity {
        /// The bundle directory.
        bundle: String,
        /// Its recipients, from the manifest.
        recipients: Vec<String>,
    },
    /// The identity file cannot be read or holds no identity (its path, what is wrong; never its
    /// content).
    #[error("cannot use the identity file {0}: {1}")]
    IdentityFile(String, String),
    /// None of the identities opens the bundle.
    #[error(
        "the identity file {identity} does not open the bundle {bundle}: it is encrypted to {}",
        .recipients.join(", ")
    )]
    WrongIdentity {
        /// The identity file's path.
        identity: String,
        /// The bundle directory.
        bundle: String,
        /// Its recipients, from the manifest.
        recipients: Vec<String>,
    },
    /// A file of the bundle is not an intact age file (damaged, cut short) or cannot be read.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl CryptError {
    fn file(path: &Path, e: impl std::fmt::Display) -> CryptError {
        CryptError::File { path: path.display().to_string(), reason: e.to_string() }
    }

    /// Whether the operator's identity is at fault (missing, unreadable, not the bundle's): the
    /// command refuses before anything changed.
    pub fn is_identity(&self) -> bool {
        matches!(self, CryptError::NoIdentity { .. } | CryptError::IdentityFile(..) | CryptError::WrongIdentity { .. })
    }
}

impl From<CryptError> for crate::exit::Failure {
    fn from(e: CryptError) -> crate::exit::Failure {
        use crate::exit::{Exit, Failure};
        let todo = match &e {
            CryptError::NoIdentity { .. } => {
                format!("give the age identity file of one of its recipients with --identity FILE (or {IDENTITY_ENV})")
            }
            CryptError::WrongIdentity { .. } | CryptError::IdentityFile(..) => {
                "give the age identity file (`age-keygen` output) of one of the bundle's recipients".to_string()
            }
            CryptError::BadRecipient(_) | CryptError::RecipientsLine(..) | CryptError::NoRecipients => {
                "give X25519 recipients (`age1…`, as age-keygen prints them) with --encrypt-to or --encrypt-to-file"
                    .to_string()
            }
            CryptError::RecipientsFile(..) => "check the recipients file's path and permissions".to_string(),
            CryptError::File { .. } => "do not rely on this bundle; run `verify` on it".to_string(),
        };
        let exit = match &e {
            CryptError::BadRecipient(_)
            | CryptError::RecipientsLine(..)
            | CryptError::NoRecipients
            | CryptError::RecipientsFile(..) => Exit::Usage,
            _ => Exit::Precondition,
        };
        Failure::new(exit, e, "nothing: no service was stopped", todo)
    }
}

/// The recipients a bundle is encrypted to.
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<age::x25519::Recipient>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Recipients {
    /// The recipients given on the command line (`age1…`, repeatable) and those of recipients
    /// files (one per line, `#` comments and blank lines skipped, as age's `-R`); `None` when
    /// neither was given (a plain bundle).
    ///
    /// # Errors
    /// A value or a line that is not an X25519 recipient, an unreadable file, files without any.
    pub fn parse(given: &[String], files: &[PathBuf]) -> Result<Option<Recipients>, CryptError> {
        if given.is_empty() && files.is_empty() {
            return Ok(None);
        }
        let mut keys = Vec::new();
        for g in given {
            let r = age::x25519::Recipient::from_str(g.trim()).map_err(|_| CryptError::BadRecipient(g.clone()))?;
            keys.push(r);
        }
        for path in files {
            let shown = path.display().to_string();
            let f = File::open(path).map_err(|e| CryptError::RecipientsFile(shown.clone(), e))?;
            for (i, line) in BufReader::new(f).lines().enumerate() {
                let line = line.map_err(|e| CryptError::RecipientsFile(shown.clone(), e))?;
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let r = age::x25519::Recipient::from_str(line)
                    .map_err(|_| CryptError::RecipientsLine(shown.clone(), i + 1))?;
                keys.push(r);
            }
        }
        if keys.is_empty() {
            return Err(CryptError::NoRecipients);
        }
        let mut seen = std::collections::BTreeSet::new();
        keys.retain(|k| seen.insert(k.to_string()));
        Ok(Some(Recipients { keys }))
    }

    /// The recipients as `age1…` strings, for the manifest.
    pub fn names(&self) -> Vec<String> {
        self.keys.iter().map(ToString::to_string).collect()
    }

    /// What the manifest records.
    pub fn encryption(&self) -> Encryption {
        Encryption { scheme: "age".into(), recipients: self.names(), checksums: "ciphertext".into() }
    }

    /// A writer that encrypts everything written to it into `out`; call
    /// [`StreamWriter::finish`] to write the last chunk (without it the file is cut short and will
    /// not decrypt).
    ///
    /// # Errors
    /// Writing the age header failed.
    pub fn encrypt<W: Write>(&self, out: W) -> io::Result<StreamWriter<W>> {
        let encryptor = age::Encryptor::with_recipients(self.keys.iter().map(|k| k as &dyn age::Recipient))
            .map_err(io::Error::other)?;
        encryptor.wrap_output(out)
    }

    /// Encrypts the file at `path` in place: streamed into a `.age-tmp` sibling (0600), synced,
    /// and renamed over it.
    ///
    /// # Errors
    /// What the file system answers; the original is then left as it was.
    pub fn encrypt_file(&self, path: &Path) -> io::Result<()> {
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".age-tmp");
        let tmp = PathBuf::from(tmp_name);
        let result = (|| {
            let mut input = File::open(path)?;
            let out = crate::util::private_file(&tmp)?;
            let mut w = self.encrypt(io::BufWriter::new(out))?;
            io::copy(&mut input, &mut w)?;
            let out = w.finish()?.into_inner().map_err(|e| e.into_error())?;
            out.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// The identities of an age identity file (`age-keygen` output, like `age -i`). Its `Debug` shows
/// the path only.
pub struct Identities {
    path: PathBuf,
    ids: Vec<Box<dyn age::Identity + Send + Sync>>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({})", self.path.display())
    }
}

impl Identities {
    /// Reads an identity file.
    ///
    /// # Errors
    /// [`CryptError::IdentityFile`]: unreadable, a line that is not an identity (reported by its
    /// number, never its content), or no identity at all.
    pub fn load(path: &Path) -> Result<Identities, CryptError> {
        let shown = path.display().to_string();
        let bad = |why: String| CryptError::IdentityFile(shown.clone(), why);
        let file = File::open(path).map_err(|e| bad(e.to_string()))?;
        // age's parser reports a bad line by its number, never its content.
        let parsed = age::IdentityFile::from_buffer(BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
        let ids = parsed.into_identities().map_err(|e| bad(e.to_string()))?;
        if ids.is_empty() {
            return Err(bad("it holds no age identity (AGE-SECRET-KEY-1…)".into()));
        }
        Ok(Identities { path: path.to_path_buf(), ids })
    }

    /// The identity file's path (safe to show).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader of the plaintext of the age stream `input`.
    ///
    /// # Errors
    /// `Err(None)` when no identity opens it; `Err(Some(reason))` when it is not an age file.
    pub fn decrypt<R: Read>(&self, input: R) -> Result<StreamReader<R>, Option<String>> {
        let d = age::Decryptor::new(input).map_err(|e| Some(e.to_string()))?;
        d.decrypt(self.ids.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => None,
            other => Some(other.to_string()),
        })
    }
}

/// The one reader of a bundle's files: plain files as they are, an encrypted bundle's decrypted
/// with the operator's identity. Every stage that reads a bundle's data goes through it.
#[derive(Debug)]
pub struct BundleReader {
    dir: PathBuf,
    files: Vec<String>,
    ids: Option<Identities>,
}

impl BundleReader {
    /// The reader of the bundle in `dir` whose manifest is `m`. For an encrypted bundle, the
    /// identity is loaded and tried on one file's header, so a missing or wrong identity is found
    /// before anything starts. An identity given for a plain bundle is not needed and not read.
    ///
    /// # Errors
    /// [`CryptError::NoIdentity`], [`CryptError::IdentityFile`], [`CryptError::WrongIdentity`], or
    /// [`CryptError::File`] when the file tried is not an age file.
    pub fn open(dir: &Path, m: &Manifest, identity: Option<&Path>) -> Result<BundleReader, CryptError> {
        let files: Vec<String> = m.files.iter().map(|f| f.path.clone()).collect();
        let Some(enc) = &m.encryption else {
            return Ok(BundleReader { dir: dir.to_path_buf(), files, ids: None });
        };
        let Some(identity) = identity else {
            return Err(CryptError::NoIdentity {
                bundle: dir.display().to_string(),
                recipients: enc.recipients.clone(),
            });
        };
        let ids = Identities::load(identity)?;
        // The archive when there is one: every file has the same recipients.
        let probe = files.iter().find(|f| *f == ARCHIVE).or_else(|| files.first());
        if let Some(rel) = probe {
            let path = dir.join(rel);
            let f = File::open(&path).map_err(|e| CryptError::file(&path, e))?;
            match ids.decrypt(BufReader::new(f)) {
                Ok(_) => {}
                Err(None) => {
                    return Err(CryptError::WrongIdentity {
                        identity: identity.display().to_string(),
                        bundle: dir.display().to_string(),
                        recipients: enc.recipients.clone(),
                    });
                }
                Err(Some(why)) => return Err(CryptError::file(&path, format!("not an age file: {why}"))),
            }
        }
        Ok(BundleReader { dir: dir.to_path_buf(), files, ids: Some(ids) })
    }

    /// A reader of an encrypted bundle without the identity: [`BundleReader::read`] fails, the
    /// bytes on disk (and so the checksums) can still be checked.
    pub fn encrypted(&self) -> bool {
        self.ids.is_some()
    }

    /// The bundle directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The plaintext of the bundle file `rel` (`mongo.archive.gz`, `snapshot.json`), streamed.
    ///
    /// # Errors
    /// [`CryptError::File`]: the file cannot be opened, or no identity opens it. A damaged or
    /// truncated ciphertext shows as an `io::Error` while reading.
    pub fn read(&self, rel: &str) -> Result<Box<dyn Read + Send>, CryptError> {
        let path = self.dir.join(rel);
        let f = File::open(&path).map_err(|e| CryptError::file(&path, e))?;
        match &self.ids {
            None => Ok(Box::new(f)),
            Some(ids) => match ids.decrypt(BufReader::new(f)) {
                Ok(r) => Ok(Box::new(r)),
                Err(None) => Err(CryptError::file(&path, "the identity does not open it")),
                Err(Some(why)) => Err(CryptError::file(&path, format!("not an age file: {why}"))),
            },
        }
    }

    /// The whole plaintext of a small bundle file (a JSON document, an inventory).
    ///
    /// # Errors
    /// As [`BundleReader::read`], and a damaged ciphertext.
    pub fn read_all(&self, rel: &str) -> Result<Vec<u8>, CryptError> {
        let mut out = Vec::new();
        self.read(rel)?.read_to_end(&mut out).map_err(|e| CryptError::file(&self.dir.join(rel), e))?;
        Ok(out)
    }

    /// A directory with the bundle's files in clear, for what reads files by path (mongorestore
    /// and the artifact upload in sidecars bind-mount them, the compose tree is copied): the
    /// bundle itself when it is plain; for an encrypted one, a private (0700) directory beside
    /// the bundle with the files under `prefixes` decrypted, streamed, removed when the
    /// [`PlainDir`] is dropped.
    ///
    /// # Errors
    /// A file that does not decrypt, or the file system.
    pub fn plain_dir(&self, prefixes: &[&str]) -> Result<PlainDir, CryptError> {
        if self.ids.is_none() {
            return Ok(PlainDir { path: self.dir.clone(), temporary: false });
        }
        let name = self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let parent = self.dir.parent().unwrap_or(Path::new("."));
        let stem = format!(".{name}.decrypted-");
        // A killed run's clear copy (its pid gone) is removed: it must not outlive the run.
        for e in fs::read_dir(parent).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = n.strip_prefix(&stem).and_then(|p| p.parse::<u32>().ok())
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        let path = parent.join(format!("{stem}{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|e| CryptError::file(&path, e))?;
        }
        crate::util::private_dir(&path).map_err(|e| CryptError::file(&path, e))?;
        let plain = PlainDir { path, temporary: true };
        let wanted = |rel: &str| {
            rel != MANIFEST
                && rel != MANIFEST_SUM
                && prefixes.iter().any(|p| rel == *p || rel.starts_with(&format!("{p}/")))
        };
        for rel in self.files.iter().filter(|r| wanted(r)) {
            let to = plain.path.join(rel);
            if let Some(d) = to.parent() {
                crate::util::private_dir(d).map_err(|e| CryptError::file(d, e))?;
            }
            let mut out = crate::util::private_file(&to).map_err(|e| CryptError::file(&to, e))?;
            io::copy(&mut self.read(rel)?, &mut out).map_err(|e| CryptError::file(&self.dir.join(rel), e))?;
        }
        Ok(plain)
    }
}

/// A bundle's files in clear (see [`BundleReader::plain_dir`]).
#[derive(Debug)]
pub struct PlainDir {
    path: PathBuf,
    temporary: bool,
}

impl PlainDir {
    /// The directory, laid out as the bundle.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PlainDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
        let id = age::x25519::Identity::generate();
        let path = dir.join(name);
        fs::write(
            &path,
            format!("# created: now\n# public key: {}\n{}\n", id.to_public(), id.to_string().expose_secret()),
        )
        .unwrap();
        (path, id.to_public().to_string())
    }

    fn seal(r: &Recipients, data: &[u8]) -> Vec<u8> {
        let mut w = r.encrypt(Vec::new()).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn round_trip_wrong_key_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let (id_a, pub_a) = keypair(dir.path(), "a.key");
        let (id_b, _) = keypair(dir.path(), "b.key");
        let r = Recipients::parse(std::slice::from_ref(&pub_a), &[]).unwrap().unwrap();
        assert_eq!(r.names(), [pub_a]);
        // Several chunks (age's are 64 KiB), so a cut falls inside the stream.
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let sealed = seal(&r, &data);
        assert!(!sealed.windows(64).any(|w| w == &data[..64]), "the ciphertext holds no plaintext");

        let a = Identities::load(&id_a).unwrap();
        let mut back = Vec::new();
        a.decrypt(&sealed[..]).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);

        let b = Identities::load(&id_b).unwrap();
        assert!(matches!(b.decrypt(&sealed[..]), Err(None)), "another key does not open it");

        let cut = &sealed[..sealed.len() - 1000];
        let mut partial = Vec::new();
        let err = a.decrypt(cut).unwrap().read_to_end(&mut partial).unwrap_err();
        assert_ne!(partial.len(), data.len(), "{err}");
        let mut flipped = sealed.clone();
        let n = flipped.len() / 2;
        flipped[n] ^= 1;
        assert!(a.decrypt(&flipped[..]).unwrap().read_to_end(&mut Vec::new()).is_err(), "a changed byte is caught");
        assert!(matches!(a.decrypt(&b"not age"[..]), Err(Some(_))));
    }

    #[test]
    fn recipients_from_flags_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let (_, p1) = keypair(dir.path(), "1.key");
        let (_, p2) = keypair(dir.path(), "2.key");
        let file = dir.path().join("recipients.txt");
        fs::write(&file, format!("# ops team\n\n{p2}\n{p1}\n")).unwrap();
        let r = Recipients::parse(std::slice::from_ref(&p1), std::slice::from_ref(&file)).unwrap().unwrap();
        assert_eq!(r.names(), [p1.clone(), p2], "given first, duplicates once");
        assert!(Recipients::parse(&[], &[]).unwrap().is_none(), "plain by default");
        assert!(matches!(Recipients::parse(&["age1nope".into()], &[]), Err(CryptError::BadRecipient(_))));
        fs::write(&file, "AGE-SECRET-KEY-1XYZ\n").unwrap();
        let e = Recipients::parse(&[], std::slice::from_ref(&file)).unwrap_err();
        assert!(matches!(e, CryptError::RecipientsLine(_, 1)), "{e}");
        assert!(!e.to_string().contains("AGE-SECRET"), "a secret pasted by mistake is not echoed: {e}");
        fs::write(&file, "# nobody\n").unwrap();
        assert!(matches!(Recipients::parse(&[], &[file]), Err(CryptError::NoRecipients)));
    }

    #[test]
    fn identity_errors_never_show_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        fs::write(&path, "AGE-SECRET-KEY-1QQQQ-not-a-key\n").unwrap();
        let e = Identities::load(&path).unwrap_err().to_string();
        assert!(e.contains("bad.key") && !e.contains("QQQQ"), "{e}");
        let e = Identities::load(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
        let (good, _) = keypair(dir.path(), "good.key");
        let ids = Identities::load(&good).unwrap();
        assert!(!format!("{ids:?}").contains("AGE-SECRET"));
    }

    #[test]
    fn files_encrypt_in_place_and_the_reader_decrypts_them() {
        let dir = tempfile::tempdir().unwrap();
        let keys = tempfile::tempdir().unwrap();
        let (id, pubkey) = keypair(keys.path(), "id.key");
        let (other, _) = keypair(keys.path(), "other.key");
        let bundle = dir.path().join("b");
        fs::create_dir_all(bundle.join("compose")).unwrap();
        fs::write(bundle.join(ARCHIVE), b"archive bytes").unwrap();
        fs::write(bundle.join("compose/k.pem"), b"-----BEGIN RSA PRIVATE KEY-----").unwrap();
        let r = Recipients::parse(&[pubkey], &[]).unwrap().unwrap();
        r.encrypt_file(&bundle.join(ARCHIVE)).unwrap();
        r.encrypt_file(&bundle.join("compose/k.pem")).unwrap();
        let on_disk = fs::read(bundle.join("compose/k.pem")).unwrap();
        assert!(!String::from_utf8_lossy(&on_disk).contains("BEGIN"));
        assert!(!bundle.join("compose/k.pem.age-tmp").exists());

        let m = Manifest {
            encryption: Some(r.encryption()),
            files: [ARCHIVE, "compose/k.pem"]
                .iter()
                .map(|p| super::super::manifest::FileEntry { path: p.to_string(), size: 0, sha256: String::new() })
                .collect(),
            ..super::super::manifest::tests::manifest()
        };
        let e = BundleReader::open(&bundle, &m, None).unwrap_err();
        assert!(matches!(e, CryptError::NoIdentity { .. }) && e.is_identity(), "{e}");
        let e = BundleReader::open(&bundle, &m, Some(&other)).unwrap_err();
        assert!(matches!(e, CryptError::WrongIdentity { .. }), "{e}");
        let reader = BundleReader::open(&bundle, &m, Some(&id)).unwrap();
        assert_eq!(reader.read_all(ARCHIVE).unwrap(), b"archive bytes");
        let plain = reader.plain_dir(&["compose"]).unwrap();
        let p = plain.path().to_path_buf();
        assert_eq!(fs::read(p.join("compose/k.pem")).unwrap(), b"-----BEGIN RSA PRIVATE KEY-----");
        assert!(!p.join(ARCHIVE).exists(), "only what was asked for");
        drop(plain);
        assert!(!p.exists(), "the clear copy is removed");

        let plain_manifest = Manifest { encryption: None, ..m };
        let reader = BundleReader::open(&bundle, &plain_manifest, Some(&other)).unwrap();
        assert_eq!(reader.plain_dir(&["compose"]).unwrap().path(), bundle, "a plain bundle is read where it is");
    }
}
