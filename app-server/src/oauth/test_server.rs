//! Small HTTP servers on 127.0.0.1:0 for the OAuth tests: one closure answers every request,
//! and every request is recorded so tests can count and inspect them.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use url::Url;

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The form body as (name, value) pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

pub struct TestServer {
    pub base: Url,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl TestServer {
    /// `base` joined with `path`.
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Paths requested, in order.
    pub fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }

    pub fn count(&self, path: &str) -> usize {
        self.paths().iter().filter(|p| *p == path).count()
    }
}

/// Starts a server whose responses come from `handler(request, base_url)`.
pub async fn serve<F>(handler: F) -> TestServer
where
    F: Fn(&Recorded, &Url) -> Response + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    serve_async(move |req, base| {
        let response = handler(&req, &base);
        async move { response }
    })
    .await
}

/// [`serve`] with a handler that may wait (to hold responses back).
pub async fn serve_async<F, Fut>(handler: F) -> TestServer
where
    F: Fn(Recorded, Url) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let app = Router::new().fallback({
        let requests = requests.clone();
        let base = base.clone();
        move |request: Request| {
            let requests = requests.clone();
            let base = base.clone();
            let handler = handler.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 4 * 1024 * 1024)
                    .await
                    .unwrap_or_default()
                    .to_vec();
                let recorded = Recorded {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    headers: parts.headers,
                    body,
                };
                requests.lock().unwrap().push(recorded.clone());
                handler(recorded, base).await
            }
        }
    });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    TestServer { base, requests }
}

pub fn json(status: u16, value: serde_json::Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

pub fn status(status: u16) -> Response {
    StatusCode::from_u16(status).unwrap().into_response()
}

pub fn with_headers(status: u16, headers: &[(&str, &str)], body: impl Into<Body>) -> Response {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.into()).unwrap()
}
