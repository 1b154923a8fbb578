//! Deny-by-default authentication of the caller.
//!
//! Key sources, first match wins (LiteLLM's order): `x-litellm-api-key` (with or without
//! `Bearer `), `Authorization: Bearer`, `api-key`, `x-api-key`, `x-goog-api-key`,
//! `Ocp-Apim-Subscription-Key`, the configured `litellm_key_header_name`, and `?key=` on
//! Google-style routes. No master key configured means auth is off and every caller is the proxy
//! admin, as in LiteLLM. Virtual keys resolve through [`KeyResolver`] once a store exists.

use crate::api::Field;
use crate::error::{ApiError, ErrorClass};
use crate::middleware::key_routes;
use crate::ratelimit::Descriptor;
use crate::spend::model_budget::OwnerModelBudgets;
use crate::spend::CachedKey;
use crate::state::AppState;
use crate::store::KeyRow;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Who is calling, as decided by the auth layer.
#[derive(Debug, Clone)]
pub struct AuthCtx {
    /// Master key holder, or anyone when no master key is configured.
    pub is_admin: bool,
    /// SHA-256 of the presented key (hex), for spend attribution; `None` for open mode.
    pub key_hash: Option<String>,
    /// Model groups / access groups this key may use; empty = all.
    pub allowed_models: Vec<String>,
    /// Rate limits that apply to this caller (key, user, team, ...), filled by the auth layer.
    pub rate_limits: Vec<crate::ratelimit::Descriptor>,
    /// Per-model limits of the key: model group -> (rpm, tpm).
    pub model_limits: Vec<(String, Option<u64>, Option<u64>)>,
    /// The virtual key's row, when the caller used one.
    pub key: Option<Arc<KeyRow>>,
    /// Budgets of the key's team and user (checked with the key's own).
    pub shared_budgets: Vec<crate::spend::SharedBudget>,
    /// Per-model budgets of the key, its user and its team.
    pub model_budgets: Option<Arc<[OwnerModelBudgets]>>,
    /// The caller's `user_role` as LiteLLM decides it: `proxy_admin` for the master key, the
    /// role of the key's user row (an unknown or empty role counts as `internal_user`), and
    /// `None` for a key without a user row.
    pub user_role: Option<&'static str>,
    /// The organization the key's team (or the key) belongs to.
    pub organization: Option<Arc<OrgGate>>,
    /// The `tags` of the key's and its team's metadata, added to each call's own tags.
    pub tags: Option<Arc<[String]>>,
    /// The key's team's alias and its user's email (labels of the Prometheus metrics).
    pub team_alias: Option<Arc<str>>,
    pub user_email: Option<Arc<str>>,
    /// The custom pass-through routes the key's (else its team's) metadata grants, and those
    /// either denies.
    pub pass_through: Option<Arc<PassThroughGrants>>,
}

/// `allowed_passthrough_routes` of a key's metadata (else of its team's) and the
/// `denied_passthrough_routes` of both (LiteLLM's grants for `pass_through_endpoints`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassThroughGrants {
    pub allowed: Vec<String>,
    pub denied: Vec<String>,
}

impl PassThroughGrants {
    /// The grants of a key's and its team's metadata, `None` when neither sets any.
    fn of(key: &Value, team: Option<&Value>) -> Option<Arc<Self>> {
        let list = |m: Option<&Value>, field: &str| -> Vec<String> {
            m.and_then(|m| m.field(field))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut allowed = list(Some(key), "allowed_passthrough_routes");
        if allowed.is_empty() {
            allowed = list(team, "allowed_passthrough_routes");
        }
        let mut denied = list(Some(key), "denied_passthrough_routes");
        denied.extend(list(team, "denied_passthrough_routes"));
        (!allowed.is_empty() || !denied.is_empty()).then(|| Arc::new(Self { allowed, denied }))
    }
}

/// What a call needs of the caller's organization: its id (spend attribution) and its model
/// allow-list (empty: every model).
#[derive(Debug, Clone, PartialEq)]
pub struct OrgGate {
    pub organization_id: String,
    pub models: Vec<String>,
}

/// LiteLLM's user roles; any other value on a user row is treated as `internal_user`.
const USER_ROLES: [&str; 7] = [
    "proxy_admin",
    "proxy_admin_viewer",
    "org_admin",
    "internal_user",
    "internal_user_viewer",
    "team",
    "customer",
];

/// The role LiteLLM acts on for a user row's `user_role`.
pub fn effective_role(stored: Option<&str>) -> &'static str {
    stored
        .and_then(|r| USER_ROLES.iter().copied().find(|known| *known == r))
        .unwrap_or("internal_user")
}

