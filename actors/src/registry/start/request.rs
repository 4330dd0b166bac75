//! What a client asks of a new session, parsed and bounded: the hello's `start-new-session`
//! dict or the arguments of SSH's `xpra _proxy_start`. Pure (no I/O), so the fuzz target
//! `start_request` includes this file on its own.

use xgate_protocol::Value;

/// The options a client may set on a session it starts: xpra's own
/// `PROXY_START_OVERRIDABLE_OPTIONS` less what would open listeners (`bind*`), change how the
/// session authenticates (`*auth`, `ssh-upgrade`, `rfb-upgrade`), share memory with another
/// group (`mmap-group`), take over another display (`use-display`) or serve files (`html`).
pub const OVERRIDABLE: &[&str] = &[
    "env",
    "start-env",
    "chdir",
    "dpi",
    "encoding",
    "encodings",
    "quality",
    "min-quality",
    "speed",
    "min-speed",
    "compression_level",
    "video-scaling",
    "title",
    "session-name",
    "clipboard",
    "clipboard-direction",
    "input-method",
    "microphone",
    "speaker",
    "pulseaudio",
    "idle-timeout",
    "server-idle-timeout",
    "fake-xinerama",
    "resize-display",
    "pixel-depth",
    "readonly",
    "keyboard-sync",
    "cursors",
    "bell",
    "notifications",
    "xsettings",
    "system-tray",
    "sharing",
    "lock",
    "windows",
    "webcam",
    "terminate-children",
    "exit-with-children",
    "exit-with-client",
    "av-sync",
    "global-menus",
    "forward-xdg-open",
    "modal-windows",
    "bandwidth-detection",
    "bandwidth-limit",
    "printing",
    "file-transfer",
    "open-command",
    "open-files",
    "open-url",
    "start-new-commands",
    "mmap",
    "start",
    "start-child",
    "start-after-connect",
    "start-child-after-connect",
    "start-on-connect",
    "start-child-on-connect",
    "start-on-last-client-exit",
    "start-child-on-last-client-exit",
];

/// The most options one request may carry, and the longest value: a start request is a few
/// commands, and a hello is not a way to make the gateway build huge command lines.
const MAX_OPTIONS: usize = 64;
const MAX_VALUE: usize = 4096;

/// A start request that cannot be served as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid start request: {0}")]
pub struct RequestError(pub String);

/// The kind of session to start (the `xpra` subcommand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// `xpra start`: a seamless session.
    Start,
    /// `xpra start-desktop`: a desktop session.
    StartDesktop,
    /// `xpra shadow`: shadows an existing display.
    Shadow,
}

impl StartMode {
    /// The mode's name in a hello (`start-new-session.mode`) and the xpra subcommand.
    pub fn name(self) -> &'static str {
        match self {
            StartMode::Start => "start",
            StartMode::StartDesktop => "start-desktop",
            StartMode::Shadow => "shadow",
        }
    }

    /// The mode of a hello's `mode` value: 3.x names the subcommand (`start`, `start-desktop`),
    /// 6.x the kind of session (`seamless`, `desktop`).
    pub fn from_name(name: &str) -> Option<StartMode> {
        match name {
            "start" | "seamless" | "" => Some(StartMode::Start),
            "start-desktop" | "desktop" => Some(StartMode::StartDesktop),
            "shadow" => Some(StartMode::Shadow),
            _ => None,
        }
    }

    /// The mode of an SSH proxy subcommand (`_proxy_start`, `_proxy_start_desktop`,
    /// `_proxy_shadow_start`).
    pub fn from_proxy_subcommand(subcommand: &str) -> Option<StartMode> {
        match subcommand {
            "_proxy_start" => Some(StartMode::Start),
            "_proxy_start_desktop" => Some(StartMode::StartDesktop),
            "_proxy_shadow_start" => Some(StartMode::Shadow),
            _ => None,
        }
    }
}

