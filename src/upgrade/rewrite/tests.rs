use semver::Version;

use super::*;
use crate::catalog::{Catalog, LoadedCatalog};

const REG: Option<&str> = Some("testbed.local");

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

struct Project {
    compose: Vec<ProjectFile>,
    other: Vec<ProjectFile>,
}

/// The project files of a checkout of `release`, with `prod` as the operator's prod.yml.
fn project(l: &LoadedCatalog, release: &str, prod: impl Fn(String) -> String) -> Project {
    let files = l.template_files(&v(release)).unwrap();
    let get = |p: &str| files.iter().find(|f| f.path.to_string_lossy() == p).map(|f| render(f, REG).unwrap());
    let compose = vec![
        ProjectFile { path: "docker-compose.yml".into(), contents: get("docker-compose.yml") },
        ProjectFile {
            path: "docker-compose.storage.minio.yml".into(),
            contents: get("docker-compose.storage.minio.yml"),
        },
        ProjectFile {
            path: "production/config/prod.yml".into(),
            contents: Some(prod(get("production/config/prod.yml.template").unwrap())),
        },
    ];
    let other = files
        .iter()
        .filter(|f| !compose.iter().any(|c| c.path == f.path))
        .map(|f| ProjectFile { path: f.path.clone(), contents: Some(render(f, REG).unwrap()) })
        .collect();
    Project { compose, other }
}

fn run(l: &LoadedCatalog, p: &Project, from: &str, to: &str, templates: bool) -> Rewrite {
    let c: &Catalog = &l.catalog;
    let (f, t) = (c.release(&v(from)).unwrap(), c.release(&v(to)).unwrap());
    let from_t = l.template_files(&v(from)).ok();
    let to_t = if templates { l.template_files(&v(to)).ok() } else { None };
    let removed: Vec<String> = f.services.keys().filter(|s| !t.services.contains_key(*s)).cloned().collect();
    let known = KnownFiles::new(l, REG);
    plan(&Inputs {
        from: f,
        to: t,
        compose_files: &p.compose,
        other_files: &p.other,
        from_templates: from_t.as_deref(),
        to_templates: to_t.as_deref(),
        known: &known,
        registry: REG,
        removed: &removed,
        presign_secret: "0123456789abcdef-test-secret",
    })
    .unwrap()
}

fn after<'a>(rw: &'a Rewrite, path: &str) -> Option<&'a FileEdit> {
    rw.edits.iter().find(|e| e.path.to_string_lossy() == path)
}

#[test]
fn minor_hop_replaces_base_files_and_keeps_the_operators_prod_yml() {
    let l = LoadedCatalog::embedded().unwrap();
    let p = project(&l, "3.4.0", |t| format!("# my production settings, keep me\n{t}"));
    let rw = run(&l, &p, "3.4.0", "3.6.5", true);
    let dc = after(&rw, "docker-compose.yml").unwrap();
    assert_eq!(dc.why, Why::BaseFile);
    assert!(dc.after.contains("image: testbed.local/mendersoftware/deployments:mender-3.6.5"));
    assert!(dc.after.contains("image: testbed.local/nats:2.7.4-scratch"));
    assert!(after(&rw, "production/config/prod.yml").is_none(), "prod.yml pins nothing: untouched");
    assert!(rw.warnings.is_empty(), "{:?}", rw.warnings);
}

#[test]
fn a_pinned_image_in_prod_yml_is_changed_in_place_with_a_warning() {
    let l = LoadedCatalog::embedded().unwrap();
    let pin = "    mender-useradm:\n        # pinned while testing a fix\n        image: 'testbed.local/mendersoftware/useradm:mender-3.4.0'\n";
    let p = project(&l, "3.4.0", |t| t.replacen("    mender-useradm:\n", pin, 1));
    let rw = run(&l, &p, "3.4.0", "3.6.5", true);
    let prod = after(&rw, "production/config/prod.yml").unwrap();
    let before = prod.before.clone().unwrap();
    assert_eq!(
        prod.after,
        before.replace("useradm:mender-3.4.0'", "useradm:mender-3.6.5'"),
        "only the image changes, quoting kept"
    );
    assert!(rw.warnings.iter().any(|w| w.contains("mender-useradm pins its image")));
    assert!(diff(prod).contains("- ") && diff(prod).contains("useradm:mender-3.6.5"));
}

