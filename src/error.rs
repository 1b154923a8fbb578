//! The one error type of the gateway and its OpenAI-shaped rendering.
//!
//! Every failure a client can see — bad input, auth, upstream errors, timeouts — is an
//! [`ApiError`], rendered as `{"error":{"message","type","param","code"}}` where `code` is the
//! HTTP status as a string (LiteLLM's envelope). Constructors never log; the access log at the
//! edge records the status once. Nothing in here knows about providers' wire formats: adapters
//! map their errors into an [`ErrorClass`] and a message.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// LiteLLM's exception classes, which fix the HTTP status and the `type` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    BadRequest,
    ContextWindowExceeded,
    ContentPolicyViolation,
    UnsupportedParams,
    /// Upstream provider rejected the credentials.
    Authentication,
    /// The gateway itself rejected the caller's key (LiteLLM uses `auth_error` here).
    ProxyAuth,
    PermissionDenied,
    NotFound,
    Timeout,
    PayloadTooLarge,
    UnprocessableEntity,
    RateLimit,
    BudgetExceeded,
    Internal,
    BadGateway,
    ServiceUnavailable,
    /// Connection to the upstream failed (LiteLLM's APIConnectionError, a 500).
    ApiConnection,
}

impl ErrorClass {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest
            | Self::ContextWindowExceeded
            | Self::ContentPolicyViolation
            | Self::UnsupportedParams
            | Self::BudgetExceeded => StatusCode::BAD_REQUEST,
            Self::Authentication | Self::ProxyAuth => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnprocessableEntity => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimit => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal | Self::ApiConnection => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `type` field of the error envelope.
    pub fn type_str(self) -> &'static str {
        match self {
            Self::BadRequest
            | Self::ContextWindowExceeded
            | Self::ContentPolicyViolation
            | Self::UnsupportedParams
            | Self::PayloadTooLarge => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::ProxyAuth => "auth_error",
            Self::PermissionDenied => "permission_denied_error",
            Self::NotFound => "not_found_error",
            Self::Timeout => "timeout_error",
            Self::UnprocessableEntity => "unprocessable_entity_error",
            Self::RateLimit => "throttling_error",
            Self::BudgetExceeded => "budget_exceeded",
            Self::Internal | Self::ApiConnection => "internal_server_error",
            Self::BadGateway => "bad_gateway_error",
            Self::ServiceUnavailable => "service_unavailable_error",
        }
    }

    /// LiteLLM's exception class name, used as the message prefix for provider errors
    /// (`litellm.RateLimitError: RateLimitError: OpenAIException - ...`).
    pub fn litellm_name(self) -> &'static str {
        match self {
            Self::BadRequest => "BadRequestError",
            Self::ContextWindowExceeded => "ContextWindowExceededError",
            Self::ContentPolicyViolation => "ContentPolicyViolationError",
            Self::UnsupportedParams => "UnsupportedParamsError",
            Self::Authentication | Self::ProxyAuth => "AuthenticationError",
            Self::PermissionDenied => "PermissionDeniedError",
            Self::NotFound => "NotFoundError",
            Self::Timeout => "Timeout",
            Self::PayloadTooLarge => "BadRequestError",
            Self::UnprocessableEntity => "UnprocessableEntityError",
            Self::RateLimit => "RateLimitError",
            Self::BudgetExceeded => "BudgetExceededError",
            Self::Internal => "InternalServerError",
            Self::BadGateway => "BadGatewayError",
            Self::ServiceUnavailable => "ServiceUnavailableError",
            Self::ApiConnection => "APIConnectionError",
        }
    }

    /// Maps an upstream HTTP status to LiteLLM's exception class.
    pub fn from_upstream_status(status: u16) -> Self {
        match status {
            400 | 413 => Self::BadRequest,
            401 => Self::Authentication,
            403 => Self::PermissionDenied,
            404 => Self::NotFound,
            408 => Self::Timeout,
            422 => Self::UnprocessableEntity,
            429 => Self::RateLimit,
            502 => Self::BadGateway,
            503 | 529 => Self::ServiceUnavailable,
            s if (400..500).contains(&s) => Self::BadRequest,
            _ => Self::Internal,
        }
    }

    /// Whether a retry (same or another deployment) could plausibly succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimit
                | Self::Timeout
                | Self::Internal
                | Self::BadGateway
                | Self::ServiceUnavailable
                | Self::ApiConnection
        )
    }
}

/// A client-visible failure.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub class: ErrorClass,
    pub message: String,
    /// `param` of the envelope; `None` renders as JSON null.
    pub param: Option<String>,
    /// Seconds for a `retry-after` header (rate limits, upstream hints).
    pub retry_after: Option<u64>,
    /// Overrides the status derived from the class (e.g. an upstream 422 kept verbatim).
    pub status_override: Option<StatusCode>,
    /// Extra response headers (e.g. `rate_limit_type`, `reset_at` on a 429).
    pub headers: Vec<(&'static str, String)>,
    /// Overrides the `type` derived from the class (e.g. `expired_key`).
    pub type_override: Option<&'static str>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            param: None,
            retry_after: None,
            status_override: None,
            headers: Vec::new(),
            type_override: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::BadRequest, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Internal, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::NotFound, message)
    }

    /// The gateway rejected the caller's credentials (`param: "None"` as LiteLLM sends it).
    pub fn proxy_auth(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::ProxyAuth, message).with_param("None")
    }

    pub fn status(&self) -> StatusCode {
        self.status_override.unwrap_or_else(|| self.class.status())
    }

    /// The JSON envelope, as sent in a response body or a final SSE `data:` event.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.type_override.unwrap_or_else(|| self.class.type_str()),
                "param": self.param,
                "code": self.status().as_u16().to_string(),
            }
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status())
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = self.to_json().to_string();
        let mut resp = (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        for (k, v) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                resp.headers_mut().insert(*k, v);
            }
        }
        resp.extensions_mut().insert(ErrorMarker(self.class));
        resp
    }
}

/// Response extension telling outer layers (access log, spend) that this response is an error
/// and of which class.
#[derive(Debug, Clone, Copy)]
pub struct ErrorMarker(pub ErrorClass);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_string_code_and_null_param() {
        let e = ApiError::bad_request("nope");
        let v = e.to_json();
        assert_eq!(v["error"]["code"], "400");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["param"].is_null());
    }

    #[test]
    fn upstream_status_mapping() {
        assert_eq!(ErrorClass::from_upstream_status(429), ErrorClass::RateLimit);
        assert_eq!(ErrorClass::from_upstream_status(401).status(), 401);
        assert_eq!(ErrorClass::from_upstream_status(503).status(), 503);
        assert_eq!(
            ErrorClass::from_upstream_status(418),
            ErrorClass::BadRequest
        );
        assert_eq!(ErrorClass::from_upstream_status(599), ErrorClass::Internal);
    }
}
