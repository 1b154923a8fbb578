//! `general_settings.pass_through_endpoints`: custom reverse-proxy routes, compiled once at
//! start-up, as LiteLLM 1.106 serves them.
//!
//! - A request to `path` (any of `methods`, default GET/POST/PUT/DELETE/PATCH) goes to `target`;
//!   with `include_subpath`, `path/<rest>` goes to `target/<rest>` (`..` resolved inside it).
//!   Built-in routes win over a custom one on the same path (LiteLLM adds a custom route only
//!   where none exists), so these are looked up where the router finds no route.
//! - Query: the target's own parameters, then the caller's; with `default_query_params`,
//!   those first, each overridden by the target's and the caller's.
//! - Headers: the configured `headers` (with `os.environ/NAME` replaced anywhere in a value;
//!   `LANGFUSE_PUBLIC_KEY` + `LANGFUSE_SECRET_KEY` as one Basic `Authorization`), plus, with
//!   `forward_headers`, the caller's (never the header carrying its LiteLLM key; LiteLLM
//!   forwards even that one). Without it only the body's own headers go along (the raw body is
//!   forwarded, where LiteLLM re-encodes it as JSON).
//! - Auth: `auth: false` makes the exact path public (LiteLLM only skips the key on the exact
//!   path: its sub-paths still need one). Otherwise a key is needed: the master key or a
//!   proxy admin's key may call it; another key needs the path in its (else its team's)
//!   metadata `allowed_passthrough_routes`, and not in either's `denied_passthrough_routes`.
//!   Without an explicit `auth: true`, a key's `allowed_routes` naming the path also grants
//!   it (LiteLLM's route check for routes outside its route groups).
//!
//! Not built: `guardrails`, LiteLLM's `custom_body`/`query_params` JSON envelope, Python
//! adapter targets (`module.function`), and endpoints stored in the database.

use super::{forwarded_headers, join_url, Format, Forward, Peeked, Target};
use crate::config::LoadedConfig;
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::AuthCtx;
use crate::state::AppState;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use base64::Engine;
use serde_json::Value;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `auth: false`: the exact path needs no key.
    Public,
    /// `auth` unset: a key is needed (LiteLLM's runtime default), but the route is not in its
    /// route groups.
    Key,
    /// `auth: true`.
    Enforced,
}

#[derive(Debug)]
pub struct CustomRoute {
    pub path: String,
    target: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// `headers.litellm_user_api_key`: the request header carrying the caller's key.
    pub key_header: Option<HeaderName>,
    /// `custom_auth_parser: langfuse`.
    pub langfuse_key: bool,
    forward_headers: bool,
    /// `default_query_params` (merged under the target's and the caller's).
    default_query: Vec<(String, String)>,
    pub auth: Auth,
    include_subpath: bool,
    cost_per_request: f64,
    timeout: Option<f64>,
    methods: Vec<Method>,
}

/// A request's route among the custom ones.
pub enum Found<'a> {
    /// The route, and the path below it (`""` on the exact path).
    Route(&'a CustomRoute, &'a str),
    /// A custom path, but not for this method.
    WrongMethod,
}

impl Found<'_> {
    /// Whether the request needs no key (the exact path of an `auth: false` route).
    pub fn is_public(&self) -> bool {
        matches!(self, Found::Route(r, "") if r.auth == Auth::Public)
    }
}

#[derive(Debug, Default)]
pub struct CustomRoutes {
    routes: Vec<CustomRoute>,
}

/// Methods a route without `methods` serves.
const DEFAULT_METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