impl AuthCtx {
    pub fn admin(key_hash: Option<String>) -> Self {
        Self {
            is_admin: true,
            key_hash,
            allowed_models: Vec::new(),
            rate_limits: Vec::new(),
            model_limits: Vec::new(),
            key: None,
            shared_budgets: Vec::new(),
            model_budgets: None,
            user_role: Some("proxy_admin"),
            organization: None,
            tags: None,
            team_alias: None,
            user_email: None,
            pass_through: None,
        }
    }

    /// The context of a virtual key: its allow-list and limits. `user_role` is the effective
    /// role of the key's user (`None` without a user row); a `proxy_admin` user's keys are
    /// admin keys.
    pub fn for_key(
        hash: String,
        row: Arc<KeyRow>,
        shared_limits: &[crate::ratelimit::Descriptor],
        shared_budgets: Vec<crate::spend::SharedBudget>,
        model_budgets: Option<Arc<[OwnerModelBudgets]>>,
        user_role: Option<&'static str>,
    ) -> Self {
        let allowed_models = if row.models.iter().any(|m| m == "all-proxy-models") {
            Vec::new()
        } else {
            row.models.clone()
        };
        let pos = |v: Option<i64>| v.filter(|x| *x >= 0).map(|x| x as u64);
        let mut rate_limits = vec![Descriptor {
            scope: "api_key",
            id: hash.clone(),
            rpm: pos(row.rpm_limit),
            tpm: pos(row.tpm_limit),
            max_parallel: pos(row.max_parallel_requests),
        }];
        // A team's and a user's limits are shared by all of their keys.
        rate_limits.extend(shared_limits.iter().cloned());
        let mut model_limits: Vec<(String, Option<u64>, Option<u64>)> = Vec::new();
        for (field, is_rpm) in [("model_rpm_limit", true), ("model_tpm_limit", false)] {
            if let Some(Value::Object(m)) = row.metadata.get(field) {
                for (model, v) in m {
                    let Some(n) = v.as_u64() else { continue };
                    match model_limits.iter_mut().find(|(m, _, _)| m == model) {
                        Some(e) if is_rpm => e.1 = Some(n),
                        Some(e) => e.2 = Some(n),
                        None if is_rpm => model_limits.push((model.clone(), Some(n), None)),
                        None => model_limits.push((model.clone(), None, Some(n))),
                    }
                }
            }
        }
        Self {
            is_admin: user_role == Some("proxy_admin"),
            key_hash: Some(hash),
            allowed_models,
            rate_limits,
            model_limits,
            key: Some(row),
            shared_budgets,
            model_budgets,
            user_role,
            organization: None,
            tags: None,
            team_alias: None,
            user_email: None,
            pass_through: None,
        }
    }

    /// The `user_id` of the calling key, if it has one.
    pub fn user_id(&self) -> Option<&str> {
        self.key.as_ref().and_then(|k| k.user_id.as_deref())
    }
}

/// `/metrics` (Prometheus), public only when the config says so.
fn is_metrics_route(path: &str) -> bool {
    matches!(path, "/metrics" | "/metrics/")
}

/// Routes anyone may call (LiteLLM's public routes).
pub fn is_public_route(path: &str) -> bool {
    matches!(
        path,
        "/health/liveliness"
            | "/health/liveness"
            | "/health/readiness"
            | "/test"
            | "/"
            | "/favicon.ico"
    ) || path.starts_with("/.well-known/")
}

/// Result of looking for a key in the request.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented<'a> {
    None,
    Key(&'a str),
    /// `Authorization` without the `Bearer ` prefix.
    Malformed,
}

