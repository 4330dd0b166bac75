//! What an `exec` request on the builtin SSH server asks for.
//!
//! Real xpra clients send a few probes (`which xpra`, `echo %OS%`, `command -v xpra`, ...) and
//! then one proxy command, in several forms (reference `xpra-ssh.md` §2 and §7):
//! - `xpra "_proxy" ":100"` (3.1.3, paramiko), `"/usr/bin/xpra" "_proxy" "101" "--env=..."`
//!   (6.5.5, paramiko);
//! - a `sh -c '...'` stanza that tries several candidate programs (both versions with OpenSSH),
//!   with or without `xpra initenv;` in front.
//!
//! Nothing is ever run: probes get canned answers, the proxy command names the display the
//! channel is relayed to, and everything else is refused.

/// The stdout of `which xpra`, `command -v xpra` and `type xpra`: 6.5.5 paramiko runs the first
/// line of `command -v xpra` verbatim as the program of its proxy command.
const XPRA_PATH: &str = "xpra\n";

/// What an exec request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecRequest {
    /// A probe answered without running anything: this stdout, then this exit status.
    Probe {
        /// What the probe prints.
        stdout: &'static str,
        /// Its exit status.
        status: u32,
    },
    /// `xpra _proxy [DISPLAY]`: relay the channel to a session.
    Proxy {
        /// The display named on the command line (`:100`, `101`), if any.
        display: Option<String>,
    },
    /// Another proxy subcommand, `xpra _proxy_start [DISPLAY] [--OPTION=VALUE ...]` and the
    /// like: the session starter (`registry::start`) knows which ones start a session and which
    /// options a client may set; the rest are refused.
    Subcommand {
        /// The subcommand.
        subcommand: String,
        /// Its arguments, unquoted, in order.
        args: Vec<String>,
    },
    /// Anything else: refused like a command that does not exist.
    Unknown,
}

/// Classifies an exec request's command line.
pub fn parse(command: &str) -> ExecRequest {
    let command = command.trim();
    if let Some(probe) = probe(command) {
        return probe;
    }
    let Some(words) = split(command) else {
        return ExecRequest::Unknown;
    };
    // `sh -c 'STANZA'`: the stanza is the command (one level of quoting removed by the split).
    let stanza;
    let words = match words.as_slice() {
        [Token::Word(sh), Token::Word(c), Token::Word(body)]
            if (sh == "sh" || sh.ends_with("/sh")) && c == "-c" =>
        {
            stanza = body.clone();
            match split(&stanza) {
                Some(w) => w,
                None => return ExecRequest::Unknown,
            }
        }
        _ => words,
    };
    // The first `;`-separated segment that holds a proxy subcommand (xpra initenv and the
    // `if ... then` tests before it carry none).
    for segment in words.split(|t| *t == Token::Separator) {
        let words: Vec<&str> = segment
            .iter()
            .filter_map(|t| match t {
                Token::Word(w) => Some(w.as_str()),
                Token::Separator => None,
            })
            .collect();
        let Some(at) = words
            .iter()
            .position(|w| *w == "_proxy" || w.starts_with("_proxy_"))
        else {
            continue;
        };
        if at == 0 || !is_xpra_program(words[at - 1]) {
            return ExecRequest::Unknown;
        }
        let subcommand = words[at];
        if subcommand != "_proxy" {
            return ExecRequest::Subcommand {
                subcommand: subcommand.to_owned(),
                args: words[at + 1..].iter().map(|a| a.to_string()).collect(),
            };
        }
        let display = words[at + 1..]
            .iter()
            .find(|w| !w.starts_with("--"))
            .map(|w| w.to_string());
        return ExecRequest::Proxy { display };
    }
    ExecRequest::Unknown
}

/// The canned probes, matched on the exact command line.
fn probe(command: &str) -> Option<ExecRequest> {
    let answer = |stdout, status| Some(ExecRequest::Probe { stdout, status });
    match command {
        // 6.5.5 paramiko: `%OS%` echoed back means "not Windows".
        "echo %OS%" => answer("%OS%\n", 0),
        "echo $OSTYPE" => answer("linux-gnu\n", 0),
        // Success selects `command -v` over `which`.
        "command" => answer("", 0),
        "which xpra" | "command -v xpra" | "type xpra" => answer(XPRA_PATH, 0),
        // The other candidates fail, which keeps the final command in its plain `xpra` form.
        _ if ["which ", "command -v ", "type "]
            .iter()
            .any(|p| command.starts_with(p)) =>
        {
            answer("", 1)
        }
        _ => None,
    }
}

