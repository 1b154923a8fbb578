//! Models stored in the database (`store_model_in_db`): turning `LiteLLM_ProxyModelTable` rows
//! into deployments, merging them with the config's `model_list`, and swapping the router.
//!
//! Mirrors LiteLLM's `ProxyConfig.add_deployment`: the rows are read at start-up and again every
//! `proxy_config_reload_interval_seconds` (default 30, also `PROXY_CONFIG_RELOAD_INTERVAL_SECONDS`)
//! so every replica converges on the same set; a write through `/model/*` reloads its own
//! replica at once. A failed read keeps the current router (LiteLLM skips the update too).
//! String values of `litellm_params` are decrypted with the salt key (`LITELLM_SALT_KEY`, else
//! the master key); `os.environ/NAME` values are resolved after decryption.
//!
//! Deviation: LiteLLM keeps a value it cannot decrypt as is (so a changed salt key leaves
//! ciphertext in `api_key` and every call fails upstream). Here a row none of whose
//! ciphertext-shaped values decrypt is skipped with an error log naming the model and the
//! fields, so one bad row neither crashes the gateway nor serves garbage credentials.
//!
//! What must not go in here: SQL (`store::models`), HTTP shapes (`handlers::model_admin`).

use super::ModelRouter;
use crate::config::{DeploymentConfig, LitellmParams, LoadedConfig, ModelInfoConfig, Secret};
use crate::crypto::{looks_encrypted, Algorithm, SaltKey};
use crate::state::Inner;
use crate::store::{ProxyModelRow, StoreError};
use serde_json::{Map, Value};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// LiteLLM's `PROXY_CONFIG_RELOAD_INTERVAL_SECONDS` default.
const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(30);
const ENV_PREFIX: &str = "os.environ/";

/// Settings and the reload lock of the DB-model feature.
#[derive(Debug)]
pub struct DbModels {
    /// `general_settings.store_model_in_db` or `STORE_MODEL_IN_DB=True`.
    pub enabled: bool,
    salt: Option<SaltKey>,
    /// How often the table is re-read.
    pub interval: Duration,
    /// `--model` single-model mode, re-applied to every rebuilt router.
    catch_all: Option<String>,
    /// One reload at a time, so an older read never overwrites a newer one. Holds the rows
    /// the current router was built from: an unchanged table costs no rebuild.
    applied: tokio::sync::Mutex<Option<Vec<ProxyModelRow>>>,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl DbModels {
    pub fn from_config(
        loaded: &LoadedConfig,
        master_key: Option<&Secret>,
        catch_all: Option<String>,
    ) -> Self {
        let gs = &loaded.config.general_settings.extra;
        let enabled = gs.get("store_model_in_db").is_some_and(truthy)
            || loaded
                .env("STORE_MODEL_IN_DB")
                .is_some_and(|v| truthy(&Value::String(v)));
        let write = Algorithm::from_setting(gs.get("encryption_algorithm").and_then(Value::as_str));
        let salt = loaded
            .env("LITELLM_SALT_KEY")
            .or_else(|| master_key.map(|k| k.expose().to_string()))
            .map(|s| SaltKey::new(&s, write));
        let configured = gs
            .get("proxy_config_reload_interval_seconds")
            .cloned()
            .or_else(|| {
                loaded
                    .env("PROXY_CONFIG_RELOAD_INTERVAL_SECONDS")
                    .map(Value::String)
            });
        let interval = match configured {
            None => DEFAULT_RELOAD_INTERVAL,
            Some(v) => {
                let secs = match &v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse::<u64>().ok(),
                    _ => None,
                };
                match secs.filter(|s| *s > 0) {
                    Some(s) => Duration::from_secs(s),
                    None => {
                        tracing::warn!(
                            "proxy_config_reload_interval_seconds={v} must be a positive integer; using 30 s"
                        );
                        DEFAULT_RELOAD_INTERVAL
                    }
                }
            }
        };
        Self {
            enabled,
            salt,
            interval,
            catch_all,
            applied: tokio::sync::Mutex::new(None),
        }
    }

