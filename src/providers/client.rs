//! The pooled HTTP clients for upstream calls on the request path.
//!
//! A hyper client with rustls (HTTP/1.1 and HTTP/2, keep-alive pool, TCP_NODELAY) instead of
//! reqwest: on the hot path it avoids URL re-parsing (IDNA), redirect and decompression layers,
//! which measured as a large share of the gateway's per-request CPU. Auxiliary calls (health
//! probes, token endpoints) may still use reqwest.
//!
//! Plain-HTTP upstreams (self-hosted models, local servers) called with a deployment's own
//! base URL use the deployment's [`Http1Pool`] instead: a stack of keep-alive connections that
//! needs no per-call key hashing or checkout machinery. A connection goes back on the stack
//! when its response body has been read to the end; one dropped earlier is closed. Idle
//! connections are closed by a sweeper task once past the idle timeout, so a burst's
//! connections (and their buffers) do not outlive it when no further call comes.

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
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;
/// An upstream response body as a stream of chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes, BoxError>>;

#[derive(Clone)]
pub struct UpstreamClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Requests whose body streams from the caller (pass-through routes); its own pool.
    streaming: Client<HttpsConnector<HttpConnector>, axum::body::Body>,
    connect_timeout: Duration,
    pool_idle: Duration,
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
            .build(https.clone());
        let streaming = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(pool_idle)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(https);
        Ok(Self {
            inner,
            streaming,
            connect_timeout,
            pool_idle,
        })
    }

    /// Sends a POST; resolves when the response head arrives.
    pub fn post(
        &self,
        up: UpstreamRequest,
    ) -> impl Future<Output = Result<hyper::Response<Body>, BoxError>> + Send + '_ {
        self.send(hyper::Method::POST, up)
    }

    /// Sends a request with any method (the Responses API's `GET` and `DELETE` on a stored
    /// response); resolves when the response head arrives.
    ///
    /// The request is built before the returned future starts, so the future holds only the
    /// built request (see [`Http1Pool::send`]).
    pub fn send(
        &self,
        method: hyper::Method,
        up: UpstreamRequest,
    ) -> impl Future<Output = Result<hyper::Response<Body>, BoxError>> + Send + '_ {
        let pool = up.pool;
        let mut req = hyper::Request::new(Full::new(up.body));
        *req.method_mut() = method;
        *req.uri_mut() = up.url;
        let headers = req.headers_mut();
        // Room for what hyper adds while writing the request (`content-length`, and `host`
        // where the request has none), or the map grows and rehashes on every call.
        headers.reserve(up.headers.len() + 2);
        for (k, v) in up.headers {
            headers.append(k, v);
        }
        async move {
            match pool {
                Some(pool) => pool.send(req, self).await,
                None => Ok(self.inner.request(req).await?.map(Body::plain)),
            }
        }
    }
}

impl UpstreamClient {
    /// Sends a request whose body is streamed as it is read (pass-through); resolves when the
    /// response head arrives.
    pub async fn send_streaming(
        &self,
        req: hyper::Request<axum::body::Body>,
    ) -> Result<hyper::Response<Incoming>, BoxError> {
        Ok(self.streaming.request(req).await?)
    }
}

/// Keep-alive HTTP/1.1 connections to one plain-HTTP upstream (see the module header).
#[derive(Debug)]
pub struct Http1Pool {
    /// `host:port` to connect to.
    addr: String,
    idle: std::sync::Mutex<Vec<(Sender, Instant)>>,
    /// Whether the sweeper task runs (started by the first connection put back).
    sweeping: AtomicBool,
}

/// Connections idle beyond this many are closed instead of kept.
const MAX_IDLE: usize = 512;
/// Sends tried on connections found closed before a fresh one is opened.
const STALE_TRIES: usize = 3;
/// How often the sweeper looks for connections past the idle timeout (more often when the
/// timeout itself is shorter).
const SWEEP_EVERY: Duration = Duration::from_secs(5);

impl Http1Pool {
    /// A pool for `url`, or `None` unless it is plain HTTP with a host.
    pub fn for_url(url: &hyper::Uri) -> Option<Arc<Self>> {
        if url.scheme_str() != Some("http") {
            return None;
        }
        let host = url.host()?;
        let port = url.port_u16().unwrap_or(80);
        Some(Arc::new(Self {
            addr: format!("{host}:{port}"),
            idle: std::sync::Mutex::new(Vec::new()),
            sweeping: AtomicBool::new(false),
        }))
    }

