//! The few public API calls an end-to-end check makes through the gateway, answered like the
//! real services: useradm's login, deviceauth's auth requests, deployments' artifact list and
//! download link, the device counts of inventory and deviceauth.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use base64::Engine;
use bson::{Document, doc};
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use mongodb::Database;
use serde::{Deserialize, Serialize};

use crate::http::{Body, json, respond};

/// useradm's default key path (useradm@1.22.5:config/config.go `SettingServerPrivKeyPathDefault`),
/// overridden by `USERADM_SERVER_PRIV_KEY_PATH`.
const USERADM_KEY: &str = "/etc/useradm/rsa/private.pem";

/// The test-bed admin the seeder writes (password from `SEED_ADMIN_PASSWORD`, else this one).
pub const ADMIN_EMAIL: &str = "admin@docker.mender.io";
pub const ADMIN_PASSWORD: &str = "mender-demo-admin";

/// go-lib-micro@v0.0.0:rest_utils/rest_utils.go `RestErrWithLog`: `{"error", "request_id"}`, the
/// request id from `X-MEN-RequestID` or a new one.
fn error(req_id: &str, status: StatusCode, msg: &str) -> Response<Body> {
    json(status, serde_json::json!({"error": msg, "request_id": req_id}))
}

fn request_id(req: &Request<Incoming>) -> String {
    req.headers()
        .get("x-men-requestid")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
}

