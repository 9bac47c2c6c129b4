use bson::{doc, rawdoc};

use super::*;

fn bytes(d: bson::Document) -> Vec<u8> {
    let mut v = Vec::new();
    d.to_writer(&mut v).unwrap();
    v
}

/// Builds an archive like mongodump does: namespaces interleaved in blocks, one EOF each.
fn archive(blocks: &[(&str, &str, Vec<bson::Document>)], closes: &[(&str, &str)]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(bytes(doc! {"concurrent_collections": 4_i32, "version": "0.1", "server_version": "4.4.29", "tool_version": "100.10.0"}));
    let mut all: Vec<(&str, &str)> = blocks.iter().map(|(d, c, _)| (*d, *c)).collect();
    all.dedup();
    for (d, c) in &all {
        out.extend(bytes(doc! {"db": *d, "collection": *c, "metadata": "{}", "size": 0_i32, "type": ""}));
    }
    out.extend((-1i32).to_le_bytes());
    let mut crcs: BTreeMap<String, Digest<'static, u64>> = BTreeMap::new();
    for (d, c, docs) in blocks {
        out.extend(bytes(doc! {"db": *d, "collection": *c, "EOF": false, "CRC": 0_i64}));
        let crc = crcs.entry(format!("{d}.{c}")).or_insert_with(|| CRC64.digest());
        for x in docs {
            let b = bytes(x.clone());
            crc.update(&b);
            out.extend(b);
        }
        out.extend((-1i32).to_le_bytes());
    }
    for (d, c) in closes {
        let crc = crcs.remove(&format!("{d}.{c}")).map(|c| c.finalize()).unwrap_or(0);
        out.extend(bytes(doc! {"db": *d, "collection": *c, "EOF": true, "CRC": crc as i64}));
        out.extend((-1i32).to_le_bytes());
    }
    out
}

fn sample() -> Vec<u8> {
    let devs = |r: std::ops::Range<i32>| r.map(|i| doc! {"_id": i, "status": "accepted"}).collect::<Vec<_>>();
    archive(
        &[
            ("deviceauth", "devices", devs(0..3)),
            ("useradm", "users", vec![doc! {"_id": "u1", "email": "a@example.com"}]),
            ("deviceauth", "devices", devs(3..5)),
            ("deviceauth", "devices", vec![]),
        ],
        &[("useradm", "users"), ("deviceauth", "devices"), ("inventory", "empty")],
    )
}

#[test]
fn counts_interleaved_namespaces_and_empty_segments() {
    let mut r = ArchiveReader::new();
    r.feed(&sample()).unwrap();
    let s = r.finish().unwrap();
    assert_eq!(s.server_version, "4.4.29");
    assert_eq!(s.namespaces["deviceauth.devices"].documents, 5);
    assert_eq!(s.namespaces["useradm.users"].documents, 1);
    assert_eq!(s.namespaces["inventory.empty"].documents, 0);
}

#[test]
fn byte_by_byte_feeding_gives_the_same_summary() {
    let whole = {
        let mut r = ArchiveReader::new();
        r.feed(&sample()).unwrap();
        r.finish().unwrap()
    };
    let mut r = ArchiveReader::new();
    for b in sample() {
        r.feed(&[b]).unwrap();
    }
    assert_eq!(r.finish().unwrap(), whole);
}

#[test]
fn digest_ignores_order_but_not_content() {
    let mut a = DocDigest::default();
    let mut b = DocDigest::default();
    let (x, y) = (bytes(doc! {"_id": 1}), bytes(doc! {"_id": 2}));
    a.add(&x);
    a.add(&y);
    b.add(&y);
    b.add(&x);
    assert_eq!(a, b);
    let mut c = DocDigest::default();
    c.add(&x);
    c.add(&bytes(doc! {"_id": 3}));
    assert_ne!(a.hex(), c.hex());
    let _ = rawdoc! {};
}

#[test]
fn flipped_byte_is_a_crc_mismatch() {
    let mut a = sample();
    let needle = b"accepted";
    let pos = a.windows(needle.len()).position(|w| w == needle).unwrap();
    a[pos] ^= 0x01;
    let mut r = ArchiveReader::new();
    let err = r.feed(&a).err().unwrap();
    assert!(matches!(&err, ArchiveError::Crc { ns, .. } if ns == "deviceauth.devices"), "{err}");
}

#[test]
fn truncation_is_detected_wherever_it_happens() {
    let a = sample();
    for cut in [2, 10, a.len() / 2, a.len() - 5, a.len() - 4] {
        let mut r = ArchiveReader::new();
        let res = r.feed(&a[..cut]).and_then(|_| r.finish().map(|_| ()));
        assert!(res.is_err(), "cut at {cut} of {} went unnoticed", a.len());
    }
}

#[test]
fn gzip_members_and_raw_are_both_read() {
    use std::io::Write;
    let a = sample();
    let mut gz = Vec::new();
    for part in [&a[..a.len() / 3], &a[a.len() / 3..]] {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(part).unwrap();
        gz.extend(e.finish().unwrap());
    }
    let from_gz = read_archive(&gz[..]).unwrap();
    let from_raw = read_archive(&a[..]).unwrap();
    assert_eq!(from_gz, from_raw);
    assert!(matches!(read_archive(&b"not an archive at all"[..]), Err(ReadError::Archive(ArchiveError::NotAnArchive))));
}

#[test]
fn data_after_eof_and_bad_lengths_are_corrupt() {
    let mut a = sample();
    a.extend(bytes(doc! {"db": "useradm", "collection": "users", "EOF": false, "CRC": 0_i64}));
    let mut r = ArchiveReader::new();
    assert!(matches!(r.feed(&a), Err(ArchiveError::Corrupt { .. })));
    let mut b = sample();
    let p = 4 + bytes(doc! {"concurrent_collections": 4_i32, "version": "0.1", "server_version": "4.4.29", "tool_version": "100.10.0"}).len();
    b[p..p + 4].copy_from_slice(&(2_i32).to_le_bytes());
    let mut r = ArchiveReader::new();
    assert!(matches!(r.feed(&b), Err(ArchiveError::Corrupt { .. })));
}