#[test]
fn dropped_services_leave_the_overrides() {
    let l = LoadedCatalog::embedded().unwrap();
    // Operators size the 3.5 reporting stack in prod.yml (the template itself does not name it).
    let sized = "    mender-reporting:\n        mem_limit: 512m\n\n    mender-opensearch:\n        environment:\n            OPENSEARCH_JAVA_OPTS: -Xms1g -Xmx1g\n\n    minio:\n";
    let p = project(&l, "3.5.1", |t| t.replacen("    minio:\n", sized, 1));
    assert!(p.compose[2].contents.as_ref().unwrap().contains("mender-reporting:"));
    let rw = run(&l, &p, "3.5.1", "3.6.5", true);
    let prod = after(&rw, "production/config/prod.yml").unwrap();
    assert_eq!(prod.why, Why::RemovedService);
    assert!(!prod.after.contains("mender-reporting") && !prod.after.contains("OPENSEARCH"), "{}", prod.after);
    assert!(prod.after.contains("mender-useradm:") && prod.after.contains("max-size: \"50m\""));
    let dc = after(&rw, "docker-compose.yml").unwrap();
    assert!(!dc.after.contains("mender-opensearch"));
}

#[test]
fn without_target_templates_images_are_edited_where_they_are_decided() {
    let l = LoadedCatalog::embedded().unwrap();
    let p = project(&l, "3.6.5", |t| t);
    let rw = run(&l, &p, "3.6.5", "3.7.11", false);
    let dc = after(&rw, "docker-compose.yml").unwrap();
    assert_eq!(dc.why, Why::Image);
    let before = dc.before.clone().unwrap();
    let expected = before
        .replace("mender-3.6.5", "mender-3.7.11")
        .replace("mongo:4.4", "mongo:5.0")
        .replace("traefik:v2.8", "traefik:v2.10");
    assert_eq!(dc.after, expected, "only image values differ");
}

#[test]
fn a_modified_upstream_file_is_warned_about() {
    let l = LoadedCatalog::embedded().unwrap();
    let mut p = project(&l, "3.4.0", |t| t);
    let dc = p.compose[0].contents.as_mut().unwrap();
    dc.push_str("# a local edit\n");
    let rw = run(&l, &p, "3.4.0", "3.6.5", true);
    assert!(
        rw.warnings.iter().any(|w| w.contains("docker-compose.yml differs from the upstream 3.4.0 file")),
        "{:?}",
        rw.warnings
    );
}

#[test]
fn a_pristine_upstream_file_is_recognized_by_its_hash() {
    let mut l = LoadedCatalog::embedded().unwrap();
    let mut p = project(&l, "3.4.0", |t| t);
    // Upstream's bytes differ from the tool's (comments, order); the catalog knows their hash.
    let upstream = format!("# upstream's own header\n{}", p.compose[0].contents.as_ref().unwrap());
    p.compose[0].contents = Some(upstream.clone());
    let rw = run(&l, &p, "3.4.0", "3.6.5", true);
    assert!(rw.warnings.iter().any(|w| w.contains("docker-compose.yml differs")), "unknown bytes: {:?}", rw.warnings);
    let tag = l.catalog.upstream.get_mut(&v("3.4.0")).unwrap();
    tag.insert("docker-compose.yml".into(), crate::catalog::sha256_hex(upstream.as_bytes()));
    let rw = run(&l, &p, "3.4.0", "3.6.5", true);
    assert!(rw.warnings.is_empty(), "upstream's file is no edit: {:?}", rw.warnings);
    assert!(after(&rw, "docker-compose.yml").unwrap().after.contains("mender-3.6.5"));
}

