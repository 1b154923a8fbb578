//! Model groups and the choice of a deployment for a request.
//!
//! A request's `model` is resolved as LiteLLM does: `router_settings.model_group_alias`, then an
//! exact `model_name`, then the most specific wildcard pattern (`openai/*`, `*`). The group's
//! deployments are then filtered by the request's tags (when tag filtering is on, see
//! [`tags`]), by `order`, and one is picked by the routing strategy.
//!
//! What must not go in here: provider wire formats, auth decisions.

pub mod cooldown;
pub mod db_models;
pub mod deployment;
pub mod strategy;
pub mod tags;

pub use deployment::{Deployment, Mode};

use crate::config::LoadedConfig;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use strategy::Strategy;

/// Deployments sharing one `model_name`.
#[derive(Debug)]
pub struct ModelGroup {
    pub name: String,
    pub deployments: Vec<Arc<Deployment>>,
    /// Union of the deployments' `model_info.access_groups`.
    pub access_groups: Vec<String>,
    pub strategy: Strategy,
    /// `enable_pre_call_checks`: skip deployments whose context window the prompt exceeds.
    pub pre_call_checks: bool,
    /// Tag-based routing applies to this group: `model_info.enable_tag_filtering` of its
    /// deployments (the first one that sets it) or else `router_settings.enable_tag_filtering`.
    pub tag_filtering: bool,
    /// `router_settings.tag_filtering_match_any` (default true).
    pub tag_match_any: bool,
    /// A `/responses` call whose `previous_response_id` names a deployment of this group goes to
    /// it: LiteLLM's `responses_api_deployment_check`, off unless listed in
    /// `router_settings.optional_pre_call_checks` or in this group's entry of
    /// `router_settings.model_group_affinity_config` (which, when present, replaces the
    /// global list for the group).
    pub responses_affinity: bool,
}

/// LiteLLM's name of the `previous_response_id` pinning check.
const RESPONSES_AFFINITY_CHECK: &str = "responses_api_deployment_check";

/// Whether a list of LiteLLM pre-call checks (`optional_pre_call_checks`, or a group's entry
/// of `model_group_affinity_config`) holds the Responses API one.
fn lists_responses_affinity(checks: Option<&Value>) -> bool {
    checks.and_then(Value::as_array).is_some_and(|l| {
        l.iter()
            .any(|c| c.as_str() == Some(RESPONSES_AFFINITY_CHECK))
    })
}

/// What a pick may consider about the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickHints<'a> {
    pub stream: bool,
    /// Estimated prompt tokens (for pre-call context-window checks); 0 = unknown.
    pub prompt_tokens: u64,
    /// Which deployments (by position in the group) the request's tags allow; `None`: all.
    pub allowed: Option<&'a [bool]>,
}

/// A request's model, resolved to a group.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    pub group: &'a Arc<ModelGroup>,
    /// What the wildcard `*` matched, to substitute into the upstream model id.
    pub capture: Option<String>,
}

#[derive(Debug, Default)]
pub struct ModelRouter {
    /// Looked up by every request: a fast hash (the names are the config's, not the caller's).
    groups: foldhash::HashMap<String, Arc<ModelGroup>>,
    /// Group names in config order, for `/v1/models`.
    order: Vec<String>,
    /// `(prefix before '*', suffix after '*', group)`, most specific first.
    wildcards: Vec<(String, String, Arc<ModelGroup>)>,
    /// `model_group_alias`: alias -> (group, hidden).
    aliases: foldhash::HashMap<String, (String, bool)>,
    /// `--model` quick start: every request goes here.
    catch_all: Option<Arc<ModelGroup>>,
    /// Model groups whose deployments could not be set up, with the reason.
    unavailable: HashMap<String, String>,
}

impl ModelRouter {
    pub fn from_config(loaded: &LoadedConfig) -> Result<Self, Vec<String>> {
        Self::build(loaded, &[], None)
    }

