//! `multipart/form-data` bodies, the shape of OpenAI's file-upload routes
//! (`/audio/transcriptions`, `/images/edits`): a client's form read into its text fields (as
//! a JSON map, the shape every other route's body has) and its files, and the form written for
//! the upstream.
//!
//! Forms are read as Starlette reads them for LiteLLM: a part with a filename is a file, any
//! other part a text field; `name[]` text parts gather into a list under `name` (the OpenAI
//! SDKs send `timestamp_granularities[]` so); a repeated plain name keeps its last value.
//! LiteLLM's own fields arrive as text too and are read as the JSON they hold (`metadata`,
//! `tags`, `num_retries`, `fallbacks`, ...), as LiteLLM reads a form's `metadata`.
//!
//! The caller reads the body first, within `max_request_size_mb`; the files are then kept in
//! memory for the call (a retry or fallback sends them again), never beyond that bound.
//!
//! What must not go in here: which fields a route requires or forwards (the handlers' and
//! providers' business).

use crate::error::{ApiError, ApiResult, ErrorClass};
use bytes::Bytes;
use serde_json::{Map, Value};

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct FormFile {
    /// The part's field name as sent (`file`, `image[]`, `mask`, ...).
    pub name: String,
    /// The filename the client gave (may be empty).
    pub filename: String,
    /// The part's own content type, when it has one.
    pub content_type: Option<String>,
    pub data: Bytes,
}

/// A form request: text fields and files.
#[derive(Debug, Default)]
pub struct Form {
    pub fields: Map<String, Value>,
    pub files: Vec<FormFile>,
    /// Bytes of the text fields (token estimates count these, not the files).
    pub text_bytes: usize,
}

/// The boundary of a `multipart/form-data` content type, or `None` for any other type.
pub fn boundary(content_type: &str) -> Option<String> {
    multer::parse_boundary(content_type).ok()
}

/// Reads a whole form body (already bounded by the caller) with the given boundary.
pub async fn parse(body: Bytes, boundary: &str) -> ApiResult<Form> {
    let invalid = |e: multer::Error| {
        ApiError::bad_request(format!("Invalid multipart/form-data body: {e}"))
            .with_param("request_body")
    };
    let input = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut parts = multer::Multipart::new(input, boundary);
    let mut form = Form::default();
    while let Some(part) = parts.next_field().await.map_err(invalid)? {
        let name = part.name().unwrap_or_default().to_string();
        let filename = part.file_name().map(String::from);
        let content_type = part.content_type().map(ToString::to_string);
        let data = part.bytes().await.map_err(invalid)?;
        if let Some(filename) = filename {
            form.files.push(FormFile {
                name,
                filename,
                content_type,
                data,
            });
            continue;
        }
        let text = String::from_utf8(data.to_vec()).map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid multipart/form-data body: field '{name}' is not UTF-8 text"
            ))
            .with_param(name.clone())
        })?;
        form.text_bytes += name.len() + text.len();
        match name.strip_suffix("[]") {
            Some(list) => match form.fields.get_mut(list) {
                Some(Value::Array(items)) => items.push(Value::String(text)),
                _ => {
                    form.fields
                        .insert(list.to_string(), Value::Array(vec![Value::String(text)]));
                }
            },
            None => {
                form.fields.insert(name, Value::String(text));
            }
        }
    }
    Ok(form)
}

/// LiteLLM's own fields sent as form text, read as the JSON they hold when they hold any
/// other JSON than a string (`{"tag": "x"}`, `["a"]`, `3`, `true`); plain text stays text
/// (`mock_response: hello`).
pub fn read_litellm_fields(fields: &mut Map<String, Value>) {
    for name in super::LITELLM_FIELDS {
        let Some(Value::String(text)) = fields.get(*name) else {
            continue;
        };
        match serde_json::from_str::<Value>(text) {
            Ok(Value::String(_)) | Err(_) => {}
            Ok(v) => {
                fields.insert((*name).to_string(), v);
            }
        }
    }
}

/// A form's text field as text: strings as they are, numbers and booleans as JSON writes
/// them, objects as JSON; `None` for null.
pub fn field_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.as_str().into()),
        other => Some(other.to_string().into()),
    }
}

/// The form sent upstream, written part by part into one buffer.
pub struct FormWriter {
    boundary: String,
    buf: Vec<u8>,
}

impl FormWriter {
    /// A form with a fresh random boundary; `capacity`: the size expected (files included).
    pub fn new(capacity: usize) -> Self {
        Self {
            boundary: format!("litellm-rs-{}", uuid::Uuid::new_v4().simple()),
            buf: Vec::with_capacity(capacity + 512),
        }
    }