/// The management API answer of `kind` to `req`, or `None` when the stand-in does not play it.
pub async fn handle(kind: &str, db: Option<&Database>, req: Request<Incoming>) -> Option<Response<Body>> {
    let path = req.uri().path().to_string();
    let id = request_id(&req);
    let db = db?;
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let r = match (kind, req.method().clone(), segs.as_slice()) {
        ("useradm", Method::POST, ["api", "management", "v1", "useradm", "auth", "login"]) => {
            let creds = basic_auth(&req);
            login(db, creds, &id).await
        }
        ("useradm", Method::POST | Method::GET, ["api", "internal", "v1", "useradm", "auth", "verify"]) => {
            match bearer(&req).map(|t| verify(&t, &key_path())) {
                Some(Ok(_)) => Ok(respond(StatusCode::OK, "")),
                _ => Ok(error(&id, StatusCode::UNAUTHORIZED, "unauthorized")),
            }
        }
        ("deviceauth", Method::POST, ["api", "devices", "v1", "authentication", "auth_requests"]) => {
            let signed = req.headers().contains_key("x-men-signature");
            match req.into_body().collect().await {
                Ok(b) => Ok(auth_request(&b.to_bytes(), signed, &id)),
                Err(e) => Ok(error(&id, StatusCode::BAD_REQUEST, &format!("failed to decode auth request: {e}"))),
            }
        }
        ("deviceauth", Method::GET, ["api", "management", "v2", "devauth", "devices", "count"]) => match user(&req) {
            Some(_) => count(db, "devices").await.map(|n| json(StatusCode::OK, serde_json::json!({"count": n}))),
            None => Ok(error(&id, StatusCode::UNAUTHORIZED, "unauthorized")),
        },
        ("inventory", Method::GET, ["api", "management", "v1", "inventory", "devices"]) => match user(&req) {
            Some(_) => devices(db).await,
            None => Ok(error(&id, StatusCode::UNAUTHORIZED, "unauthorized")),
        },
        ("deployments", Method::GET, ["api", "management", "v1", "deployments", "artifacts"]) => match user(&req) {
            Some(_) => artifacts(db).await,
            None => Ok(error(&id, StatusCode::UNAUTHORIZED, "unauthorized")),
        },
        ("deployments", Method::GET, ["api", "management", "v1", "deployments", "artifacts", art, "download"]) => {
            match user(&req) {
                Some(_) => download(db, art, &id).await,
                None => Ok(error(&id, StatusCode::UNAUTHORIZED, "unauthorized")),
            }
        }
        _ => return None,
    };
    Some(r.unwrap_or_else(|e| {
        eprintln!("{path}: {e:#}");
        error(&id, StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }))
}

fn basic_auth(req: &Request<Incoming>) -> Option<(String, String)> {
    let v = req.headers().get("authorization")?.to_str().ok()?;
    let raw = base64::engine::general_purpose::STANDARD.decode(v.strip_prefix("Basic ")?.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn bearer(req: &Request<Incoming>) -> Option<String> {
    let v = req.headers().get("authorization")?.to_str().ok()?;
    Some(v.strip_prefix("Bearer ")?.trim().to_string())
}

fn key_path() -> String {
    std::env::var("USERADM_SERVER_PRIV_KEY_PATH").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| USERADM_KEY.into())
}

/// useradm's token claims (useradm@1.22.5:jwt/claims.go; issuer `Mender Users` and a week's
/// lifetime are `USERADM_JWT_ISSUER`/`USERADM_JWT_EXP_TIMEOUT`'s defaults).
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub jti: String,
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    pub iss: String,
    #[serde(rename = "mender.user", default)]
    pub user: bool,
}

/// useradm@1.22.5:api/http/api_useradm.go `AuthLoginHandler`: Basic credentials checked against
/// the user's bcrypt hash; 200 with the raw token (`application/jwt`), else 401.
async fn login(db: &Database, creds: Option<(String, String)>, id: &str) -> Result<Response<Body>> {
    let Some((email, pass)) = creds else {
        return Ok(error(id, StatusCode::UNAUTHORIZED, "invalid or missing auth header"));
    };
    let user = db.collection::<Document>("users").find_one(doc! {"email": &email}).await?;
    let found = user.and_then(|u| {
        let hash = u.get_str("password").ok()?;
        bcrypt::verify(&pass, hash).ok().filter(|ok| *ok)?;
        u.get_str("_id").ok().map(str::to_string)
    });
    let Some(user_id) = found else {
        return Ok(error(id, StatusCode::UNAUTHORIZED, "unauthorized"));
    };
    let pem = std::fs::read(key_path()).with_context(|| format!("cannot read the signing key {}", key_path()))?;
    let token = sign(&pem, &user_id)?;
    let mut r = respond(StatusCode::OK, token);
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/jwt"));
    Ok(r)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An RS256 token for `user_id`, signed with the RSA key `pem` (PKCS#1 or PKCS#8).
pub fn sign(pem: &[u8], user_id: &str) -> Result<String> {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem).context("the useradm key is not an RSA key")?;
    let iat = now();
    let claims = Claims {
        jti: uuid::Uuid::new_v4().to_string(),
        sub: user_id.into(),
        exp: iat + 7 * 24 * 3600,
        iat,
        iss: "Mender Users".into(),
        user: true,
    };
    Ok(jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &key)?)
}

/// The RSA public key of a private key PEM, as PKCS#1 DER.
fn public_der(pem: &str) -> Result<Vec<u8>> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64.trim())?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .or_else(|_| ring::signature::RsaKeyPair::from_der(&der))
        .map_err(|e| anyhow::anyhow!("not an RSA private key: {e}"))?;
    use ring::signature::KeyPair;
    Ok(pair.public_key().as_ref().to_vec())
}

/// Checks a token's signature and expiry against the useradm key at `key`.
pub fn verify(token: &str, key: &str) -> Result<Claims> {
    let pem = std::fs::read_to_string(key)?;
    verify_pem(token, &pem)
}

fn verify_pem(token: &str, pem: &str) -> Result<Claims> {
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&public_der(pem)?);
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_issuer(&["Mender Users"]);
    Ok(jsonwebtoken::decode::<Claims>(token, &key, &v)?.claims)
}

/// The user a management request carries: the token's claims, read without checking the
/// signature, as the services do behind the gateway (go-lib-micro:identity/token.go
/// `ExtractIdentity`); an expired or non-user token counts as none.
fn user(req: &Request<Incoming>) -> Option<Claims> {
    claims_unverified(&bearer(req)?)
}

fn claims_unverified(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let c: Claims = serde_json::from_slice(&raw).ok()?;
    (c.user && !c.sub.is_empty() && c.exp > now()).then_some(c)
}

