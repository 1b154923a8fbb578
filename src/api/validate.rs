//! Field-by-field validation of OpenAI request bodies.
//!
//! Each check names the offending field in both the message and `param`, the way OpenAI's own
//! API answers, so a client sees which field to fix.

use super::type_error;
use crate::api::Field;
use crate::error::{ApiError, ApiResult};
use serde_json::{Map, Value};

pub fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn as_f64(field: &str, v: &Value) -> ApiResult<f64> {
    v.as_f64().ok_or_else(|| type_error(field, "a number", v))
}

pub fn as_u64(field: &str, v: &Value) -> ApiResult<u64> {
    v.as_u64()
        .ok_or_else(|| type_error(field, "a non-negative integer", v))
}

pub fn as_bool(field: &str, v: &Value) -> ApiResult<bool> {
    v.as_bool().ok_or_else(|| type_error(field, "a boolean", v))
}

pub fn as_string(field: &str, v: &Value) -> ApiResult<String> {
    v.as_str()
        .map(String::from)
        .ok_or_else(|| type_error(field, "a string", v))
}

#[derive(Clone, Copy)]
enum Kind {
    Number,
    Integer,
    Bool,
    Str,
    Object,
    Array,
    StrOrArray,
    StrOrObject,
}

fn check(field: &str, v: &Value, kind: Kind) -> ApiResult<()> {
    if v.is_null() {
        return Ok(());
    }
    let (ok, expected) = match kind {
        Kind::Number => (v.is_number(), "a number"),
        Kind::Integer => (v.is_i64() || v.is_u64(), "an integer"),
        Kind::Bool => (v.is_boolean(), "a boolean"),
        Kind::Str => (v.is_string(), "a string"),
        Kind::Object => (v.is_object(), "an object"),
        Kind::Array => (v.is_array(), "an array"),
        Kind::StrOrArray => (v.is_string() || v.is_array(), "a string or an array"),
        Kind::StrOrObject => (v.is_string() || v.is_object(), "a string or an object"),
    };
    if ok {
        Ok(())
    } else {
        Err(type_error(field, expected, v))
    }
}

const CHAT_FIELDS: &[(&str, Kind)] = &[
    ("stream", Kind::Bool),
    ("temperature", Kind::Number),
    ("top_p", Kind::Number),
    ("n", Kind::Integer),
    ("max_tokens", Kind::Integer),
    ("max_completion_tokens", Kind::Integer),
    ("presence_penalty", Kind::Number),
    ("frequency_penalty", Kind::Number),
    ("seed", Kind::Integer),
    ("logprobs", Kind::Bool),
    ("top_logprobs", Kind::Integer),
    ("logit_bias", Kind::Object),
    ("user", Kind::Str),
    ("tools", Kind::Array),
    ("tool_choice", Kind::StrOrObject),
    ("parallel_tool_calls", Kind::Bool),
    ("response_format", Kind::Object),
    ("stream_options", Kind::Object),
    ("stop", Kind::StrOrArray),
    ("functions", Kind::Array),
    ("function_call", Kind::StrOrObject),
    ("reasoning_effort", Kind::Str),
    ("modalities", Kind::Array),
];

/// The model name from the body, or the 400 LiteLLM gives for a missing one.
pub fn model_field(body: &Map<String, Value>, route: &str) -> ApiResult<String> {
    match body.field("model") {
        Some(Value::String(m)) if !m.is_empty() => Ok(m.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ApiError::bad_request(format!(
            "{route}: Invalid model name passed in model=None. Call `/v1/models` to view available models for your key."
        ))
        .with_param("model")),
        Some(other) => Err(type_error("model", "a string", other)),
    }
}