/// Whether a program word names xpra: `xpra`, `/usr/bin/xpra`, `$XDG_RUNTIME_DIR/xpra/run-xpra`,
/// `~/.xpra/run-xpra`, `Xpra_cmd.exe`, or a `--remote-xpra` path ending in one of those.
fn is_xpra_program(word: &str) -> bool {
    let base = word.rsplit('/').next().unwrap_or(word);
    matches!(base, "xpra" | "run-xpra" | "Xpra_cmd.exe" | "xpra_cmd.exe")
}

/// A shell token: a word with its quotes removed, or a `;`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// One word.
    Word(String),
    /// `;` outside quotes.
    Separator,
}

/// Splits a command line the way a POSIX shell would: blanks separate words, `'...'` quotes
/// literally, `"..."` quotes with `\` escaping `"`, `\`, `$` and `` ` ``, `\` outside quotes
/// escapes the next character, and `;` outside quotes ends a command. Variables are left as
/// they are. `None` when a quote is not closed.
fn split(line: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => word.push(c),
                            '\n' => {}
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(c) => word.push(c),
                }
            }
            ';' | ' ' | '\t' | '\n' => {
                if in_word {
                    tokens.push(Token::Word(std::mem::take(&mut word)));
                    in_word = false;
                }
                if c == ';' {
                    tokens.push(Token::Separator);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        tokens.push(Token::Word(word));
    }
    Some(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(display: Option<&str>) -> ExecRequest {
        ExecRequest::Proxy {
            display: display.map(str::to_string),
        }
    }

    /// §7's probe table, verbatim.
    #[test]
    fn probes_get_the_recorded_answers() {
        let probe = |stdout, status| ExecRequest::Probe { stdout, status };
        assert_eq!(parse("which $XDG_RUNTIME_DIR/xpra/run-xpra"), probe("", 1));
        assert_eq!(parse("which xpra"), probe("xpra\n", 0));
        assert_eq!(parse("which /usr/local/bin/xpra"), probe("", 1));
        assert_eq!(parse("which ~/.xpra/run-xpra"), probe("", 1));
        assert_eq!(parse("which Xpra_cmd.exe"), probe("", 1));
        assert_eq!(parse("echo %OS%"), probe("%OS%\n", 0));
        assert_eq!(parse("echo $OSTYPE"), probe("linux-gnu\n", 0));
        assert_eq!(parse("command"), probe("", 0));
        assert_eq!(parse("command -v xpra"), probe("xpra\n", 0));
        assert_eq!(parse("command -v /opt/xpra/bin/xpra"), probe("", 1));
    }

    /// §2.1 and §2.3: the paramiko backends' final commands.
    #[test]
    fn paramiko_proxy_commands() {
        assert_eq!(parse(r#"xpra "_proxy" ":100""#), proxy(Some(":100")));
        assert_eq!(parse(r#"xpra "_proxy""#), proxy(None));
        assert_eq!(
            parse(r#"$XDG_RUNTIME_DIR/xpra/run-xpra "_proxy" ":100""#),
            proxy(Some(":100"))
        );
        assert_eq!(
            parse(r#""/usr/bin/xpra" "_proxy" "101""#),
            proxy(Some("101"))
        );
        assert_eq!(parse(r#""xpra" "_proxy" "101""#), proxy(Some("101")));
        let uuid = "ab".repeat(32);
        assert_eq!(
            parse(&format!(
                r#""/usr/bin/xpra" "_proxy" "101" "--env=SSH_AGENT_UUID={uuid}""#
            )),
            proxy(Some("101"))
        );
        assert_eq!(
            parse(r#"xpra "_proxy" "--socket-dir=/run/xpra" ":100""#),
            proxy(Some(":100"))
        );
    }

    /// §2.2: 3.1.3 with OpenSSH, with and without a display.
    #[test]
    fn xpra_3_openssh_stanza() {
        let with = r#"sh -c 'xpra initenv;if [ -x $XDG_RUNTIME_DIR/xpra/run-xpra ]; then $XDG_RUNTIME_DIR/xpra/run-xpra _proxy ":100";elif which "xpra" > /dev/null 2>&1; then xpra _proxy ":100";elif [ -x /usr/local/bin/xpra ]; then /usr/local/bin/xpra _proxy ":100";elif [ -x ~/.xpra/run-xpra ]; then ~/.xpra/run-xpra _proxy ":100";else echo "no run-xpra command found"; exit 1; fi'"#;
        assert_eq!(parse(with), proxy(Some(":100")));
        let without = with.replace(r#" _proxy ":100""#, " _proxy");
        assert_eq!(parse(&without), proxy(None));
    }

    /// §2.4: 6.5.5 with OpenSSH, the default candidates and `--remote-xpra`.
    #[test]
    fn xpra_6_openssh_stanza() {
        let with = r#"sh -c 'if command -v "xpra" > /dev/null 2>&1; then xpra _proxy "101";elif [ -x $XDG_RUNTIME_DIR/xpra/run-xpra ]; then $XDG_RUNTIME_DIR/xpra/run-xpra _proxy "101";elif [ -x /usr/local/bin/xpra ]; then /usr/local/bin/xpra _proxy "101";elif [ -x Xpra_cmd.exe ]; then Xpra_cmd.exe _proxy "101";else echo "no xpra command found"; exit 1; fi'"#;
        assert_eq!(parse(with), proxy(Some("101")));
        let without = with.replace(r#" _proxy "101""#, " _proxy");
        assert_eq!(parse(&without), proxy(None));
        let remote = r#"sh -c 'if [ -x /opt/x/bin/xpra ]; then /opt/x/bin/xpra _proxy "101";else echo "no xpra command found"; exit 1; fi'"#;
        assert_eq!(parse(remote), proxy(Some("101")));
    }

    /// §2.5: commands that would start a session are refused, in every form.
    #[test]
    fn start_commands_are_handed_on_with_their_arguments() {
        let start = |sub: &str, args: &[&str]| ExecRequest::Subcommand {
            subcommand: sub.to_owned(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        assert_eq!(
            parse(r#"xpra "_proxy_start" ":102" "--start=xterm""#),
            start("_proxy_start", &[":102", "--start=xterm"])
        );
        assert_eq!(
            parse(
                r#""/usr/bin/xpra" "_proxy_start" ":102" "--env=SSH_AGENT_UUID=x" "--resize-display=1280x1024" "--packet-encoders=rencodeplus" "--start=xterm""#
            ),
            start(
                "_proxy_start",
                &[
                    ":102",
                    "--env=SSH_AGENT_UUID=x",
                    "--resize-display=1280x1024",
                    "--packet-encoders=rencodeplus",
                    "--start=xterm"
                ]
            )
        );
        assert_eq!(
            parse(
                r#"sh -c 'if command -v "xpra" > /dev/null 2>&1; then xpra _proxy_start ":102" "--ssh=ssh -i KEY -o X=y" "--start=xterm";else exit 1; fi'"#
            ),
            start(
                "_proxy_start",
                &[":102", "--ssh=ssh -i KEY -o X=y", "--start=xterm"]
            )
        );
        assert_eq!(
            parse(r#"xpra "_proxy_start_desktop" ":3""#),
            start("_proxy_start_desktop", &[":3"])
        );
        assert_eq!(
            parse(r#"xpra "_proxy_shadow_start""#),
            start("_proxy_shadow_start", &[])
        );
    }

    #[test]
    fn other_proxy_subcommands_are_handed_on_too() {
        assert_eq!(
            parse(r#"xpra "_proxy_run" ":5""#),
            ExecRequest::Subcommand {
                subcommand: "_proxy_run".into(),
                args: vec![":5".into()],
            }
        );
    }

    /// Anything else is refused, including `_proxy` behind a program that is not xpra.
    #[test]
    fn other_commands_are_unknown() {
        for c in [
            "ls -l",
            "cat /etc/passwd",
            "sh -c 'id'",
            "rm _proxy",
            "xpra list",
            "xpra attach :100",
            "sh -c 'unterminated",
            r#"xpra "_proxy"#,
            "",
        ] {
            assert_eq!(parse(c), ExecRequest::Unknown, "{c:?}");
        }
    }

    #[test]
    fn splits_like_a_shell() {
        let words = |s: &str| -> Vec<String> {
            split(s)
                .unwrap()
                .into_iter()
                .map(|t| match t {
                    Token::Word(w) => w,
                    Token::Separator => ";".into(),
                })
                .collect()
        };
        assert_eq!(words(r#"a "b c" 'd e'"#), ["a", "b c", "d e"]);
        assert_eq!(words(r#"x;y ; z"#), ["x", ";", "y", ";", "z"]);
        assert_eq!(words(r#""a\"b" 'a;b' a\ b"#), ["a\"b", "a;b", "a b"]);
        assert_eq!(words(r#""""#), [""]);
        assert_eq!(split("'open"), None);
    }
}