/// Finds the caller's key, in LiteLLM's header order.
pub fn extract_key<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    path: &str,
    custom_header: Option<&str>,
) -> Presented<'a> {
    static API_KEY: HeaderName = HeaderName::from_static("x-litellm-api-key");
    static PASS_THROUGH_KEY: HeaderName = HeaderName::from_static("litellm_user_api_key");
    static OTHER_KEY_HEADERS: [HeaderName; 4] = [
        HeaderName::from_static("api-key"),
        HeaderName::from_static("x-api-key"),
        HeaderName::from_static("x-goog-api-key"),
        HeaderName::from_static("ocp-apim-subscription-key"),
    ];
    // Static names: a `&str` name is parsed and validated on every lookup.
    let get = |name: &HeaderName| {
        crate::handlers::request_header(headers, name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    // On the provider pass-through routes, `litellm_user_api_key` carries the caller's key
    // (the usual headers may hold the caller's own provider credential there).
    if crate::passthrough::providers::is_provider_path(path) {
        if let Some(v) = get(&PASS_THROUGH_KEY) {
            return Presented::Key(strip_bearer(v).unwrap_or(v));
        }
    }
    if let Some(v) = get(&API_KEY) {
        return Presented::Key(strip_bearer(v).unwrap_or(v));
    }
    if let Some(v) = get(&http::header::AUTHORIZATION) {
        return match strip_bearer(v) {
            Some(k) if !k.is_empty() => Presented::Key(k),
            _ => Presented::Malformed,
        };
    }
    for name in &OTHER_KEY_HEADERS {
        if let Some(v) = get(name) {
            return Presented::Key(v);
        }
    }
    let custom = custom_header.and_then(|n| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    });
    if let Some(v) = custom {
        return Presented::Key(strip_bearer(v).unwrap_or(v));
    }
    if path.starts_with("/gemini/")
        || path.contains(":generateContent")
        || path.contains(":streamGenerateContent")
    {
        if let Some(k) = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("key="))) {
            if !k.is_empty() {
                return Presented::Key(k);
            }
        }
    }
    Presented::None
}

/// The key of a `Bearer <key>` value (any case of `Bearer`), `None` for other values.
pub(crate) fn strip_bearer(v: &str) -> Option<&str> {
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Hex SHA-256 of a key, as LiteLLM stores it.
/// (ring's SHA-256 runs the CPU's SHA/vector instructions; the portable one in `sha2` cost
/// about 3% of a virtual-key call.)
pub fn hash_key(key: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    // Hex digits by table (`hex::encode` goes through `fmt` and cost as much as the hash).
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// `sk-...XXXX`, the abbreviated form LiteLLM shows in messages.
pub fn abbreviate_key(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-...{tail}")
}

pub async fn require_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if is_public_route(path) || req.method() == axum::http::Method::OPTIONS {
        return next.run(req).await;
    }
    if let Err(e) = check_client_ip(&state, &req) {
        return e.into_response();
    }
    if let Some(m) = state.metrics.as_ref().filter(|_| is_metrics_route(path)) {
        if !m.require_auth {
            return next.run(req).await;
        }
        return match authenticate(&state, req.headers(), req.uri()).await {
            Ok(ctx) => {
                let mut req = req;
                req.extensions_mut().insert(ctx);
                next.run(req).await
            }
            Err(e) => ApiError::proxy_auth(format!(
                "Unauthorized access to metrics endpoint: {} To allow unauthenticated access, set `litellm_settings.require_auth_for_metrics_endpoint: false` in your proxy_config.yaml.",
                e.message
            ))
            .into_response(),
        };
    }
    authenticated(&state, req, |mut req, ctx| {
        req.extensions_mut().insert(ctx);
        next.run(req)
    })
    .await
}

/// The check of [`require_auth`] for a route that needs a key: the caller's identity goes to
/// `inner` (routes served outside the router, see `server::routes`, call this directly; they
/// are never public and never `OPTIONS`).
pub async fn authenticated<F, Fut>(state: &AppState, req: Request, inner: F) -> Response
where
    F: FnOnce(Request, AuthCtx) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let caller = caller_of(state, &req).await;
    match caller {
        Ok(ctx) => inner(req, ctx).await,
        Err(r) => r,
    }
}

