//! The four layers, their precedence, origins in error messages, expansion and the embedded
//! default.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use xgate_config::{
    parse_cli_overrides, BindHost, Config, ConfigError, ConfigLoader, DebugCategory, Expander,
    ListenerKind, Origin, Precedence, ReencodeMode, TargetUri, EMBEDDED_DEFAULT,
};

fn vars() -> Expander {
    Expander::with_vars([
        ("UID".to_owned(), "1000".to_owned()),
        ("GID".to_owned(), "1000".to_owned()),
        ("USER".to_owned(), "alice".to_owned()),
        ("HOME".to_owned(), "/home/alice".to_owned()),
    ])
}

/// A loader that sees no process environment, with fixed expansion variables.
fn loader() -> ConfigLoader {
    ConfigLoader::new().env(Vec::new()).expander(vars())
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

struct TempFile(PathBuf);
impl TempFile {
    fn new(text: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "xgate-config-test-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, text).expect("write temp config");
        TempFile(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn load_file(text: &str) -> (TempFile, Result<Config, ConfigError>) {
    let f = TempFile::new(text);
    let r = loader().file(f.path()).load();
    (f, r)
}

// ---- embedded default

#[test]
fn embedded_default_loads_and_validates() {
    let c = loader().load().expect("embedded default");
    assert_eq!(c.bind_tcp.len(), 1);
    assert_eq!(
        c.bind_tcp[0].host,
        BindHost::Ip("127.0.0.1".parse().unwrap())
    );
    assert_eq!(c.bind_tcp[0].port, 14501);
    assert!(c.bind_ssl.is_empty() && c.bind.is_empty());
    assert_eq!(c.state_dir, PathBuf::from("/home/alice/.local/state/xgate"));
    assert_eq!(c.tcp_auth.len(), 1);
    assert_eq!(c.tcp_auth[0].module, "file");
    assert_eq!(
        c.tcp_auth[0].option("filename"),
        Some("/home/alice/.local/state/xgate/password.txt")
    );
    // Socket dirs stay templates: the registry expands them per user.
    assert_eq!(
        c.socket_dirs,
        vec![
            PathBuf::from("$XDG_RUNTIME_DIR/xpra"),
            PathBuf::from("/run/xpra"),
            PathBuf::from("~/.xpra")
        ]
    );
    assert_eq!(
        c.control_socket,
        Some(PathBuf::from("/run/user/1000/xgate/control.sock"))
    );
    let line = EMBEDDED_DEFAULT
        .lines()
        .position(|l| l.starts_with("bind-tcp"))
        .unwrap()
        + 1;
    assert_eq!(c.origin("bind-tcp"), Origin::Embedded { line });
    assert_eq!(c.origin("max-connections"), Origin::Default);
    // upgraded connections on the shared port fall back to tcp-auth
    assert_eq!(c.auth_for(ListenerKind::Ssl), c.tcp_auth.as_slice());
    assert_eq!(c.auth_for(ListenerKind::Wss), c.tcp_auth.as_slice());
    assert!(c.auth_for(ListenerKind::Unix).is_empty());
}

#[test]
fn embedded_default_text_is_toml() {
    let t: toml::Table = toml::from_str(EMBEDDED_DEFAULT).unwrap();
    assert!(t.contains_key("bind-tcp"));
}

#[test]
fn struct_defaults() {
    let c = Config::default();
    assert_eq!(c.max_connections, 1024);
    assert_eq!(c.max_connections_per_address, 64);
    assert_eq!(c.login_timeout, Duration::from_secs(31));
    assert_eq!(c.peek_timeout, Duration::from_secs(1));
    assert_eq!(c.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.connect_retry, Duration::from_secs(5));
    assert_eq!(c.max_packet_size, 256 << 20);
    assert_eq!(c.max_initial_packet_size, 16 << 20);
    assert_eq!(c.auth_failure_delay, Duration::from_secs(1));
    assert_eq!(c.max_auth_failures, 10);
    assert_eq!(c.auth_failure_window, Duration::from_secs(60));
    assert_eq!(c.auth_failure_ban_time, Duration::from_secs(60));
    assert_eq!(c.idle_timeout, Duration::ZERO);
    assert_eq!(c.compression_level, 1);
    assert_eq!(c.video_encoders, vec!["h264_nvenc", "libx264"]);
    assert_eq!(c.reencode, ReencodeMode::No);
    assert!(!c.allow_stop);
    // no listener: refused
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid value for 'bind-tcp' in the built-in defaults: no listener configured: set \
         bind-tcp, bind-ssl, bind-ws, bind-wss, bind-ssh or bind"
    );
}

// ---- file

#[test]
fn file_replaces_embedded_default() {
    let (_f, c) = load_file(
        r#"
bind-tcp = "0.0.0.0:14502"
bind-ssh = ["0.0.0.0:10022", "[::]:10022"]
bind = ["$XDG_RUNTIME_DIR/xgate.sock,auth=peercred", "none"]
tcp-auth = ["sqlite,filename=/var/lib/xgate/auth.sdb", "hosts"]
socket-dirs = ["/run/user/$UID/xpra"]
target = ["100=tcp://127.0.0.1:14600/", ":101=~/sock;compression_level=0"]
login-timeout = "500ms"
max-packet-size = "64M"
max-initial-packet-size = 1048576
compression-level = 3
allow-stop = "yes"
uid = "xgate"
gid = 1001
debug = ["auth", "network,proxy"]
ssl-mode = "www"
"#,
    );
    let c = c.unwrap();
    assert_eq!(c.bind_tcp.len(), 1);
    assert_eq!(c.bind_tcp[0].port, 14502);
    assert_eq!(c.bind_ssh.len(), 2);
    assert_eq!(c.bind.len(), 1);
    assert_eq!(c.bind[0].path, PathBuf::from("/run/user/1000/xgate.sock"));
    assert_eq!(c.tcp_auth.len(), 2);
    assert_eq!(c.tcp_auth[1].module, "hosts");
    assert_eq!(c.socket_dirs, vec![PathBuf::from("/run/user/$UID/xpra")]);
    assert_eq!(c.target[1].uri, TargetUri::unix("/home/alice/sock"));
    assert_eq!(c.login_timeout, Duration::from_millis(500));
    assert_eq!(c.max_packet_size, 64 << 20);
    assert_eq!(c.max_initial_packet_size, 1 << 20);
    assert_eq!(c.compression_level, 3);
    assert!(c.allow_stop);
    assert_eq!(c.uid, Some(xgate_config::UserSpec::Name("xgate".into())));
    assert_eq!(c.gid, Some(xgate_config::UserSpec::Id(1001)));
    assert_eq!(
        c.debug,
        vec![
            DebugCategory::Auth,
            DebugCategory::Network,
            DebugCategory::Proxy
        ]
    );
    assert_eq!(
        c.debug_filter(),
        "xgate::auth=debug,xgate::network=debug,xgate::proxy=debug"
    );
    // missing keys: the struct defaults, not the embedded file's
    assert_eq!(c.control_socket, None);
    assert_eq!(c.max_connections, 1024);
    assert!(matches!(
        c.origin("bind-ssh"),
        Origin::File { line: Some(3), .. }
    ));
}

#[test]
fn file_invalid_value_names_key_file_and_line() {
    let (f, r) = load_file("# comment\nbind-tcp = \"0.0.0.0:99999\"\n");
    assert_eq!(
        r.unwrap_err().to_string(),
        format!(
            "invalid value for 'bind-tcp' in {}:2: \"0.0.0.0:99999\": port out of range",
            f.path().display()
        )
    );
    let (f, r) = load_file("bind-tcp = [\"127.0.0.1:1\", \"0.0.0.0:99999\"]\n");
    let e = r.unwrap_err();
    assert_eq!(e.key(), Some("bind-tcp"));
    assert!(!e.is_retryable());
    assert_eq!(
        e.origin(),
        Some(&Origin::File {
            path: f.path().to_path_buf(),
            line: Some(1)
        })
    );
}

#[test]
fn file_type_errors() {
    let (f, r) = load_file("bind-tcp = \"127.0.0.1:1\"\nmax-connections = \"many\"\n");
    assert_eq!(
        r.unwrap_err().to_string(),
        format!(
            "invalid value for 'max-connections' in {}:2: \"many\": expected a non-negative integer",
            f.path().display()
        )
    );
    let (_f, r) = load_file("bind-tcp = \"127.0.0.1:1\"\nmax-connections = -5\n");
    assert!(r
        .unwrap_err()
        .to_string()
        .ends_with("\"-5\": must not be negative"));
    let (_f, r) = load_file("bind-tcp = 5\n");
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("expected a string or an array of strings"));
    let (_f, r) = load_file("bind-tcp = [5]\n");
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("expected an array of strings, found integer 5"));
    let (_f, r) = load_file("bind-tcp = \"127.0.0.1:1\"\ncompression-level = 300\n");
    assert!(r
        .unwrap_err()
        .to_string()
        .ends_with("\"300\": out of range (at most 255)"));
}

#[test]
fn file_unknown_key() {
    let (f, r) = load_file("bind-tcp = \"127.0.0.1:1\"\nbind-tpc = \"x\"\n");
    let e = r.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "unknown option 'bind-tpc' in {}:2 (did you mean 'bind-tcp'?)",
            f.path().display()
        )
    );
    assert_eq!(e.key(), Some("bind-tpc"));
    let (_f, r) = load_file("[limits]\nmax-connections = 5\n");
    assert!(r
        .unwrap_err()
        .to_string()
        .starts_with("unknown option 'limits' in "));
}

