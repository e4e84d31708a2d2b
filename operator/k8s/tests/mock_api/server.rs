//! The test plays the API server: every request the code under test makes is taken from a
//! `tower_test` mock, asserted (method, path, query, JSON body) and answered. A watch is
//! answered with a long-lived streaming body fed through a channel.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use kube::Client;
use kube::client::Body;
use serde_json::Value;
use tokio::sync::mpsc;

/// Response body: either one chunk or a stream of chunks (a watch).
pub enum TestBody {
    Full(Option<Bytes>),
    Stream(mpsc::UnboundedReceiver<Bytes>),
}

impl http_body::Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<TestBody>>;
type Send = tower_test::mock::SendResponse<Response<TestBody>>;

/// The mocked API server.
pub struct ApiServer {
    handle: Handle,
}

/// One request taken from the client, waiting for its answer.
pub struct Exchange {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: Value,
    send: Send,
}

impl Exchange {
    /// Answers with `status` and a JSON body.
    pub fn json(self, status: u16, body: &Value) {
        let resp = Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", "application/json")
            .body(TestBody::Full(Some(Bytes::from(
                serde_json::to_vec(body).unwrap(),
            ))))
            .unwrap();
        self.send.send_response(resp);
    }

    /// Answers 200 with the request's own body (what an API server echoes on create/patch).
    pub fn echo(self) {
        let body = self.body.clone();
        self.json(200, &body);
    }

    /// Answers with a streaming body; events are sent through the returned [`Watch`].
    pub fn stream(self) -> Watch {
        let (tx, rx) = mpsc::unbounded_channel();
        let resp = Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(TestBody::Stream(rx))
            .unwrap();
        self.send.send_response(resp);
        Watch { tx }
    }

    /// Asserts the query string has every `k=v` of `params` (url-encoded as sent).
    pub fn assert_query(&self, params: &[&str]) {
        for p in params {
            assert!(
                self.query.split('&').any(|q| q == *p),
                "{} {}: query {:?} lacks {p:?}",
                self.method,
                self.path,
                self.query
            );
        }
    }
}

/// The sending side of a streaming watch response.
pub struct Watch {
    tx: mpsc::UnboundedSender<Bytes>,
}

impl Watch {
    /// Sends one watch event line (`{"type": .., "object": ..}`).
    pub fn event(&self, type_: &str, object: &Value) {
        let line = serde_json::json!({ "type": type_, "object": object });
        let mut bytes = serde_json::to_vec(&line).unwrap();
        bytes.push(b'\n');
        let _ = self.tx.send(Bytes::from(bytes));
    }
}

impl ApiServer {
    /// A client and the server it talks to.
    pub fn new() -> (Client, Self) {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<TestBody>>();
        (Client::new(svc, "default"), Self { handle })
    }

    /// Takes the next request and checks its method and path.
    pub async fn expect(&mut self, method: Method, path: &str) -> Exchange {
        let (req, send) = tokio::time::timeout(Duration::from_secs(5), self.handle.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request came; expected {method} {path}"))
            .expect("client dropped");
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        let ex = Exchange {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            body,
            send,
        };
        assert_eq!(
            (&ex.method, ex.path.as_str()),
            (&method, path),
            "unexpected request {} {}?{} body {}",
            ex.method,
            ex.path,
            ex.query,
            ex.body
        );
        ex
    }

    /// Asserts that no further request arrives for a while.
    pub async fn expect_silence(&mut self) {
        if let Ok(Some((req, _))) =
            tokio::time::timeout(Duration::from_millis(200), self.handle.next_request()).await
        {
            panic!("unexpected extra request {} {}", req.method(), req.uri());
        }
    }
}

/// Asserts an SSA status patch of `path` and returns its `status`.
pub async fn expect_status_apply(server: &mut ApiServer, path: &str) -> (Exchange, Value) {
    let ex = server.expect(Method::PATCH, path).await;
    ex.assert_query(&["fieldManager=alkaid-operator", "force=true"]);
    let status = ex.body["status"].clone();
    assert!(
        !status.is_null(),
        "status patch without status: {}",
        ex.body
    );
    (ex, status)
}

/// Asserts an event creation and returns `(type, reason, note)`.
pub async fn expect_event(server: &mut ApiServer) -> (String, String, String) {
    let ex = server
        .expect(
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/default/events",
        )
        .await;
    let b = &ex.body;
    let out = (
        b["type"].as_str().unwrap_or_default().to_owned(),
        b["reason"].as_str().unwrap_or_default().to_owned(),
        b["note"].as_str().unwrap_or_default().to_owned(),
    );
    assert_eq!(b["reportingController"], "alkaid-operator");
    ex.echo();
    out
}