    /// Sends `req` on an idle connection, or a new one; resolves when the response head
    /// arrives.
    ///
    /// A plain function returning an `async` block: an `async fn` keeps each argument twice in
    /// its state (as passed and as its local), and every future above this one holds it.
    fn send(
        self: Arc<Self>,
        mut req: hyper::Request<Full<Bytes>>,
        client: &UpstreamClient,
    ) -> impl Future<Output = Result<hyper::Response<Body>, BoxError>> + Send + '_ {
        // HTTP/1 to an origin server takes the path alone (the Host header names the server).
        if let Some(pq) = req.uri().path_and_query().cloned() {
            *req.uri_mut() = hyper::Uri::from(pq);
        }
        // Idle connections first; one found closed when the request is handed to it gives the
        // request back, so the next is tried, and after a few a fresh one, once.
        async move {
            for tries in 0..=STALE_TRIES {
                let reused = if tries < STALE_TRIES {
                    self.checkout(client.pool_idle).await
                } else {
                    None
                };
                let mut sender = match reused {
                    Some(s) => s,
                    None => self.connect(client.connect_timeout).await?,
                };
                match sender.try_send_request(req).await {
                    Ok(resp) => {
                        let back = (sender, self.clone(), client.pool_idle);
                        return Ok(resp.map(|inner| Body {
                            inner,
                            back: Some(back),
                        }));
                    }
                    Err(mut e) => match e.take_message() {
                        Some(r) if tries < STALE_TRIES => req = r,
                        _ => return Err(e.into_error().into()),
                    },
                }
            }
            Err(format!("no usable connection to {}", self.addr).into())
        }
    }

    /// The most recently used idle connection that is still open, if any.
    async fn checkout(&self, max_idle: Duration) -> Option<Sender> {
        loop {
            let (mut sender, since) = self.idle.lock().ok()?.pop()?;
            if sender.is_closed() || since.elapsed() > max_idle {
                continue;
            }
            if sender.is_ready() {
                return Some(sender);
            }
            // Its last body was read, so the connection is finishing that exchange.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self, timeout: Duration) -> Result<Sender, BoxError> {
        let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&self.addr))
            .await
            .map_err(|_| format!("connect to {} timed out", self.addr))??;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn put(self: &Arc<Self>, sender: Sender, max_idle: Duration) {
        if sender.is_closed() {
            return;
        }
        {
            let Ok(mut idle) = self.idle.lock() else {
                return;
            };
            // The oldest are at the front: drop those past the idle timeout.
            let expired = idle
                .iter()
                .take_while(|(_, since)| since.elapsed() > max_idle)
                .count();
            idle.drain(..expired);
            if idle.len() < MAX_IDLE {
                idle.push((sender, Instant::now()));
            }
        }
        if !self.sweeping.load(Ordering::Relaxed) && !self.sweeping.swap(true, Ordering::Relaxed) {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(sweep_while_alive(Arc::downgrade(self), max_idle));
                }
                // A body read outside a runtime: the next put from inside one starts it.
                Err(_) => self.sweeping.store(false, Ordering::Relaxed),
            }
        }
    }

    /// Closes the idle connections past `max_idle` and forgets those the upstream closed.
    fn sweep(&self, max_idle: Duration) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.retain(|(sender, since)| !sender.is_closed() && since.elapsed() <= max_idle);
        }
    }

    /// Idle connections now held (for tests).
    pub fn idle_len(&self) -> usize {
        self.idle.lock().map_or(0, |v| v.len())
    }
}

/// Sweeps `pool` every [`SWEEP_EVERY`] (or `max_idle`, if shorter) until the pool is dropped
/// (a config reload replaces the deployments, and their pools with them). Dropping an idle
/// connection's sender ends its connection task, which closes the socket.
async fn sweep_while_alive(pool: std::sync::Weak<Http1Pool>, max_idle: Duration) {
    let every = SWEEP_EVERY.min(max_idle).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        pool.sweep(max_idle);
    }
}

/// An upstream response body; a pooled connection goes back to its pool once the body has
/// been read to the end.
pub struct Body {
    inner: Incoming,
    /// The connection, its pool and the pool's idle timeout.
    back: Option<(Sender, Arc<Http1Pool>, Duration)>,
}

impl Body {
    fn plain(inner: Incoming) -> Self {
        Self { inner, back: None }
    }

