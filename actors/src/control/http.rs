//! The `bind-metrics` listener: a minimal HTTP/1.1 responder on its own TCP socket that answers
//! `GET /metrics` (and `HEAD`) with [`super::metrics::render_metrics`]'s text, 404 for any other
//! path, 405 for other methods, 400 for what is not HTTP. Requests are read by the gateway's own
//! bounded parser ([`crate::upgrade::http`]: 431 over 64 KiB of head, 408 after 5 s); every answer
//! closes the connection.
//!
//! The shared port's HTTP layer serves the same text through [`super::metrics::collect`].

use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::BytesMut;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};

use super::{metrics, ControlHooks, LOG_TARGET};
use crate::registry::SessionRegistry;
use crate::upgrade::http::{closing_response, read_request, ParseError, ReadError, Request};

/// How long a client has to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Clients served at once; more wait in the listen backlog.
const MAX_CLIENTS: usize = 64;

/// The metrics listener actor.
pub struct MetricsHttp {
    /// The bound socket, shared with every incarnation.
    socket: Arc<std::net::TcpListener>,
    /// Where the counters come from.
    registry: Addr<SessionRegistry>,
    /// Where the tree (restart counts) comes from.
    hooks: Rc<dyn ControlHooks>,
}

impl MetricsHttp {
    /// A metrics listener on a bound socket.
    pub fn new(
        socket: Arc<std::net::TcpListener>,
        registry: Addr<SessionRegistry>,
        hooks: Rc<dyn ControlHooks>,
    ) -> Self {
        MetricsHttp {
            socket,
            registry,
            hooks,
        }
    }
}

impl Actor for MetricsHttp {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let socket = Arc::clone(&self.socket);
        let registry = self.registry.clone();
        let hooks = Rc::clone(&self.hooks);
        if let Ok(a) = socket.local_addr() {
            info!(target: LOG_TARGET, "metrics on http://{a}/metrics");
        }
        ctx.spawn(
            async move { accept_loop(socket, registry, hooks).await }
                .into_actor(self)
                .map(|result, _act, ctx| {
                    if let Err(e) = result {
                        warn!(target: LOG_TARGET, "metrics listener failed: {e}");
                    }
                    ctx.stop();
                }),
        );
    }
}

async fn accept_loop(
    socket: Arc<std::net::TcpListener>,
    registry: Addr<SessionRegistry>,
    hooks: Rc<dyn ControlHooks>,
) -> io::Result<()> {
    let std = socket.try_clone()?;
    std.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std)?;
    let mut clients = FuturesUnordered::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if clients.len() < MAX_CLIENTS => match accepted {
                Ok((stream, peer)) => {
                    debug!(target: LOG_TARGET, %peer, "metrics request");
                    clients.push(serve(stream, registry.clone(), Rc::clone(&hooks)));
                }
                Err(e) => {
                    warn!(target: LOG_TARGET, "metrics accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            Some(()) = clients.next(), if !clients.is_empty() => {}
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`.
    Metrics,
    /// `HEAD /metrics`.
    MetricsHead,
    /// Another path.
    NotFound,
    /// Another method.
    MethodNotAllowed,
}

/// Routes a parsed request (the head was checked by the gateway's own HTTP parser).
pub fn route(req: &Request) -> Route {
    match (req.method.as_str(), req.path()) {
        ("GET", "/metrics") => Route::Metrics,
        ("HEAD", "/metrics") => Route::MetricsHead,
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }
}

/// A plain-text answer that must not be cached (the figures change with every request).
fn text_response(status: (u16, &str), content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let no_store = [("Cache-Control".to_owned(), "no-store".to_owned())];
    closing_response(status, content_type, body, &no_store, head_only)
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    registry: Addr<SessionRegistry>,
    hooks: Rc<dyn ControlHooks>,
) {
    let mut buf = BytesMut::with_capacity(1024);
    let answer = match read_request(&mut stream, &mut buf, REQUEST_TIMEOUT).await {
        Ok(Some(req)) => match route(&req) {
            r @ (Route::Metrics | Route::MetricsHead) => {
                let tree = hooks.tree().await;
                let encoder = hooks.encoder().await;
                let text = metrics::collect(&registry, tree, encoder.as_ref()).await;
                text_response(
                    (200, "OK"),
                    metrics::CONTENT_TYPE,
                    &text,
                    r == Route::MetricsHead,
                )
            }
            Route::NotFound => {
                text_response((404, "Not Found"), "text/plain", "not found\n", false)
            }
            Route::MethodNotAllowed => text_response(
                (405, "Method Not Allowed"),
                "text/plain",
                "only GET /metrics\n",
                false,
            ),
        },
        // Closed (or failed) before a request: nothing to answer.
        Ok(None) | Err(ReadError::Io(_)) => return,
        Err(ReadError::Timeout) => {
            text_response((408, "Request Timeout"), "text/plain", "timeout\n", false)
        }
        Err(ReadError::Parse(ParseError::TooLarge)) => text_response(
            (431, "Request Header Fields Too Large"),
            "text/plain",
            "request too large\n",
            false,
        ),
        Err(ReadError::Parse(e)) => {
            debug!(target: LOG_TARGET, "bad metrics request: {e}");
            text_response((400, "Bad Request"), "text/plain", "bad request\n", false)
        }
    };
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, stream.write_all(&answer)).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::http::parse_request;

    fn route_of(head: &[u8]) -> Route {
        let (req, _) = parse_request(head)
            .expect("a valid head")
            .expect("a complete head");
        route(&req)
    }

    #[test]
    fn routes() {
        assert_eq!(
            route_of(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(
            route_of(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(
            route_of(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::MetricsHead
        );
        assert_eq!(route_of(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route_of(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
    }

    #[test]
    fn answers_keep_their_length_and_are_not_cached() {
        let full = text_response((200, "OK"), "text/plain", "abc\n", false);
        let head = text_response((200, "OK"), "text/plain", "abc\n", true);
        let full = String::from_utf8(full).expect("ascii");
        let head = String::from_utf8(head).expect("ascii");
        assert!(full.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(full.contains("Content-Length: 4\r\n") && head.contains("Content-Length: 4\r\n"));
        assert!(full.contains("Cache-Control: no-store\r\n"));
        assert!(full.ends_with("\r\n\r\nabc\n") && head.ends_with("\r\n\r\n"));
    }
}
