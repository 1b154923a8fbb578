//! Tag-based routing (`router_settings.enable_tag_filtering`): which deployments of a model
//! group a request may use, given its tags.
//!
//! Mirrors LiteLLM 1.106's `router_strategy/tag_based_routing.py`. The request's tags (its own
//! `tags`, `metadata.tags`, `x-litellm-tags`, then its key's and team's metadata tags) are
//! split into plain tags, `&tag` (the deployment must carry it) and `!tag` (it must not).
//!
//! * No tags: the deployments tagged `default`, or every deployment when none is.
//! * Plain tags: deployments carrying any of them (all of them with
//!   `tag_filtering_match_any: false`) among those the `&`/`!` tags leave; failing that the
//!   `default` ones, unless a plain tag is one some deployment of the group carries (then the
//!   request asked for something specific that is not available to it).
//! * Only `&`/`!` tags: the deployments they leave (among the `default` ones when there are
//!   `!` tags only).
//!
//! An empty result is LiteLLM's refusal: 401, "Not allowed to access model due to tags
//! configuration". The filter runs over the whole group before cooldowns and retries pick
//! among what it leaves.
//!
//! Not here: LiteLLM's `tag_regex` (User-Agent matching), `model_info.allow_fail_open`,
//! `tag_routing_prefix` and per-key `router_settings.enable_tag_filtering`.

use super::Deployment;
use crate::error::{ApiError, ErrorClass};
use http::StatusCode;
use std::sync::Arc;

/// The tag every untagged request (and one whose tags match nothing unknown) may use.
const DEFAULT_TAG: &str = "default";

/// Which of `deployments` (by position) a request carrying `tags` may use; at least one is
/// allowed, else the error LiteLLM answers with. `model` names the group in that error.
pub fn allowed(
    deployments: &[Arc<Deployment>],
    tags: &[String],
    match_any: bool,
    model: &str,
) -> Result<Vec<bool>, ApiError> {
    let carries = |d: &Deployment, tag: &str| d.config.litellm_params.tags.iter().any(|t| t == tag);
    let mut positive: Vec<&str> = Vec::new();
    let mut required: Vec<&str> = Vec::new();
    let mut excluded: Vec<&str> = Vec::new();
    for tag in tags {
        // A lone `&` or `!` is no tag at all (LiteLLM drops it from every list).
        if let Some(t) = tag.strip_prefix('&') {
            if !t.is_empty() {
                required.push(t);
            }
        } else if let Some(t) = tag.strip_prefix('!') {
            if !t.is_empty() {
                excluded.push(t);
            }
        } else {
            positive.push(tag);
        }
    }
    let defaults_or_all = || -> Vec<bool> {
        let defaults: Vec<bool> = deployments
            .iter()
            .map(|d| carries(d, DEFAULT_TAG))
            .collect();
        if defaults.contains(&true) {
            defaults
        } else {
            vec![true; deployments.len()]
        }
    };
    if positive.is_empty() && required.is_empty() && excluded.is_empty() {
        return Ok(defaults_or_all());
    }
    let candidate: Vec<bool> = deployments
        .iter()
        .map(|d| !excluded.iter().any(|t| carries(d, t)) && required.iter().all(|t| carries(d, t)))
        .collect();
    let refused = || refusal(model, tags);
    if positive.is_empty() {
        let pool: Vec<bool> = if required.is_empty() {
            defaults_or_all()
                .into_iter()
                .zip(&candidate)
                .map(|(base, c)| base && *c)
                .collect()
        } else {
            candidate
        };
        return if pool.contains(&true) {
            Ok(pool)
        } else {
            Err(refused())
        };
    }
    let matches = |d: &Deployment| {
        let has = |t: &&str| carries(d, t);
        !d.config.litellm_params.tags.is_empty()
            && if match_any {
                positive.iter().any(has)
            } else {
                positive.iter().all(has)
            }
    };
    let matched: Vec<bool> = deployments
        .iter()
        .zip(&candidate)
        .map(|(d, c)| *c && matches(d))
        .collect();
    if matched.contains(&true) {
        return Ok(matched);
    }
    let defaults: Vec<bool> = deployments
        .iter()
        .zip(&candidate)
        .map(|(d, c)| *c && carries(d, DEFAULT_TAG))
        .collect();
    let known_to_group = positive
        .iter()
        .any(|t| deployments.iter().any(|d| carries(d, t)));
    if !defaults.contains(&true) || known_to_group {
        return Err(refused());
    }
    Ok(defaults)
}

