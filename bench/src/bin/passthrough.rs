//! The physical cost of one extra hop: a proxy that forwards bytes without parsing them.
//!
//! Every request is sent as is (method, path, headers, body stream) to `--upstream`, over a
//! pooled keep-alive client; the response streams back frame by frame. TCP_NODELAY both ways.
//! It is the baseline the gateway is measured against. Usage:
//! `passthrough --port P --upstream 127.0.0.1:U`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Body = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

use bench::arg;

async fn forward(
    client: Client<HttpConnector, Incoming>,
    upstream: String,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    match format!("http://{upstream}{pq}").parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return Ok(bad_gateway()),
    }
    req.headers_mut().remove("host");
    match client.request(req).await {
        Ok(resp) => Ok(resp.map(|b| b.boxed())),
        Err(_) => Ok(bad_gateway()),
    }
}

fn bad_gateway() -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(b"bad gateway"))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
    r
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(9200);
    let upstream = arg("--upstream").unwrap_or_else(|| "127.0.0.1:9100".into());
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build(connector);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let client = client.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| forward(client.clone(), upstream.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
