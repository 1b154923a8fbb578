//! Responses API ids bound to their caller: LiteLLM's `ResponsesIDSecurity`.
//!
//! On top of the managed ids of [`super::response_id`], LiteLLM (on by default) hands each
//! caller its response ids encrypted together with the caller's user and team, so that another
//! caller cannot continue, read, delete or cancel a response it did not create. The id a client
//! sees is `resp_` followed by the salt key's ciphertext (see [`crate::crypto`]: NaCl
//! `SecretBox` in URL-safe base64, or `v2:gcm:...` under `encryption_algorithm: aes-256-gcm`) of
//! `litellm_proxy:responses_api:response_id:{managed id};user_id:{user};team_id:{team}`, an
//! absent user or team written as the empty string. The key is `LITELLM_SALT_KEY`, else the
//! master key; with neither, ids go out unencrypted and any id is accepted.
//!
//! An addressed id (`previous_response_id`, or the id in a `/responses/{id}` route) whose part
//! after the first `resp_` decrypts to that text is opened: a proxy admin may use it, anyone else
//! only when the id's user (if it names one) is theirs and the id's team (if it names one) is
//! theirs, otherwise a 403. An id that is not encrypted is refused with a 403 unless the caller
//! is a proxy admin, `general_settings.allow_unmanaged_response_ids` is set, or
//! `general_settings.disable_responses_id_security` is set. The latter also stops encrypting
//! answers and lets a mismatched caller through (encrypted ids are still opened).
//!
//! The caller, as LiteLLM sees it: the master key is a proxy admin whose user is
//! `default_user_id`; a virtual key has its own user and team, and is an admin when its user's
//! role is `proxy_admin`; without a master key every caller is an internal user with neither
//! (so ids are bound to nobody, but an unencrypted id is still refused when `LITELLM_SALT_KEY`
//! is set).
//!
//! Owns the format, the settings and the decision; where ids are issued and read is in
//! [`super::response_id::Issuer`] and the handlers.

use crate::config::GeneralSettings;
use crate::crypto::SaltKey;
use crate::error::{ApiError, ErrorClass};
use crate::middleware::auth::AuthCtx;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

const ID_PREFIX: &str = "resp_";
/// What every plaintext of LiteLLM's managed objects starts with (files, batches, these ids).
const PLAINTEXT_MARK: &str = "litellm_proxy";
const TEXT_PREFIX: &str = "litellm_proxy:responses_api:response_id:";
/// The user LiteLLM names the master key's caller.
const MASTER_KEY_USER: &str = "default_user_id";

const UNMANAGED: &str = "Forbidden. The proxy did not issue this response id, so whom it belongs to is unknown. \
To accept response ids it did not issue, set general_settings::allow_unmanaged_response_ids to True in the config.yaml file.";
const OTHER_USER: &str = "Forbidden. The response id belongs to another user than the one this key belongs to. \
To turn this check off, set general_settings::disable_responses_id_security to True in the config.yaml file.";
const OTHER_TEAM: &str = "Forbidden. The response id belongs to another team than the one this key belongs to. \
To turn this check off, set general_settings::disable_responses_id_security to True in the config.yaml file.";

/// The feature as configured.
#[derive(Debug, Clone, Default)]
pub struct IdSecurity {
    /// `LITELLM_SALT_KEY`, else the master key; `None`: ids are neither encrypted nor opened.
    key: Option<SaltKey>,
    /// `disable_responses_id_security`.
    disabled: bool,
    /// `allow_unmanaged_response_ids`.
    allow_unmanaged: bool,
    /// No master key: callers are internal users without user or team.
    open: bool,
}

/// Whom a call comes from, for this check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub admin: bool,
}

/// What an encrypted id holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The id the rest of the gateway reads (a managed id, or whatever the issuer encrypted).
    pub response_id: String,
    /// Empty when the id is bound to no user (or team).
    pub user_id: String,
    pub team_id: String,
}

/// How the ids of one answer are bound to its caller. One encryption per id and answer: the
/// events of a stream all carry the same string (LiteLLM keeps one per request too).
#[derive(Debug)]
pub struct Binding {
    key: SaltKey,
    user_id: String,
    team_id: String,
    sealed: OnceLock<(String, String)>,
}

