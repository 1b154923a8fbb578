//! The one pooled HTTP client for upstream calls on the request path.
//!
//! A hyper client with rustls (HTTP/1.1 and HTTP/2, keep-alive pool, TCP_NODELAY) instead of
//! reqwest: on the hot path it avoids URL re-parsing (IDNA), redirect and decompression layers,
//! which measured as a large share of the gateway's per-request CPU. Auxiliary calls (health
//! probes, token endpoints) may still use reqwest.

use super::openai::UpstreamRequest;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use http_body_util::{BodyDataStream, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// An upstream response body as a stream of chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes, BoxError>>;

#[derive(Clone)]
pub struct UpstreamClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl UpstreamClient {
    pub fn new(connect_timeout: Duration, pool_idle: Duration) -> Result<Self, String> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        // The timer lets the pool close connections once idle for `pool_idle`; without one they
        // were only dropped when next checked out, so a burst's connections (and their
        // buffers) stayed open for good.
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(pool_idle)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(https);
        Ok(Self { inner })
    }

    /// Sends a POST; resolves when the response head arrives.
    pub async fn post(&self, up: UpstreamRequest) -> Result<hyper::Response<Incoming>, BoxError> {
        let mut req = hyper::Request::new(Full::new(up.body));
        *req.method_mut() = hyper::Method::POST;
        *req.uri_mut() = up.url;
        let headers = req.headers_mut();
        headers.reserve(up.headers.len());
        for (k, v) in up.headers {
            headers.append(k, v);
        }
        Ok(self.inner.request(req).await?)
    }
}

/// The body of a response as a chunk stream.
pub fn body_stream(body: Incoming) -> ByteStream {
    BodyDataStream::new(body)
        .map(|r| r.map_err(BoxError::from))
        .boxed()
}
