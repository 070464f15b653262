//! Serving an actix-web app: the only actix-specific part of the example servers' plumbing.

use std::net::SocketAddr;

use actix_web::web::ServiceConfig;
use actix_web::{App, HttpServer};

use crate::server::{shutdown_signal, BoxError};

/// Serves the routes `configure` installs on `addr` (one `App` per worker, each configured
/// the same way, sharing the authenticator and stores), prints the address it listens on, and
/// returns after Ctrl-C (or SIGTERM) once in-flight requests are done, printing `shut down`.
/// Must run inside an actix system (`actix_web::rt::System::new().block_on(...)`).
pub(crate) async fn serve<F>(addr: SocketAddr, configure: F) -> Result<(), BoxError>
where
    F: Fn(&mut ServiceConfig) + Clone + Send + 'static,
{
    let listener = std::net::TcpListener::bind(addr)?;
    let shutdown = shutdown_signal()?;
    println!("listening on http://{}", listener.local_addr()?);
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        // Our own handler stops the server, so that both signals behave as on axum.
        .disable_signals()
        .listen(listener)?
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await?;
    println!("shut down");
    Ok(())
}