/// LiteLLM's reading of a boolean setting: YAML booleans, and the strings it writes for them.
fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl IdSecurity {
    /// `key`: the salt key values are encrypted with (`LITELLM_SALT_KEY`, else the master key).
    pub fn new(gs: &GeneralSettings, key: Option<SaltKey>, master_key_set: bool) -> Self {
        Self {
            key,
            disabled: flag(gs.extra.get("disable_responses_id_security")),
            allow_unmanaged: flag(gs.extra.get("allow_unmanaged_response_ids")),
            open: !master_key_set,
        }
    }

    /// The caller of a request authenticated as `auth`.
    pub fn caller(&self, auth: &AuthCtx) -> Caller {
        if self.open {
            return Caller {
                user_id: None,
                team_id: None,
                admin: false,
            };
        }
        match auth.key.as_deref() {
            None => Caller {
                user_id: Some(MASTER_KEY_USER.to_string()),
                team_id: None,
                admin: true,
            },
            Some(k) => Caller {
                user_id: k.user_id.clone(),
                team_id: k.team_id.clone(),
                admin: auth.user_role == Some("proxy_admin"),
            },
        }
    }

    /// How the ids of answers to `caller` are bound; `None` when they go out as managed ids
    /// (no key, or the feature disabled).
    pub fn binding(&self, caller: &Caller) -> Option<Arc<Binding>> {
        let key = self.key.as_ref().filter(|_| !self.disabled)?;
        Some(Arc::new(Binding {
            key: key.clone(),
            user_id: caller.user_id.clone().unwrap_or_default(),
            team_id: caller.team_id.clone().unwrap_or_default(),
            sealed: OnceLock::new(),
        }))
    }

    /// The id `caller` addressed, as the rest of the gateway reads it: an encrypted id opened
    /// (when the caller may use it), any other id as sent (when unencrypted ids are accepted).
    pub fn authorize<'a>(&self, id: &'a str, caller: &Caller) -> Result<Cow<'a, str>, ApiError> {
        if let Some(opened) = self.key.as_ref().and_then(|k| open(k, id)) {
            self.check_owner(&opened, caller)?;
            return Ok(Cow::Owned(opened.response_id));
        }
        if self.disabled || self.allow_unmanaged || self.key.is_none() || caller.admin {
            return Ok(Cow::Borrowed(id));
        }
        Err(forbidden(UNMANAGED))
    }

    fn check_owner(&self, id: &Opened, caller: &Caller) -> Result<(), ApiError> {
        if caller.admin || self.disabled {
            return Ok(());
        }
        if !id.user_id.is_empty() && caller.user_id.as_deref() != Some(id.user_id.as_str()) {
            return Err(forbidden(OTHER_USER));
        }
        if !id.team_id.is_empty() && caller.team_id.as_deref() != Some(id.team_id.as_str()) {
            return Err(forbidden(OTHER_TEAM));
        }
        Ok(())
    }
}

/// LiteLLM's 403 (`permission_error`, as its `HTTPException` comes out).
fn forbidden(message: &str) -> ApiError {
    let mut e = ApiError::new(ErrorClass::PermissionDenied, message);
    e.type_override = Some("permission_error");
    e
}

impl Binding {
    /// `id` (a managed id) encrypted for this binding's caller.
    pub fn seal(&self, id: &str) -> String {
        if let Some((plain, sealed)) = self.sealed.get() {
            if plain == id {
                return sealed.clone();
            }
        }
        match seal(&self.key, id, &self.user_id, &self.team_id) {
            Ok(sealed) => {
                // The first id of the answer is kept (an answer names one response).
                let _ = self.sealed.set((id.to_string(), sealed.clone()));
                sealed
            }
            Err(e) => {
                // Only a failing system random source gets here. The id goes out unbound: it
                // works for admins, and other callers get the 403 of an unencrypted id.
                tracing::error!("cannot encrypt a response id: {e}");
                id.to_string()
            }
        }
    }
}

/// `id` encrypted with the user and team it is bound to (empty: none).
pub fn seal(key: &SaltKey, id: &str, user_id: &str, team_id: &str) -> Result<String, String> {
    let text = format!("{TEXT_PREFIX}{id};user_id:{user_id};team_id:{team_id}");
    Ok(format!("{ID_PREFIX}{}", key.encrypt(&text)?))
}