/// deviceauth@3.6.1:api/http/api_devauth.go `SubmitAuthRequestHandler`: a body that is not an auth
/// request is 400, a missing `X-MEN-Signature` 400; the stand-in accepts no device, so any signed
/// request is 401 (what the real service answers to a bad signature or a device not yet accepted).
fn auth_request(body: &[u8], signed: bool, id: &str) -> Response<Body> {
    #[derive(Deserialize)]
    struct AuthReq {
        #[serde(default)]
        id_data: String,
        #[serde(default)]
        pubkey: String,
    }
    let req: AuthReq = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return error(id, StatusCode::BAD_REQUEST, &format!("failed to decode auth request: {e}")),
    };
    // deviceauth@3.6.1:model/authreq.go `Validate`: id_data and pubkey required, the key parsed.
    let invalid = if req.id_data.is_empty() {
        Some("id_data: cannot be blank.")
    } else if req.pubkey.is_empty() {
        Some("pubkey: cannot be blank.")
    } else if !req.pubkey.contains("-----BEGIN PUBLIC KEY-----") {
        Some("cannot decode public key")
    } else {
        None
    };
    if let Some(why) = invalid {
        return error(id, StatusCode::BAD_REQUEST, &format!("invalid auth request: {why}"));
    }
    if !signed {
        return error(id, StatusCode::BAD_REQUEST, "missing request signature header");
    }
    error(id, StatusCode::UNAUTHORIZED, "dev auth: unauthorized")
}

async fn count(db: &Database, coll: &str) -> Result<u64> {
    Ok(db.collection::<Document>(coll).count_documents(doc! {}).await?)
}

