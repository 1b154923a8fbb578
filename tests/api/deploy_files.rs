//! No Docker engine runs where tests run: check that the compose file and Dockerfile parse and
//! wire the right images, ports, environment and health checks.

use serde_yaml::Value;

fn root(p: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn compose_file_wires_gateway_postgres_and_redis() {
    let text = std::fs::read_to_string(root("docker-compose.yml")).unwrap();
    let c: Value = serde_yaml::from_str(&text).unwrap();
    let s = &c["services"];
    let gw = &s["litellm"];
    assert_eq!(gw["build"].as_str(), Some("."));
    let env = &gw["environment"];
    for k in [
        "LITELLM_MASTER_KEY",
        "LITELLM_SALT_KEY",
        "DATABASE_URL",
        "REDIS_HOST",
        "REDIS_PORT",
    ] {
        assert!(env.get(k).is_some(), "gateway env lacks {k}");
    }
    assert!(env["DATABASE_URL"]
        .as_str()
        .unwrap()
        .starts_with("postgresql://"));
    assert!(env["DATABASE_URL"].as_str().unwrap().contains("@db:5432/"));
    assert_eq!(env["REDIS_HOST"].as_str(), Some("redis"));
    assert!(
        gw["deploy"]["replicas"].as_u64().unwrap() >= 2,
        "several replicas"
    );
    assert!(gw["healthcheck"]["test"].is_sequence());
    assert_eq!(
        gw["depends_on"]["db"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert!(s["db"]["image"].as_str().unwrap().starts_with("postgres:"));
    assert!(s["db"]["healthcheck"]["test"].is_sequence());
    assert!(s["db"]["volumes"][0]
        .as_str()
        .unwrap()
        .starts_with("postgres_data:"));
    assert!(s["redis"]["image"].as_str().unwrap().starts_with("redis:"));
    let ports: Vec<&str> = s["proxy"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert_eq!(ports, ["4000:4000"], "one port in front of the replicas");
    let nginx = std::fs::read_to_string(root("deploy/nginx.conf")).unwrap();
    assert!(nginx.contains("proxy_pass $gateway") && nginx.contains("proxy_buffering off"));
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_healthcheck() {
    let d = std::fs::read_to_string(root("Dockerfile")).unwrap();
    assert_eq!(
        d.lines().filter(|l| l.starts_with("FROM ")).count(),
        2,
        "two stages"
    );
    assert!(d.contains("COPY --from=build"));
    assert!(d
        .lines()
        .any(|l| l.starts_with("USER ") && !l.contains("root")));
    assert!(d.contains("HEALTHCHECK"));
    assert!(d.contains("EXPOSE 4000"));
    // Everything the build needs is copied in.
    for p in [
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "migrations",
        "data",
        "bench",
    ] {
        assert!(
            d.contains(&format!("COPY {p}")) || d.contains(&format!(" {p} ")),
            "Dockerfile does not copy {p}"
        );
    }
}