#[test]
fn an_edited_file_is_named_with_the_changes_it_loses() {
    let l = LoadedCatalog::embedded().unwrap();
    let mut p = project(&l, "3.4.0", |t| t);
    let dc = p.compose[0].contents.as_mut().unwrap();
    *dc = dc.replacen(
        "            DEVICEAUTH_ORCHESTRATOR_ADDR: http://mender-workflows-server:8080/\n",
        "            DEVICEAUTH_ORCHESTRATOR_ADDR: http://mender-workflows-server:8080/\n            DEVICEAUTH_MY_SETTING: '1'\n            DEVICEAUTH_API_TOKEN: hunter2\n",
        1,
    );
    let rw = run(&l, &p, "3.4.0", "3.6.5", true);
    let w = rw.warnings.iter().find(|w| w.contains("docker-compose.yml differs")).expect("named");
    assert!(w.contains("+ services.mender-device-auth.environment.DEVICEAUTH_MY_SETTING: \"1\""), "{w}");
    assert!(w.contains("DEVICEAUTH_API_TOKEN: (hidden)") && !w.contains("hunter2"), "{w}");
    assert_eq!(w.matches("\n    ").count(), 2, "only the two edits: {w}");
}

#[test]
fn files_of_another_release_are_named() {
    let l = LoadedCatalog::embedded().unwrap();
    let mut p = project(&l, "3.6.5", |t| t);
    p.compose[0].contents = project(&l, "3.4.0", |t| t).compose[0].contents.clone();
    let rw = run(&l, &p, "3.6.5", "3.7.11", true);
    assert_eq!(
        rw.warnings,
        [
            "the images say 3.6.5, but these files are another release's: docker-compose.yml (3.4.0); they are replaced by 3.7.11's"
        ]
    );
}

#[test]
fn the_connect_and_config_files_lose_their_services_at_3_2() {
    let l = LoadedCatalog::embedded().unwrap();
    let files = l.template_files(&v("3.1.1")).unwrap();
    let get = |p: &str| files.iter().find(|f| f.path.to_string_lossy() == p).map(|f| render(f, REG).unwrap());
    let names = [
        "docker-compose.yml",
        "docker-compose.storage.minio.yml",
        "docker-compose.connect.yml",
        "docker-compose.config.yml",
        "production/config/prod.yml.template",
    ];
    let compose: Vec<ProjectFile> =
        names.iter().map(|n| ProjectFile { path: n.replace(".template", "").into(), contents: get(n) }).collect();
    assert!(compose.iter().all(|f| f.contents.is_some()));
    let p = Project { compose, other: vec![] };
    let rw = run(&l, &p, "3.1.1", "3.2.2", true);
    for f in ["docker-compose.connect.yml", "docker-compose.config.yml"] {
        let e = after(&rw, f).unwrap();
        assert!(e.after.contains("services: {}") && services(&e.after).unwrap().is_empty(), "{}", e.after);
        let known = KnownFiles::new(&l, REG);
        assert!(known.origin(std::path::Path::new(f), e.after.as_bytes()).matches(&v("3.7.11")), "not an edit later");
        assert!(rw.warnings.iter().any(|w| w.starts_with(&format!("{f}: 3.2.2 has no such file"))));
    }
    let dc = after(&rw, "docker-compose.yml").unwrap();
    assert!(dc.after.contains("mender-deviceconnect:") && dc.after.contains("nats:2.6-alpine"));
}

/// A 3.7.11 operator's prod.yml: comments, keys, hosts, logging limits, and an override of a
/// service no 4.x release has.
fn prod_3_7(t: String) -> String {
    let t = t.replace("ALLOWED_HOSTS: my-gateway-dns-name", "ALLOWED_HOSTS: mender.example.com,s3.example.com # both");
    let extra =
        "services:\n\n    mender-reporting:\n        # my own addition\n        environment:\n            X: '1'\n";
    format!("# my production settings, keep me\n{}", t.replacen("services:\n", extra, 1))
}