/// inventory@4.4.3:api/http/api_inventory.go `GetDevicesHandler`: the first page (20) of devices,
/// the total in `X-Total-Count`.
async fn devices(db: &Database) -> Result<Response<Body>> {
    let total = count(db, "devices").await?;
    let docs: Vec<Document> = db.collection::<Document>("devices").find(doc! {}).limit(20).await?.try_collect().await?;
    let list: Vec<serde_json::Value> = docs
        .iter()
        .map(|d| {
            let attrs: Vec<serde_json::Value> = d
                .get_document("attributes")
                .map(|a| {
                    a.iter()
                        .filter_map(|(k, v)| Some((k, v.as_document()?)))
                        .map(|(k, v)| {
                            let scope = v.get_str("scope").unwrap_or_default();
                            let name = k.strip_prefix(&format!("{scope}-")).unwrap_or(k);
                            serde_json::json!({
                                "name": v.get_str("name").unwrap_or(name),
                                "scope": v.get_str("scope").unwrap_or_default(),
                                "value": v.get("value").and_then(|x| serde_json::to_value(x).ok()),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            serde_json::json!({"id": d.get_str("_id").unwrap_or_default(), "attributes": attrs})
        })
        .collect();
    let mut r = json(StatusCode::OK, serde_json::Value::Array(list));
    r.headers_mut().insert("x-total-count", total.into());
    Ok(r)
}

fn image_json(d: &Document) -> serde_json::Value {
    let meta = d.get_document("meta_artifact").ok();
    serde_json::json!({
        "id": d.get_str("_id").unwrap_or_default(),
        "name": meta.and_then(|m| m.get_str("name").ok()).unwrap_or_default(),
        "description": d.get_document("meta").ok().and_then(|m| m.get_str("description").ok()).unwrap_or_default(),
        "device_types_compatible": meta.and_then(|m| m.get("device_types_compatible")).and_then(|x| serde_json::to_value(x).ok()),
        "signed": meta.and_then(|m| m.get_bool("signed").ok()).unwrap_or(false),
        "size": d.get_i64("size").unwrap_or_default(),
        "modified": d.get_datetime("modified").ok().and_then(|t| t.try_to_rfc3339_string().ok()),
    })
}

/// deployments@4.6.3:api/http/api_deployments.go `GetImages`.
async fn artifacts(db: &Database) -> Result<Response<Body>> {
    let docs: Vec<Document> = db.collection::<Document>("images").find(doc! {}).await?.try_collect().await?;
    Ok(json(StatusCode::OK, serde_json::Value::Array(docs.iter().map(image_json).collect())))
}

/// How long a link lives (`DEPLOYMENTS_PRESIGN_EXPIRE_SECONDS`, default 900:
/// deployments@4.6.3:config/config.go).
fn presign_expiry() -> Duration {
    let secs = std::env::var("DEPLOYMENTS_PRESIGN_EXPIRE_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(900);
    Duration::from_secs(secs)
}

/// deployments@4.6.3:api/http/api_deployments.go `DownloadLink`: `{"uri", "expire"}`, a link
/// presigned for the store's external address (`DEPLOYMENTS_AWS_EXTERNAL_URI`, else
/// `DEPLOYMENTS_AWS_URI`: deployments@4.6.3:storage/s3/s3.go), i.e. the gateway's storage host.
async fn download(db: &Database, art: &str, id: &str) -> Result<Response<Body>> {
    if db.collection::<Document>("images").find_one(doc! {"_id": art}).await?.is_none() {
        return Ok(error(id, StatusCode::NOT_FOUND, "Image not found"));
    }
    let Some(storage) = crate::artifacts::external() else {
        return Ok(error(id, StatusCode::INTERNAL_SERVER_ERROR, "the stand-in presigns S3 links only"));
    };
    let ttl = presign_expiry();
    let cfg = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)?;
    let link = storage.s3.get_object().bucket(&storage.bucket).key(art).presigned(cfg).await?;
    let expire = bson::DateTime::from_system_time(SystemTime::now() + ttl).try_to_rfc3339_string()?;
    Ok(json(StatusCode::OK, serde_json::json!({"uri": link.uri(), "expire": expire})))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway 2048-bit RSA key (PKCS#8), for tests only.
    const TEST_KEY: &str = include_str!("../testdata/useradm-test.key");

    #[test]
    fn token_signed_and_verified() {
        let t = sign(TEST_KEY.as_bytes(), "user-1").unwrap();
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        let c = verify_pem(&t, TEST_KEY).unwrap();
        assert!(c.user && c.sub == "user-1" && c.exp > now());
        assert_eq!(claims_unverified(&t).unwrap().sub, "user-1");
        // Another key does not verify it; a tampered token neither.
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"x","mender.user":true,"exp":99999999999,"iat":0,"jti":"j","iss":"Mender Users"}"#);
        assert!(verify_pem(&parts.join("."), TEST_KEY).is_err());
        assert!(claims_unverified("not-a-token").is_none());
    }

    #[test]
    fn bcrypt_hash_verified() {
        let hash = bcrypt::hash("s3cret-pass", 4).unwrap();
        assert!(bcrypt::verify("s3cret-pass", &hash).unwrap());
        assert!(!bcrypt::verify("wrong", &hash).unwrap());
        // The sample users' placeholder hash never verifies.
        let sample = "$2a$10$Y9X8Kq4wVb4s7oJ0Y1jL0uXmHq2Xo3nQW2v1g3F7bW8h0Z6y9K5aC";
        assert!(!bcrypt::verify("anything", sample).unwrap_or(false));
    }

    async fn body(r: Response<Body>) -> (StatusCode, serde_json::Value) {
        let s = r.status();
        let b = r.into_body().collect().await.unwrap().to_bytes();
        (s, serde_json::from_slice(&b).unwrap())
    }

    #[tokio::test]
    async fn deviceauth_error_shapes() {
        let pubkey = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n";
        let ok = serde_json::json!({"id_data": "{\"mac\":\"02:00:00:00:00:01\"}", "pubkey": pubkey}).to_string();
        for (b, signed, status) in [
            ("not json", true, 400),
            ("{}", true, 400),
            (r#"{"id_data":"{}","pubkey":"x"}"#, true, 400),
            (ok.as_str(), false, 400),
            (ok.as_str(), true, 401),
        ] {
            let (s, v) = body(auth_request(b.as_bytes(), signed, "rid")).await;
            assert_eq!(s.as_u16(), status, "{b}");
            assert_eq!(v["request_id"], "rid");
            assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
        }
    }

    #[tokio::test]
    async fn useradm_error_shape() {
        let (s, v) = body(error("rid", StatusCode::UNAUTHORIZED, "unauthorized")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(v, serde_json::json!({"error": "unauthorized", "request_id": "rid"}));
    }
}
