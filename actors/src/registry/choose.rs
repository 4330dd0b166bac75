//! Choosing the session a client asked for among the user's sessions (protocol reference §4.1
//! point 5 and §4.3), with xpra ≤ 6.5 semantics: no request means exactly one candidate.

use xgate_messages::SessionTarget;

/// The disconnect reason xpra sends with every [`ChooseError`]:
/// `["disconnect", "session not found error", <error text>]`.
pub const SESSION_NOT_FOUND: &str = "session not found error";

/// Why no session was chosen. `Display` is exactly xpra's extra disconnect text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChooseError {
    /// The user has no sessions at all.
    #[error("no displays found")]
    NoDisplays,
    /// No display was asked for and there are several; holds their names, sorted.
    #[error("please specify a display, more than one is available: {}", .0.join(", "))]
    Ambiguous(Vec<String>),
    /// The display asked for (as the client wrote it) is not among the user's sessions.
    #[error("display {} not found", py_repr(.0))]
    NotFound(String),
}

impl ChooseError {
    /// The disconnect reason to send with this error's text ([`SESSION_NOT_FOUND`]).
    pub fn reason(&self) -> &'static str {
        SESSION_NOT_FOUND
    }
}

/// A string quoted as Python's `repr()` does (xpra formats the missing display with `!r`).
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// The display a client asked for, looking in the order §4.3 recommends: the hello's top-level
/// `display` (when it is a string), then `session.display` (6.5+ clients), then the WebSocket
/// request path (`/100` → `100`; `/` names nothing). Empty strings name nothing.
pub fn requested_display(
    hello_display: Option<&str>,
    session_display: Option<&str>,
    ws_request_path: Option<&str>,
) -> Option<String> {
    fn non_empty(s: Option<&str>) -> Option<&str> {
        s.map(str::trim).filter(|s| !s.is_empty())
    }
    non_empty(hello_display)
        .or_else(|| non_empty(session_display))
        .or_else(|| {
            let path = non_empty(ws_request_path)?;
            let path = path.split(['?', '#']).next().unwrap_or("");
            non_empty(Some(path.trim_matches('/')))
        })
        .map(str::to_owned)
}

/// Picks the session for a client's request (see [`requested_display`]).
///
/// - A request matches a candidate's display exactly; else `N` matches `:N` and `:N` matches `N`;
///   else [`ChooseError::NotFound`] (or [`ChooseError::NoDisplays`] when there are none).
/// - Without a request (or an empty one), exactly one candidate is chosen; none is
///   [`ChooseError::NoDisplays`], several are [`ChooseError::Ambiguous`].
pub fn choose<'a>(
    candidates: &'a [SessionTarget],
    requested: Option<&str>,
) -> Result<&'a SessionTarget, ChooseError> {
    let requested = requested.map(str::trim).filter(|r| !r.is_empty());
    let Some(wanted) = requested else {
        return match candidates {
            [] => Err(ChooseError::NoDisplays),
            [only] => Ok(only),
            many => {
                let mut names: Vec<String> = many.iter().map(|c| c.display.clone()).collect();
                names.sort();
                Err(ChooseError::Ambiguous(names))
            }
        };
    };
    if candidates.is_empty() {
        return Err(ChooseError::NoDisplays);
    }
    let find = |name: &str| candidates.iter().find(|c| c.display == name);
    let alternative = match wanted.strip_prefix(':') {
        Some(bare) => bare.to_owned(),
        None => format!(":{wanted}"),
    };
    find(wanted)
        .or_else(|| find(&alternative))
        .ok_or_else(|| ChooseError::NotFound(wanted.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use xgate_messages::TargetAddress;

    use super::*;

    fn target(display: &str) -> SessionTarget {
        SessionTarget {
            display: display.to_owned(),
            address: TargetAddress::Tcp {
                host: "h".into(),
                port: 1,
            },
            options: BTreeMap::new(),
            env: BTreeMap::new(),
            source: "test".into(),
        }
    }

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(py_repr("100"), "'100'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a'\"b"), "'a\\'\"b'");
        assert_eq!(py_repr("a\nb\\"), "'a\\nb\\\\'");
    }

    #[test]
    fn requested_display_order() {
        assert_eq!(
            requested_display(Some(":1"), Some("2"), Some("/3")).as_deref(),
            Some(":1")
        );
        assert_eq!(
            requested_display(Some(""), Some("2"), Some("/3")).as_deref(),
            Some("2")
        );
        assert_eq!(
            requested_display(None, None, Some("/3")).as_deref(),
            Some("3")
        );
        assert_eq!(
            requested_display(None, None, Some("/3?x=1")).as_deref(),
            Some("3")
        );
        assert_eq!(requested_display(None, None, Some("/")), None);
        assert_eq!(requested_display(None, None, None), None);
    }

    #[test]
    fn empty_request_is_no_request() {
        let c = [target(":100")];
        assert_eq!(
            choose(&c, Some("  ")).map(|t| t.display.as_str()),
            Ok(":100")
        );
    }

    #[test]
    fn request_with_no_candidates() {
        assert_eq!(choose(&[], Some(":1")), Err(ChooseError::NoDisplays));
    }
}