/// A client's request for a new session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    /// What to start.
    pub mode: StartMode,
    /// The display the client asked for, if any.
    pub display: Option<u32>,
    /// Allowed options, in order, each becoming `--NAME=VALUE`.
    pub options: Vec<(String, String)>,
    /// Options that were not allowed (logged, as xpra warns about them).
    pub ignored: Vec<String>,
}

/// A display number as a client writes it (`:100`, `100`); empty names none.
fn parse_display(text: &str) -> Result<Option<u32>, RequestError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let n = t.strip_prefix(':').unwrap_or(t);
    n.parse::<u32>()
        .ok()
        .filter(|_| n.bytes().all(|b| b.is_ascii_digit()))
        .map(Some)
        .ok_or_else(|| RequestError(format!("display {t:?} is not :N")))
}

/// One option value checked: it becomes an argv item, so no NUL, and it is bounded.
fn checked(name: &str, value: String) -> Result<String, RequestError> {
    if value.len() > MAX_VALUE || value.contains('\0') {
        return Err(RequestError(format!(
            "value of {name} is too long or not text"
        )));
    }
    Ok(value)
}

/// The values of a hello option: a string, a number, a boolean, or a list of those.
fn hello_values(name: &str, v: &Value) -> Result<Vec<String>, RequestError> {
    let one = |v: &Value| -> Result<String, RequestError> {
        match v {
            Value::Bool(b) => Ok(if *b { "yes" } else { "no" }.to_owned()),
            Value::Int(i) => Ok(i.to_string()),
            _ => v
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| RequestError(format!("{name}: not a string"))),
        }
    };
    match v.as_list() {
        Some(items) => items.iter().map(|i| checked(name, one(i)?)).collect(),
        None => Ok(vec![checked(name, one(v)?)?]),
    }
}

impl StartRequest {
    /// A plain `xpra start` on `display` (or the first free display), with no options: what
    /// a client with no sessions gets when the gateway starts one for it unasked.
    pub fn for_display(display: Option<u32>) -> Self {
        StartRequest::new(StartMode::Start, display)
    }

    fn new(mode: StartMode, display: Option<u32>) -> Self {
        StartRequest {
            mode,
            display,
            options: Vec::new(),
            ignored: Vec::new(),
        }
    }

    /// Adds `--name=value` items if `name` is allowed; remembers it as ignored otherwise.
    fn add(&mut self, name: &str, values: Vec<String>) -> Result<(), RequestError> {
        if !OVERRIDABLE.contains(&name) {
            self.ignored.push(name.to_owned());
            return Ok(());
        }
        for v in values {
            if self.options.len() >= MAX_OPTIONS {
                return Err(RequestError(format!("more than {MAX_OPTIONS} options")));
            }
            self.options.push((name.to_owned(), v));
        }
        Ok(())
    }

    /// The request in a hello's `start-new-session` dict: `mode`, `display` and options named
    /// as on xpra's command line (`start`, `start-child`: lists of commands).
    pub fn from_hello(sns: &Value) -> Result<StartRequest, RequestError> {
        let Some(pairs) = sns.as_dict() else {
            return Err(RequestError(format!(
                "start-new-session is a {}, not a dict",
                sns.kind()
            )));
        };
        let text = |key: &str| sns.get(key).and_then(Value::as_str).unwrap_or("");
        let mode = StartMode::from_name(text("mode"))
            .ok_or_else(|| RequestError(format!("unknown mode {:?}", text("mode"))))?;
        let mut req = StartRequest::new(mode, parse_display(text("display"))?);
        for (k, v) in pairs {
            let Some(name) = k.as_str() else {
                return Err(RequestError("an option name is not text".into()));
            };
            if name == "mode" || name == "display" {
                continue;
            }
            let values = hello_values(name, v)?;
            req.add(name, values)?;
        }
        Ok(req)
    }