    /// The config's `model_list` followed by `db_models` (models stored in the database; one
    /// with the id of a config deployment replaces it, as LiteLLM's upsert does). Deployments
    /// whose id was already in `previous` keep its live routing stats, so a reload does not
    /// reset latency, usage or in-flight counts.
    pub fn build(
        loaded: &LoadedConfig,
        db_models: &[crate::config::DeploymentConfig],
        previous: Option<&ModelRouter>,
    ) -> Result<Self, Vec<String>> {
        let old_stats: HashMap<&str, &Arc<strategy::DeploymentStats>> = previous
            .map(|p| {
                p.groups
                    .values()
                    .flat_map(|g| g.deployments.iter())
                    .map(|d| (d.id.as_str(), &d.stats))
                    .collect()
            })
            .unwrap_or_default();
        let mut errors = Vec::new();
        let mut by_name: Vec<(String, Vec<Arc<Deployment>>)> = Vec::new();
        let entries = loaded.config.model_list.iter().chain(db_models);
        for (i, dc) in entries.enumerate() {
            match Deployment::from_config(dc, i, loaded) {
                Ok(mut d) => {
                    if let Some(stats) = old_stats.get(d.id.as_str()) {
                        d.stats = Arc::clone(stats);
                    }
                    if dc.db_model {
                        for (_, v) in by_name.iter_mut() {
                            v.retain(|x| x.id != d.id);
                        }
                        by_name.retain(|(_, v)| !v.is_empty());
                    }
                    let d = Arc::new(d);
                    match by_name.iter_mut().find(|(n, _)| *n == dc.model_name) {
                        Some((_, v)) => v.push(d),
                        None => by_name.push((dc.model_name.clone(), vec![d])),
                    }
                }
                Err(e) => errors.push((dc.model_name.clone(), e)),
            }
        }
        let rs = &loaded.config.router_settings;
        let strategy = Strategy::from_settings(rs.routing_strategy.as_deref(), &rs.extra)
            .map_err(|e| vec![e])?;
        let pre_call_checks = rs
            .extra
            .get("enable_pre_call_checks")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let tag_filtering = rs.enable_tag_filtering.unwrap_or(false);
        let tag_match_any = rs.tag_filtering_match_any.unwrap_or(true);
        let responses_affinity = lists_responses_affinity(rs.extra.get("optional_pre_call_checks"));
        let group_affinity = rs
            .extra
            .get("model_group_affinity_config")
            .and_then(Value::as_object);
        let mut router = Self::default();
        // LiteLLM starts with a deployment it cannot call and fails its requests; so do we,
        // with the reason logged once here and returned to each caller of that model.
        for (name, e) in errors {
            tracing::warn!("deployment of model group `{name}` is unusable: {e}");
            router.unavailable.entry(name).or_insert(e);
        }
        for (name, deployments) in by_name {
            let mut access_groups: Vec<String> = deployments
                .iter()
                .flat_map(|d| d.config.model_info.access_groups.iter().cloned())
                .collect();
            access_groups.sort();
            access_groups.dedup();
            let group = Arc::new(ModelGroup {
                name: name.clone(),
                tag_filtering: deployments
                    .iter()
                    .find_map(|d| {
                        d.config
                            .model_info
                            .extra
                            .get("enable_tag_filtering")
                            .and_then(Value::as_bool)
                    })
                    .unwrap_or(tag_filtering),
                access_groups,
                deployments,
                strategy,
                pre_call_checks,
                tag_match_any,
                responses_affinity: match group_affinity.and_then(|m| m.get(&name)) {
                    Some(checks) => lists_responses_affinity(Some(checks)),
                    None => responses_affinity,
                },
            });
            if let Some(star) = name.find('*') {
                router.wildcards.push((
                    name[..star].to_string(),
                    name[star + 1..].to_string(),
                    group.clone(),
                ));
            }
            router.order.push(name.clone());
            router.groups.insert(name, group);
        }
        router
            .wildcards
            .sort_by_key(|w| std::cmp::Reverse(w.0.len() + w.1.len()));
        for (alias, target) in &loaded.config.router_settings.model_group_alias {
            match target {
                Value::String(g) => {
                    router.aliases.insert(alias.clone(), (g.clone(), false));
                }
                Value::Object(o) => {
                    if let Some(g) = o.get("model").and_then(Value::as_str) {
                        let hidden = o.get("hidden").and_then(Value::as_bool).unwrap_or(false);
                        router
                            .aliases
                            .insert(alias.clone(), (g.to_string(), hidden));
                    }
                }
                _ => {}
            }
        }
        Ok(router)
    }

    /// Single-model mode (`litellm --model X`): all requests go to the one group.
    pub fn set_catch_all(&mut self, name: &str) {
        self.catch_all = self.groups.get(name).cloned();
    }