#[test]
fn file_syntax_error_names_line() {
    let (f, r) = load_file("bind-tcp = \"127.0.0.1:1\"\n\ntcp-auth = = 2\n");
    let e = r.unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { line: 3, .. }), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!(
            "syntax error in {} at line 3: ",
            f.path().display()
        )),
        "{e}"
    );
}

#[test]
fn missing_file() {
    let e = loader().file("/nonexistent/xgate.toml").load().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot read config file /nonexistent/xgate.toml: "),
        "{e}"
    );
}

#[test]
fn validation_errors_name_origin() {
    let (f, r) = load_file(
        "bind-tcp = \"127.0.0.1:1\"\nmax-packet-size = \"1M\"\nmax-initial-packet-size = \"2M\"\n",
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        format!(
            "invalid value for 'max-initial-packet-size' in {}:3: 2097152 is more than \
             max-packet-size (1048576)",
            f.path().display()
        )
    );
    let (_f, r) = load_file("bind-tcp = [\"127.0.0.1:1\", \"127.0.0.1:1\"]\n");
    assert!(r
        .unwrap_err()
        .to_string()
        .ends_with("\"127.0.0.1:1\": address used by more than one listener"));
    let (_f, r) = load_file("bind-tcp = [\"127.0.0.1:0\", \"127.0.0.1:0\"]\n");
    assert!(r.is_ok(), "port 0 may repeat");
    let (_f, r) = load_file("bind-tcp = \"127.0.0.1:1\"\ntarget = [\"1=/a\", \":1=/b\"]\n");
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("more than one target for display :1"));
    let (_f, r) = load_file("bind-tcp = \"127.0.0.1:1\"\nssl-key = \"/k.pem\"\n");
    assert!(r
        .unwrap_err()
        .to_string()
        .ends_with("ssl-key is set but ssl-cert is not"));
    let (_f, r) = load_file("bind-tcp = \"127.0.0.1:1\"\nmax-connections-per-address = 2000\n");
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("2000 is more than max-connections (1024)"));
    let (f, r) = load_file("bind-tcp = \"127.0.0.1:1\"\nlogin-timeout = 0\n");
    assert_eq!(
        r.unwrap_err().to_string(),
        format!(
            "invalid value for 'login-timeout' in {}:2: must be more than 0",
            f.path().display()
        )
    );
    let (_f, r) = load_file("bind-tcp = \"127.0.0.1:1\"\nmax-packet-size = \"8G\"\n");
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("more than the 32-bit packet length can say"));
}

