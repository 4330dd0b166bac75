//! HTTP/1.1 on the gateway's ports: a bounded request-head parser (fuzzed on its own,
//! `fuzz/fuzz_targets/http_request.rs`) and the static files of xpra's HTML5 client.
//!
//! Only what xpra's builtin server does is served (reference §5.3): `GET` and `HEAD` of files
//! under the `www` directory, with content types by extension and the extra headers of
//! `http-headers`. Everything else gets a short, clear answer: 400 for a malformed request or
//! a port without web files, 404 for a missing file, 405 for another method, 431 for a request
//! head over 64 KiB. A WebSocket upgrade is recognised here and handed to [`super::ws`].

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

pub use super::request::*;

/// Why no request could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The head was refused.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The client closed, failed or was too slow.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Nothing complete arrived in time.
    #[error("request head timed out")]
    Timeout,
}

/// Reads one request head into `buf` (which may already hold bytes), waiting at most `timeout`.
/// Returns `Ok(None)` when the client closed cleanly before a new request. The head is removed
/// from `buf`; what follows it stays there.
pub async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<Option<Request>, ReadError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some((req, len)) = parse_request(buf)? {
            let _ = buf.split_to(len);
            return Ok(Some(req));
        }
        buf.reserve(8192);
        let n = match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Err(_) => return Err(ReadError::Timeout),
            Ok(r) => r?,
        };
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
}

/// A complete short response with a plain-text body.
pub fn simple_response(
    status: u16,
    reason: &str,
    body: &str,
    extra: &[(String, String)],
) -> Vec<u8> {
    closing_response(
        (status, reason),
        "text/plain; charset=utf-8",
        body,
        extra,
        false,
    )
}

/// A complete response after which the connection closes: `status` is the code and its reason
/// phrase, `extra` further headers; `head_only` (a `HEAD` request) leaves the body out but keeps
/// its length.
pub fn closing_response(
    (status, reason): (u16, &str),
    content_type: &str,
    body: &str,
    extra: &[(String, String)],
    head_only: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(body);
    }
    out.into_bytes()
}

/// The content type of a file, by extension.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "application/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "wasm" => "application/wasm",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// Maps a request path to a file under `root`: percent-decoded, `/` and directories to their
/// `index.html`, and refused (`None`) when it would leave `root` (`..`, NUL, backslashes).
/// Symbolic links inside `root` are followed: the directory is the operator's (Debian's links
/// jquery from /usr/share/javascript).
pub fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path)?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return None;
    }
    let mut out = root.to_path_buf();
    for comp in Path::new(decoded.trim_start_matches('/')).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads `http-headers`: a file of `Name: value` lines, or a directory of such files (xpra's
/// `/etc/xpra/http-headers/`). `#` starts a comment.
pub fn load_headers(path: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    if path.is_dir() {
        for e in std::fs::read_dir(path)? {
            let p = e?.path();
            if p.is_file() {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut out = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(&f)?.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((k, v)) if is_token(k.trim()) && !v.contains(['\r', '\n']) => {
                    out.push((k.trim().to_string(), v.trim().to_string()))
                }
                _ => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: not a `Name: value` line: {line:?}", f.display()),
                    ))
                }
            }
        }
    }
    Ok(out)
}

/// The web files a port serves.
#[derive(Debug, Clone, Default)]
pub struct StaticFiles {
    /// The `www` directory; `None`: this gateway serves no web files.
    pub root: Option<PathBuf>,
    /// Extra response headers from `http-headers`.
    pub headers: Vec<(String, String)>,
}

