//! The `bind-metrics` listener: a minimal HTTP/1.1 responder on its own TCP socket that answers
//! `GET /metrics` (and `HEAD`) with [`super::metrics::render_metrics`]'s text, 404 for any other
//! path, 405 for other methods, 400 for what is not HTTP. Requests are bounded (8 KiB of
//! request line and headers, 5 s to send them); every answer closes the connection.
//!
//! The shared port's HTTP layer serves the same text through [`super::metrics::collect`].

use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info, warn};

use super::{metrics, ControlHooks, LOG_TARGET};
use crate::registry::SessionRegistry;

/// Longest request head (request line and headers) read.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
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

/// What a request head asks for.
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
    /// Not an HTTP request.
    BadRequest,
}

/// Routes a request head (the bytes up to the blank line).
pub fn route(head: &[u8]) -> Route {
    let Ok(text) = std::str::from_utf8(head) else {
        return Route::BadRequest;
    };
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics,
        ("HEAD", "/metrics") => Route::MetricsHead,
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }
}

fn response(status: &str, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Reads the request head: up to the blank line, at most [`MAX_REQUEST_HEAD`] bytes.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Result<Vec<u8>, &'static str> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Ok(buf);
        }
        if buf.len() >= MAX_REQUEST_HEAD {
            return Err("431 Request Header Fields Too Large");
        }
        let n = stream.read(&mut chunk).await.map_err(|_| "")?;
        if n == 0 {
            return Err("");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    registry: Addr<SessionRegistry>,
    hooks: Rc<dyn ControlHooks>,
) {
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(h)) => h,
        Ok(Err("")) => return,
        Ok(Err(status)) => {
            let _ = stream
                .write_all(&response(
                    status,
                    "text/plain",
                    "request too large\n",
                    false,
                ))
                .await;
            return;
        }
        Err(_) => {
            let _ = stream
                .write_all(&response(
                    "408 Request Timeout",
                    "text/plain",
                    "timeout\n",
                    false,
                ))
                .await;
            return;
        }
    };
    let answer = match route(&head) {
        Route::Metrics | Route::MetricsHead => {
            let tree = hooks.tree().await;
            let encoder = hooks.encoder().await;
            let text = metrics::collect(&registry, tree, encoder.as_ref()).await;
            response(
                "200 OK",
                metrics::CONTENT_TYPE,
                &text,
                route(&head) == Route::MetricsHead,
            )
        }
        Route::NotFound => response("404 Not Found", "text/plain", "not found\n", false),
        Route::MethodNotAllowed => response(
            "405 Method Not Allowed",
            "text/plain",
            "only GET /metrics\n",
            false,
        ),
        Route::BadRequest => response("400 Bad Request", "text/plain", "bad request\n", false),
    };
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, stream.write_all(&answer)).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x"), Route::Metrics);
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0"), Route::Metrics);
        assert_eq!(route(b"HEAD /metrics HTTP/1.1"), Route::MetricsHead);
        assert_eq!(route(b"GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1"), Route::MethodNotAllowed);
        assert_eq!(route(b"hello"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics SSH-2.0"), Route::BadRequest);
        assert_eq!(route(&[0xff, 0xfe]), Route::BadRequest);
    }
}