// ---- environment

#[test]
fn env_overrides_file_and_reports_variable() {
    let f = TempFile::new("bind-tcp = \"127.0.0.1:1\"\ntcp-auth = \"none\"\n");
    let c = loader()
        .file(f.path())
        .env(env(&[
            ("XGATE_BIND_TCP", "0.0.0.0:2;[::1]:3,auth=allow"),
            ("XGATE_MAX_CONNECTIONS", "7"),
            ("XGATE_CONFIG", "/ignored/when/--config/is/given"),
            ("XGATE_LOG", "whatever"),
            ("XGATE_TEST_SOMETHING", "x"),
            ("XGATE_SSL_CERT", ""),
            ("HOME", "/ignored-because-expander-is-given"),
        ]))
        .load()
        .unwrap();
    assert_eq!(c.bind_tcp.len(), 2);
    assert_eq!(c.bind_tcp[1].auth[0].module, "allow");
    assert_eq!(c.max_connections, 7);
    assert_eq!(c.tcp_auth[0].module, "none");
    assert_eq!(c.ssl_cert, None, "an empty variable is unset");
    assert_eq!(
        c.origin("bind-tcp"),
        Origin::Env {
            var: "XGATE_BIND_TCP".into()
        }
    );

    let e = loader()
        .env(env(&[("XGATE_BIND_TCP", "0.0.0.0:99999")]))
        .load()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value for 'bind-tcp' from environment variable XGATE_BIND_TCP: \
         \"0.0.0.0:99999\": port out of range"
    );
}

