//! Off end-of-life 3.x: a compose stack on 3.7.11 (MongoDB 5.0) to 4.1.3, the only supported
//! line, through every MongoDB major on a copy of the data volume and the 4.x layout on compose.

mod common;

use common::*;

#[test]
fn upgrade_3_7_11_to_4_1_3_keeps_data_comments_and_compose_state() {
    let stack = Stack::up("road", "3.7.11");
    let prod = stack.path("production/config/prod.yml");
    let commented = format!("# Our production overrides: do not remove this line.\n\n{}", file(&prod));
    std::fs::write(&prod, &commented).unwrap();
    let before = stack.data();
    let db = format!("{}-mender-db", stack.project);

    let out = stack.tool(&["--json", "upgrade", "--to", "4.1.3", "--yes"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let r = result_line(&out);
    let hops: Vec<String> = r["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}→{}", h["from"].as_str().unwrap(), h["to"].as_str().unwrap()))
        .collect();
    // 5.0 → 6.0 at 3.7.11, the 4.0.4 hop on 6.0, 6.0 → 7.0 at 4.0.4, 4.1.3 on 7.0, 7.0 → 8.0.
    assert_eq!(hops, ["3.7.11→3.7.11", "3.7.11→4.0.4", "4.0.4→4.0.4", "4.0.4→4.1.3", "4.1.3→4.1.3"]);

    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "4.1.3");
    assert_eq!(s["mongo"]["fcv"], "8.0");
    assert!(s["databases"].as_array().unwrap().iter().all(|d| d["status"] == "current"), "{}", s["databases"]);
    // The operator's data is all there; the original 5.0 volume is kept for the operator to remove.
    assert_eq!(without_migrations(&stack.data()), without_migrations(&before));
    assert_eq!(docker_ok(&["volume", "ls", "-q", "--filter", &format!("name=^{db}$")]).trim(), db);
    // The operator's prod.yml keeps its comment; only the data volume's name moved to the copy.
    let now = file(&prod);
    assert!(now.starts_with("# Our production overrides: do not remove this line.\n"), "{now}");
    assert!(now.contains(&format!("{db}-8.0")), "{now}");
    // The presign secret is generated once, kept in the project, never printed.
    let env = file(&stack.path(".env"));
    let secret = env
        .lines()
        .find_map(|l| l.strip_prefix("DEPLOYMENTS_PRESIGN_SECRET="))
        .expect("DEPLOYMENTS_PRESIGN_SECRET in the project's .env");
    assert!(secret.len() >= 16, "a generated secret");
    assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret), "the secret was printed");
    // `docker compose up -d` by hand afterwards recreates nothing.
    let ids = container_ids(&stack);
    let again = stack.compose(&["up", "-d"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(container_ids(&stack), ids, "compose recreated containers: {}", stderr(&again));
}