/// The check of [`authenticated`] alone: the caller's identity, or the answer refusing it.
/// (A plain function: the future holds the request's headers and URI, which may cross
/// threads, not the request itself, whose body may not be shared.)
pub fn caller_of<'a>(
    state: &'a AppState,
    req: &'a Request,
) -> impl std::future::Future<Output = Result<AuthCtx, Response>> + Send + 'a {
    let ip = check_client_ip(state, req);
    let (headers, uri) = (req.headers(), req.uri());
    async move {
        ip.map_err(IntoResponse::into_response)?;
        authenticate(state, headers, uri).await.map_err(|e| {
            let r = e.into_response();
            // LiteLLM's failure hook counts refused LLM calls too (its route groups decide
            // which are LLM calls); other routes are not counted on success either.
            if let Some(m) = state.metrics.as_ref() {
                let path = uri.path();
                if key_routes::may_call(&[LLM_ROUTES.to_string()], path) {
                    m.proxy_request(None, path, headers, None, &r);
                }
            }
            r
        })
    }
}

/// LiteLLM's route group of the LLM calls.
const LLM_ROUTES: &str = "llm_api_routes";

/// `general_settings.allowed_ips`, checked before the key (as LiteLLM does).
fn check_client_ip(state: &AppState, req: &Request) -> Result<(), ApiError> {
    let Some(gate) = state.ip_gate.as_ref() else {
        return Ok(());
    };
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    gate.check(req.headers(), peer)
}

