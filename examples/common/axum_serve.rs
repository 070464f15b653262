//! Serving an axum app: the only axum-specific part of the example servers' plumbing.

use std::net::SocketAddr;

use axum::Router;

use crate::server::{shutdown_signal, BoxError};

/// Serves `app` on `addr`, prints the address it listens on, and returns after Ctrl-C
/// (or SIGTERM) once in-flight requests are done, printing `shut down`.
pub(crate) async fn serve(addr: SocketAddr, app: Router) -> Result<(), BoxError> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let shutdown = shutdown_signal()?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    println!("shut down");
    Ok(())
}