#[test]
fn hop_to_4_0_4_replaces_base_files_keeps_prod_yml_and_generates_the_presign_secret_once() {
    let l = LoadedCatalog::embedded().unwrap();
    let mut p = project(&l, "3.7.11", prod_3_7);
    let rw = run(&l, &p, "3.7.11", "4.0.4", true);
    let dc = &after(&rw, "docker-compose.yml").unwrap().after;
    for want in [
        "image: testbed.local/mendersoftware/deviceauth:v4.0.4",
        "image: testbed.local/traefik:v3.6.10",
        "image: testbed.local/nats:2.12-alpine",
        "- deviceauth",
        "DEPLOYMENTS_PRESIGN_SECRET: ${DEPLOYMENTS_PRESIGN_SECRET:?",
    ] {
        assert!(dc.contains(want), "{want}");
    }
    // The worker runs the workflows image, with `worker`.
    let worker =
        dc.split("mender-workflows-worker:").nth(1).unwrap().split("mender-create-artifact-worker:").next().unwrap();
    assert!(
        worker.contains("image: testbed.local/mendersoftware/workflows:v4.0.4") && worker.contains("command: worker")
    );
    assert!(!dc.contains("workflows-worker:v4") && !dc.contains("seaweedfs"));
    let gui = &after(&rw, "config/traefik/traefik.yaml").unwrap().after;
    assert!(
        gui.contains("http://mender-gui:8090") && gui.contains("PathRegexp(`^/api/management/v[0-9]+/deployments`)")
    );
    assert!(
        after(&rw, "docker-compose.storage.minio.yml")
            .unwrap()
            .after
            .contains("minio/minio:RELEASE.2021-04-22T15-44-28Z")
    );
    // prod.yml is the operator's: its one change is useradm's key directory (below).
    assert_eq!(after(&rw, "production/config/prod.yml").unwrap().why, Why::Keys);
    // The override of a service 4.0.4 lacks is reported, and kept.
    assert!(rw.warnings.iter().any(|w| w.contains("mender-reporting") && w.contains("4.0.4")), "{:?}", rw.warnings);
    // The presign secret: generated into .env (0600 when written), never shown.
    let env = after(&rw, ENV_FILE).unwrap();
    assert_eq!((env.why, env.before.as_deref()), (Why::Secret, None));
    assert!(env.after.contains("DEPLOYMENTS_PRESIGN_SECRET=0123456789abcdef-test-secret\n"));
    assert!(!diff(env).contains("test-secret"));
    assert!(!rw.warnings.iter().any(|w| w.contains("test-secret")));
    // A project that has one keeps it; the rest of its .env is kept too.
    p.other.push(ProjectFile {
        path: ENV_FILE.into(),
        contents: Some("STORAGE_URL=s3.example.com\nDEPLOYMENTS_PRESIGN_SECRET=mine\n".into()),
    });
    let rw = run(&l, &p, "3.7.11", "4.0.4", true);
    assert!(after(&rw, ENV_FILE).is_none());
    p.other.last_mut().unwrap().contents = Some("STORAGE_URL=s3.example.com".into());
    let rw = run(&l, &p, "3.7.11", "4.0.4", true);
    assert!(after(&rw, ENV_FILE).unwrap().after.starts_with("STORAGE_URL=s3.example.com\n# "));
}

#[test]
fn hop_4_0_4_to_4_1_3_recognizes_the_tools_4_0_4_files() {
    let l = LoadedCatalog::embedded().unwrap();
    let mut p = project(&l, "4.0.4", |t| format!("# mine\n{t}"));
    p.other.push(ProjectFile { path: ENV_FILE.into(), contents: Some("DEPLOYMENTS_PRESIGN_SECRET=abc\n".into()) });
    let rw = run(&l, &p, "4.0.4", "4.1.3", true);
    assert!(rw.warnings.is_empty(), "pristine 4.0.4 base files: {:?}", rw.warnings);
    let dc = &after(&rw, "docker-compose.yml").unwrap().after;
    assert!(dc.contains("image: testbed.local/mendersoftware/deployments:v4.1.3") && dc.contains("traefik:v3.7.1"));
    assert!(after(&rw, ENV_FILE).is_none() && after(&rw, "production/config/prod.yml").is_none());
}

