//! The HTTP/1.x request-head parser: bounded (64 KiB, 128 header lines), strict about the
//! request line and header names, no I/O. Fuzzed on its own (`fuzz/fuzz_targets/http_request.rs`
//! includes this file).

/// The largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// The most header lines accepted in one request.
pub const MAX_HEADERS: usize = 128;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, as sent (`GET`, `HEAD`, ...).
    pub method: String,
    /// The request target, as sent (`/index.html?x=1`).
    pub target: String,
    /// Minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Header lines in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target's path, without query or fragment.
    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or("")
    }

    /// Whether the client wants the connection kept open after the response.
    pub fn keep_alive(&self) -> bool {
        let conn = |token: &str| {
            self.header_values("connection")
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        if self.minor == 0 {
            conn("keep-alive")
        } else {
            !conn("close")
        }
    }
}

/// Why a request head is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The head is larger than [`MAX_HEAD`] or has more than [`MAX_HEADERS`] lines.
    #[error("request head too large")]
    TooLarge,
    /// The request line is not `METHOD TARGET HTTP/1.x`.
    #[error("malformed request line")]
    RequestLine,
    /// Not HTTP/1.0 or HTTP/1.1.
    #[error("unsupported HTTP version")]
    Version,
    /// A header line without a valid `name: value`.
    #[error("malformed header line")]
    Header,
    /// The head is not valid UTF-8.
    #[error("request head is not UTF-8")]
    Encoding,
}

impl ParseError {
    /// The status and reason phrase that answer this error.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            ParseError::TooLarge => (431, "Request Header Fields Too Large"),
            ParseError::Version => (505, "HTTP Version Not Supported"),
            _ => (400, "Bad Request"),
        }
    }
}

/// Whether `s` is an HTTP token (method or header name).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses a request head from the start of `data`. `Ok(None)`: incomplete, read more.
/// On success, returns the request and the length of its head (the body or the WebSocket
/// frames follow it).
pub fn parse_request(data: &[u8]) -> Result<Option<(Request, usize)>, ParseError> {
    let window = &data[..data.len().min(MAX_HEAD)];
    let end = match window.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => i + 4,
        None => match window.windows(2).position(|w| w == b"\n\n") {
            Some(i) => i + 2,
            None if data.len() >= MAX_HEAD => return Err(ParseError::TooLarge),
            None => return Ok(None),
        },
    };
    let head = std::str::from_utf8(&data[..end]).map_err(|_| ParseError::Encoding)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().ok_or(ParseError::RequestLine)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::RequestLine);
    };
    if !is_token(method) || target.is_empty() || target.bytes().any(|b| b.is_ascii_control()) {
        return Err(ParseError::RequestLine);
    }
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        v if v.starts_with("HTTP/") => return Err(ParseError::Version),
        _ => return Err(ParseError::RequestLine),
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if headers.len() == MAX_HEADERS {
            return Err(ParseError::TooLarge);
        }
        let (name, value) = line.split_once(':').ok_or(ParseError::Header)?;
        if !is_token(name) {
            return Err(ParseError::Header);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Some((
        Request {
            method: method.to_string(),
            target: target.to_string(),
            minor,
            headers,
        },
        end,
    )))
}