    fn release(&mut self) {
        if let Some((sender, pool, max_idle)) = self.back.take() {
            pool.put(sender, max_idle);
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(None) => self.release(),
            std::task::Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            std::task::Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The body of a response as a chunk stream.
pub fn body_stream(body: Body) -> ByteStream {
    BodyDataStream::new(body)
        .map(|r| r.map_err(BoxError::from))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A keep-alive HTTP/1 server answering `hello` (or a 64 KiB body for `/big`); counts the
    /// connections it accepted. With `close_after_one`, each connection ends after one exchange.
    async fn server(close_after_one: bool) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let svc = hyper::service::service_fn(|req: hyper::Request<Incoming>| async move {
                    let body = if req.uri().path() == "/big" {
                        Bytes::from(vec![b'x'; 64 * 1024])
                    } else {
                        Bytes::from_static(b"hello")
                    };
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(body)))
                });
                tokio::spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(!close_after_one)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
                    let _ = conn.await;
                });
            }
        });
        (format!("http://{addr}"), accepted)
    }

    fn request(base: &str, path: &str, pool: &Arc<Http1Pool>) -> UpstreamRequest {
        let url: hyper::Uri = format!("{base}{path}").parse().unwrap();
        let host = url.authority().unwrap().as_str().to_string();
        UpstreamRequest {
            url,
            headers: vec![(
                hyper::header::HOST,
                hyper::header::HeaderValue::from_str(&host).unwrap(),
            )],
            body: Bytes::from_static(b"{}"),
            pool: Some(pool.clone()),
        }
    }

    fn client() -> UpstreamClient {
        UpstreamClient::new(Duration::from_secs(2), Duration::from_secs(30)).unwrap()
    }

    #[tokio::test]
    async fn pooled_connections_are_reused_once_their_body_is_read() {
        let (base, accepted) = server(false).await;
        let pool = Http1Pool::for_url(&base.parse().unwrap()).unwrap();
        let c = client();
        for _ in 0..5 {
            let r = c.post(request(&base, "/v1/x", &pool)).await.unwrap();
            let body = r.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle_len(), 1);

        // Two calls in flight at once need two connections; both come back.
        let (a, b) = tokio::join!(
            c.post(request(&base, "/big", &pool)),
            c.post(request(&base, "/big", &pool))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(
            a.into_body().collect().await.unwrap().to_bytes().len(),
            64 * 1024
        );
        assert_eq!(
            b.into_body().collect().await.unwrap().to_bytes().len(),
            64 * 1024
        );
        assert_eq!(pool.idle_len(), 2);

        // A body dropped before its end takes its connection with it.
        let r = c.post(request(&base, "/big", &pool)).await.unwrap();
        drop(r);
        assert_eq!(pool.idle_len(), 1);
        let r = c.post(request(&base, "/v1/x", &pool)).await.unwrap();
        assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "hello");
        assert_eq!(pool.idle_len(), 1);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn connections_the_upstream_closed_are_replaced() {
        let (base, accepted) = server(true).await;
        let pool = Http1Pool::for_url(&base.parse().unwrap()).unwrap();
        let c = client();
        for i in 1..=4 {
            let r = c.post(request(&base, "/v1/x", &pool)).await.unwrap();
            assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "hello");
            // Give the closed connection's task a moment to notice.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(accepted.load(Ordering::SeqCst), i);
        }
    }

    #[tokio::test]
    async fn idle_connections_are_closed_after_the_idle_timeout_without_further_calls() {
        let (base, accepted) = server(false).await;
        let pool = Http1Pool::for_url(&base.parse().unwrap()).unwrap();
        let c = UpstreamClient::new(Duration::from_secs(2), Duration::from_millis(150)).unwrap();
        let (a, b) = tokio::join!(
            c.post(request(&base, "/v1/x", &pool)),
            c.post(request(&base, "/v1/x", &pool))
        );
        for r in [a.unwrap(), b.unwrap()] {
            assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "hello");
        }
        assert_eq!(pool.idle_len(), 2);
        // No call comes; the sweeper closes both once they are idle past the timeout.
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.idle_len() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(pool.idle_len(), 0);
        // The next call opens a new connection.
        let r = c.post(request(&base, "/v1/x", &pool)).await.unwrap();
        assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "hello");
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn only_plain_http_gets_a_pool() {
        assert!(Http1Pool::for_url(&"https://api.openai.com/v1".parse().unwrap()).is_none());
        let p = Http1Pool::for_url(&"http://[::1]:8000/v1".parse().unwrap()).unwrap();
        assert_eq!(p.addr, "[::1]:8000");
        let p = Http1Pool::for_url(&"http://vllm.internal/v1".parse().unwrap()).unwrap();
        assert_eq!(p.addr, "vllm.internal:80");
    }
}