/// What an encrypted id holds, or `None` when `id` is not one this key encrypted. Read as
/// LiteLLM reads it: the ciphertext is what follows the first `resp_` (up to a second one), the
/// plaintext is split on `;` and each part keeps what follows its last label.
pub fn open(key: &SaltKey, id: &str) -> Option<Opened> {
    let ciphertext = id.split(ID_PREFIX).nth(1)?;
    let text = key.decrypt(ciphertext).ok()?;
    if !text.starts_with(PLAINTEXT_MARK) {
        return None;
    }
    let mut parts = text.split(';');
    let first = parts.next().unwrap_or_default();
    let Some(user) = parts.next() else {
        // LiteLLM's own reading of a plaintext without `;`: the id as sent, bound to nobody.
        return Some(Opened {
            response_id: id.to_string(),
            user_id: String::new(),
            team_id: String::new(),
        });
    };
    let after = |part: &str, label: &str| -> String {
        part.rsplit_once(label)
            .map_or(part, |(_, rest)| rest)
            .to_string()
    };
    Some(Opened {
        response_id: after(first, "response_id:"),
        user_id: after(user, "user_id:"),
        team_id: parts
            .next()
            .map(|t| after(t, "team_id:"))
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Algorithm;
    use serde_json::json;

    fn fixture() -> Value {
        serde_json::from_str(include_str!(
            "../../tests/fixtures/litellm_response_ids.json"
        ))
        .unwrap()
    }

    fn key(f: &Value, algo: Algorithm) -> SaltKey {
        SaltKey::new(f["salt_key"].as_str().unwrap(), algo)
    }

    fn settings(extra: Value) -> GeneralSettings {
        GeneralSettings {
            extra: extra.as_object().cloned().unwrap(),
            ..Default::default()
        }
    }

    fn caller(user: Option<&str>, team: Option<&str>, admin: bool) -> Caller {
        Caller {
            user_id: user.map(String::from),
            team_id: team.map(String::from),
            admin,
        }
    }

    /// Ids LiteLLM 1.106.2's `ResponsesIDSecurity` issued (both algorithms) open here to the
    /// managed id, user and team it bound them to.
    #[test]
    fn opens_ids_issued_by_litellm() {
        let f = fixture();
        let k = key(&f, Algorithm::default());
        let issued = f["issued_by_litellm"].as_array().unwrap();
        assert_eq!(issued.len(), 10);
        for case in issued {
            let id = case["id"].as_str().unwrap();
            let opened = open(&k, id).unwrap_or_else(|| panic!("not opened: {id}"));
            assert_eq!(opened.response_id, case["inner"].as_str().unwrap(), "{id}");
            assert_eq!(opened.user_id, case["user_id"].as_str().unwrap(), "{id}");
            assert_eq!(opened.team_id, case["team_id"].as_str().unwrap(), "{id}");
            assert_eq!(
                id.starts_with("resp_v2:gcm:"),
                case["algorithm"] == "aes-256-gcm"
            );
        }
        // Another salt key opens none of them.
        let other = SaltKey::new("another-salt", Algorithm::default());
        assert!(issued
            .iter()
            .all(|c| open(&other, c["id"].as_str().unwrap()).is_none()));
    }

    /// Ids sealed here, recorded in the fixture, were opened by LiteLLM's own
    /// `ResponsesIDSecurity._decrypt_response_id` to what they were sealed with; and anything
    /// sealed here opens here again.
    #[test]
    fn sealed_here_opens_in_litellm_and_here() {
        let f = fixture();
        for case in f["issued_here_opened_by_litellm"].as_array().unwrap() {
            let k = key(&f, Algorithm::default());
            let opened = open(&k, case["id"].as_str().unwrap()).unwrap();
            assert_eq!(opened.response_id, case["inner"].as_str().unwrap());
            assert_eq!(opened.user_id, case["user_id"].as_str().unwrap());
            assert_eq!(opened.team_id, case["team_id"].as_str().unwrap());
        }
        for algo in [Algorithm::XSalsa20Poly1305, Algorithm::Aes256Gcm] {
            let k = key(&f, algo);
            let id = seal(&k, "resp_managed", "u1", "").unwrap();
            assert!(id.starts_with("resp_"));
            assert_eq!(id.starts_with("resp_v2:gcm:"), algo == Algorithm::Aes256Gcm);
            assert_eq!(
                open(&k, &id),
                Some(Opened {
                    response_id: "resp_managed".into(),
                    user_id: "u1".into(),
                    team_id: String::new()
                })
            );
        }
    }

    #[test]
    fn other_ids_do_not_open() {
        let f = fixture();
        let k = key(&f, Algorithm::default());
        for id in [
            "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
            "resp_bGl0ZWxsbTpjdXN0b21fbGxtX3Byb3ZpZGVyOm9wZW5haTttb2RlbF9pZDpkZXAtYTtyZXNwb25zZV9pZDpyZXNwX3Vwc3RyZWFtMTIz",
            "resp_",
            "",
            "no prefix at all",
            "resp_v2:gcm:AAAA",
        ] {
            assert_eq!(open(&k, id), None, "{id}");
        }
        // A ciphertext of this key whose text is not LiteLLM's.
        let foreign = format!("resp_{}", k.encrypt("something else").unwrap());
        assert_eq!(open(&k, &foreign), None);
    }

    #[test]
    fn owners_admins_and_strangers() {
        let f = fixture();
        let k = key(&f, Algorithm::default());
        let on = IdSecurity::new(&settings(json!({})), Some(k.clone()), true);
        let id = seal(&k, "resp_m", "u1", "t1").unwrap();
        let ok = |c: &Caller| on.authorize(&id, c).map(Cow::into_owned);
        assert_eq!(
            ok(&caller(Some("u1"), Some("t1"), false)).unwrap(),
            "resp_m"
        );
        assert_eq!(ok(&caller(Some("u2"), Some("t9"), true)).unwrap(), "resp_m");
        let e = ok(&caller(Some("u2"), Some("t1"), false)).unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.type_override),
            (403, Some("permission_error"))
        );
        assert!(e.message.contains("another user"), "{}", e.message);
        let e = ok(&caller(Some("u1"), None, false)).unwrap_err();
        assert!(e.message.contains("another team"), "{}", e.message);
        // Bound to nobody: anyone may use it.
        let anyone = seal(&k, "resp_m", "", "").unwrap();
        assert!(on.authorize(&anyone, &caller(None, None, false)).is_ok());
        // Unencrypted ids: admins only.
        assert_eq!(
            on.authorize("resp_raw", &caller(None, None, true)).unwrap(),
            "resp_raw"
        );
        let e = on
            .authorize("resp_raw", &caller(Some("u1"), None, false))
            .unwrap_err();
        assert!(e.message.contains("allow_unmanaged_response_ids"));

        let allow = IdSecurity::new(
            &settings(json!({"allow_unmanaged_response_ids": true})),
            Some(k.clone()),
            true,
        );
        assert!(allow
            .authorize("resp_raw", &caller(None, None, false))
            .is_ok());
        assert!(allow
            .authorize(&id, &caller(Some("u2"), None, false))
            .is_err());
        assert!(allow.binding(&caller(None, None, false)).is_some());

        let off = IdSecurity::new(
            &settings(json!({"disable_responses_id_security": "True"})),
            Some(k.clone()),
            true,
        );
        assert!(off.binding(&caller(None, None, false)).is_none());
        assert_eq!(
            off.authorize(&id, &caller(Some("u2"), None, false))
                .unwrap(),
            "resp_m"
        );
        assert!(off
            .authorize("resp_raw", &caller(None, None, false))
            .is_ok());

        // No key: nothing is bound or opened, everything is accepted.
        let keyless = IdSecurity::new(&settings(json!({})), None, false);
        assert!(keyless.binding(&caller(None, None, false)).is_none());
        assert_eq!(
            keyless.authorize(&id, &caller(None, None, false)).unwrap(),
            id
        );
    }

    #[test]
    fn a_binding_seals_each_id_once() {
        let k = SaltKey::new("k", Algorithm::default());
        let sec = IdSecurity::new(&settings(json!({})), Some(k.clone()), true);
        let b = sec.binding(&caller(Some("u1"), Some("t1"), false)).unwrap();
        let first = b.seal("resp_a");
        assert_eq!(b.seal("resp_a"), first);
        let other = b.seal("resp_b");
        assert_ne!(other, first);
        assert_eq!(open(&k, &other).unwrap().response_id, "resp_b");
        let o = open(&k, &first).unwrap();
        assert_eq!((o.user_id.as_str(), o.team_id.as_str()), ("u1", "t1"));
    }
}
