//! Documents shaped like the real services' (collection names and main fields), written by each
//! stand-in on first start and in bulk by `seed`.

use anyhow::Result;
use bson::{Document, doc};
use mongodb::Database;

use crate::identity::Resolved;

fn device_id(i: u64) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", i, i)
}

/// Attribute text that compresses like real inventory data does (hex of a hash chain, about 2:1).
fn filler(seed: u64, len: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut out = String::with_capacity(len + 64);
    let mut block = Sha256::digest(seed.to_le_bytes());
    while out.len() < len {
        out.push_str(&hex::encode(block));
        block = Sha256::digest(block);
    }
    out.truncate(len);
    out
}

/// A finished job (`StatusDone`; mendersoftware/workflows:model/job.go counts Done 0, Pending 1,
/// Processing 2, Failure 3): the queue of a used install holds finished jobs.
pub const JOB_DONE: i32 = 0;

/// `n` documents of `kind` numbered from `start`; `pad` bytes of inventory-like attributes make
/// documents as large as a busy install's.
pub fn documents(kind: &str, start: u64, n: u64, pad: usize) -> Vec<(&'static str, Document)> {
    let now = bson::DateTime::now();
    (start..start + n)
        .flat_map(|i| {
            let id = device_id(i);
            let filler = filler(i, pad);
            match kind {
                "deviceauth" => vec![
                    ("devices", doc! {"_id": &id, "id_data": format!("{{\"mac\":\"02:00:00:{:02x}:{:02x}:{:02x}\"}}", (i >> 16) & 255, (i >> 8) & 255, i & 255), "status": "accepted", "created_ts": now, "updated_ts": now, "tenant_id": ""}),
                    ("auth_sets", doc! {"_id": format!("as-{id}"), "device_id": &id, "pubkey": format!("-----BEGIN PUBLIC KEY-----\nMFkw{id}\n-----END PUBLIC KEY-----\n"), "status": "accepted", "ts": now}),
                ],
                "inventory" => vec![("devices", doc! {
                    "_id": &id, "updated_ts": now, "group": if i % 3 == 0 { "production" } else { "field" },
                    "attributes": {"identity-mac": {"scope": "identity", "value": format!("02:00:00:00:00:{:02x}", i & 255)},
                                   "inventory-device_type": {"scope": "inventory", "value": "raspberrypi4"},
                                   "inventory-artifact_name": {"scope": "inventory", "value": "release-1"},
                                   "inventory-notes": {"scope": "inventory", "value": &filler}},
                })],
                "deployments" => vec![("deployments", doc! {"_id": format!("dep-{i:08}"), "name": format!("rollout {i}"), "artifact_name": "release-1", "status": "finished", "created": now, "device_count": 1_i32, "stats": {"success": 1_i32}})],
                "useradm" => vec![("users", doc! {"_id": format!("user-{i:08}"), "email": format!("user{i}@example.com"), "password": "$2a$10$Y9X8Kq4wVb4s7oJ0Y1jL0uXmHq2Xo3nQW2v1g3F7bW8h0Z6y9K5aC", "created_ts": now, "tenant_id": ""})],
                "workflows" => vec![("jobs", doc! {"_id": format!("job-{i:08}"), "workflow_name": "provision_device", "status": JOB_DONE, "input_parameters": [{"name": "device_id", "value": &id}], "insert_time": now})],
                "deviceconnect" => vec![("devices", doc! {"_id": &id, "status": "disconnected", "created_ts": now, "updated_ts": now})],
                "deviceconfig" => vec![("devices", doc! {"_id": &id, "configured": [], "reported": [{"key": "timezone", "value": "UTC"}], "updated_ts": now})],
                "iot-manager" => vec![("integrations", doc! {"_id": format!("int-{i:08}"), "provider": "iot-hub", "credentials": {"type": "sas"}})],
                _ => vec![],
            }
        })
        .collect()
}

/// A few documents on first start, like a freshly used install.
pub async fn ensure(r: &Resolved, db: &Database) -> Result<()> {
    let kind = r.kind();
    let docs = documents(&kind, 0, 3, 64);
    // The first sample collection doubles as the marker of an install that was used before.
    let Some((marker, _)) = docs.first() else {
        return Ok(());
    };
    if db.collection::<Document>(marker).count_documents(doc! {}).await? > 0 {
        return Ok(());
    }
    if kind == "deployments" {
        crate::artifacts::ensure_samples(db).await?;
    }
    insert(db, docs).await
}

pub async fn insert(db: &Database, docs: Vec<(&'static str, Document)>) -> Result<()> {
    let mut by_coll: std::collections::BTreeMap<&str, Vec<Document>> = Default::default();
    for (c, d) in docs {
        by_coll.entry(c).or_default().push(d);
    }
    for (c, docs) in by_coll {
        if !docs.is_empty() {
            db.collection::<Document>(c).insert_many(docs).await?;
        }
    }
    Ok(())
}