impl CustomRoutes {
    /// Compiles the configured endpoints; problems are returned as warnings (the entry, or
    /// the header, is skipped).
    pub fn from_config(loaded: &LoadedConfig) -> (Self, Vec<String>) {
        let mut warnings = Vec::new();
        let mut routes = Vec::new();
        let entries = loaded
            .config
            .general_settings
            .pass_through_endpoints
            .iter()
            .flatten();
        for (i, e) in entries.enumerate() {
            let at = format!("general_settings.pass_through_endpoints[{i}]");
            let Some(target) = e.target.clone().filter(|t| !t.is_empty()) else {
                warnings.push(format!("`{at}` has no `target`; it is not served"));
                continue;
            };
            if !e.path.starts_with('/') {
                warnings.push(format!(
                    "`{at}.path` must start with `/` (got {:?}); it is not served",
                    e.path
                ));
                continue;
            }
            if target
                .parse::<axum::http::Uri>()
                .map_or(true, |u| u.authority().is_none())
            {
                warnings.push(format!(
                    "`{at}.target` is not an http(s) URL ({target:?}); it is not served (Python adapter targets are not supported)"
                ));
                continue;
            }
            let (headers, key_header) = resolve_headers(loaded, &e.headers, &at, &mut warnings);
            let methods = match &e.methods {
                Some(m) if !m.is_empty() => m
                    .iter()
                    .filter_map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
                    .collect(),
                _ => DEFAULT_METHODS.to_vec(),
            };
            let default_query = e
                .default_query_params
                .iter()
                .filter_map(|(k, v)| query_value(v).map(|v| (k.clone(), v)))
                .collect();
            routes.push(CustomRoute {
                path: e.path.trim_end_matches('/').to_string(),
                target,
                headers,
                key_header,
                langfuse_key: e.custom_auth_parser.as_deref() == Some("langfuse"),
                forward_headers: e.forward_headers.unwrap_or(false),
                default_query,
                auth: match e.auth {
                    Some(false) => Auth::Public,
                    Some(true) => Auth::Enforced,
                    None => Auth::Key,
                },
                include_subpath: e.include_subpath.unwrap_or(false),
                cost_per_request: e.cost_per_request.unwrap_or(0.0).max(0.0),
                timeout: e.timeout,
                methods,
            });
        }
        (Self { routes }, warnings)
    }

    /// The custom route serving `method` on `path`, if any (the first in config order).
    pub fn find<'a>(&'a self, method: &Method, path: &'a str) -> Option<Found<'a>> {
        let mut path_known = false;
        for r in &self.routes {
            let below = if path == r.path || (r.path.is_empty() && path == "/") {
                Some("")
            } else if r.include_subpath {
                path.strip_prefix(r.path.as_str())
                    .filter(|rest| rest.starts_with('/'))
            } else {
                None
            };
            let Some(below) = below else { continue };
            path_known = true;
            if r.methods.contains(method) {
                return Some(Found::Route(r, below));
            }
        }
        path_known.then_some(Found::WrongMethod)
    }

    /// Whether `path` is one of these routes (exact, or below one with `include_subpath`),
    /// and whether that route sets `auth: true`: what LiteLLM's `llm_api_routes` and
    /// `openai_routes` groups hold of them.
    pub fn group_member(&self, path: &str) -> Option<bool> {
        self.routes.iter().find_map(|r| {
            let hit = path == r.path
                || (r.include_subpath
                    && path
                        .strip_prefix(r.path.as_str())
                        .is_some_and(|rest| rest.starts_with('/')));
            hit.then_some(r.auth == Auth::Enforced)
        })
    }
}

/// A `default_query_params` value as query text.
fn query_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
        _ => None,
    }
}