#[test]
fn an_edited_traefik_file_is_reported_with_its_rules_in_v3_syntax() {
    let l = LoadedCatalog::embedded().unwrap();
    let mut p = project(&l, "3.7.11", prod_3_7);
    let t = p.other.iter_mut().find(|f| f.path.to_string_lossy() == "config/traefik/traefik.yaml").unwrap();
    let text = t.contents.clone().unwrap();
    t.contents = Some(text.replace(
        "    gui: {rule:",
        "    mine: {rule: \"Host(`a.example.com`,`b.example.com`) && PathPrefix(`/x/{id:[0-9]+}`)\", service: gui}\n    gui: {rule:",
    ));
    let rw = run(&l, &p, "3.7.11", "4.0.4", true);
    let w = rw.warnings.iter().find(|w| w.contains("config/traefik/traefik.yaml")).unwrap();
    assert!(w.contains("→ (Host(`a.example.com`) || Host(`b.example.com`)) && PathRegexp(`^/x/[0-9]+`)"), "{w}");
}

const USERADM_3X: &str = "    mender-useradm:\n        command: server --automigrate\n        volumes:\n            - ./production/keys-generated/keys/useradm/private.key:/etc/useradm/rsa/private.pem:ro\n";
const KEY_DIR_LINES: &str = "            # the key's directory too, for keys rotated as private.id.<N>.pem (useradm loads them\n            # from the directory of USERADM_SERVER_PRIV_KEY_PATH; the id-0 key stays at /etc/useradm/rsa/private.pem)\n            - ./production/keys-generated/keys/useradm:/etc/useradm/keys:ro\n";

#[test]
fn hop_into_4x_mounts_useradms_key_directory_beside_the_3x_key_file() {
    let l = LoadedCatalog::embedded().unwrap();
    let p = project(&l, "3.7.11", prod_3_7);
    let rw = run(&l, &p, "3.7.11", "4.0.4", true);
    let prod = after(&rw, "production/config/prod.yml").unwrap();
    let before = prod.before.clone().unwrap();
    assert!(before.contains(USERADM_3X), "{before}");
    // Exactly: the directory mount after the 3.x file mount (kept), the key path before volumes.
    let want = before.replacen(
        USERADM_3X,
        &format!(
            "    mender-useradm:\n        command: server --automigrate\n        environment:\n            USERADM_SERVER_PRIV_KEY_PATH: /etc/useradm/keys/private.key\n        volumes:\n            - ./production/keys-generated/keys/useradm/private.key:/etc/useradm/rsa/private.pem:ro\n{KEY_DIR_LINES}"
        ),
        1,
    );
    assert_eq!(prod.after, want);
    assert!(prod.after.starts_with("# my production settings, keep me\n") && prod.after.contains("# my own addition"));
    // The deviceauth key stays where 3.x mounted it.
    assert!(
        prod.after
            .contains("- ./production/keys-generated/keys/deviceauth/private.key:/etc/deviceauth/rsa/private.pem:ro\n")
    );
    // Shown in the diff like the other edits of the operator's files, and named.
    let d = diff(prod);
    assert!(d.contains("+             - ./production/keys-generated/keys/useradm:/etc/useradm/keys:ro"), "{d}");
    assert!(d.contains("+             USERADM_SERVER_PRIV_KEY_PATH: /etc/useradm/keys/private.key"), "{d}");
    assert!(d.lines().skip(1).all(|l| l.split_whitespace().nth(1) == Some("+")), "only added lines: {d}");
    assert!(rw.warnings.iter().any(|w| w.starts_with("production/config/prod.yml: mender-useradm also mounts")));
    // The next hop keeps it as it is, and a 4.x template's prod.yml already has it.
    let mut next = project(&l, "4.0.4", |_| prod.after.clone());
    next.other.push(ProjectFile { path: ENV_FILE.into(), contents: Some("DEPLOYMENTS_PRESIGN_SECRET=abc\n".into()) });
    assert!(after(&run(&l, &next, "4.0.4", "4.1.3", true), "production/config/prod.yml").is_none());
    let fresh = project(&l, "4.1.3", |t| t);
    assert_eq!(keys::mount_key_directory(fresh.compose[2].contents.as_ref().unwrap()), keys::KeyDir::Unchanged);
    // A 3.x hop does not touch it.
    let p = project(&l, "3.6.5", |t| t);
    assert!(after(&run(&l, &p, "3.6.5", "3.7.11", true), "production/config/prod.yml").is_none());
}

