//! LiteLLM-managed Responses API ids: the upstream's response id wrapped with the provider and
//! the deployment that produced it, so follow-up calls find their way back.
//!
//! LiteLLM rewrites the `id` of every Responses API object it returns to `resp_` + standard
//! base64 (padded) of `litellm:custom_llm_provider:{provider};model_id:{deployment id};
//! response_id:{upstream id}`. A `previous_response_id` or a `/responses/{id}` path carrying
//! such an id is decoded back to the upstream's own id, and the deployment id tells which
//! deployment holds the stored response. An id that is already managed is never wrapped twice.
//!
//! Decoding is stricter than LiteLLM's in one way and looser in two: the decoded text must start
//! with the `litellm:custom_llm_provider:` prefix (LiteLLM takes any base64 text holding `;`),
//! padding may be missing and the URL-safe alphabet is accepted, and a response id holding `;`
//! is kept whole (LiteLLM splits on every `;` and keeps only the part before the next one).
//!
//! When LiteLLM's `ResponsesIDSecurity` is on, the managed id is not what the client sees: it is
//! encrypted with the caller's user and team ([`super::response_owner`]), and an addressed id is
//! opened back to its managed id before it is read here.
//!
//! Owns the id format and its rewriting in answers (bodies, stream events, mock objects). Which
//! deployment serves a call, and the follow-up routes themselves, live in the handlers.

use super::response_owner::Binding;
use super::rewrite::find_members;
use super::Usage;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde_json::{Map, Value};
use std::ops::Range;
use std::sync::Arc;

const ID_PREFIX: &str = "resp_";
const TEXT_PREFIX: &str = "litellm:custom_llm_provider:";
const MODEL_ID_SEP: &str = ";model_id:";
const RESPONSE_ID_SEP: &str = ";response_id:";
/// Base64 of the first 27 bytes of [`TEXT_PREFIX`] (a multiple of 3, so it never depends on
/// what follows).
const TEXT_PREFIX_B64: &str = "bGl0ZWxsbTpjdXN0b21fbGxtX3Byb3ZpZGVy";

/// What a managed id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedId {
    /// LiteLLM's `custom_llm_provider` (`openai`, `azure`, ...); `None` when written as `None`.
    pub provider: Option<String>,
    /// The deployment (`model_info.id`) that answered; `None` when written as `None` or empty.
    pub model_id: Option<String>,
    /// The upstream's own response id.
    pub response_id: String,
}

/// The managed id of the upstream response `response_id` answered by deployment `model_id` of
/// `provider`.
pub fn encode(provider: &str, model_id: &str, response_id: &str) -> String {
    let text =
        format!("{TEXT_PREFIX}{provider}{MODEL_ID_SEP}{model_id}{RESPONSE_ID_SEP}{response_id}");
    let mut out = String::with_capacity(ID_PREFIX.len() + text.len().div_ceil(3) * 4);
    out.push_str(ID_PREFIX);
    base64::engine::general_purpose::STANDARD.encode_string(text, &mut out);
    out
}

/// Base64 as LiteLLM writes it, read with or without its padding.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// What a managed id names, or `None` if `id` is not one (an upstream's own id, anything else).
pub fn decode(id: &str) -> Option<ManagedId> {
    let b64 = id.strip_prefix(ID_PREFIX).unwrap_or(id);
    // The cheap refusal first: every managed id's text starts with the same 27 bytes
    // (`litellm:custom_llm_provider`), so its base64 starts with the same 36 characters; an
    // upstream's own `resp_<hex>` is turned away here without being decoded.
    if !b64.starts_with(TEXT_PREFIX_B64) {
        return None;
    }
    let bytes = STANDARD_LENIENT
        .decode(b64)
        .or_else(|_| URL_SAFE_LENIENT.decode(b64))
        .ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let rest = text.strip_prefix(TEXT_PREFIX)?;
    let (provider, rest) = rest.split_once(MODEL_ID_SEP)?;
    let (model_id, response_id) = rest.split_once(RESPONSE_ID_SEP)?;
    if response_id.is_empty() {
        return None;
    }
    let named = |s: &str| (!s.is_empty() && s != "None").then(|| s.to_string());
    Some(ManagedId {
        provider: named(provider),
        model_id: named(model_id),
        response_id: response_id.to_string(),
    })
}

/// Whether `id` is already a managed id (LiteLLM's test: it names a provider or a deployment).
pub fn is_managed(id: &str) -> bool {
    decode(id).is_some_and(|m| m.provider.is_some() || m.model_id.is_some())
}

