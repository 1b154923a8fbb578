//! Per-model budgets (`model_max_budget` on keys, users and teams): parsing, validation, and
//! which entry governs a requested model.
//!
//! An entry is `{"<model>": {"budget_limit": 1.5, "time_period": "1d"}}` (LiteLLM also accepts
//! `max_budget` / `budget_duration`). Spend against an entry counts in a window of
//! `time_period` that starts with the first call charged to it, as LiteLLM's limiter does; an
//! entry without a period never resets. The entry that governs a request is the one named
//! exactly as the requested model, else the one named as the model without its
//! `provider/` prefix (`gpt-4o` governs `openai/gpt-4o`).
//!
//! The spend itself is held by [`super::Budgets`] (reserve before the call, settle after), so
//! concurrent calls overshoot a per-model budget by at most one call's cost, like the others.

use serde_json::Value;
use std::sync::Arc;

/// One `model_max_budget` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBudget {
    pub model: String,
    pub max_budget: f64,
    /// The budget window in seconds; `None` = never resets.
    pub window_secs: Option<u64>,
    /// The period as configured (part of the counter's name, like LiteLLM's cache key).
    pub period: Option<String>,
}

/// The per-model budgets of one owner (a key, a user or a team).
#[derive(Debug, Clone)]
pub struct OwnerModelBudgets {
    /// Counter prefix: `key:<hash>`, `user:<id>`, `team:<id>`.
    pub owner: String,
    /// How LiteLLM names the owner in its error (`LiteLLM Virtual Key: <hash>, key_alias: <a>`,
    /// `LiteLLM User: <id>`, `LiteLLM Team: <id>`).
    pub label: String,
    pub entries: Arc<[ModelBudget]>,
    /// Team budgets give way to a key entry governing the same model (LiteLLM's rule).
    pub yields_to_key: bool,
}

/// Parses and validates a `model_max_budget` object. `Err` names what is wrong.
pub fn parse(v: &Value) -> Result<Vec<ModelBudget>, String> {
    let obj = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Object(o) => o,
        _ => {
            return Err(
                "model_max_budget must be an object of {model: {budget_limit, time_period}}".into(),
            )
        }
    };
    let mut out = Vec::with_capacity(obj.len());
    for (model, cfg) in obj {
        let Value::Object(c) = cfg else {
            return Err(format!(
                "model_max_budget['{model}'] must be an object with budget_limit and time_period"
            ));
        };
        let limit = c.get("budget_limit").or_else(|| c.get("max_budget"));
        let max_budget = match limit {
            None | Some(Value::Null) => continue,
            Some(Value::Number(n)) => n.as_f64(),
            // LiteLLM's CRUD endpoints accept the limit as a numeric string.
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Some(_) => None,
        }
        .filter(|x| x.is_finite() && *x >= 0.0)
        .ok_or_else(|| format!("model_max_budget['{model}'].budget_limit must be a number >= 0"))?;
        let period = match c.get("time_period").or_else(|| c.get("budget_duration")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(format!(
                    "model_max_budget['{model}'].time_period must be a duration such as \"1d\""
                ))
            }
        };
        let window_secs = match &period {
            None => None,
            Some(p) => Some(
                super::parse_duration(p)
                    .map(|d| d.num_seconds().max(1) as u64)
                    .ok_or_else(|| {
                        format!(
                            "model_max_budget['{model}'].time_period '{p}' is not a duration (e.g. 30s, 1h, 1d, 1mo)"
                        )
                    })?,
            ),
        };
        out.push(ModelBudget {
            model: model.clone(),
            max_budget,
            window_secs,
            period,
        });
    }
    Ok(out)
}

/// The entry that governs `model`, if any.
pub fn resolve<'a>(model: &str, entries: &'a [ModelBudget]) -> Option<&'a ModelBudget> {
    let bare = model.rsplit('/').next().unwrap_or(model);
    entries
        .iter()
        .find(|e| e.model == model)
        .or_else(|| entries.iter().find(|e| e.model == bare))
}

impl OwnerModelBudgets {
    /// The owner's budgets, or `None` when `v` sets none (or cannot be parsed: stored rows were
    /// validated on the way in, so a bad one is logged and ignored rather than failing calls).
    pub fn from_value(
        owner: String,
        label: String,
        v: &Value,
        yields_to_key: bool,
    ) -> Option<Self> {
        match parse(v) {
            Ok(entries) if !entries.is_empty() => Some(Self {
                owner,
                label,
                entries: entries.into(),
                yields_to_key,
            }),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(owner = %owner, "ignoring unusable model_max_budget: {e}");
                None
            }
        }
    }

    /// The [`super::Budgets`] counter for an entry.
    pub fn counter(&self, e: &ModelBudget) -> String {
        format!(
            "model:{}:{}:{}",
            self.owner,
            e.model,
            e.period.as_deref().unwrap_or("")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_litellm_spellings_and_rejects_bad_entries() {
        let v = json!({"gpt-4o": {"budget_limit": "0.5", "time_period": "1d"},
                       "claude": {"max_budget": 2, "budget_duration": "30s"},
                       "open": {"budget_limit": 1}});
        let mut p = parse(&v).unwrap();
        p.sort_by(|a, b| a.model.cmp(&b.model));
        assert_eq!(p[0].model, "claude");
        assert_eq!(p[0].window_secs, Some(30));
        assert_eq!(p[1].max_budget, 0.5);
        assert_eq!(p[1].window_secs, Some(86_400));
        assert_eq!(p[2].window_secs, None);
        assert!(parse(&json!({"m": {"budget_limit": -1}})).is_err());
        assert!(parse(&json!({"m": {"budget_limit": 1, "time_period": "soon"}})).is_err());
        assert!(parse(&json!({"m": 3})).is_err());
        assert!(parse(&json!([1])).is_err());
        assert!(parse(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn exact_name_wins_then_the_name_without_provider() {
        let p =
            parse(&json!({"gpt-4o": {"budget_limit": 1}, "openai/gpt-4o": {"budget_limit": 2}}))
                .unwrap();
        assert_eq!(resolve("openai/gpt-4o", &p).unwrap().max_budget, 2.0);
        let p = parse(&json!({"gpt-4o": {"budget_limit": 1}})).unwrap();
        assert_eq!(resolve("openai/gpt-4o", &p).unwrap().max_budget, 1.0);
        assert!(resolve("gpt-4o-mini", &p).is_none());
    }
}