#[test]
fn env_targets_split_on_newlines_only() {
    let c = loader()
        .env(env(&[(
            "XGATE_TARGET",
            "1=tcp://h:1/;password=a;compression_level=0\n2=/s",
        )]))
        .load()
        .unwrap();
    assert_eq!(c.target.len(), 2);
    assert_eq!(c.target[0].options.len(), 2);
}

#[test]
fn env_unknown_variable() {
    let e = loader()
        .env(env(&[("XGATE_BIND_TPC", "x")]))
        .load()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown option 'bind-tpc' from environment variable XGATE_BIND_TPC (did you mean 'bind-tcp'?)"
    );
}

#[test]
fn env_selects_config_file() {
    let f = TempFile::new("bind-tcp = \"127.0.0.1:9\"\n");
    let l = loader().env(env(&[("XGATE_CONFIG", &f.path().to_string_lossy())]));
    assert_eq!(l.config_file().as_deref(), Some(f.path()));
    assert_eq!(l.load().unwrap().bind_tcp[0].port, 9);
}

// ---- command line

#[test]
fn cli_pairs() {
    let p = parse_cli_overrides(&args(&[
        "--bind-tcp=0.0.0.0:1",
        "--tcp-auth",
        "sqlite,filename=x",
        "--allow-stop",
        "--no-allow-stop",
        "-d",
        "auth,network",
        "-dproxy",
        "--config",
        "/etc/xgate/xgate.toml",
    ]))
    .unwrap();
    let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        p,
        vec![
            ("bind-tcp", "0.0.0.0:1"),
            ("tcp-auth", "sqlite,filename=x"),
            ("allow-stop", "yes"),
            ("allow-stop", "no"),
            ("debug", "auth,network"),
            ("debug", "proxy"),
            ("config", "/etc/xgate/xgate.toml"),
        ]
    );
}