#[test]
fn the_key_directory_edit_follows_the_files_layout() {
    use keys::{KeyDir, mount_key_directory};
    let file = |useradm: &str| {
        format!(
            "version: '2.3'\nservices:\n  mender-api-gateway:\n    depends_on:\n      mender-useradm:\n        condition: service_started\n  mender-useradm: # signs user tokens\n{useradm}  mender-mongo:\n    image: mongo\n"
        )
    };
    let edited = |useradm: &str| match mount_key_directory(&file(useradm)) {
        KeyDir::Edited(s) => s,
        other => panic!("{other:?}"),
    };
    // An environment map (2-space indentation), a quoted mount under a different host path.
    let out = edited(
        "    environment:\n      # mine\n      USERADM_JWT_ISSUER: me\n    volumes:\n      - \"/srv/keys/ua/key.pem:/etc/useradm/rsa/private.pem\"\n",
    );
    assert!(out.contains("    environment:\n      USERADM_SERVER_PRIV_KEY_PATH: /etc/useradm/keys/key.pem\n      # mine\n      USERADM_JWT_ISSUER: me\n"), "{out}");
    assert!(
        out.contains("      - \"/srv/keys/ua/key.pem:/etc/useradm/rsa/private.pem\"\n      # the key's directory"),
        "{out}"
    );
    assert!(out.contains("      - \"/srv/keys/ua:/etc/useradm/keys:ro\"\n  mender-mongo:"), "{out}");
    assert!(out.contains("  mender-useradm: # signs user tokens\n"));
    // The list form of environment.
    let out = edited(
        "    volumes:\n      - ./k/private.key:/etc/useradm/rsa/private.pem:ro\n    environment:\n      - A=1\n",
    );
    assert!(
        out.contains(
            "    environment:\n      - USERADM_SERVER_PRIV_KEY_PATH=/etc/useradm/keys/private.key\n      - A=1\n"
        ),
        "{out}"
    );
    // Done once only; the operator's own key path or directory mount is his.
    assert_eq!(mount_key_directory(&out), KeyDir::Unchanged);
    let own = file(
        "    volumes:\n      - ./k/private.key:/etc/useradm/rsa/private.pem:ro\n      - ./k:/etc/useradm/rsa/keys:ro\n    environment:\n      USERADM_SERVER_PRIV_KEY_PATH: /etc/useradm/rsa/keys/private.id.2.pem\n",
    );
    assert_eq!(mount_key_directory(&own), KeyDir::Unchanged);
    // No 3.x file mount of the key: nothing to do.
    assert_eq!(mount_key_directory(&file("    command: server\n")), KeyDir::Unchanged);
    assert_eq!(mount_key_directory("services:\n  mender-mongo:\n    image: mongo\n"), KeyDir::Unchanged);
    // A layout the line edit does not handle is named, with what to add, and left alone.
    match mount_key_directory(&file(
        "    environment: {A: '1'}\n    volumes:\n      - ./k/private.key:/etc/useradm/rsa/private.pem:ro\n",
    )) {
        KeyDir::ByHand(w) => assert!(
            w.contains("`./k:/etc/useradm/keys:ro`")
                && w.contains("USERADM_SERVER_PRIV_KEY_PATH: /etc/useradm/keys/private.key"),
            "{w}"
        ),
        other => panic!("{other:?}"),
    }
}