    /// Resolves a requested model name to its group.
    pub fn resolve(&self, model: &str) -> Option<Resolved<'_>> {
        if let Some(g) = &self.catch_all {
            return Some(Resolved {
                group: g,
                capture: None,
            });
        }
        let name = self
            .aliases
            .get(model)
            .map(|(g, _)| g.as_str())
            .unwrap_or(model);
        if let Some(g) = self.groups.get(name) {
            return Some(Resolved {
                group: g,
                capture: None,
            });
        }
        self.wildcards.iter().find_map(|(pre, suf, g)| {
            let mid = name
                .strip_prefix(pre.as_str())?
                .strip_suffix(suf.as_str())?;
            (!mid.is_empty()).then(|| Resolved {
                group: g,
                capture: Some(mid.to_string()),
            })
        })
    }

    /// Why a configured model group cannot serve requests, if that is the case.
    pub fn unavailable_reason(&self, model: &str) -> Option<&str> {
        self.unavailable.get(model).map(String::as_str)
    }

    /// Public model names in config order (groups, then visible aliases).
    pub fn model_names(&self) -> Vec<String> {
        let mut out = self.order.clone();
        for (alias, (_, hidden)) in &self.aliases {
            if !hidden && !out.contains(alias) {
                out.push(alias.clone());
            }
        }
        out
    }

    pub fn groups(&self) -> impl Iterator<Item = &Arc<ModelGroup>> {
        self.order.iter().filter_map(|n| self.groups.get(n))
    }

    pub fn group(&self, name: &str) -> Option<&Arc<ModelGroup>> {
        self.groups.get(name)
    }

    pub fn all_deployments(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        self.groups().flat_map(|g| g.deployments.iter())
    }
}

impl ModelGroup {
    /// Whether a `models` allow-list (a key's, an organization's, a customer's) grants this
    /// group when it was asked for as `requested`: `all-proxy-models`, the group's name, the
    /// requested name, one of the group's access groups, or a `prefix*` wildcard matching the
    /// requested name.
    pub fn allowed_by(&self, list: &[String], requested: &str) -> bool {
        list.iter().any(|m| {
            m == "all-proxy-models"
                || m == &self.name
                || m == requested
                || self.access_groups.contains(m)
                || m.strip_suffix('*')
                    .is_some_and(|p| requested.starts_with(p))
        })
    }

    /// Picks a deployment with default hints (see [`ModelGroup::pick_with`]).
    pub fn pick(&self, exclude: &[&str]) -> Option<&Arc<Deployment>> {
        self.pick_with(exclude, PickHints::default())
    }

    /// Picks a deployment: deployments the request's tags rule out, those in `exclude`
    /// (already tried, cooling down) and, with pre-call checks, those whose context window is
    /// too small are left out; only the lowest `order` tier is eligible; the routing strategy
    /// chooses within it.
    pub fn pick_with(&self, exclude: &[&str], hints: PickHints) -> Option<&Arc<Deployment>> {
        let minute = strategy::unix_minute();
        let eligible = |(i, d): &(usize, &Arc<Deployment>)| {
            hints
                .allowed
                .is_none_or(|a| a.get(*i).copied().unwrap_or(false))
                && !exclude.contains(&d.id.as_str())
                && (!self.pre_call_checks
                    || (fits(d, hints.prompt_tokens) && d.stats.under_limits(d, minute)))
        };
        let min_order = self
            .deployments
            .iter()
            .enumerate()
            .filter(eligible)
            .map(|(_, d)| d.order.unwrap_or(u64::MAX))
            .min()?;
        let tier: Vec<&Arc<Deployment>> = self
            .deployments
            .iter()
            .enumerate()
            .filter(eligible)
            .map(|(_, d)| d)
            .filter(|d| d.order.unwrap_or(u64::MAX) == min_order)
            .collect();
        strategy::choose(self.strategy, &tier, hints.stream)
    }

    /// With tag filtering on for this group, which deployments a request carrying `tags` may
    /// use (see [`tags::allowed`]); `None` (and no work) when it is off.
    pub fn tag_mask(
        &self,
        tags: &[String],
        model: &str,
    ) -> Result<Option<Vec<bool>>, crate::error::ApiError> {
        if !self.tag_filtering {
            return Ok(None);
        }
        tags::allowed(&self.deployments, tags, self.tag_match_any, model).map(Some)
    }

    /// With pre-call checks on, whether the prompt is too long for every deployment.
    pub fn exceeds_every_context_window(&self, prompt_tokens: u64) -> bool {
        self.pre_call_checks
            && prompt_tokens > 0
            && !self.deployments.iter().any(|d| fits(d, prompt_tokens))
    }
}