/// A Responses API request's `previous_response_id`, when managed, is replaced by the upstream's
/// own id; returns the deployment that holds it. An id that does not decode stays as sent.
pub fn unwrap_previous(body: &mut Map<String, Value>) -> Option<String> {
    let Some(Value::String(prev)) = body.get_mut("previous_response_id") else {
        return None;
    };
    let m = decode(prev)?;
    *prev = m.response_id;
    m.model_id
}

/// The deployment that answered a call, which names the ids of its answers; and, when
/// `ResponsesIDSecurity` applies, the caller they are bound to (see [`super::response_owner`]).
#[derive(Debug, Clone)]
pub struct Issuer {
    provider: &'static str,
    model_id: Arc<str>,
    binding: Option<Arc<Binding>>,
    /// On the routes on a stored response: the upstream id that was asked for, and the id the
    /// client named it by, which the answer gives back.
    echo: Option<Arc<(String, String)>>,
}

impl Issuer {
    pub fn new(provider: &'static str, model_id: &str) -> Self {
        Self {
            provider,
            model_id: Arc::from(model_id),
            binding: None,
            echo: None,
        }
    }

    /// Ids issued bound to a caller (`None`: plain managed ids).
    pub fn bound(mut self, binding: Option<Arc<Binding>>) -> Self {
        self.binding = binding;
        self
    }

    /// The upstream id `upstream` is named `sent` in the answer (the id the client used).
    pub fn echoing(mut self, upstream: &str, sent: &str) -> Self {
        self.echo = Some(Arc::new((upstream.to_string(), sent.to_string())));
        self
    }

    /// The id the client gets for the upstream id `upstream`: managed (unless it already is),
    /// then bound to the caller when a binding is set; `None` when that is `upstream` itself.
    pub fn id_for(&self, upstream: &str) -> Option<String> {
        if let Some((asked, sent)) = self.echo.as_deref() {
            if upstream == asked {
                return (upstream != sent).then(|| sent.clone());
            }
        }
        let managed =
            (!is_managed(upstream)).then(|| encode(self.provider, &self.model_id, upstream));
        match &self.binding {
            Some(b) => Some(b.seal(managed.as_deref().unwrap_or(upstream))),
            None => managed,
        }
    }

    /// A Responses API object as the client gets it: its top-level `id` issued, every other
    /// byte as the upstream wrote it; with its `usage`. A body that is not a JSON object goes
    /// back as it came, without usage.
    pub fn body(&self, body: &[u8]) -> (Option<Vec<u8>>, Option<Usage>) {
        let Some([id, usage]) = find_members(body, ["id", "usage"]) else {
            return self.parsed(body, None);
        };
        let usage = usage
            .and_then(|r| serde_json::from_slice::<Value>(&body[r]).ok())
            .and_then(|u| Usage::from_responses(&u));
        (id.and_then(|r| self.splice(body, r)), usage)
    }

    /// A stream event as the client gets it: when it carries the response object (`response`:
    /// `response.created`, `.in_progress`, `.completed`, `.failed`, `.incomplete`, `.queued`),
    /// that object's `id` issued. `None` when the event has nothing to change.
    pub fn event(&self, data: &[u8]) -> Option<Vec<u8>> {
        let Some([response]) = find_members(data, ["response"]) else {
            return self.parsed(data, Some("response")).0;
        };
        let response = response?;
        let inner = &data[response.clone()];
        let Some([id]) = find_members(inner, ["id"]) else {
            return self.parsed(data, Some("response")).0;
        };
        let id = id?;
        self.splice(data, response.start + id.start..response.start + id.end)
    }

    /// A Responses API object built here (mock answers): its `id` issued, in place.
    pub fn object(&self, m: &mut Map<String, Value>) {
        if let Some(Value::String(id)) = m.get_mut("id") {
            if let Some(managed) = self.id_for(id) {
                *id = managed;
            }
        }
    }

    /// `body` with the JSON string at `at` replaced by the id the client gets; `None` when the
    /// value is not a string or stays as it is.
    fn splice(&self, body: &[u8], at: Range<usize>) -> Option<Vec<u8>> {
        let old: String = serde_json::from_slice(&body[at.clone()]).ok()?;
        let new = self.id_for(&old)?;
        let mut out = Vec::with_capacity(body.len() + new.len());
        out.extend_from_slice(&body[..at.start]);
        super::json_out::write_str(&mut out, &new);
        out.extend_from_slice(&body[at.end..]);
        Some(out)
    }

