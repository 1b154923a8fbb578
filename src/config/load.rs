//! Reading a config file: YAML syntax, `os.environ/NAME` references, `include`, typing.
//!
//! Mirrors LiteLLM: an `os.environ/NAME` whose variable is unset resolves to null (with a
//! warning naming the YAML path) instead of failing the load; `environment_variables` of the file
//! are visible to those references (an improvement over the reference version, where they were
//! not). Syntax and type errors are fatal and name the file, line and YAML path.

use super::{Config, KNOWN_UNTYPED};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ENV_PREFIX: &str = "os.environ/";

/// A config that parsed and typed, with the warnings produced on the way.
#[derive(Debug, Clone, Default)]
pub struct LoadedConfig {
    pub config: Config,
    pub warnings: Vec<String>,
    /// Values of `environment_variables`, consulted before the process environment.
    pub env_overlay: BTreeMap<String, String>,
}

impl LoadedConfig {
    /// Looks up an environment variable the way the config sees it.
    pub fn env(&self, name: &str) -> Option<String> {
        lookup_env(&self.env_overlay, name)
    }
}

fn lookup_env(overlay: &BTreeMap<String, String>, name: &str) -> Option<String> {
    overlay
        .get(name)
        .cloned()
        .or_else(|| std::env::var(name).ok())
}

/// Why a config could not be loaded. The `Display` form is what the binary prints before
/// exiting non-zero.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {message}")]
    Io { file: String, message: String },
    #[error("invalid YAML in {file}{}: {message}", line_suffix(*line, *column))]
    Syntax {
        file: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("invalid config in {file}{} at `{path}`: {message}", line_suffix(*line, None))]
    Type {
        file: String,
        line: Option<usize>,
        path: String,
        message: String,
    },
}

fn line_suffix(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
        (Some(l), None) => format!(" (line {l})"),
        _ => String::new(),
    }
}

/// Loads and validates a config file.
pub fn load_file(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        file: file.clone(),
        message: e.to_string(),
    })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_text(&text, &file, Some(&base_dir))
}

/// Loads a config from text (tests, `--model` quick start).
pub fn load_str(text: &str, file: &str) -> Result<LoadedConfig, ConfigError> {
    load_text(text, file, None)
}

fn parse_yaml(text: &str, file: &str) -> Result<serde_yaml::Value, ConfigError> {
    if text.trim().is_empty() {
        return Ok(serde_yaml::Value::Mapping(Default::default()));
    }
    serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| {
        let loc = e.location();
        ConfigError::Syntax {
            file: file.to_string(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message: e.to_string(),
        }
    })
}

fn to_json(v: serde_yaml::Value, file: &str) -> Result<Value, ConfigError> {
    serde_json::to_value(v).map_err(|e| ConfigError::Syntax {
        file: file.to_string(),
        line: None,
        column: None,
        message: format!("unsupported YAML value: {e}"),
    })
}

fn load_text(text: &str, file: &str, base_dir: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
    let mut root = to_json(parse_yaml(text, file)?, file)?;
    if root.is_null() {
        root = Value::Object(Default::default());
    }
    if !root.is_object() {
        return Err(ConfigError::Type {
            file: file.to_string(),
            line: Some(1),
            path: "$".into(),
            message: "the top level of a config must be a mapping".into(),
        });
    }
    let mut warnings = Vec::new();
    // `model_list:` with nothing under it is an empty section in LiteLLM, not an error.
    if let Value::Object(m) = &mut root {
        m.retain(|_, v| !v.is_null());
    }

    merge_includes(&mut root, file, base_dir, &mut warnings)?;

    // `environment_variables` first: its values can be referenced by the rest of the file.
    let mut overlay = BTreeMap::new();
    if let Some(Value::Object(vars)) = root.get_mut("environment_variables") {
        for (k, v) in vars.iter_mut() {
            resolve_env_refs(
                v,
                &format!("environment_variables.{k}"),
                &overlay,
                &mut warnings,
            );
            match v {
                Value::String(s) => {
                    overlay.insert(k.clone(), s.clone());
                }
                Value::Number(n) => {
                    overlay.insert(k.clone(), n.to_string());
                }
                Value::Bool(b) => {
                    overlay.insert(k.clone(), b.to_string());
                }
                _ => {}
            }
        }
    }
    resolve_env_refs(&mut root, "", &overlay, &mut warnings);

    let mut config: Config = match serde_path_to_error::deserialize(&root) {
        Ok(c) => c,
        Err(e) => {
            let path = display_path(&e.path().to_string());
            let message = e.inner().to_string();
            return Err(ConfigError::Type {
                file: file.to_string(),
                line: locate_line(text, &path),
                path,
                message,
            });
        }
    };
    if let Some(Value::Array(models)) = root.get("model_list") {
        for (dep, raw) in config.model_list.iter_mut().zip(models) {
            if let Some(Value::Object(p)) = raw.get("litellm_params") {
                dep.raw_params = p.clone();
            }
        }
    }
    collect_unknown_key_warnings(&config, &mut warnings);
    Ok(LoadedConfig {
        config,
        warnings,
        env_overlay: overlay,
    })
}