impl StaticFiles {
    /// Answers a request that is not a WebSocket upgrade. Returns whether the connection may
    /// carry another request.
    pub async fn serve<S: AsyncWrite + Unpin>(
        &self,
        req: &Request,
        stream: &mut S,
    ) -> std::io::Result<bool> {
        let Some(root) = &self.root else {
            stream
                .write_all(&simple_response(
                    400,
                    "Bad Request",
                    "this port does not support HTTP requests\n",
                    &self.headers,
                ))
                .await?;
            return Ok(false);
        };
        let head_only = match req.method.as_str() {
            "GET" => false,
            "HEAD" => true,
            _ => {
                let mut extra = self.headers.clone();
                extra.push(("Allow".into(), "GET, HEAD".into()));
                stream
                    .write_all(&simple_response(
                        405,
                        "Method Not Allowed",
                        "only GET and HEAD are served\n",
                        &extra,
                    ))
                    .await?;
                return Ok(false);
            }
        };
        let Some(file) = resolve(root, req.path()) else {
            debug!(target: "xgate::http", path = req.path(), "refused path");
            stream
                .write_all(&simple_response(
                    400,
                    "Bad Request",
                    "invalid path\n",
                    &self.headers,
                ))
                .await?;
            return Ok(false);
        };
        let data = match tokio::fs::File::open(&file).await {
            Ok(f) => f,
            Err(_) => {
                debug!(target: "xgate::http", path = req.path(), "not found");
                stream
                    .write_all(&simple_response(
                        404,
                        "Not Found",
                        "not found\n",
                        &self.headers,
                    ))
                    .await?;
                return Ok(false);
            }
        };
        let len = data.metadata().await?.len();
        let keep = req.keep_alive();
        let mut head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\n\
             Cache-Control: no-cache\r\nConnection: {}\r\n",
            content_type(&file),
            if keep { "keep-alive" } else { "close" }
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        if !head_only {
            let mut body = data.take(len);
            tokio::io::copy(&mut body, stream).await?;
        }
        stream.flush().await?;
        debug!(target: "xgate::http", method = %req.method, path = req.path(), len, "served");
        Ok(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_head() {
        let raw = b"GET /index.html?x=1 HTTP/1.1\r\nHost: a:1\r\nUpgrade: websocket\r\n\r\nrest";
        let (req, len) = parse_request(raw).unwrap().unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.path(), "/index.html");
        assert_eq!(req.header("HOST"), Some("a:1"));
        assert_eq!(&raw[len..], b"rest");
        assert!(req.keep_alive());
    }

    #[test]
    fn refuses_bad_heads() {
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost"), Ok(None));
        assert_eq!(
            parse_request(b"GET /  HTTP/1.1\r\n\r\n"),
            Err(ParseError::RequestLine)
        );
        assert_eq!(
            parse_request(b"GET / HTTP/2.0\r\n\r\n"),
            Err(ParseError::Version)
        );
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nbad header\r\n\r\n"),
            Err(ParseError::Header)
        );
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        while big.len() < 100_000 {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(parse_request(&big), Err(ParseError::TooLarge));
        assert_eq!(ParseError::TooLarge.status().0, 431);
    }

    #[test]
    fn resolves_paths_inside_root_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "x").unwrap();
        std::fs::create_dir(dir.path().join("js")).unwrap();
        assert_eq!(
            resolve(dir.path(), "/"),
            Some(dir.path().join("index.html"))
        );
        assert_eq!(
            resolve(dir.path(), "/js/Client%2Ejs"),
            Some(dir.path().join("js/Client.js"))
        );
        assert_eq!(resolve(dir.path(), "/../etc/passwd"), None);
        assert_eq!(resolve(dir.path(), "/js/%2e%2e/%2e%2e/x"), None);
        assert_eq!(resolve(dir.path(), "/a%00b"), None);
        assert_eq!(
            content_type(Path::new("a/b.JS")),
            "application/javascript; charset=utf-8"
        );
    }

    #[tokio::test]
    async fn serves_get_head_404_and_extra_headers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<html></html>").unwrap();
        let files = StaticFiles {
            root: Some(dir.path().to_path_buf()),
            headers: vec![("X-Test".into(), "1".into())],
        };
        let req = |m: &str, p: &str| Request {
            method: m.into(),
            target: p.into(),
            minor: 1,
            headers: vec![],
        };
        let mut out = Vec::new();
        assert!(files.serve(&req("GET", "/"), &mut out).await.unwrap());
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"), "{s}");
        assert!(s.contains("Content-Type: text/html"));
        assert!(s.contains("X-Test: 1\r\n"));
        assert!(s.ends_with("<html></html>"));
        let mut out = Vec::new();
        files
            .serve(&req("HEAD", "/index.html"), &mut out)
            .await
            .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("Content-Length: 13\r\n") && s.ends_with("\r\n\r\n"),
            "{s}"
        );
        let mut out = Vec::new();
        files
            .serve(&req("GET", "/nope.js"), &mut out)
            .await
            .unwrap();
        assert!(out.starts_with(b"HTTP/1.1 404"));
        let mut out = Vec::new();
        files.serve(&req("POST", "/"), &mut out).await.unwrap();
        assert!(out.starts_with(b"HTTP/1.1 405"));
    }
}