/// Validates a chat-completions body (types of the standard fields and `messages`).
pub fn chat(body: &Map<String, Value>) -> ApiResult<()> {
    // A body holds a few of these fields: finding each body key in the table costs a few
    // string compares, where probing the body for every table name hashed 23 names per request.
    // When a field is wrong, the ordered pass picks which one the error names.
    let typed_ok = body.iter().all(|(k, v)| {
        CHAT_FIELDS
            .iter()
            .find(|(f, _)| f == k)
            .is_none_or(|(f, kind)| check(f, v, *kind).is_ok())
    });
    if !typed_ok {
        for (field, kind) in CHAT_FIELDS {
            if let Some(v) = body.get(*field) {
                check(field, v, *kind)?;
            }
        }
    }
    if let Some(Value::Array(stops)) = body.field("stop") {
        if !stops.iter().all(Value::is_string) {
            return Err(type_error(
                "stop",
                "a string or a list of strings",
                &Value::Array(stops.clone()),
            ));
        }
    }
    let messages = match body.field("messages") {
        None | Some(Value::Null) => {
            return Err(
                ApiError::bad_request("Missing required parameter: 'messages'.")
                    .with_param("messages"),
            )
        }
        Some(Value::Array(m)) => m,
        Some(other) => return Err(type_error("messages", "an array", other)),
    };
    if messages.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
        )
        .with_param("messages"));
    }
    for (i, m) in messages.iter().enumerate() {
        let Value::Object(obj) = m else {
            return Err(type_error(&format!("messages[{i}]"), "an object", m));
        };
        match obj.field("role") {
            Some(Value::String(r))
                if matches!(
                    r.as_str(),
                    "system" | "user" | "assistant" | "tool" | "function" | "developer"
                ) => {}
            Some(Value::String(r)) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid value for 'messages[{i}].role': '{r}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."
                ))
                .with_param(format!("messages[{i}].role")))
            }
            Some(other) => return Err(type_error(&format!("messages[{i}].role"), "a string", other)),
            None => {
                return Err(ApiError::bad_request(format!(
                    "Missing required parameter: 'messages[{i}].role'."
                ))
                .with_param(format!("messages[{i}].role")))
            }
        }
        if let Some(c) = obj.field("content") {
            if !(c.is_null() || c.is_string() || c.is_array()) {
                return Err(type_error(
                    &format!("messages[{i}].content"),
                    "a string or an array",
                    c,
                ));
            }
        }
    }
    Ok(())
}

/// Validates an embeddings body.
pub fn embeddings(body: &Map<String, Value>) -> ApiResult<()> {
    match body.field("input") {
        None | Some(Value::Null) => {
            return Err(
                ApiError::bad_request("Missing required parameter: 'input'.").with_param("input"),
            )
        }
        Some(Value::String(_)) => {}
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(
                    ApiError::bad_request("Invalid 'input': empty array.").with_param("input")
                );
            }
            let ok = items.iter().all(|x| x.is_string())
                || items.iter().all(|x| x.is_i64() || x.is_u64())
                || items.iter().all(|x| {
                    x.as_array()
                        .is_some_and(|a| a.iter().all(|t| t.is_u64() || t.is_i64()))
                });
            if !ok {
                return Err(type_error(
                    "input",
                    "a string, a list of strings, or token arrays",
                    &Value::Array(items.clone()),
                ));
            }
        }
        Some(other) => return Err(type_error("input", "a string or an array", other)),
    }
    for (field, kind) in [
        ("encoding_format", Kind::Str),
        ("dimensions", Kind::Integer),
        ("user", Kind::Str),
    ] {
        if let Some(v) = body.field(field) {
            check(field, v, kind)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = chat(&obj(
            json!({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}),
        ))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("temperature"));
        assert!(e.message.contains("temperature"));
        let e = chat(&obj(json!({"model":"m","messages":[{"content":"x"}]}))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e = chat(&obj(json!({"model":"m"}))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages"));
        assert!(chat(&obj(
            json!({"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a"]})
        ))
        .is_ok());
    }

    #[test]
    fn the_first_wrong_field_in_table_order_is_named() {
        let e = chat(&obj(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "user": 5,
            "temperature": "hot",
        })))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("temperature"));
        assert!(chat(&obj(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "temperature": null,
            "x-unknown": "kept",
        })))
        .is_ok());
    }

    #[test]
    fn embeddings_input_shapes() {
        assert!(embeddings(&obj(json!({"input":"x"}))).is_ok());
        assert!(embeddings(&obj(json!({"input":[[1,2],[3]]}))).is_ok());
        assert_eq!(
            embeddings(&obj(json!({"input":[1,"a"]})))
                .unwrap_err()
                .param
                .as_deref(),
            Some("input")
        );
        assert!(embeddings(&obj(json!({}))).is_err());
    }
}
