//! Binding, serving and graceful shutdown.
//!
//! On SIGTERM/SIGINT the listener stops accepting, in-flight requests and streams get up to
//! the configured deadline to finish, and then the process exits.

pub mod routes;

use crate::state::AppState;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

/// Resolves when the process is asked to stop.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Serves `state` on `listener` until `shutdown` resolves; then stops accepting and gives
/// in-flight requests and streams at most `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    // The peer's address is recorded on each request only when `allowed_ips` needs it.
    let peer_addresses = state.ip_gate.is_some();
    let front = routes::front(state);
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    // TCP_NODELAY on accepted sockets: small SSE frames must not wait for Nagle.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let stopping = async move {
        shutdown.await;
        tracing::info!(
            "shutdown requested: not accepting new connections, draining in-flight requests"
        );
        let _ = tx.send(true);
    };
    let server = async move {
        use axum::ServiceExt;
        type Req = axum::extract::Request;
        if peer_addresses {
            let app = ServiceExt::<Req>::into_make_service_with_connect_info::<SocketAddr>(front);
            axum::serve(listener, app)
                .with_graceful_shutdown(stopping)
                .await
        } else {
            let app = ServiceExt::<Req>::into_make_service(front);
            axum::serve(listener, app)
                .with_graceful_shutdown(stopping)
                .await
        }
    };
    let deadline = async move {
        if rx.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = server => r,
        _ = deadline => {
            tracing::warn!(grace_secs = grace.as_secs_f64(), "drain deadline reached; closing remaining connections");
            Ok(())
        }
    }
}
