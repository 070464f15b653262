//! Serve an app on a loopback port (axum in the test's runtime, or actix-web with several
//! workers on its own threads) and send requests to it with a real HTTP client.

use std::net::{IpAddr, Ipv4Addr};

/// The web framework a test runs an example app on: each test body takes one, and
/// [`for_each_framework!`] runs it on every framework enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framework {
    /// axum, served in the test's own runtime.
    #[cfg(feature = "axum")]
    Axum,
    /// actix-web, with two workers, each on its own thread and runtime.
    #[cfg(feature = "actix-web")]
    Actix,
}

/// Generates, for each `async fn name(framework: Framework)` test body listed, a test
/// `axum::name` and a test `actix::name` (each when its feature is on) running that body on
/// that framework. An optional leading `flavor = "..."` picks the tokio test flavor
/// (`multi_thread` gets two worker threads).
macro_rules! for_each_framework {
    (flavor = "multi_thread"; $($name:ident),* $(,)?) => {
        for_each_framework!(@mods (flavor = "multi_thread", worker_threads = 2); $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        for_each_framework!(@mods (); $($name),*);
    };
    (@mods $args:tt; $($name:ident),*) => {
        #[cfg(feature = "axum")]
        mod axum {
            $(
                #[tokio::test $args]
                async fn $name() {
                    super::$name(crate::support::server::Framework::Axum).await;
                }
            )*
        }
        #[cfg(feature = "actix-web")]
        mod actix {
            $(
                #[tokio::test $args]
                async fn $name() {
                    super::$name(crate::support::server::Framework::Actix).await;
                }
            )*
        }
    };
}
pub(crate) use for_each_framework;

/// How a [`Server`] is stopped when dropped.
enum Running {
    #[cfg(feature = "axum")]
    Axum(tokio::task::JoinHandle<()>),
    #[cfg(feature = "actix-web")]
    Actix(actix_web::dev::ServerHandle),
}

/// A server running on 127.0.0.1 and a client that talks to it.
pub(crate) struct Server {
    base: String,
    client: reqwest::Client,
    running: Running,
}

impl Server {
    /// Serves the axum `app` on a free loopback port, in the test's runtime.
    #[cfg(feature = "axum")]
    pub(crate) async fn start(app: axum::Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        Self::start_on(listener, app)
    }

    /// Serves the axum `app` on `listener` (bound by the caller, who needed its port first).
    #[cfg(feature = "axum")]
    pub(crate) fn start_on(listener: tokio::net::TcpListener, app: axum::Router) -> Self {
        let addr = listener.local_addr().expect("bound address");
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .expect("server runs until the test ends");
        });
        Self {
            base: format!("http://{addr}"),
            client: client(),
            running: Running::Axum(task),
        }
    }

    /// Serves the actix-web routes `configure` installs on a free loopback port, with two
    /// workers (each its own thread and single-threaded runtime, each with its own `App`
    /// configured by a clone of `configure`), as a production actix server runs. The server
    /// runs in an actix system on a thread of its own and stops when the `Server` is dropped.
    #[cfg(feature = "actix-web")]
    pub(crate) fn start_actix<F>(configure: F) -> Self
    where
        F: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    actix_web::App::new().configure(configure.clone())
                })
                .workers(2)
                .disable_signals()
                .listen(listener)
                .expect("listen on the bound port")
                .run();
                handle_tx
                    .send(server.handle())
                    .expect("the test waits for the handle");
                server.await.expect("server runs until the test ends");
            });
        });
        let handle = handle_rx.recv().expect("the actix server starts");
        Self {
            base: format!("http://{addr}"),
            client: client(),
            running: Running::Actix(handle),
        }
    }

    /// The URL of `path_and_query` on this server.
    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// A request builder for `method` and `path_and_query`.
    pub(crate) fn request(&self, method: &str, path_and_query: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("valid method");
        self.client.request(method, self.url(path_and_query))
    }

    /// Sends a JSON body (given as text, byte for byte) with `Content-Type: application/json`.
    pub(crate) async fn json(&self, method: &str, path: &str, body: &str) -> Reply {
        send(
            self.request(method, path)
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    /// Sends a request without a body.
    pub(crate) async fn call(&self, method: &str, path: &str) -> Reply {
        send(self.request(method, path)).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match &self.running {
            #[cfg(feature = "axum")]
            Running::Axum(task) => task.abort(),
            #[cfg(feature = "actix-web")]
            Running::Actix(handle) => {
                // Sends the stop command now; the server's thread ends on its own.
                drop(handle.stop(false));
            }
        }
    }
}

/// The `n`th distinct client address on loopback: 127.0.0.2, 127.0.0.3, ... Linux routes
/// all of 127.0.0.0/8 to the loopback interface, so a client bound to one of them is a
/// distinct client IP to the server.
pub(crate) fn client_ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 2)) + n))
}

/// A client whose connections come from `source` (see [`client_ip`]).
pub(crate) fn client_from(source: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(source)
        .build()
        .expect("HTTP client builds")
}

impl Server {
    /// Sends a JSON body from the client address `source`.
    pub(crate) async fn json_from(
        &self,
        source: IpAddr,
        method: &str,
        path: &str,
        body: &str,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("valid method");
        send(
            client_from(source)
                .request(method, self.url(path))
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }
}

/// A client that never goes through a proxy: tests only talk to 127.0.0.1.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client builds")
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// Status and body, for exact comparisons.
    pub(crate) fn pair(&self) -> (u16, &str) {
        (self.status, self.body.as_str())
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }

    /// A header's value as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `request` and reads the whole reply.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("a readable body");
    Reply {
        status,
        body,
        headers,
    }
}

/// Asserts that `reply` is JSON in a protocol's error shape: one key, `key`, whose value is a
/// non-empty message, with the given status.
pub(crate) fn assert_error_shape(reply: &Reply, status: u16, key: &str) {
    assert_eq!(reply.status, status, "status of {reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    let object = body.as_object().expect("a JSON object");
    assert_eq!(object.len(), 1, "only `{key}` in {body}");
    let message = object[key].as_str().expect("a string message");
    assert!(!message.is_empty());
}

/// A well-formed token that no server issued: a random session id and secret.
pub(crate) fn forged_token() -> String {
    keycard::Token::generate()
        .expect("OS randomness")
        .expose_secret()
        .to_owned()
}

/// `token` with the first character of its secret changed: the right session id, a wrong
/// secret.
pub(crate) fn tampered(token: &str) -> String {
    let (id, secret) = token.split_once('.').expect("an `<id>.<secret>` token");
    let first = if secret.starts_with('A') { 'B' } else { 'A' };
    format!("{id}.{first}{}", &secret[1..])
}
