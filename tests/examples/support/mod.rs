//! What the example binary tests share: a real HTTP client that talks to the servers on
//! loopback, and the replies it reads.

/// A client that never goes through a proxy: the servers listen on 127.0.0.1.
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
    /// Read by the twin comparisons only, which need both frameworks.
    #[cfg(all(feature = "axum", feature = "actix-web"))]
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
    #[cfg(all(feature = "axum", feature = "actix-web"))]
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `request` and reads the whole reply.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    #[cfg(all(feature = "axum", feature = "actix-web"))]
    let headers = response.headers().clone();
    let body = response.text().await.expect("a readable body");
    Reply {
        status,
        body,
        #[cfg(all(feature = "axum", feature = "actix-web"))]
        headers,
    }
}
