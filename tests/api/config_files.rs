//! Config loading through the real binary: startup failures exit non-zero before binding,
//! naming the file, line and YAML path; real-world LiteLLM configs load.

use std::process::Command;

fn run_validate(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_litellm"))
        .args(["--config", path.to_str().unwrap(), "--validate_config"])
        .env("LITELLM_SQLITE_PATH", dir.path().join("l.db"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn type_errors_exit_non_zero_with_file_line_and_path() {
    let (ok, err) = run_validate("model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      timeout: forever\n");
    assert!(!ok);
    assert!(err.contains("config.yaml"), "{err}");
    assert!(err.contains("line 5"), "{err}");
    assert!(
        err.contains("model_list[0].litellm_params.timeout"),
        "{err}"
    );
}

#[test]
fn invalid_yaml_and_missing_file_exit_non_zero() {
    let (ok, err) = run_validate("model_list: [\n");
    assert!(!ok);
    assert!(
        err.contains("invalid YAML") && err.contains("line"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_litellm"))
        .args([
            "--config",
            "/nonexistent/dir/config.yaml",
            "--validate_config",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir/config.yaml"));
}

#[test]
fn unknown_provider_warns_at_start_like_litellm() {
    let (ok, err) = run_validate(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: mystery-model\n",
    );
    assert!(ok, "{err}");
    assert!(err.contains("LLM Provider NOT provided"), "{err}");
}

#[test]
fn unset_env_refs_and_unknown_keys_only_warn() {
    let (ok, err) = run_validate(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      api_key: os.environ/SURELY_UNSET_VAR_12345\nlitellm_settings:\n  success_callback: [langsmith, langfuse]\n",
    );
    assert!(ok, "{err}");
    assert!(err.contains("SURELY_UNSET_VAR_12345"), "{err}");
    assert!(
        err.contains("`langsmith` in `litellm_settings.success_callback`"),
        "{err}"
    );
    // A built callback without its credentials is disabled with a warning, not an error.
    assert!(err.contains("LANGFUSE_PUBLIC_KEY"), "{err}");
}

#[test]
fn port_in_use_exits_non_zero() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_litellm"))
        .args(["--host", "127.0.0.1", "--port", &port])
        .env(
            "LITELLM_SQLITE_PATH",
            std::env::temp_dir().join(format!("l-{port}.db")),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
}

#[test]
fn real_world_litellm_configs_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let loaded = litellm_gateway::config::load_file(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!loaded.config.model_list.is_empty(), "{}", path.display());
            // And the gateway starts on it, as `litellm --config` would.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let db = tempfile::tempdir().unwrap();
            let opts = litellm_gateway::BuildOptions {
                sqlite_path: Some(db.path().join("l.db").to_string_lossy().into_owned()),
                ..Default::default()
            };
            rt.block_on(async {
                litellm_gateway::AppState::build(loaded, opts)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            });
            n += 1;
        }
    }
    assert!(n >= 5, "expected at least 5 real-world configs, found {n}");
}