    /// The request of an SSH `xpra _proxy_start [DISPLAY] [--name=value ...]` command line
    /// (arguments already unquoted).
    pub fn from_proxy_args(mode: StartMode, args: &[String]) -> Result<StartRequest, RequestError> {
        let mut req = StartRequest::new(mode, None);
        for arg in args {
            match arg.strip_prefix("--") {
                Some(option) => {
                    let (name, value) = option.split_once('=').unwrap_or((option, "yes"));
                    let value = checked(name, value.to_owned())?;
                    req.add(name, vec![value])?;
                }
                None if req.display.is_none() => req.display = parse_display(arg)?,
                None => return Err(RequestError(format!("unexpected argument {arg:?}"))),
            }
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    #[test]
    fn a_hello_request_keeps_allowed_options_in_order() {
        let sns = Value::Dict(vec![
            (s("mode"), s("start-desktop")),
            (s("display"), s(":123")),
            (s("start"), Value::List(vec![s("xterm"), s("xclock")])),
            (s("bind-tcp"), s("0.0.0.0:1")),
            (s("exit-with-children"), Value::Bool(true)),
            (s("dpi"), Value::Int(96)),
        ]);
        let req = StartRequest::from_hello(&sns).expect("valid");
        assert_eq!(req.mode, StartMode::StartDesktop);
        let six = Value::Dict(vec![(s("mode"), s("seamless")), (s("display"), s("7"))]);
        let six = StartRequest::from_hello(&six).expect("a 6.x request");
        assert_eq!((six.mode, six.display), (StartMode::Start, Some(7)));
        assert_eq!(req.display, Some(123));
        assert_eq!(
            req.options,
            vec![
                ("start".to_owned(), "xterm".to_owned()),
                ("start".to_owned(), "xclock".to_owned()),
                ("exit-with-children".to_owned(), "yes".to_owned()),
                ("dpi".to_owned(), "96".to_owned()),
            ]
        );
        assert_eq!(req.ignored, vec!["bind-tcp".to_owned()]);
    }

    #[test]
    fn bad_hello_requests_are_refused() {
        let bad = |v: Value| StartRequest::from_hello(&v).unwrap_err().to_string();
        assert!(bad(s("start")).contains("not a dict"));
        assert!(bad(Value::Dict(vec![(s("mode"), s("upgrade"))])).contains("unknown mode"));
        assert!(bad(Value::Dict(vec![(s("display"), s(":x"))])).contains("is not :N"));
        assert!(bad(Value::Dict(vec![(s("start"), s("a\0b"))])).contains("not text"));
        assert!(bad(Value::Dict(vec![(
            s("start"),
            s(&"x".repeat(MAX_VALUE + 1))
        )]))
        .contains("too long"));
        let many = Value::Dict(vec![(
            s("start"),
            Value::List((0..=MAX_OPTIONS).map(|i| s(&i.to_string())).collect()),
        )]);
        assert!(bad(many).contains("more than"));
        assert!(bad(Value::Dict(vec![(s("start"), Value::Dict(vec![]))])).contains("not a string"));
    }

    #[test]
    fn ssh_proxy_start_arguments() {
        let args: Vec<String> = [
            ":102",
            "--env=SSH_AGENT_UUID=x",
            "--resize-display=1280x1024",
            "--packet-encoders=rencodeplus",
            "--start=xterm",
        ]
        .map(str::to_owned)
        .to_vec();
        let req = StartRequest::from_proxy_args(StartMode::Start, &args).expect("valid");
        assert_eq!(req.display, Some(102));
        assert_eq!(
            req.options,
            vec![
                ("env".to_owned(), "SSH_AGENT_UUID=x".to_owned()),
                ("resize-display".to_owned(), "1280x1024".to_owned()),
                ("start".to_owned(), "xterm".to_owned()),
            ]
        );
        assert_eq!(req.ignored, vec!["packet-encoders".to_owned()]);
        let none = StartRequest::from_proxy_args(StartMode::Shadow, &[]).expect("valid");
        assert_eq!((none.mode, none.display), (StartMode::Shadow, None));
        assert!(
            StartRequest::from_proxy_args(StartMode::Start, &[":1".into(), ":2".into()]).is_err()
        );
        assert_eq!(
            StartMode::from_proxy_subcommand("_proxy_start_desktop"),
            Some(StartMode::StartDesktop)
        );
        assert_eq!(StartMode::from_proxy_subcommand("_proxy_run"), None);
    }
}