fn merge_includes(
    root: &mut Value,
    file: &str,
    base_dir: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let Some(includes) = root.get("include").cloned() else {
        return Ok(());
    };
    let Value::Array(list) = includes else {
        return Err(ConfigError::Type {
            file: file.to_string(),
            line: None,
            path: "include".into(),
            message: "expected a list of file names".into(),
        });
    };
    for (i, item) in list.iter().enumerate() {
        let Value::String(name) = item else {
            return Err(ConfigError::Type {
                file: file.to_string(),
                line: None,
                path: format!("include[{i}]"),
                message: "expected a file name".into(),
            });
        };
        let path: PathBuf = match base_dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        };
        let inc_file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Io {
            file: inc_file.clone(),
            message: e.to_string(),
        })?;
        let inc = to_json(parse_yaml(&text, &inc_file)?, &inc_file)?;
        let Value::Object(inc) = inc else { continue };
        for (k, v) in inc {
            match (root.get_mut(&k), v) {
                (Some(Value::Array(dst)), Value::Array(src)) => dst.extend(src),
                (Some(Value::Object(dst)), Value::Object(src)) => {
                    for (sk, sv) in src {
                        dst.entry(sk).or_insert(sv);
                    }
                }
                (Some(_), _) => warnings.push(format!(
                    "{inc_file}: key `{k}` already set in {file}; the included value is ignored"
                )),
                (None, v) => {
                    if let Value::Object(m) = root {
                        m.insert(k, v);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Replaces every string of the form `os.environ/NAME` in place.
fn resolve_env_refs(
    v: &mut Value,
    path: &str,
    overlay: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) {
    match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix(ENV_PREFIX) {
                match lookup_env(overlay, name.trim()) {
                    Some(val) => *s = val,
                    None => {
                        warnings.push(format!(
                            "`{path}` refers to environment variable {} which is not set; treating it as unset",
                            name.trim()
                        ));
                        *v = Value::Null;
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve_env_refs(item, &format!("{path}[{i}]"), overlay, warnings);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                resolve_env_refs(item, &p, overlay, warnings);
            }
        }
        _ => {}
    }
}

fn display_path(p: &str) -> String {
    if p == "." || p.is_empty() {
        "$".into()
    } else {
        p.to_string()
    }
}

/// Best-effort line of a YAML path (`a.b[2].c`) in the source text: follows the keys in order,
/// counting list items by their `- ` markers at the expected indentation.
fn locate_line(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0usize;
    let mut min_indent: Option<usize> = None;
    let mut found = None;
    for seg in split_path(path) {
        match seg {
            Seg::Key(key) => {
                let mut hit = None;
                for (i, line) in lines.iter().enumerate().skip(start) {
                    let trimmed = line.trim_start();
                    let body = trimmed.strip_prefix("- ").unwrap_or(trimmed);
                    // Column where this line's key starts (after any `- ` item marker).
                    let indent = line.len() - body.len();
                    if let Some(mi) = min_indent {
                        if indent < mi && !trimmed.is_empty() && !trimmed.starts_with('#') {
                            break;
                        }
                    }
                    if body.starts_with(&format!("{key}:"))
                        || body.starts_with(&format!("\"{key}\":"))
                    {
                        hit = Some((i, indent));
                        break;
                    }
                }
                let (i, ind) = hit?;
                found = Some(i + 1);
                start = i + 1;
                min_indent = Some(ind + 1);
            }
            Seg::Index(n) => {
                let mut count = 0usize;
                let mut hit = None;
                for (i, line) in lines.iter().enumerate().skip(start) {
                    let trimmed = line.trim_start();
                    let indent = line.len() - trimmed.len();
                    if let Some(mi) = min_indent {
                        if indent + 2 < mi && !trimmed.is_empty() && !trimmed.starts_with('#') {
                            break;
                        }
                    }
                    if trimmed.starts_with("- ") || trimmed == "-" {
                        if count == n {
                            hit = Some((i, indent));
                            break;
                        }
                        count += 1;
                    }
                }
                let (i, ind) = hit?;
                found = Some(i + 1);
                start = i;
                min_indent = Some(ind + 2);
            }
        }
    }
    found
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(b) = rest.find('[') {
            if b > 0 {
                out.push(Seg::Key(&rest[..b]));
            }
            rest = &rest[b..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(end) = stripped.find(']') else { break };
                if let Ok(n) = stripped[..end].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &stripped[end + 1..];
            }
        } else if !rest.is_empty() && rest != "$" {
            out.push(Seg::Key(rest));
        }
    }
    out
}

fn collect_unknown_key_warnings(config: &Config, warnings: &mut Vec<String>) {
    let ls = &config.litellm_settings;
    for (field, list) in [
        ("callbacks", &ls.callbacks),
        ("success_callback", &ls.success_callback),
        ("failure_callback", &ls.failure_callback),
    ] {
        for name in list.iter().filter(|n| !crate::callbacks::is_built(n)) {
            warnings.push(format!(
                "callback `{name}` in `litellm_settings.{field}` is not built into this gateway; it is ignored (built: {})",
                crate::callbacks::BUILT.join(", ")
            ));
        }
    }
    let empty = serde_json::Map::new();
    let sections: [(&str, &serde_json::Map<String, Value>); 6] = [
        ("litellm_settings", &ls.extra),
        (
            "litellm_settings.default_key_generate_params",
            ls.default_key_generate_params
                .as_ref()
                .map_or(&empty, |d| &d.extra),
        ),
        (
            "litellm_settings.upperbound_key_generate_params",
            ls.upperbound_key_generate_params
                .as_ref()
                .map_or(&empty, |c| &c.extra),
        ),
        ("router_settings", &config.router_settings.extra),
        ("general_settings", &config.general_settings.extra),
        ("", &config.extra),
    ];
    // `id` and `is_from_config` only matter to LiteLLM's admin UI.
    let endpoints = config
        .general_settings
        .pass_through_endpoints
        .iter()
        .flatten();
    for (i, e) in endpoints.enumerate() {
        for key in e.extra.keys() {
            if !matches!(key.as_str(), "id" | "is_from_config") {
                warnings.push(format!(
                    "config key `general_settings.pass_through_endpoints[{i}].{key}` is accepted but not implemented by this gateway; it has no effect"
                ));
            }
        }
    }
    for (section, extra) in sections {
        let known: &[&str] = KNOWN_UNTYPED
            .iter()
            .find(|(s, _)| *s == section)
            .map(|(_, k)| *k)
            .unwrap_or(&[]);
        for key in extra.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let full = if section.is_empty() {
                key.clone()
            } else {
                format!("{section}.{key}")
            };
            warnings.push(format!(
                "config key `{full}` is accepted but not implemented by this gateway; it has no effect"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_and_database_pool_settings_are_typed() {
        let loaded = load_str(
            "router_settings:\n  enable_tag_filtering: true\n  tag_filtering_match_any: false\n  max_fallbacks: 3\nlitellm_settings:\n  max_fallbacks: 4\ngeneral_settings:\n  database_connection_pool_limit: 20\n  database_connection_timeout: 30\n",
            "t.yaml",
        )
        .unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = &loaded.config;
        assert_eq!(c.router_settings.enable_tag_filtering, Some(true));
        assert_eq!(c.router_settings.tag_filtering_match_any, Some(false));
        assert_eq!(c.router_settings.max_fallbacks, Some(3));
        assert_eq!(c.litellm_settings.max_fallbacks, Some(4));
        assert_eq!(c.general_settings.database_connection_pool_limit, Some(20));
        assert_eq!(c.general_settings.database_connection_timeout, Some(30.0));
    }

    #[test]
    fn callbacks_are_names_and_unbuilt_ones_are_warned_about() {
        let text = "litellm_settings:\n  callbacks: [\"prometheus\", \"langfuse\", \"lunary\"]\n  failure_callback: langsmith\n  success_callback: generic_api\n";
        let cfg = load_str(text, "t.yaml").unwrap();
        let s = &cfg.config.litellm_settings;
        assert_eq!(s.callbacks, ["prometheus", "langfuse", "lunary"]);
        assert_eq!(s.failure_callback, ["langsmith"]);
        assert!(crate::metrics::enabled(s));
        let about: Vec<&String> = cfg
            .warnings
            .iter()
            .filter(|w| w.contains("callback"))
            .collect();
        assert_eq!(about.len(), 2, "{about:?}");
        assert!(about[0].contains("`lunary` in `litellm_settings.callbacks`"));
        assert!(about[1].contains("`langsmith` in `litellm_settings.failure_callback`"));
        let err = load_str("litellm_settings:\n  callbacks: 5\n", "t.yaml").unwrap_err();
        assert!(err.to_string().contains("callbacks"), "{err}");
        assert!(!crate::metrics::enabled(
            &load_str("model_list: []\n", "t.yaml")
                .unwrap()
                .config
                .litellm_settings
        ));
    }

    #[test]
    fn env_refs_resolve_and_missing_ones_warn() {
        std::env::set_var("LITELLM_TEST_KEY_A", "secret-a");
        let text = "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: os.environ/LITELLM_TEST_KEY_A\n      api_base: os.environ/LITELLM_TEST_UNSET_XYZ\n";
        let cfg = load_str(text, "t.yaml").unwrap();
        let p = &cfg.config.model_list[0].litellm_params;
        assert_eq!(p.api_key.as_ref().unwrap().expose(), "secret-a");
        assert!(p.api_base.is_none());
        assert!(cfg
            .warnings
            .iter()
            .any(|w| w.contains("model_list[0].litellm_params.api_base")
                && w.contains("LITELLM_TEST_UNSET_XYZ")));
    }

    #[test]
    fn environment_variables_section_is_visible_to_refs() {
        let text = "environment_variables:\n  MY_BASE: http://x\nmodel_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: os.environ/MY_BASE\n";
        let cfg = load_str(text, "t.yaml").unwrap();
        assert_eq!(
            cfg.config.model_list[0].litellm_params.api_base.as_deref(),
            Some("http://x")
        );
    }

    #[test]
    fn wrong_type_names_file_line_and_path() {
        let text = "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n  - model_name: b\n    litellm_params:\n      model: openai/b\n      rpm: lots\n";
        let err = load_str(text, "conf.yaml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("conf.yaml"), "{msg}");
        assert!(msg.contains("model_list[1].litellm_params.rpm"), "{msg}");
        assert!(msg.contains("line 8"), "{msg}");
    }

    #[test]
    fn syntax_error_has_line() {
        let err = load_str("model_list:\n  - model_name: [unclosed\n", "bad.yaml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bad.yaml") && msg.contains("line"), "{msg}");
    }

    /// The "accepted but not implemented" warnings of a loaded config.
    fn not_implemented(cfg: &LoadedConfig) -> Vec<String> {
        cfg.warnings
            .iter()
            .filter(|w| w.contains("not implemented"))
            .cloned()
            .collect()
    }

    #[test]
    fn unknown_keys_warn_once_each() {
        let text = "litellm_settings:\n  success_callback: [langsmith]\n  turbo_mode: true\ngeneral_settings:\n  alerting: [slack]\n";
        let cfg = load_str(text, "t.yaml").unwrap();
        let w = not_implemented(&cfg);
        assert_eq!(w.len(), 2, "{w:?}");
        // A callback name that is not built gets its own warning.
        let callbacks: Vec<&String> = cfg
            .warnings
            .iter()
            .filter(|w| w.contains("callback `langsmith`"))
            .collect();
        assert_eq!(callbacks.len(), 1, "{:?}", cfg.warnings);
    }

    /// The new-user defaults are read (`/user/new`, `/team/available`): no warning; a value of
    /// the wrong type is an error naming its path.
    #[test]
    fn new_user_defaults_are_typed_settings() {
        let text = "litellm_settings:\n  default_internal_user_params:\n    available_teams: [t1]\n    max_budget: 10\n  max_internal_user_budget: 5\n  internal_user_budget_duration: 30d\n";
        let cfg = load_str(text, "t.yaml").unwrap();
        assert!(not_implemented(&cfg).is_empty(), "{:?}", cfg.warnings);
        let s = &cfg.config.litellm_settings;
        assert_eq!(s.max_internal_user_budget, Some(5.0));
        assert_eq!(s.internal_user_budget_duration.as_deref(), Some("30d"));
        assert_eq!(
            s.default_internal_user_params.as_ref().unwrap()["max_budget"],
            10
        );
        let err = load_str(
            "litellm_settings:\n  default_internal_user_params: 3\n",
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("litellm_settings.default_internal_user_params"),
            "{err}"
        );
    }

    /// The key defaults and caps are read by `/key/generate` and friends: no warning for them,
    /// one for a key inside them that LiteLLM ignores too, and an error naming the path for a
    /// wrong type or an unreadable duration.
    #[test]
    fn key_generate_defaults_and_caps_are_typed() {
        let text = "litellm_settings:\n  default_key_generate_params:\n    max_budget: \"2.5\"\n    models: [gpt-4o]\n    duration: 30d\n    colour: blue\n  upperbound_key_generate_params:\n    max_budget: 100\n    tpm_limit: 1000\n    budget_duration: 1mo\n";
        let cfg = load_str(text, "t.yaml").unwrap();
        let w = not_implemented(&cfg);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("litellm_settings.default_key_generate_params.colour"),
            "{w:?}"
        );
        let s = &cfg.config.litellm_settings;
        let d = s.default_key_generate_params.as_ref().unwrap();
        assert_eq!(d.max_budget, Some(2.5));
        assert_eq!(d.models.as_deref(), Some(&["gpt-4o".to_string()][..]));
        assert_eq!(d.duration.as_deref(), Some("30d"));
        let c = s.upperbound_key_generate_params.as_ref().unwrap();
        assert_eq!(c.max_budget, Some(100.0));
        assert_eq!(c.tpm_limit, Some(1000));
        assert_eq!(c.budget_duration.as_deref(), Some("1mo"));

        for (bad, path) in [
            (
                "  upperbound_key_generate_params:\n    tpm_limit: lots\n",
                "litellm_settings.upperbound_key_generate_params.tpm_limit",
            ),
            (
                "  upperbound_key_generate_params:\n    duration: forever\n",
                "litellm_settings.upperbound_key_generate_params.duration",
            ),
            (
                "  default_key_generate_params:\n    models: gpt-4o\n",
                "litellm_settings.default_key_generate_params.models",
            ),
            (
                "  default_key_generate_params: [1]\n",
                "litellm_settings.default_key_generate_params",
            ),
        ] {
            let err = load_str(&format!("litellm_settings:\n{bad}"), "t.yaml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(path), "{err}");
        }
    }

    #[test]
    fn public_model_groups_is_a_typed_list() {
        let cfg = load_str(
            "litellm_settings:\n  public_model_groups: [a, b]\n",
            "t.yaml",
        )
        .unwrap();
        assert!(not_implemented(&cfg).is_empty(), "{:?}", cfg.warnings);
        let groups = cfg.config.litellm_settings.public_model_groups;
        assert_eq!(groups, Some(vec!["a".to_string(), "b".to_string()]));
        let err = load_str("litellm_settings:\n  public_model_groups: a\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("litellm_settings.public_model_groups"),
            "{err}"
        );
    }

    #[test]
    fn end_user_budget_settings_are_typed() {
        let text = "litellm_settings:\n  max_end_user_budget: \"0.5\"\n  max_end_user_budget_id: free-tier\n";
        let cfg = load_str(text, "t.yaml").unwrap();
        let ls = &cfg.config.litellm_settings;
        assert_eq!(ls.max_end_user_budget, Some(0.5));
        assert_eq!(ls.max_end_user_budget_id.as_deref(), Some("free-tier"));
        assert!(
            !cfg.warnings
                .iter()
                .any(|w| w.contains("max_end_user_budget")),
            "{:?}",
            cfg.warnings
        );
        let err = load_str("litellm_settings:\n  max_end_user_budget: lots\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("litellm_settings.max_end_user_budget"),
            "{err}"
        );
    }

    #[test]
    fn numeric_strings_are_accepted() {
        let text = "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      rpm: \"100\"\n      timeout: \"2.5\"\n";
        let cfg = load_str(text, "t.yaml").unwrap();
        assert_eq!(cfg.config.model_list[0].litellm_params.rpm, Some(100));
        assert_eq!(cfg.config.model_list[0].litellm_params.timeout, Some(2.5));
    }
}