    /// The key values are encrypted with, if a salt key or master key is set.
    pub fn salt(&self) -> Option<&SaltKey> {
        self.salt.as_ref()
    }
}

fn resolve_env(loaded: &LoadedConfig, v: &mut Value) {
    if let Value::String(s) = v {
        if let Some(name) = s.strip_prefix(ENV_PREFIX) {
            *v = loaded
                .env(name.trim())
                .map(Value::String)
                .unwrap_or(Value::Null);
        }
    }
}

/// Turns a stored row into a deployment config: decrypts `litellm_params`, resolves
/// `os.environ/` references, and marks the entry as a DB model with the row's id.
pub fn deployment_config(
    row: &ProxyModelRow,
    salt: Option<&SaltKey>,
    loaded: &LoadedConfig,
) -> Result<DeploymentConfig, String> {
    let Value::Object(stored) = &row.litellm_params else {
        return Err("litellm_params is not a JSON object".into());
    };
    let mut params = Map::new();
    let mut decrypted_any = false;
    let mut failed: Vec<&str> = Vec::new();
    for (k, v) in stored {
        let mut v = v.clone();
        if let Value::String(s) = &v {
            let shaped = looks_encrypted(s);
            match salt.map(|key| key.decrypt(s)) {
                Some(Ok(plain)) => {
                    decrypted_any |= shaped;
                    v = Value::String(plain);
                }
                // Not a ciphertext (hand-written plaintext): kept, as LiteLLM does.
                _ if !shaped => {}
                _ => failed.push(k),
            }
        }
        resolve_env(loaded, &mut v);
        params.insert(k.clone(), v);
    }
    if !failed.is_empty() {
        if !decrypted_any {
            return Err(format!(
                "litellm_params.{} cannot be decrypted with the salt key; was LITELLM_SALT_KEY (or the master key, when no salt key is set) changed since the model was stored?",
                failed.join(", litellm_params.")
            ));
        }
        tracing::warn!(
            model_id = %row.model_id,
            "DB model `{}`: litellm_params.{} did not decrypt with the salt key; the stored value is used as is",
            row.model_name,
            failed.join(", litellm_params.")
        );
    }
    let litellm_params: LitellmParams = serde_json::from_value(Value::Object(params.clone()))
        .map_err(|e| format!("invalid litellm_params: {e}"))?;
    let mut info = match &row.model_info {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    info.insert("id".into(), Value::String(row.model_id.clone()));
    info.insert("db_model".into(), Value::Bool(true));
    let model_info: ModelInfoConfig = serde_json::from_value(Value::Object(info))
        .map_err(|e| format!("invalid model_info: {e}"))?;
    Ok(DeploymentConfig {
        model_name: row.model_name.clone(),
        litellm_params,
        model_info,
        raw_params: params,
        db_model: true,
    })
}

/// Reads the table, rebuilds the router from the config plus the stored models, and swaps it
/// in. Rows that cannot be used are logged and left out. Returns how many DB models are live.
pub async fn reload(inner: &Inner) -> Result<usize, StoreError> {
    let db = &inner.db_models;
    let mut applied = db.applied.lock().await;
    let rows = inner.store.list_proxy_models().await?;
    if applied.as_ref() == Some(&rows) {
        let live = inner
            .router
            .load()
            .all_deployments()
            .filter(|d| d.config.db_model)
            .count();
        return Ok(live);
    }
    let mut configs = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.blocked {
            continue;
        }
        match deployment_config(row, db.salt(), &inner.loaded) {
            Ok(dc) => configs.push(dc),
            Err(e) => tracing::error!(
                model_id = %row.model_id,
                "DB model `{}` skipped: {e}",
                row.model_name
            ),
        }
    }
    let previous = inner.router.load_full();
    let mut router = match ModelRouter::build(&inner.loaded, &configs, Some(&previous)) {
        Ok(r) => r,
        Err(errs) => {
            // Only router-wide settings fail a build, and those were valid at start-up.
            tracing::error!("DB models not applied: {}", errs.join("; "));
            return Ok(0);
        }
    };
    if let Some(m) = &db.catch_all {
        router.set_catch_all(m);
    }
    let live = router
        .all_deployments()
        .filter(|d| d.config.db_model)
        .count();
    inner
        .cooldowns
        .set_deployment_ids(router.all_deployments().map(|d| d.id.clone()).collect());
    inner.router.store(Arc::new(router));
    *applied = Some(rows);
    Ok(live)
}