fn fits(d: &Deployment, prompt_tokens: u64) -> bool {
    d.max_input_tokens.is_none_or(|m| prompt_tokens <= m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn router(yaml: &str) -> ModelRouter {
        ModelRouter::from_config(&load_str(yaml, "t.yaml").unwrap()).unwrap()
    }

    #[test]
    fn exact_beats_wildcard_and_longest_pattern_wins() {
        let r = router(
            "model_list:\n  - model_name: '*'\n    litellm_params: {model: 'openai/*'}\n  - model_name: 'openai/*'\n    litellm_params: {model: 'openai/*'}\n  - model_name: openai/gpt-4o\n    litellm_params: {model: openai/gpt-4o, api_key: k}\n",
        );
        assert!(r.resolve("openai/gpt-4o").unwrap().capture.is_none());
        let w = r.resolve("openai/gpt-4o-mini").unwrap();
        assert_eq!(w.group.name, "openai/*");
        assert_eq!(w.capture.as_deref(), Some("gpt-4o-mini"));
        let d = w.group.deployments[0].upstream_model_for(w.capture.as_deref());
        assert_eq!(d, "gpt-4o-mini");
        let any = r.resolve("llama3").unwrap();
        assert_eq!(any.group.name, "*");
    }

    #[test]
    fn aliases_resolve() {
        let r = router(
            "model_list:\n  - model_name: gpt-4o\n    litellm_params: {model: openai/gpt-4o}\nrouter_settings:\n  model_group_alias: {my-model: gpt-4o, secret: {model: gpt-4o, hidden: true}}\n",
        );
        assert_eq!(r.resolve("my-model").unwrap().group.name, "gpt-4o");
        assert_eq!(r.resolve("secret").unwrap().group.name, "gpt-4o");
        let names = r.model_names();
        assert!(names.contains(&"my-model".to_string()) && !names.contains(&"secret".to_string()));
        assert!(r.resolve("nope").is_none());
    }

    #[test]
    fn order_tier_and_weights() {
        let r = router(
            "model_list:\n  - model_name: g\n    litellm_params: {model: openai/a, order: 2}\n  - model_name: g\n    litellm_params: {model: openai/b, order: 1, weight: 1}\n  - model_name: g\n    litellm_params: {model: openai/c, order: 1, weight: 3}\n",
        );
        let g = r.group("g").unwrap();
        let mut c = 0;
        for _ in 0..2000 {
            let d = g.pick(&[]).unwrap();
            assert_ne!(d.upstream_model, "a");
            if d.upstream_model == "c" {
                c += 1;
            }
        }
        assert!((1300..1700).contains(&c), "{c}");
        let b = g
            .deployments
            .iter()
            .find(|d| d.upstream_model == "b")
            .unwrap()
            .id
            .clone();
        let cc = g
            .deployments
            .iter()
            .find(|d| d.upstream_model == "c")
            .unwrap()
            .id
            .clone();
        assert_eq!(g.pick(&[&b, &cc]).unwrap().upstream_model, "a");
    }

    fn two(strategy: &str, a: &str, b: &str) -> ModelRouter {
        router(&format!(
            "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/a, {a}}}\n  - model_name: g\n    litellm_params: {{model: openai/b, {b}}}\nrouter_settings:\n  routing_strategy: {strategy}\n  enable_pre_call_checks: true\n"
        ))
    }

    fn picks(g: &ModelGroup, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| g.pick(&[]).unwrap().upstream_model.clone())
            .collect()
    }

    #[test]
    fn least_busy_avoids_deployments_with_calls_in_flight() {
        let r = two("least-busy", "api_key: k", "api_key: k");
        let g = r.group("g").unwrap();
        let a = g
            .deployments
            .iter()
            .find(|d| d.upstream_model == "a")
            .unwrap();
        let _busy = a.stats.start();
        assert!(picks(g, 50).iter().all(|m| m == "b"));
    }

    #[test]
    fn usage_based_skips_deployments_at_their_rpm() {
        let r = two("usage-based-routing-v2", "rpm: 2", "rpm: 1");
        let g = r.group("g").unwrap();
        let by = |m: &str| {
            g.deployments
                .iter()
                .find(|d| d.upstream_model == m)
                .unwrap()
                .clone()
        };
        by("b").stats.start();
        by("b").stats.add_tokens(10);
        assert!(picks(g, 20).iter().all(|m| m == "a"), "b is at its rpm");
        by("a").stats.start();
        by("a").stats.start();
        assert!(g.pick(&[]).is_none(), "every deployment at its rpm");
    }

    #[test]
    fn latency_based_prefers_unmeasured_then_fastest() {
        let r = two("latency-based-routing", "api_key: k", "api_key: k");
        let g = r.group("g").unwrap();
        let by = |m: &str| {
            g.deployments
                .iter()
                .find(|d| d.upstream_model == m)
                .unwrap()
                .clone()
        };
        by("a")
            .stats
            .record_latency(std::time::Duration::from_millis(100), false);
        assert!(picks(g, 20).iter().all(|m| m == "b"), "b has no sample yet");
        by("b")
            .stats
            .record_latency(std::time::Duration::from_millis(10), false);
        assert!(picks(g, 20).iter().all(|m| m == "b"));
        // Streams look at time to first token where measured.
        by("b")
            .stats
            .record_latency(std::time::Duration::from_millis(500), true);
        by("a")
            .stats
            .record_latency(std::time::Duration::from_millis(50), true);
        let s = g
            .pick_with(
                &[],
                PickHints {
                    stream: true,
                    ..PickHints::default()
                },
            )
            .unwrap();
        assert_eq!(s.upstream_model, "a");
    }

    #[test]
    fn cost_based_picks_the_cheapest_and_pre_call_checks_filter_by_context() {
        let r = two(
            "cost-based-routing",
            "input_cost_per_token: 0.00001, output_cost_per_token: 0.00003",
            "input_cost_per_token: 0.000001, output_cost_per_token: 0.000002",
        );
        let g = r.group("g").unwrap();
        assert!(picks(g, 20).iter().all(|m| m == "b"));
        let r = router(
            "model_list:\n  - model_name: g\n    litellm_params: {model: openai/small}\n    model_info: {max_input_tokens: 100}\n  - model_name: g\n    litellm_params: {model: openai/big}\n    model_info: {max_input_tokens: 100000}\nrouter_settings:\n  enable_pre_call_checks: true\n",
        );
        let g = r.group("g").unwrap();
        for _ in 0..20 {
            let d = g
                .pick_with(
                    &[],
                    PickHints {
                        prompt_tokens: 5000,
                        ..PickHints::default()
                    },
                )
                .unwrap();
            assert_eq!(d.upstream_model, "big");
        }
        assert!(!g.exceeds_every_context_window(5000));
        assert!(g.exceeds_every_context_window(200_000));
    }

    #[test]
    fn rebuilds_keep_live_stats_by_id_and_db_models_replace_config_ids() {
        let loaded = load_str(
            "model_list:\n  - model_name: g\n    litellm_params: {model: openai/a}\n    model_info: {id: dep-a}\n",
            "t.yaml",
        )
        .unwrap();
        let first = ModelRouter::from_config(&loaded).unwrap();
        let a = first.group("g").unwrap().deployments[0].clone();
        let _in_flight = a.stats.start();
        let db: crate::config::DeploymentConfig = serde_json::from_value(serde_json::json!({
            "model_name": "g2",
            "litellm_params": {"model": "openai/b"},
            "model_info": {"id": "dep-a"},
        }))
        .unwrap();
        let db = crate::config::DeploymentConfig {
            db_model: true,
            ..db
        };
        let second = ModelRouter::build(&loaded, &[db], Some(&first)).unwrap();
        // The stored model took over the id: the config entry is gone, its stats carried over.
        assert!(second.group("g").is_none());
        let b = &second.group("g2").unwrap().deployments[0];
        assert_eq!(b.id, "dep-a");
        assert!(b.config.db_model);
        assert!(Arc::ptr_eq(&a.stats, &b.stats));
        let third = ModelRouter::build(&loaded, &[], Some(&second)).unwrap();
        assert!(Arc::ptr_eq(
            &third.group("g").unwrap().deployments[0].stats,
            &a.stats
        ));
    }

    #[test]
    fn unknown_strategy_is_a_config_error() {
        let loaded = load_str(
            "model_list: []\nrouter_settings:\n  routing_strategy: fastest\n",
            "t.yaml",
        )
        .unwrap();
        let e = ModelRouter::from_config(&loaded).unwrap_err();
        assert!(e[0].contains("unknown strategy `fastest`"), "{e:?}");
    }

    #[test]
    fn pre_call_checks_skip_deployments_at_their_rpm() {
        let r = two("simple-shuffle", "rpm: 1", "rpm: 1");
        let g = r.group("g").unwrap();
        let a = g
            .deployments
            .iter()
            .find(|d| d.upstream_model == "a")
            .unwrap();
        let _ = a.stats.start();
        assert!(
            picks(g, 30).iter().all(|m| m == "b"),
            "a used its one request this minute"
        );
    }
}