#[test]
fn cli_errors() {
    let e = parse_cli_overrides(&args(&["--tcp-auht=x"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown option 'tcp-auht' from the command line (--tcp-auht) (did you mean 'tcp-auth'?)"
    );
    let e = parse_cli_overrides(&args(&["--bind-tcp"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid command line: option --bind-tcp needs a value (--bind-tcp=VALUE)"
    );
    let e = parse_cli_overrides(&args(&["--tcp-auth", "--bind-tcp=x"])).unwrap_err();
    assert!(e.to_string().contains("--tcp-auth needs a value"));
    let e = parse_cli_overrides(&args(&["stray"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid command line: unexpected argument \"stray\" (options are written --name=value)"
    );
    let e = parse_cli_overrides(&args(&["--no-bind-tcp"])).unwrap_err();
    assert!(e.to_string().starts_with("unknown option 'no-bind-tcp'"));
    // pairs given directly are checked too
    let e = loader()
        .cli(vec![("bogus".into(), "1".into())])
        .load()
        .unwrap_err();
    assert!(e
        .to_string()
        .starts_with("unknown option 'bogus' from the command line (--bogus)"));
}

#[test]
fn cli_replaces_file_lists_and_accumulates() {
    let f = TempFile::new("bind-tcp = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\nmax-connections = 5\n");
    let pairs = parse_cli_overrides(&args(&[
        "--config",
        &f.path().to_string_lossy(),
        "--bind-tcp=0.0.0.0:3",
        "--bind-tcp",
        "0.0.0.0:4",
        "--max-connections=6",
        "--max-connections=8",
    ]))
    .unwrap();
    let c = loader().cli(pairs).load().unwrap();
    let ports: Vec<u16> = c.bind_tcp.iter().map(|b| b.port).collect();
    assert_eq!(ports, vec![3, 4]);
    assert_eq!(c.max_connections, 8, "last scalar wins");
    assert_eq!(
        c.origin("bind-tcp"),
        Origin::Cli {
            option: "--bind-tcp".into()
        }
    );
    assert!(matches!(c.origin("max-connections"), Origin::Cli { .. }));
}

#[test]
fn cli_empty_value_clears_a_list() {
    let pairs = parse_cli_overrides(&args(&["--bind-tcp=", "--bind=/tmp/x.sock"])).unwrap();
    let c = loader().cli(pairs).load().unwrap();
    assert!(c.bind_tcp.is_empty());
    assert_eq!(c.bind[0].path, PathBuf::from("/tmp/x.sock"));
}

#[test]
fn cli_invalid_value_names_option() {
    let pairs = parse_cli_overrides(&args(&["--bind-tcp=0.0.0.0:99999"])).unwrap();
    assert_eq!(
        loader().cli(pairs).load().unwrap_err().to_string(),
        "invalid value for 'bind-tcp' from the command line (--bind-tcp): \"0.0.0.0:99999\": \
         port out of range"
    );
    let pairs = parse_cli_overrides(&args(&["--tcp-auth=bogus"])).unwrap();
    assert!(loader()
        .cli(pairs)
        .load()
        .unwrap_err()
        .to_string()
        .starts_with("invalid value for 'tcp-auth' from the command line (--tcp-auth): \"bogus\": unknown auth module"));
    let pairs = parse_cli_overrides(&args(&["--login-timeout=forever"])).unwrap();
    assert!(loader().cli(pairs).load().is_err());
    let pairs = parse_cli_overrides(&args(&["-d", "auth,bogus"])).unwrap();
    assert!(loader()
        .cli(pairs)
        .load()
        .unwrap_err()
        .to_string()
        .starts_with("invalid value for 'debug' from the command line (--debug): \"bogus\": unknown debug category"));
}

// ---- precedence

#[test]
fn precedence_env_over_cli_over_file() {
    let f = TempFile::new("bind-tcp = \"127.0.0.1:1\"\nmax-connections = 5\nidle-timeout = 9\n");
    let pairs = parse_cli_overrides(&args(&["--max-connections=6", "--idle-timeout=10"])).unwrap();
    let l = loader()
        .file(f.path())
        .cli(pairs)
        .env(env(&[("XGATE_MAX_CONNECTIONS", "7")]));
    let c = l.clone().load().unwrap();
    assert_eq!(
        c.max_connections, 7,
        "DESIGN.md: the environment overrides both"
    );
    assert_eq!(
        c.idle_timeout,
        Duration::from_secs(10),
        "the command line overrides the file"
    );
    assert_eq!(c.bind_tcp[0].port, 1);
    let c = l.precedence(Precedence::CliOverEnv).load().unwrap();
    assert_eq!(c.max_connections, 6);
}

// ---- expansion

#[test]
fn expansion() {
    let e = vars();
    assert_eq!(e.expand("~/.xpra"), "/home/alice/.xpra");
    assert_eq!(e.expand("~"), "/home/alice");
    assert_eq!(e.expand("~bob/x"), "~bob/x");
    assert_eq!(e.expand("$XDG_RUNTIME_DIR/xpra"), "/run/user/1000/xpra");
    assert_eq!(
        e.expand("/run/user/${UID}/x-$USER"),
        "/run/user/1000/x-alice"
    );
    assert_eq!(e.expand("$XDG_STATE_HOME"), "/home/alice/.local/state");
    assert_eq!(e.expand("${username} $NOPE $"), "${username} $NOPE $");
    let e = Expander::with_vars([("XDG_RUNTIME_DIR".to_owned(), "/tmp/rt".to_owned())]);
    assert_eq!(e.expand("$XDG_RUNTIME_DIR/xpra"), "/tmp/rt/xpra");

    let (_f, c) = load_file(
        "bind-tcp = \"127.0.0.1:1,auth=multifile:filename=$STATE_DIR/u.txt\"\n\
         state-dir = \"~/state\"\n\
         tcp-auth = \"exec:command=/bin/check $STATE_DIR ${username}\"\n\
         ssl-cert = \"$STATE_DIR/cert.pem\"\n",
    );
    let c = c.unwrap();
    assert_eq!(c.state_dir, PathBuf::from("/home/alice/state"));
    assert_eq!(
        c.bind_tcp[0].auth[0].option("filename"),
        Some("/home/alice/state/u.txt")
    );
    assert_eq!(
        c.tcp_auth[0].option("command"),
        Some("/bin/check $STATE_DIR ${username}"),
        "only path options of auth modules are expanded"
    );
    assert_eq!(
        c.ssl_cert,
        Some(PathBuf::from("/home/alice/state/cert.pem"))
    );
}

#[test]
fn process_expander_has_uid() {
    let e = Expander::from_env(std::env::vars());
    assert!(e.get("UID").is_some());
    assert!(e.get("XDG_RUNTIME_DIR").is_some());
}

#[test]
fn debug_filter_all() {
    let pairs = parse_cli_overrides(&args(&["-d", "auth,all"])).unwrap();
    let c = loader().cli(pairs).load().unwrap();
    assert_eq!(c.debug_filter(), "xgate=debug");
    assert_eq!(loader().load().unwrap().debug_filter(), "");
}

#[test]
fn reencode_default_from_the_command_line() {
    let pairs = parse_cli_overrides(&args(&["--reencode=vp8"])).unwrap();
    assert_eq!(
        loader().cli(pairs).load().unwrap().reencode,
        ReencodeMode::Vp8
    );
    let pairs = parse_cli_overrides(&args(&["--reencode=webp"])).unwrap();
    assert_eq!(
        loader().cli(pairs).load().unwrap_err().to_string(),
        "invalid value for 'reencode' from the command line (--reencode): \"webp\": expected yes, \
         no, auto, h264, vp8 or vp9"
    );
}
