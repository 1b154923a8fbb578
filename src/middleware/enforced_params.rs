//! Enforced request parameters: fields every LLM call of a caller must carry.
//!
//! Owns LiteLLM's rule, gathered from `general_settings.enforced_params`, from
//! `general_settings.service_account_settings.enforced_params` for service-account keys (their
//! metadata names a `service_account_id`), and from the key's own `metadata.enforced_params`
//! (set by `/key/generate` and `/key/update`). A name is a top-level field (`user`) or one
//! level into an object (`metadata.generation_name`); longer paths are not checked, as in
//! LiteLLM. LiteLLM fills the request's `metadata` itself before this check, so `metadata`
//! alone is always present there and is here too. Like [`super::end_user`], not a layer: the
//! LLM handlers call it once the body is parsed. A caller with nothing enforced pays three
//! empty lookups.

use crate::api::Field;
use crate::config::GeneralSettings;
use crate::error::{ApiError, ApiResult};
use crate::store::KeyRow;
use serde_json::{Map, Value};

/// The names that apply to a caller.
fn names<'a>(g: &'a GeneralSettings, key: Option<&'a KeyRow>) -> impl Iterator<Item = &'a str> {
    let general = g.enforced_params.iter().flatten().map(String::as_str);
    let service = key
        .filter(|k| k.metadata.field("service_account_id").is_some())
        .and(g.service_account_settings.as_ref())
        .and_then(|s| s.enforced_params.as_ref())
        .into_iter()
        .flatten()
        .map(String::as_str);
    let own = key
        .and_then(|k| k.metadata.field("enforced_params"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    general.chain(service).chain(own)
}

/// LiteLLM's refusal for a missing parameter (it answers 500 for this; it is the client's
/// error, so 400 here).
fn missing(shown: String, param: &str) -> ApiError {
    ApiError::bad_request(format!(
        "BadRequest please pass param={shown} in request body. This is a required param"
    ))
    .with_param(param)
}

/// Checks `body` (as the client sent it) against every enforced name that applies.
pub fn check(
    g: &GeneralSettings,
    key: Option<&KeyRow>,
    body: &Map<String, Value>,
) -> ApiResult<()> {
    for name in names(g, key) {
        let mut parts = name.split('.');
        let (Some(top), inner, None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let value = body.field(top);
        if value.is_none() && top != "metadata" {
            return Err(missing(top.to_string(), name));
        }
        if let Some(inner) = inner {
            if value.and_then(|v| v.field(inner)).is_none() {
                return Err(missing(format!("[{top}][{inner}]"), name));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServiceAccountSettings;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn settings(general: &[&str]) -> GeneralSettings {
        GeneralSettings {
            enforced_params: Some(general.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    fn key(metadata: Value) -> KeyRow {
        KeyRow {
            metadata,
            ..Default::default()
        }
    }

    #[test]
    fn top_level_and_nested_names_are_required() {
        let g = settings(&["user", "metadata.generation_name"]);
        let ok = body(json!({"user": "u1", "metadata": {"generation_name": "g"}}));
        assert!(check(&g, None, &ok).is_ok());
        let e = check(
            &g,
            None,
            &body(json!({"metadata": {"generation_name": "g"}})),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "BadRequest please pass param=user in request body. This is a required param"
        );
        assert_eq!(e.param.as_deref(), Some("user"));
        let e = check(&g, None, &body(json!({"user": "u1", "metadata": {}}))).unwrap_err();
        assert_eq!(
            e.message,
            "BadRequest please pass param=[metadata][generation_name] in request body. This is a required param"
        );
        assert!(check(&g, None, &body(json!({"user": "u1"}))).is_err());
        // `metadata` alone is always there (LiteLLM adds its own); deeper paths are not checked.
        let g = settings(&["metadata", "a.b.c"]);
        assert!(check(&g, None, &Map::new()).is_ok());
        assert!(check(&GeneralSettings::default(), None, &Map::new()).is_ok());
    }

    #[test]
    fn keys_and_service_accounts_add_their_own() {
        let mut g = settings(&[]);
        g.service_account_settings = Some(ServiceAccountSettings {
            enforced_params: Some(vec!["user".into()]),
            ..Default::default()
        });
        let plain = key(json!({"enforced_params": ["temperature"]}));
        let e = check(&g, Some(&plain), &body(json!({"user": "u"}))).unwrap_err();
        assert!(e.message.contains("param=temperature"), "{}", e.message);
        assert!(check(&g, Some(&plain), &body(json!({"temperature": 0.1}))).is_ok());
        let service = key(json!({"service_account_id": "svc"}));
        assert!(check(&g, Some(&service), &Map::new()).is_err());
        assert!(check(&g, Some(&service), &body(json!({"user": "u"}))).is_ok());
        assert!(check(&g, None, &Map::new()).is_ok());
    }
}