    /// The rare body the scanner does not take (keys written with escapes): parsed whole,
    /// rewritten and written again. `under`: the member holding the response object.
    fn parsed(&self, body: &[u8], under: Option<&str>) -> (Option<Vec<u8>>, Option<Usage>) {
        let Ok(mut top) = serde_json::from_slice::<Map<String, Value>>(body) else {
            return (None, None);
        };
        let usage = match under {
            None => top.get("usage").and_then(Usage::from_responses),
            Some(_) => None,
        };
        let object = match under {
            None => Some(&mut top),
            Some(k) => top.get_mut(k).and_then(Value::as_object_mut),
        };
        let Some(object) = object else {
            return (None, usage);
        };
        let before = object.get("id").cloned();
        self.object(object);
        if object.get("id") == before.as_ref() {
            return (None, usage);
        }
        (serde_json::to_vec(&top).ok(), usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Python's `base64.b64encode(b"litellm:custom_llm_provider:openai;model_id:dep-a;response_id:resp_upstream123")`,
    /// as LiteLLM 1.106 answered it.
    const LITELLM_ID: &str = "resp_bGl0ZWxsbTpjdXN0b21fbGxtX3Byb3ZpZGVyOm9wZW5haTttb2RlbF9pZDpkZXAtYTtyZXNwb25zZV9pZDpyZXNwX3Vwc3RyZWFtMTIz";

    #[test]
    fn prefix_constant_is_the_base64_of_the_text_prefix() {
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(&TEXT_PREFIX.as_bytes()[..27]),
            TEXT_PREFIX_B64
        );
    }

    #[test]
    fn encodes_as_litellm_does_and_decodes_back() {
        assert_eq!(encode("openai", "dep-a", "resp_upstream123"), LITELLM_ID);
        let m = decode(LITELLM_ID).unwrap();
        assert_eq!(m.provider.as_deref(), Some("openai"));
        assert_eq!(m.model_id.as_deref(), Some("dep-a"));
        assert_eq!(m.response_id, "resp_upstream123");
        assert!(is_managed(LITELLM_ID));
    }

    #[test]
    fn padding_may_be_missing_and_every_padding_length_round_trips() {
        // Upstream ids of three consecutive lengths give texts needing 0, 1 and 2 `=`.
        let mut pads = Vec::new();
        for up in ["resp_a", "resp_ab", "resp_abc"] {
            let id = encode("azure", "m1", up);
            pads.push(id.len() - id.trim_end_matches('=').len());
            assert_eq!(decode(&id).unwrap().response_id, up);
            let bare = id.trim_end_matches('=');
            assert_eq!(decode(bare).unwrap().response_id, up, "{bare}");
        }
        pads.sort_unstable();
        assert_eq!(pads, [0, 1, 2]);
        // The URL-safe alphabet (`-`, `_`) is read too: `?` in an id gives a `/` in base64.
        let id = encode("openai", "m?", "resp_x?y");
        assert!(id.contains('/'), "{id}");
        let url_safe = id
            .replacen('/', "_", usize::MAX)
            .replacen('+', "-", usize::MAX);
        assert_eq!(decode(&url_safe).unwrap().model_id.as_deref(), Some("m?"));
    }

    #[test]
    fn foreign_ids_do_not_decode() {
        for id in [
            "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
            "resp_raw123",
            "",
            "resp_",
            "not base64 at all, not at all, not at all!",
            // Base64 of text without LiteLLM's prefix (LiteLLM itself would split it on `;`).
            "resp_YTtiO2M7ZDtlO2Y7ZztoO2k7ajtrO2w7bTtuO287cDtxO3I7czt0",
            // LiteLLM's prefix but no response id.
            &encode("openai", "m", ""),
        ] {
            assert_eq!(decode(id), None, "{id}");
            assert!(!is_managed(id));
        }
    }

    /// LiteLLM splits the decoded text on every `;`: an upstream id holding one loses its tail
    /// there. Here the id after `;response_id:` is kept whole.
    #[test]
    fn response_ids_holding_semicolons_stay_whole() {
        let id = encode("openai", "dep;1", "resp_a;b;response_id:c");
        let m = decode(&id).unwrap();
        assert_eq!(m.model_id.as_deref(), Some("dep;1"));
        assert_eq!(m.response_id, "resp_a;b;response_id:c");
    }

    #[test]
    fn none_names_nothing() {
        let m = decode(&encode("None", "None", "resp_1")).unwrap();
        assert_eq!((m.provider, m.model_id), (None, None));
        assert!(!is_managed(&encode("None", "None", "resp_1")));
        assert_eq!(
            decode(&encode("openai", "", "resp_1")).unwrap().model_id,
            None
        );
    }

    #[test]
    fn previous_response_id_is_unwrapped_or_left_alone() {
        let mut body = json!({"previous_response_id": LITELLM_ID, "input": "x"})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(unwrap_previous(&mut body).as_deref(), Some("dep-a"));
        assert_eq!(body["previous_response_id"], "resp_upstream123");
        let mut body = json!({"previous_response_id": "resp_raw"})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(unwrap_previous(&mut body), None);
        assert_eq!(body["previous_response_id"], "resp_raw");
    }

    #[test]
    fn bodies_keep_every_other_byte_and_give_their_usage() {
        let issuer = Issuer::new("openai", "dep-a");
        let body = br#"{ "id" : "resp_upstream123", "object":"response","output":[{"id":"msg_1","text":"a\"b"}],"usage":{"input_tokens":12,"output_tokens":5,"total_tokens":17}}"#;
        let (out, usage) = issuer.body(body);
        let out = String::from_utf8(out.unwrap()).unwrap();
        let expected = String::from_utf8(body.to_vec())
            .unwrap()
            .replace("resp_upstream123", LITELLM_ID);
        assert_eq!(out, expected);
        assert_eq!(usage.unwrap().total_tokens, 17);
        // Already managed (another LiteLLM upstream): left alone.
        let managed = format!(r#"{{"id":"{LITELLM_ID}"}}"#);
        assert_eq!(
            Issuer::new("openai", "other").body(managed.as_bytes()).0,
            None
        );
        // Not an object, or no id: nothing to change.
        assert_eq!(issuer.body(b"[1]"), (None, None));
        assert_eq!(issuer.body(br#"{"object":"list"}"#).0, None);
        // A key written with escapes takes the parsing path.
        let (out, _) = issuer.body(br#"{"\u0069d":"resp_upstream123","n":1}"#);
        let v: Value = serde_json::from_slice(&out.unwrap()).unwrap();
        assert_eq!(v, json!({"id": LITELLM_ID, "n": 1}));
    }

    #[test]
    fn events_with_the_response_object_are_rewritten_and_no_others() {
        let issuer = Issuer::new("openai", "dep-a");
        let ev = br#"{"type":"response.created","sequence_number":0,"response":{"object":"response","id":"resp_upstream123","status":"in_progress"}}"#;
        let out = String::from_utf8(issuer.event(ev).unwrap()).unwrap();
        assert_eq!(
            out,
            String::from_utf8(ev.to_vec())
                .unwrap()
                .replace("resp_upstream123", LITELLM_ID)
        );
        for ev in [
            &br#"{"type":"response.output_text.delta","item_id":"msg_1","delta":"resp_upstream123"}"#[..],
            br#"{"type":"error","message":"x"}"#,
            br#"{"type":"response.failed","response":null}"#,
            b"not json",
        ] {
            assert_eq!(issuer.event(ev), None);
        }
        let out = issuer
            .event(br#"{"type":"response.completed","response":{"\u0069d":"resp_upstream123"}}"#)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["response"]["id"], LITELLM_ID);
    }
    /// Bound to a caller, every id an answer carries is the managed id encrypted for it, the
    /// same string in every event of one answer; an already-managed upstream id is encrypted
    /// as it is.
    #[test]
    fn bound_issuers_encrypt_and_follow_ups_echo() {
        use crate::api::response_owner::{open, Caller, IdSecurity};
        use crate::crypto::{Algorithm, SaltKey};
        let key = SaltKey::new("salt", Algorithm::default());
        let security = IdSecurity::new(&Default::default(), Some(key.clone()), true);
        let caller = Caller {
            user_id: Some("u1".into()),
            team_id: None,
            admin: false,
        };
        let issuer = Issuer::new("openai", "dep-a").bound(security.binding(&caller));
        let created = issuer
            .event(br#"{"type":"response.created","response":{"id":"resp_upstream123"}}"#)
            .unwrap();
        let done = issuer
            .event(br#"{"type":"response.completed","response":{"id":"resp_upstream123"}}"#)
            .unwrap();
        let id_of = |b: &[u8]| {
            serde_json::from_slice::<Value>(b).unwrap()["response"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(id_of(&created), id_of(&done));
        let o = open(&key, &id_of(&created)).unwrap();
        assert_eq!(
            (o.response_id.as_str(), o.user_id.as_str()),
            (LITELLM_ID, "u1")
        );
        let managed = Issuer::new("openai", "other").bound(security.binding(&caller));
        let o = open(&key, &managed.id_for(LITELLM_ID).unwrap()).unwrap();
        assert_eq!(o.response_id, LITELLM_ID);

        // A follow-up answers under the id it was asked with; other ids are issued as usual.
        let echo = Issuer::new("openai", "dep-a")
            .bound(security.binding(&caller))
            .echoing("resp_upstream123", "resp_sent");
        assert_eq!(
            echo.id_for("resp_upstream123").as_deref(),
            Some("resp_sent")
        );
        assert!(open(&key, &echo.id_for("resp_other").unwrap()).is_some());
        let same = Issuer::new("openai", "dep-a").echoing("resp_x", "resp_x");
        assert_eq!(same.id_for("resp_x"), None);
    }
}