/// Authenticates a request to a custom pass-through route (`general_settings.pass_through_endpoints`,
/// served outside the router): the client-address check, then the key, taken from `key` when
/// the route says where it is and it was sent, else from the usual headers.
pub async fn authenticate_pass_through(
    state: &AppState,
    parts: &axum::http::request::Parts,
    key: Option<&str>,
) -> Result<AuthCtx, ApiError> {
    if let Some(gate) = state.ip_gate.as_ref() {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        gate.check(&parts.headers, peer)?;
    }
    authenticate_with(state, &parts.headers, &parts.uri, key).await
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> Result<AuthCtx, ApiError> {
    authenticate_with(state, headers, uri, None).await
}

async fn authenticate_with(
    state: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    key_override: Option<&str>,
) -> Result<AuthCtx, ApiError> {
    let Some(master) = state.master_key.as_ref() else {
        return Ok(AuthCtx::admin(None));
    };
    let custom = state
        .loaded
        .config
        .general_settings
        .litellm_key_header_name
        .as_deref();
    let presented = match key_override {
        Some(k) => Presented::Key(k),
        None => extract_key(headers, uri.query(), uri.path(), custom),
    };
    let key = match presented {
        Presented::Key(k) => k,
        Presented::None => {
            return Err(ApiError::proxy_auth(
                "Authentication Error, No api key passed in.",
            ))
        }
        Presented::Malformed => return Err(ApiError::proxy_auth(
            "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.",
        )),
    };
    if bool::from(key.as_bytes().ct_eq(master.expose().as_bytes())) {
        return Ok(AuthCtx::admin(None));
    }
    let hash = hash_key(key);
    let cached = lookup_key(state, &hash).await?.ok_or_else(|| {
        ApiError::new(
            ErrorClass::ProxyAuth,
            format!(
                "Authentication Error, Invalid proxy server token passed. Received API Key = {}, Key Hash (Token) ={hash}. Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
                abbreviate_key(key)
            ),
        )
        .with_param("None")
    })?;
    let CachedKey {
        row,
        tags,
        team_alias,
        user_email,
        shared_limits,
        shared_budgets,
        model_budgets,
        user_role,
        organization,
        pass_through,
        ..
    } = cached;
    if row.blocked == Some(true) {
        return Err(ApiError::proxy_auth(
            "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.",
        ));
    }
    if cached.team_blocked {
        return Err(ApiError::proxy_auth(format!(
            "Authentication Error, Team={} is blocked. Update via `/team/unblock` if you're an admin.",
            row.team_id.as_deref().unwrap_or_default()
        )));
    }
    if let Some(exp) = row.expires {
        let now = chrono::Utc::now().naive_utc();
        if exp < now {
            let mut e = ApiError::new(
                ErrorClass::ProxyAuth,
                format!(
                    "Authentication Error - Expired Key. Key Expiry time {exp} and current time {now}"
                ),
            )
            .with_param(abbreviate_key(key));
            e.type_override = Some("expired_key");
            return Err(e);
        }
    }
    if !key_routes::may_call(&row.allowed_routes, uri.path())
        && !custom_route_in_groups(state, &row.allowed_routes, uri.path())
    {
        return Err(key_routes::refused(&row.allowed_routes, uri.path()));
    }
    let mut ctx = AuthCtx::for_key(
        hash,
        row,
        &shared_limits,
        shared_budgets,
        model_budgets,
        user_role,
    );
    ctx.organization = organization;
    ctx.tags = tags;
    ctx.team_alias = team_alias;
    ctx.user_email = user_email;
    ctx.pass_through = pass_through;
    Ok(ctx)
}

/// Whether a key's `allowed_routes` hold a custom pass-through route through LiteLLM's route
/// groups: `llm_api_routes` holds them all, `openai_routes` those with `auth: true` (whether
/// the key may then call it is the route's own check).
fn custom_route_in_groups(state: &AppState, allowed: &[String], path: &str) -> bool {
    let Some(enforced) = state.pass_through.group_member(path) else {
        return false;
    };
    allowed
        .iter()
        .any(|g| g == "llm_api_routes" || (enforced && g == "openai_routes"))
}

/// The `tags` lists of some metadata objects (a key's, its team's), in order and without
/// repeats; `None` when there are none.
fn metadata_tags(owners: [Option<&Value>; 2]) -> Option<Arc<[String]>> {
    let mut tags: Vec<String> = Vec::new();
    let listed = owners
        .into_iter()
        .flatten()
        .filter_map(|m| m.field("tags").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str);
    crate::spend::call::append_new_tags(&mut tags, listed);
    (!tags.is_empty()).then(|| tags.into())
}

/// A team's or user's limits as a rate-limit descriptor, if it sets any.
fn limits_of(
    scope: &'static str,
    id: String,
    rpm: Option<i64>,
    tpm: Option<i64>,
    max_parallel: Option<i64>,
) -> Option<Descriptor> {
    let pos = |v: Option<i64>| v.filter(|x| *x >= 0).map(|x| x as u64);
    let d = Descriptor {
        scope,
        id,
        rpm: pos(rpm),
        tpm: pos(tpm),
        max_parallel: pos(max_parallel),
    };
    (d.rpm.is_some() || d.tpm.is_some() || d.max_parallel.is_some()).then_some(d)
}

/// The `model_max_budget`s that apply to calls with this key: its own, its user's and its
/// team's (team entries give way to a key entry for the same model).
fn owner_model_budgets(
    key: &KeyRow,
    hash: &str,
    team: Option<&crate::store::TeamRow>,
    user: Option<&crate::store::UserRow>,
) -> Option<Arc<[OwnerModelBudgets]>> {
    let alias = key.key_alias.as_deref().unwrap_or("None");
    let owners: Vec<OwnerModelBudgets> = [
        OwnerModelBudgets::from_value(
            format!("key:{hash}"),
            format!("LiteLLM Virtual Key: {hash}, key_alias: {alias}"),
            &key.model_max_budget,
            false,
        ),
        user.and_then(|u| {
            OwnerModelBudgets::from_value(
                format!("user:{}", u.user_id),
                format!("LiteLLM User: {}", u.user_id),
                &u.model_max_budget,
                false,
            )
        }),
        team.and_then(|t| {
            OwnerModelBudgets::from_value(
                format!("team:{}", t.team_id),
                format!("LiteLLM Team: {}", t.team_id),
                &t.model_max_budget,
                true,
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!owners.is_empty()).then(|| owners.into())
}

/// A key by hash: from the cache while fresh, else from the store (and cached).
/// The key's team (`blocked`, limits), user (role, limits) and, for a user's key of a team,
/// the user's membership budget in that team (`max_budget_in_team`, member rpm/tpm) are loaded
/// with it (more queries on a cache miss only) and cached alongside; team, user and member
/// changes on this replica drop the affected cached keys.
pub async fn lookup_key(state: &AppState, hash: &str) -> Result<Option<CachedKey>, ApiError> {
    if let Some(c) = state.keys.get(hash) {
        if c.loaded_at.elapsed() < state.key_cache_ttl {
            return Ok(Some(c.clone()));
        }
    }
    // Boxed: the store's futures are large and a cached key never needs them
    // (see `handlers::boxed`). When the entry expires under load, the requests that find it
    // stale together share one read.
    let loading = crate::handlers::boxed(|| state.key_loads.run(hash, || load_key(state, hash)));
    loading.await
}

/// What a key load gives: the key, if it exists, or the failure to read it.
pub type KeyLoad = Result<Option<CachedKey>, ApiError>;

/// A key read from the store (with its team, user, membership and organization), then cached.
async fn load_key(state: &AppState, hash: &str) -> Result<Option<CachedKey>, ApiError> {
    let failed =
        |e: crate::store::StoreError| ApiError::internal(format!("key lookup failed: {e}"));
    let Some(r) = state.store.get_key(hash).await.map_err(failed)? else {
        return Ok(None);
    };
    let team = match &r.team_id {
        Some(t) => state.store.get_team(t).await.map_err(failed)?,
        None => None,
    };
    let team_blocked = team.as_ref().is_some_and(|t| t.blocked);
    let user = match &r.user_id {
        Some(u) => state.store.get_user(u).await.map_err(failed)?,
        None => None,
    };
    let model_budgets = owner_model_budgets(&r, hash, team.as_ref(), user.as_ref());
    let membership = match (&team, &r.user_id) {
        (Some(t), Some(u)) => state
            .store
            .get_membership(&t.team_id, u)
            .await
            .map_err(failed)?,
        _ => None,
    };
    // A team key follows its team's organization; a key outside a team, its own.
    let org_id = match &team {
        Some(t) => t.organization_id.clone(),
        None => r.organization_id.clone(),
    };
    let org = match &org_id {
        Some(o) => state.store.get_organization(o).await.map_err(failed)?,
        None => None,
    };
    let user_role = user
        .as_ref()
        .map(|u| effective_role(u.user_role.as_deref()));
    let mut shared_limits = Vec::new();
    let mut shared_budgets = Vec::new();
    let mut budget = |scope: String,
                      label: String,
                      max: Option<f64>,
                      spend: f64,
                      reset_at: Option<chrono::NaiveDateTime>| {
        if let Some(max_budget) = max {
            state.budgets.observe_db_spend(&scope, spend, reset_at);
            shared_budgets.push(crate::spend::SharedBudget {
                scope,
                max_budget,
                label,
            });
        }
    };
    if let Some(t) = &team {
        budget(
            crate::spend::team_scope(&t.team_id),
            format!("Team={}", t.team_id),
            t.max_budget,
            t.spend,
            t.budget_reset_at,
        );
    }
    if let Some(o) = &org {
        let b = o.budget.as_ref();
        budget(
            format!("org:{}", o.organization_id),
            format!("Organization={}", o.organization_id),
            b.and_then(|b| b.max_budget),
            o.spend,
            b.and_then(|b| b.budget_reset_at),
        );
    }
    if let Some(u) = &user {
        budget(
            format!("user:{}", u.user_id),
            format!("User={}", u.user_id),
            u.max_budget,
            u.spend,
            u.budget_reset_at,
        );
    }
    let member_limits = membership.as_ref().and_then(|m| {
        let b = m.budget.as_ref()?;
        budget(
            crate::spend::member_scope(&m.team_id, &m.user_id),
            format!("User={} in Team={}", m.user_id, m.team_id),
            b.max_budget,
            m.spend,
            b.budget_reset_at,
        );
        // LiteLLM's `team_member` limiter descriptor: "<team_id>:<user_id>".
        limits_of(
            "team_member",
            format!("{}:{}", m.team_id, m.user_id),
            b.rpm_limit,
            b.tpm_limit,
            None,
        )
    });
    shared_limits.extend(member_limits);
    let tags = metadata_tags([Some(&r.metadata), team.as_ref().map(|t| &t.metadata)]);
    let pass_through = PassThroughGrants::of(&r.metadata, team.as_ref().map(|t| &t.metadata));
    let team_alias = team
        .as_ref()
        .and_then(|t| t.team_alias.as_deref())
        .map(Arc::from);
    let user_email = user
        .as_ref()
        .and_then(|u| u.user_email.as_deref())
        .map(Arc::from);
    if let Some(t) = team {
        shared_limits.extend(limits_of(
            "team",
            t.team_id,
            t.rpm_limit,
            t.tpm_limit,
            t.max_parallel_requests,
        ));
    }
    if let Some((o, b)) = org.as_ref().and_then(|o| Some((o, o.budget.as_ref()?))) {
        shared_limits.extend(limits_of(
            "organization",
            o.organization_id.clone(),
            b.rpm_limit,
            b.tpm_limit,
            None,
        ));
    }
    if let Some(u) = user {
        shared_limits.extend(limits_of(
            "user",
            u.user_id,
            u.rpm_limit,
            u.tpm_limit,
            u.max_parallel_requests,
        ));
    }
    state
        .budgets
        .observe_db_spend(hash, r.spend, r.budget_reset_at);
    let cached = CachedKey {
        tags,
        team_alias,
        user_email,
        row: Arc::new(r),
        team_blocked,
        shared_limits,
        shared_budgets,
        model_budgets,
        organization: org.map(|o| {
            Arc::new(OrgGate {
                organization_id: o.organization_id,
                models: o.models,
            })
        }),
        user_role,
        pass_through,
        loaded_at: std::time::Instant::now(),
    };
    state.keys.insert(hash.to_string(), cached.clone());
    Ok(Some(cached))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_as_litellm_stores_them() {
        // hashlib.sha256(b"sk-1234").hexdigest(), LiteLLM's `hash_token`.
        assert_eq!(
            hash_key("sk-1234"),
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
    }

    fn hm(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn header_order_and_forms() {
        assert_eq!(
            extract_key(&hm(&[("authorization", "Bearer sk-a")]), None, "/x", None),
            Presented::Key("sk-a")
        );
        assert_eq!(
            extract_key(&hm(&[("authorization", "sk-a")]), None, "/x", None),
            Presented::Malformed
        );
        assert_eq!(
            extract_key(
                &hm(&[
                    ("authorization", "Bearer sk-a"),
                    ("x-litellm-api-key", "sk-b")
                ]),
                None,
                "/x",
                None
            ),
            Presented::Key("sk-b")
        );
        assert_eq!(
            extract_key(
                &hm(&[("x-litellm-api-key", "Bearer sk-c")]),
                None,
                "/x",
                None
            ),
            Presented::Key("sk-c")
        );
        assert_eq!(
            extract_key(&hm(&[("api-key", "sk-d")]), None, "/x", None),
            Presented::Key("sk-d")
        );
        assert_eq!(
            extract_key(&hm(&[("x-api-key", "sk-e")]), None, "/x", None),
            Presented::Key("sk-e")
        );
        assert_eq!(
            extract_key(&hm(&[("my-key", "sk-f")]), None, "/x", Some("my-key")),
            Presented::Key("sk-f")
        );
        assert_eq!(
            extract_key(
                &hm(&[]),
                Some("key=sk-g"),
                "/v1beta/models/m:generateContent",
                None
            ),
            Presented::Key("sk-g")
        );
        assert_eq!(
            extract_key(&hm(&[]), Some("key=sk-g"), "/v1/chat/completions", None),
            Presented::None
        );
        // Pass-through routes: `litellm_user_api_key` wins there (only there), and `/gemini`
        // takes `?key=` on any path.
        let both = hm(&[
            ("x-api-key", "sk-ant-own"),
            ("litellm_user_api_key", "sk-h"),
        ]);
        assert_eq!(
            extract_key(&both, None, "/anthropic/v1/messages", None),
            Presented::Key("sk-h")
        );
        assert_eq!(
            extract_key(&both, None, "/v1/messages", None),
            Presented::Key("sk-ant-own")
        );
        assert_eq!(
            extract_key(
                &hm(&[]),
                Some("alt=sse&key=sk-i"),
                "/gemini/v1beta/models",
                None
            ),
            Presented::Key("sk-i")
        );
    }

    #[test]
    fn abbreviation() {
        assert_eq!(abbreviate_key("sk-1234567890abcd"), "sk-...abcd");
    }
}