    fn head(&mut self, name: &str) {
        self.buf.extend_from_slice(b"--");
        self.buf.extend_from_slice(self.boundary.as_bytes());
        self.buf
            .extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"");
        push_quoted(&mut self.buf, name);
        self.buf.push(b'"');
    }

    /// A text field; a list becomes one `name[]` part per item, as the OpenAI SDKs send it.
    pub fn field(&mut self, name: &str, v: &Value) {
        if let Value::Array(items) = v {
            let list = format!("{name}[]");
            for item in items {
                self.field(&list, item);
            }
            return;
        }
        if let Some(text) = field_text(v) {
            self.text(name, &text);
        }
    }

    /// One text part.
    pub fn text(&mut self, name: &str, text: &str) {
        self.head(name);
        self.buf.extend_from_slice(b"\r\n\r\n");
        self.buf.extend_from_slice(text.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// One file part.
    pub fn file(&mut self, name: &str, filename: &str, content_type: &str, data: &[u8]) {
        self.head(name);
        self.buf.extend_from_slice(b"; filename=\"");
        push_quoted(&mut self.buf, filename);
        self.buf.extend_from_slice(b"\"\r\nContent-Type: ");
        self.buf
            .extend_from_slice(content_type.replace(['\r', '\n'], " ").as_bytes());
        self.buf.extend_from_slice(b"\r\n\r\n");
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The finished body and its `content-type` header value.
    pub fn finish(mut self) -> (String, Bytes) {
        self.buf.extend_from_slice(b"--");
        self.buf.extend_from_slice(self.boundary.as_bytes());
        self.buf.extend_from_slice(b"--\r\n");
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            Bytes::from(self.buf),
        )
    }
}

/// A name or filename inside a quoted header parameter: quotes and line breaks
/// percent-encoded, as browsers and the HTML standard write them.
fn push_quoted(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'"' => out.extend_from_slice(b"%22"),
            b'\r' => out.extend_from_slice(b"%0D"),
            b'\n' => out.extend_from_slice(b"%0A"),
            _ => out.push(b),
        }
    }
}

/// A required file that the request lacks (or sent as text, or in a body that is not a form):
/// FastAPI's 422 for a missing required field, naming it.
pub fn missing_file(field: &str) -> ApiError {
    ApiError::new(
        ErrorClass::UnprocessableEntity,
        format!("Field required: '{field}' (a file sent as multipart/form-data)."),
    )
    .with_param(field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn round_trip(w: FormWriter) -> Form {
        let (content_type, body) = w.finish();
        let b = boundary(&content_type).unwrap();
        parse(body, &b).await.unwrap()
    }

    #[tokio::test]
    async fn written_forms_read_back() {
        let mut w = FormWriter::new(64);
        w.text("model", "whisper-1");
        w.field("timestamp_granularities", &json!(["word", "segment"]));
        w.field("temperature", &json!(0.2));
        w.field("skipped", &Value::Null);
        w.file("file", "a \"b\".wav", "audio/wav", b"RIFF\r\n--x\x00\xff");
        let f = round_trip(w).await;
        assert_eq!(
            Value::Object(f.fields.clone()),
            json!({"model": "whisper-1", "timestamp_granularities": ["word", "segment"], "temperature": "0.2"})
        );
        assert_eq!(f.files.len(), 1);
        let file = &f.files[0];
        assert_eq!(file.name, "file");
        assert_eq!(file.filename, "a %22b%22.wav");
        assert_eq!(file.content_type.as_deref(), Some("audio/wav"));
        assert_eq!(&file.data[..], b"RIFF\r\n--x\x00\xff");
        assert_eq!(
            f.text_bytes,
            "model".len() + 9 + 2 * "timestamp_granularities[]".len() + 11 + 14
        );
    }

    #[tokio::test]
    async fn bad_forms_are_400s() {
        let e = parse(Bytes::from_static(b"not a form"), "xyz")
            .await
            .unwrap_err();
        assert_eq!(e.status(), 400);
        let body: &[u8] =
            b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\xff\r\n--b--\r\n";
        let e = parse(Bytes::from_static(body), "b").await.unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(boundary("application/json").is_none());
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn litellm_fields_are_read_as_json() {
        let mut m = json!({
            "metadata": "{\"tags\": [\"a\"]}", "num_retries": "2", "mock_response": "hello",
            "tags": "[\"x\"]", "prompt": "{\"not\": \"litellm\"}", "drop_params": "true"
        })
        .as_object()
        .cloned()
        .unwrap();
        read_litellm_fields(&mut m);
        assert_eq!(
            Value::Object(m),
            json!({"metadata": {"tags": ["a"]}, "num_retries": 2, "mock_response": "hello",
                   "tags": ["x"], "prompt": "{\"not\": \"litellm\"}", "drop_params": true})
        );
    }
}