/// LiteLLM's error when tags leave no deployment: a 401 whose `type` is
/// `internal_server_error` (the router raises a plain ValueError; the proxy maps the message
/// to 401), naming the group and the tags as a Python list.
fn refusal(model: &str, tags: &[String]) -> ApiError {
    let mut e = ApiError::new(
        ErrorClass::Internal,
        format!(
            "Not allowed to access model due to tags configuration. Passed model={model} and tags={}",
            crate::cache::key::py_list(tags)
        ),
    );
    e.status_override = Some(StatusCode::UNAUTHORIZED);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::routing::ModelRouter;

    /// Deployments `a`, `b`, ... of one group, tagged as given.
    fn group(tag_lists: &[&str]) -> Vec<Arc<Deployment>> {
        let mut yaml = String::from("model_list:\n");
        for (i, tags) in tag_lists.iter().enumerate() {
            let name = (b'a' + i as u8) as char;
            yaml.push_str(&format!(
                "  - model_name: g\n    litellm_params: {{model: openai/{name}, api_key: k, tags: [{tags}]}}\n"
            ));
        }
        let r = ModelRouter::from_config(&load_str(&yaml, "t.yaml").unwrap()).unwrap();
        r.group("g").unwrap().deployments.clone()
    }

    fn pick(ds: &[Arc<Deployment>], tags: &[&str], match_any: bool) -> Result<String, String> {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        allowed(ds, &tags, match_any, "g")
            .map(|m| {
                ds.iter()
                    .zip(m)
                    .filter(|(_, ok)| *ok)
                    .map(|(d, _)| d.upstream_model.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .map_err(|e| e.message)
    }

    #[test]
    fn untagged_requests_use_default_deployments_or_all() {
        let ds = group(&["free", "paid", "default"]);
        assert_eq!(pick(&ds, &[], true).unwrap(), "c");
        let ds = group(&["free", "paid", ""]);
        assert_eq!(pick(&ds, &[], true).unwrap(), "a,b,c");
    }

    #[test]
    fn plain_tags_match_any_or_all() {
        let ds = group(&["free", "paid, fast", "paid", ""]);
        assert_eq!(pick(&ds, &["paid"], true).unwrap(), "b,c");
        assert_eq!(pick(&ds, &["fast", "free"], true).unwrap(), "a,b");
        assert_eq!(pick(&ds, &["paid", "fast"], false).unwrap(), "b");
        // No deployment carries both and there is no default: refused.
        let e = pick(&ds, &["free", "fast"], false).unwrap_err();
        assert_eq!(
            e,
            "Not allowed to access model due to tags configuration. Passed model=g and tags=['free', 'fast']"
        );
    }

    #[test]
    fn unknown_tags_fall_back_to_defaults_but_known_unavailable_ones_do_not() {
        let ds = group(&["paid", "default"]);
        assert_eq!(pick(&ds, &["teamx"], true).unwrap(), "b");
        // `paid` exists in the group but `!paid` rules it out: no quiet fallback.
        let e = pick(&ds, &["paid", "!paid"], true).unwrap_err();
        assert!(e.contains("tags=['paid', '!paid']"), "{e}");
        let ds = group(&["paid", "free"]);
        assert!(pick(&ds, &["teamx"], true).is_err());
    }

    #[test]
    fn required_and_excluded_tags() {
        let ds = group(&["eu, paid", "us, paid", "eu, default"]);
        assert_eq!(pick(&ds, &["&eu"], true).unwrap(), "a,c");
        assert_eq!(pick(&ds, &["paid", "&eu"], true).unwrap(), "a");
        assert_eq!(pick(&ds, &["paid", "!eu"], true).unwrap(), "b");
        // Exclusions only: among the defaults.
        assert_eq!(pick(&ds, &["!us"], true).unwrap(), "c");
        assert!(pick(&ds, &["!eu"], true).is_err());
        assert!(pick(&ds, &["&asia"], true).is_err());
        // Lone markers are no tags.
        assert_eq!(pick(&ds, &["&", "!"], true).unwrap(), "c");
    }
}