/// Re-reads the table every `interval` until the state is dropped.
pub async fn poll_loop(state: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick fires at once; start-up already loaded the table.
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = state.upgrade() else { return };
        if let Err(e) = reload(&inner).await {
            tracing::warn!("reading DB models failed; keeping the current ones: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use serde_json::json;

    fn row(params: Value) -> ProxyModelRow {
        ProxyModelRow {
            model_id: "m1".into(),
            model_name: "db-model".into(),
            litellm_params: params,
            model_info: Some(json!({"mode": "chat"})),
            blocked: false,
            created_at: None,
            created_by: "admin".into(),
            updated_at: None,
            updated_by: "admin".into(),
        }
    }

    #[test]
    fn decrypts_marks_and_keeps_plaintexts() {
        let loaded = load_str("model_list: []\n", "t.yaml").unwrap();
        let key = SaltKey::new("salt", Algorithm::default());
        let r = row(json!({
            "model": key.encrypt("openai/gpt-4o").unwrap(),
            "api_key": key.encrypt("sk-up").unwrap(),
            "api_base": "http://127.0.0.1:9/v1",
            "rpm": 5,
        }));
        let dc = deployment_config(&r, Some(&key), &loaded).unwrap();
        assert_eq!(dc.litellm_params.model, "openai/gpt-4o");
        assert_eq!(
            dc.litellm_params.api_key.as_ref().map(|s| s.expose()),
            Some("sk-up")
        );
        assert_eq!(
            dc.litellm_params.api_base.as_deref(),
            Some("http://127.0.0.1:9/v1")
        );
        assert_eq!(dc.litellm_params.rpm, Some(5));
        assert_eq!(dc.model_info.id.as_deref(), Some("m1"));
        assert!(dc.db_model);
    }

    #[test]
    fn a_row_under_another_salt_key_is_refused_naming_the_fields() {
        let loaded = load_str("model_list: []\n", "t.yaml").unwrap();
        let other = SaltKey::new("old-salt", Algorithm::default());
        let r = row(json!({
            "model": other.encrypt("openai/gpt-4o").unwrap(),
            "api_key": other.encrypt("sk-up").unwrap(),
        }));
        let key = SaltKey::new("new-salt", Algorithm::default());
        let e = deployment_config(&r, Some(&key), &loaded).unwrap_err();
        assert!(
            e.contains("litellm_params.model") && e.contains("LITELLM_SALT_KEY"),
            "{e}"
        );
        let e = deployment_config(&r, None, &loaded).unwrap_err();
        assert!(e.contains("litellm_params.api_key"), "{e}");
    }

    #[test]
    fn settings_follow_litellm() {
        let l = load_str(
            "general_settings:\n  store_model_in_db: true\n  proxy_config_reload_interval_seconds: 2\n",
            "t.yaml",
        )
        .unwrap();
        let d = DbModels::from_config(&l, None, None);
        assert!(d.enabled && d.salt().is_none());
        assert_eq!(d.interval, Duration::from_secs(2));
        let l = load_str(
            "general_settings:\n  proxy_config_reload_interval_seconds: -1\n",
            "t.yaml",
        )
        .unwrap();
        let d = DbModels::from_config(&l, Some(&Secret::new("sk-m")), None);
        assert_eq!(d.interval, DEFAULT_RELOAD_INTERVAL);
        assert!(d.salt().is_some());
    }
}