/// The configured headers, with `os.environ/NAME` replaced where it appears in a value
/// (LiteLLM's `set_env_variables_in_header`), and the name of the key header if one is set.
fn resolve_headers(
    loaded: &LoadedConfig,
    raw: &serde_json::Map<String, Value>,
    at: &str,
    warnings: &mut Vec<String>,
) -> (Vec<(HeaderName, HeaderValue)>, Option<HeaderName>) {
    let env_in = |v: &str| -> Option<String> {
        match v.find("os.environ/") {
            Some(i) => {
                let name = v[i + "os.environ/".len()..].trim();
                loaded.env(name).map(|val| format!("{}{val}", &v[..i]))
            }
            None => Some(v.to_string()),
        }
    };
    let mut out = Vec::new();
    let mut key_header = None;
    let public = raw.get("LANGFUSE_PUBLIC_KEY").and_then(Value::as_str);
    let secret = raw.get("LANGFUSE_SECRET_KEY").and_then(Value::as_str);
    if public.is_some() || secret.is_some() {
        let (p, s) = (
            public.and_then(env_in).unwrap_or_default(),
            secret.and_then(env_in).unwrap_or_default(),
        );
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{p}:{s}"));
        if let Ok(v) = HeaderValue::from_str(&format!("Basic {token}")) {
            out.push((axum::http::header::AUTHORIZATION, v));
        }
    }
    for (name, value) in raw {
        if matches!(name.as_str(), "LANGFUSE_PUBLIC_KEY" | "LANGFUSE_SECRET_KEY") {
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if name == "litellm_user_api_key" {
            match HeaderName::from_bytes(text.to_ascii_lowercase().as_bytes()) {
                Ok(h) => key_header = Some(h),
                Err(_) => warnings.push(format!(
                    "`{at}.headers.litellm_user_api_key` is not a header name: {text:?}"
                )),
            }
            continue;
        }
        let Some(text) = env_in(&text) else {
            warnings.push(format!(
                "`{at}.headers.{name}` refers to an environment variable which is not set; the header is not sent"
            ));
            continue;
        };
        match (
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
            HeaderValue::from_str(&text),
        ) {
            (Ok(n), Ok(v)) => out.push((n, v)),
            _ => warnings.push(format!(
                "`{at}.headers.{name}` is not a valid header; it is not sent"
            )),
        }
    }
    (out, key_header)
}

/// The caller's key on a custom route that says where it is: the configured key header, or
/// the user part of a Basic `Authorization` (`custom_auth_parser: langfuse`).
pub fn route_key(route: &CustomRoute, headers: &HeaderMap) -> Option<String> {
    if let Some(v) = route
        .key_header
        .as_ref()
        .and_then(|h| headers.get(h))
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
    {
        return Some(v.trim().to_string());
    }
    if route.langfuse_key {
        let auth = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let token = auth.trim().strip_prefix("Basic ")?.trim();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return text.split(':').next().map(String::from);
    }
    None
}

/// Whether a key that is not a proxy admin's may call `route` at `path` (see the module
/// header); LiteLLM's 403 or 401 when not.
pub fn authorize(route: &CustomRoute, auth: &AuthCtx, path: &str) -> ApiResult<()> {
    if auth.is_admin {
        return Ok(());
    }
    let grants = auth.pass_through.as_deref();
    let matches = |list: &[String]| {
        list.iter().any(|r| {
            let r = r.trim_end_matches('/');
            path == r
                || path
                    .strip_prefix(r)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    let denied = grants.and_then(|g| {
        g.denied.iter().find(|d| {
            let d = d.trim_end_matches('*').trim_end_matches('/');
            d.is_empty() || path == d || path.strip_prefix(d).is_some_and(|r| r.starts_with('/'))
        })
    });
    if let Some(d) = denied {
        return Err(crate::handlers::access::forbidden(format!(
            "Key/team denied access to passthrough route {path}. Matched `{d}` in `denied_passthrough_routes`."
        )));
    }
    if grants.is_some_and(|g| matches(&g.allowed)) {
        return Ok(());
    }
    if route.auth == Auth::Enforced {
        return Err(crate::handlers::access::forbidden(format!(
            "Key/team not allowed to access passthrough route {path}. Configure `allowed_passthrough_routes` on the team or key."
        )));
    }
    let by_allowed_routes = auth.key.as_ref().is_some_and(|k| {
        k.allowed_routes.iter().any(|r| {
            path == r
                || path
                    .strip_prefix(r.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
                || r.strip_suffix('*').is_some_and(|p| path.starts_with(p))
        })
    });
    if by_allowed_routes {
        return Ok(());
    }
    let user_id = auth.user_id().unwrap_or("unknown");
    Err(ApiError::proxy_auth(format!(
        "Authentication Error, Only proxy admin can be used to generate, delete, update info for new keys/users/teams. Route={path}. Your role={}. Your user_id={}",
        auth.user_role.unwrap_or("unknown"),
        mask(user_id)
    ))
    .with_param("None"))
}

/// LiteLLM's masking of user ids in messages: six characters, stars, the last two.
fn mask(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..6].iter().collect();
    out.push_str(&"*".repeat(chars.len() - 8));
    out.extend(&chars[chars.len() - 2..]);
    out
}

/// Where a custom route sends this call, and with what.
pub fn target(
    state: &AppState,
    route: &CustomRoute,
    below: &str,
    parts: &Parts,
    body: &Peeked,
    presented: Option<&str>,
) -> ApiResult<Target> {
    let mut headers = if route.forward_headers {
        // The header the caller's key came in is not forwarded (LiteLLM forwards it).
        let mut drop: Vec<String> = Vec::new();
        if let Some(key) = presented {
            for (name, value) in &parts.headers {
                let v = value.to_str().unwrap_or_default().trim();
                let bare = crate::middleware::auth::strip_bearer(v).unwrap_or(v);
                if bare == key {
                    drop.push(name.as_str().to_string());
                }
            }
        }
        if let Some(h) = &route.key_header {
            drop.push(h.as_str().to_string());
        }
        let mut names: Vec<&str> = drop.iter().map(String::as_str).collect();
        names.extend(route.headers.iter().map(|(n, _)| n.as_str()));
        forwarded_headers(&parts.headers, Forward::All { drop: &names })
    } else {
        forwarded_headers(&parts.headers, Forward::BodyOnly)
    };
    for (n, v) in &route.headers {
        headers.insert(n.clone(), v.clone());
    }
    let url = if below.is_empty() {
        route
            .target
            .parse()
            .map_err(|_| ApiError::internal("invalid pass-through target URL"))?
    } else {
        join_url(&route.target, below, None)?
    };
    let url = with_query(url, &route.default_query, parts.uri.query())?;
    let host = url.host().unwrap_or_default().to_string();
    Ok(Target {
        url,
        headers,
        provider: "",
        format: Format::for_path(Format::for_host(&host), parts.uri.path()),
        model: body.model().map(String::from),
        timeout: super::timeout(state, route.timeout),
        cost_per_request: route.cost_per_request,
        body: None,
    })
}

/// `url` with its query merged: `defaults`, then the URL's own parameters, then the
/// caller's, a later one replacing an earlier one of the same name.
fn with_query(
    url: axum::http::Uri,
    defaults: &[(String, String)],
    caller: Option<&str>,
) -> ApiResult<axum::http::Uri> {
    let own = url.query().map(String::from);
    if defaults.is_empty() && caller.is_none_or(str::is_empty) {
        return Ok(url);
    }
    let mut pairs: Vec<(String, String)> = defaults
        .iter()
        .map(|(k, v)| (k.clone(), super::url_encode(v)))
        .collect();
    for q in [own.as_deref(), caller].into_iter().flatten() {
        for kv in q.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            pairs.retain(|(have, _)| have != k);
            pairs.push((k.to_string(), v.to_string()));
        }
    }
    let query: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| if v.is_empty() { k } else { format!("{k}={v}") })
        .collect();
    let text = url.to_string();
    let base = text.split_once('?').map_or(text.as_str(), |(b, _)| b);
    format!("{base}?{}", query.join("&"))
        .parse()
        .map_err(|_| ApiError::bad_request("invalid pass-through query"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn routes(yaml: &str) -> CustomRoutes {
        let loaded = load_str(yaml, "t.yaml").unwrap();
        CustomRoutes::from_config(&loaded).0
    }

    #[test]
    fn exact_subpath_and_methods() {
        let r = routes(
            "general_settings:\n  pass_through_endpoints:\n    - path: /v1/rerank\n      target: https://api.cohere.com/v1/rerank\n      methods: [post]\n    - path: /bria\n      target: https://engine.prod.bria-api.com\n      include_subpath: true\n      auth: false\n",
        );
        assert!(matches!(
            r.find(&Method::POST, "/v1/rerank"),
            Some(Found::Route(_, ""))
        ));
        assert!(matches!(
            r.find(&Method::GET, "/v1/rerank"),
            Some(Found::WrongMethod)
        ));
        assert!(r.find(&Method::POST, "/v1/rerank/x").is_none());
        match r.find(&Method::GET, "/bria/v1/text") {
            Some(Found::Route(route, below)) => {
                assert_eq!(below, "/v1/text");
                assert_eq!(route.auth, Auth::Public);
            }
            _ => panic!("no route"),
        }
        assert!(r.find(&Method::GET, "/bria").is_some_and(|f| f.is_public()));
        assert!(!r
            .find(&Method::GET, "/bria/x")
            .is_some_and(|f| f.is_public()));
        assert!(r.find(&Method::GET, "/briax").is_none());
        assert_eq!(r.group_member("/bria/y"), Some(false));
    }

    #[test]
    fn headers_resolve_env_anywhere_and_langfuse_keys() {
        let r = routes(
            "environment_variables:\n  CO_KEY: abc\n  LF_PUB: pk\n  LF_SEC: sk\ngeneral_settings:\n  pass_through_endpoints:\n    - path: /c\n      target: http://127.0.0.1:1/x\n      headers:\n        Authorization: Bearer os.environ/CO_KEY\n        litellm_user_api_key: X-My-Key\n    - path: /langfuse\n      target: http://127.0.0.1:1\n      headers:\n        LANGFUSE_PUBLIC_KEY: os.environ/LF_PUB\n        LANGFUSE_SECRET_KEY: os.environ/LF_SEC\n",
        );
        let c = &r.routes[0];
        assert_eq!(c.headers[0].1, "Bearer abc");
        assert_eq!(c.key_header.as_ref().unwrap().as_str(), "x-my-key");
        let lf = &r.routes[1];
        assert_eq!(lf.headers[0].1, "Basic cGs6c2s=");
    }

    #[test]
    fn queries_merge_defaults_target_and_caller() {
        let u: axum::http::Uri = "http://h/x?a=1&b=2".parse().unwrap();
        let d = vec![
            ("a".to_string(), "0".to_string()),
            ("z".to_string(), "9".to_string()),
        ];
        let out = with_query(u, &d, Some("b=3&c=4")).unwrap().to_string();
        assert_eq!(out, "http://h/x?z=9&a=1&b=3&c=4");
    }

    #[test]
    fn masks_user_ids() {
        assert_eq!(mask("user-1234567"), "user-1****67");
        assert_eq!(mask("abc"), "***");
    }
}
