//! Issue #7: the control socket and `xgate ctl` against a running gateway with real xpra
//! clients attached, xpra's own `info` and `control` requests against the gateway, and the
//! metrics listener (its text checked against the Prometheus exposition-format rules).

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use xgate_integration_tests::harness::ctl::{ctl_json as ctl, ctl_text, tree_node};
use xgate_integration_tests::harness::gateway::write_multifile;
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{
    free_port, wait_until, Attach, Gateway, Session, TestDir, Version,
};

const USER: &str = "alice";
const PASSWORD: &str = "secret";

fn ok(v: &Value, what: &str) -> Value {
    assert_eq!(v["ok"], Value::Bool(true), "{what}: {v}");
    v["data"].clone()
}

fn connections(sock: &Path) -> Vec<Value> {
    ok(&ctl(sock, &["connections"]), "connections")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// One sample: metric name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// Checks text against the Prometheus text exposition format (0.0.4): every sample's family
/// has one `# TYPE` (counter, gauge, ...) before its samples, names match
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, labels are `name="escaped value"` separated by commas, values
/// are floats, families are not split, and the text ends with a newline. Returns the samples.
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    fn name_ok(n: &str) -> bool {
        let mut c = n.chars();
        matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_' || x == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    }
    assert!(text.ends_with('\n'), "metrics text must end with a newline");
    let mut typed: Vec<String> = Vec::new();
    let mut helped: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut done: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut p = rest.splitn(3, ' ');
            let (kw, name) = (p.next().unwrap_or(""), p.next().unwrap_or(""));
            match kw {
                "TYPE" => {
                    assert!(name_ok(name), "line {n}: bad name in TYPE: {line}");
                    let t = p.next().unwrap_or("");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "line {n}: bad type {t}"
                    );
                    assert!(
                        !typed.contains(&name.to_string()),
                        "line {n}: second TYPE for {name}"
                    );
                    typed.push(name.into());
                }
                "HELP" => {
                    assert!(name_ok(name), "line {n}: bad name in HELP: {line}");
                    assert!(
                        !helped.contains(&name.to_string()),
                        "line {n}: second HELP for {name}"
                    );
                    helped.push(name.into());
                }
                _ => {}
            }
            continue;
        }
        assert!(
            !line.starts_with('#'),
            "line {n}: a comment needs '# ': {line}"
        );
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => (&line[..i], &line[i..]),
            None => panic!("line {n}: no value: {line}"),
        };
        assert!(name_ok(name), "line {n}: bad metric name {name}");
        let mut labels = Vec::new();
        let rest = if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let end;
            loop {
                // label name
                let start = chars.peek().map(|(i, _)| *i).expect("unterminated labels");
                if r[start..].starts_with('}') {
                    end = start + 1;
                    break;
                }
                let eq = r[start..]
                    .find('=')
                    .map(|e| e + start)
                    .expect("label without =");
                let lname = &r[start..eq];
                assert!(
                    name_ok(lname) && !lname.contains(':'),
                    "line {n}: bad label name {lname}"
                );
                assert!(
                    r[eq + 1..].starts_with('"'),
                    "line {n}: label value must be quoted"
                );
                let mut value = String::new();
                let mut j = eq + 2;
                let bytes: Vec<char> = r[j..].chars().collect();
                let mut k = 0;
                loop {
                    let c = *bytes
                        .get(k)
                        .unwrap_or_else(|| panic!("line {n}: unterminated label value"));
                    if c == '\\' {
                        let e = bytes[k + 1];
                        assert!(matches!(e, '\\' | '"' | 'n'), "line {n}: bad escape \\{e}");
                        value.push(if e == 'n' { '\n' } else { e });
                        k += 2;
                    } else if c == '"' {
                        k += 1;
                        break;
                    } else {
                        value.push(c);
                        k += 1;
                    }
                }
                j += bytes[..k].iter().map(|c| c.len_utf8()).sum::<usize>();
                labels.push((lname.to_string(), value));
                while chars.peek().is_some_and(|(i, _)| *i < j) {
                    chars.next();
                }
                match r[j..].chars().next() {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {
                        end = j + 1;
                        break;
                    }
                    other => panic!("line {n}: expected , or }} after a label, found {other:?}"),
                }
            }
            &r[end..]
        } else {
            rest
        };
        let mut parts = rest.split_whitespace();
        let value: f64 = match parts.next() {
            Some("+Inf") => f64::INFINITY,
            Some("-Inf") => f64::NEG_INFINITY,
            Some("NaN") => f64::NAN,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("line {n}: bad value {v}")),
            None => panic!("line {n}: no value"),
        };
        if let Some(ts) = parts.next() {
            ts.parse::<i64>()
                .unwrap_or_else(|_| panic!("line {n}: bad timestamp {ts}"));
        }
        assert!(parts.next().is_none(), "line {n}: trailing text");
        assert!(
            typed.contains(&name.to_string()),
            "line {n}: {name} has no TYPE before it"
        );
        if current.as_deref() != Some(name) {
            assert!(
                !done.contains(&name.to_string()),
                "line {n}: family {name} is split"
            );
            if let Some(c) = current.take() {
                done.push(c);
            }
            current = Some(name.to_string());
        }
        samples.push((name.to_string(), labels, value));
    }
    samples
}

fn value_of(samples: &[Sample], name: &str, label: Option<(&str, &str)>) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && match label {
                    None => true,
                    Some((k, v)) => l.iter().any(|(a, b)| a == k && b == v),
                }
        })
        .map(|(_, _, v)| *v)
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"))
}

fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to bind-metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut all = String::new();
    s.read_to_string(&mut all).expect("read");
    let (head, body) = all.split_once("\r\n\r\n").unwrap_or((&all, ""));
    (head.to_string(), body.to_string())
}

struct Setup {
    dir: TestDir,
    sessions: Vec<Session>,
    gateway: Gateway,
    sock: PathBuf,
    config: PathBuf,
    metrics_port: u16,
}

/// Sessions, a multifile listing their displays for alice, and a gateway started with a
/// config file (control socket, metrics listener, unix auth) plus `extra` options.
fn setup(version: Version, name: &str, n_sessions: usize, extra: &[String]) -> Setup {
    let dir = TestDir::new(&format!("{name}-{}", version.name()));
    let sessions: Vec<Session> = (0..n_sessions)
        .map(|_| Session::start(version, false, dir.path()))
        .collect();
    let displays: Vec<String> = sessions
        .iter()
        .map(|s| format!(":{}", s.number()))
        .collect();
    let users = write_multifile(&dir, &[(USER, PASSWORD, &displays)]);
    let sock = dir.join("control.sock");
    let metrics_port = free_port();
    let config = dir.write(
        "xgate.toml",
        &format!(
            "tcp-auth = \"multifile:filename={users}\"\nauth = \"multifile:filename={users}\"\n\
             control-socket = \"{sock}\"\nbind-metrics = \"127.0.0.1:{metrics_port}\"\n",
            users = users.display(),
            sock = sock.display()
        ),
    );
    let mut args = vec![format!("--config={}", config.display())];
    args.extend_from_slice(extra);
    let gateway = Gateway::start(dir.path(), &args);
    assert!(wait_until(Duration::from_secs(10), || sock.exists().then_some(())).is_some());
    Setup {
        dir,
        sessions,
        gateway,
        sock,
        config,
        metrics_port,
    }
}

/// Every control command, with two real xpra 6.5.5 GUI clients attached to two sessions.
#[test]
fn control_socket_commands_with_real_clients() {
    let v = Version::V6;
    let s = setup(v, "control", 2, &[]);
    let sock = &s.sock;

    // The socket is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sock)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "control socket mode");

    // help, and a bad line that leaves the connection usable.
    assert!(ok(&ctl(sock, &["help"]), "help")["tree"].is_string());
    {
        let mut c = UnixStream::connect(sock).expect("connect");
        c.write_all(b"{not json\n{\"command\":\"tree\",\"tag\":\"t1\"}\n")
            .unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let bad: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(bad["ok"], false, "{bad}");
        assert_eq!(bad["error"]["kind"], "bad-request");
        line.clear();
        r.read_line(&mut line).unwrap();
        let good: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(good["ok"], true, "{good}");
        assert_eq!(good["tag"], "t1");
    }

    // Two clients, one per session.
    let urls: Vec<String> = s
        .sessions
        .iter()
        .map(|x| {
            s.gateway
                .url(Some((USER, PASSWORD)), &x.number().to_string())
        })
        .collect();
    let mut a = Attach::start(v, &urls[0], s.dir.path());
    let mut b = Attach::start(v, &urls[1], s.dir.path());
    let listed = wait_until(Duration::from_secs(60), || {
        let c = connections(sock);
        (c.len() == 2).then_some(c)
    })
    .unwrap_or_else(|| {
        panic!(
            "connections never listed both clients: {:?}\n{}\n{}\n{}",
            connections(sock),
            a.log(),
            b.log(),
            s.gateway.process.log_tail()
        )
    });
    for c in &listed {
        assert_eq!(c["username"], USER, "{c}");
    }
    let id_of = |display: u32| -> u64 {
        connections(sock)
            .iter()
            .find(|c| c["display"] == format!(":{display}"))
            .and_then(|c| c["id"].as_u64())
            .unwrap_or_else(|| panic!("no connection to :{display}"))
    };
    let id_a = id_of(s.sessions[0].number());
    let id_b = id_of(s.sessions[1].number());

    // info shows the table; sessions lists the test user's sessions.
    let info = ok(&ctl(sock, &["info"]), "info");
    assert_eq!(info["registry"]["connection-count"], 2, "{info}");
    let user = xgate_integration_tests::harness::TestUser::get();
    let sessions = ok(&ctl(sock, &["sessions", &user.name]), "sessions");
    for x in &s.sessions {
        assert!(
            sessions["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["display"] == format!(":{}", x.number())),
            "sessions of {}: {sessions}",
            user.name
        );
    }
    let table = ctl_text(sock, &["connections"]);
    assert!(table.contains(USER), "{table}");

    // A subscriber sees the stop.
    let sub = UnixStream::connect(sock).expect("connect");
    (&sub).write_all(b"subscribe gateway\n").unwrap();
    let mut events = BufReader::new(sub.try_clone().unwrap());
    let mut line = String::new();
    events.read_line(&mut line).unwrap();
    assert!(line.contains("\"ok\":true"), "{line}");

    // stop ends exactly one: A's client disconnects cleanly, B stays.
    let stopped = ok(&ctl(sock, &["stop", &id_a.to_string()]), "stop");
    assert_eq!(stopped["stopped"], id_a);
    let status = a.process.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some(),
        "client A did not exit after stop\n{}",
        a.log()
    );
    assert!(
        a.log().contains("detach request") || a.log().contains("disconnect"),
        "client A did not see a disconnect: {}",
        a.log()
    );
    b.assert_running("after A was stopped");
    assert_eq!(connections(sock).len(), 1);
    assert_eq!(ctl(sock, &["stop", "999999"])["error"]["kind"], "not-found");
    sub.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let closed = loop {
        line.clear();
        events.read_line(&mut line).expect("an event after stop");
        let e: Value = serde_json::from_str(&line).unwrap();
        if e["name"] == "connection-closed" {
            break e;
        }
    };
    assert_eq!(closed["event"]["id"], id_a, "{closed}");

    // tree: a listener made to fail is restarted, and B is still there.
    let listener = "listeners/tcp:127.0.0.1:0";
    ok(&ctl(sock, &["kill", listener, "test fault"]), "kill");
    let tree = wait_until(Duration::from_secs(10), || {
        let t = ok(&ctl(sock, &["tree"]), "tree");
        let n = tree_node(&t["root"], "tcp:127.0.0.1:0")?.clone();
        (n["restart_count"] == 1 && n["state"] == "running").then_some(n)
    })
    .expect("the killed listener was not restarted");
    assert_eq!(
        tree["last_exit"].as_str().map(|e| e.contains("test fault")),
        Some(true),
        "{tree}"
    );
    let text = ctl_text(sock, &["tree"]);
    assert!(text.contains("restarts=1"), "{text}");
    b.assert_running("after the listener restart");
    let out = v.run(
        &client_home_in(s.dir.path()),
        &["version", &s.gateway.url(None, "")],
    );
    assert!(
        out.success(),
        "the restarted listener does not answer: {out}"
    );

    // reload adds a listener (a unix socket) without dropping anyone.
    let added = s.dir.join("added.sock");
    let mut cfg = std::fs::read_to_string(&s.config).unwrap();
    cfg.push_str(&format!("bind = [\"{}\"]\n", added.display()));
    std::fs::write(&s.config, cfg).unwrap();
    let report = ok(&ctl(sock, &["reload"]), "reload");
    assert_eq!(
        report["listeners"]["added"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert!(added.exists(), "the new listener's socket is missing");
    let out = v.run(
        &client_home_in(s.dir.path()),
        &["version", &format!("socket://{}", added.display())],
    );
    assert!(
        out.success(),
        "xpra version through the reloaded listener: {out}"
    );
    b.assert_running("after the reload");
    assert_eq!(connections(sock).len(), 1, "a reload dropped a connection");
    let info = ok(&ctl(sock, &["info"]), "info");
    assert_eq!(
        info["gateway"]["listeners"].as_array().map(Vec::len),
        Some(2),
        "{info}"
    );

    // log-level shows and replaces the filter; a bad one is refused.
    let lv = ok(&ctl(sock, &["log-level", "info,xgate=debug"]), "log-level");
    assert_eq!(lv["filter"], "info,xgate=debug");
    assert_eq!(
        ok(&ctl(sock, &["log-level"]), "log-level")["filter"],
        "info,xgate=debug"
    );
    assert_eq!(ctl(sock, &["log-level", "xgate=[nope"])["ok"], false);

    // metrics: on the control socket and on bind-metrics, valid Prometheus text.
    let m = ok(&ctl(sock, &["metrics"]), "metrics");
    let samples = parse_prometheus(m["text"].as_str().unwrap());
    assert_eq!(value_of(&samples, "xgate_connections", None), 1.0);
    let (head, body) = http_get(s.metrics_port, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let samples = parse_prometheus(&body);
    assert_eq!(value_of(&samples, "xgate_connections", None), 1.0);
    // The prometheus-parse crate reads the same scrape, sample for sample.
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("prometheus-parse reads the scrape");
    assert_eq!(scrape.samples.len(), samples.len(), "{body}");
    let live = scrape
        .samples
        .iter()
        .find(|s| s.metric == "xgate_connections")
        .expect("xgate_connections in the scrape");
    assert!(
        matches!(
            live.value,
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) if v == 1.0
        ),
        "{:?}",
        live.value
    );
    assert!(value_of(&samples, "xgate_connections_closed_total", None) >= 1.0);
    assert!(
        value_of(
            &samples,
            "xgate_bytes_total",
            Some(("direction", "to_client"))
        ) > 0.0
    );
    assert!(
        value_of(
            &samples,
            "xgate_bytes_total",
            Some(("direction", "from_client"))
        ) > 0.0
    );
    assert_eq!(
        value_of(
            &samples,
            "xgate_restarts_total",
            Some(("child", "root/listeners/tcp:127.0.0.1:0"))
        ),
        1.0
    );
    assert_eq!(value_of(&samples, "xgate_encoder_frames_total", None), 0.0);
    assert!(value_of(&samples, "xgate_auth_failures_total", None) >= 0.0);
    let (head, _) = http_get(s.metrics_port, "/other");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // xpra's `control` request stops the other connection.
    let out = v.run(
        &client_home_in(s.dir.path()),
        &["control", &urls[0], "stop-connection", &id_b.to_string()],
    );
    assert!(
        out.success(),
        "xpra control stop-connection: {out}\n{}",
        s.gateway.process.log_tail()
    );
    assert!(
        b.process.wait_exit(Duration::from_secs(30)).is_some(),
        "client B did not exit"
    );
    assert!(wait_until(Duration::from_secs(10), || connections(sock)
        .is_empty()
        .then_some(()))
    .is_some());
    let out = v.run(
        &client_home_in(s.dir.path()),
        &["control", &urls[0], "frobnicate"],
    );
    assert!(
        !out.success(),
        "an unknown control command succeeded: {out}"
    );
}

/// `xpra info` of 3.1.3 and 6.5.5 against the gateway prints its connection table.
fn info_lists_connections(v: Version) {
    let s = setup(v, "xpra-info", 1, &[]);
    let url = s
        .gateway
        .url(Some((USER, PASSWORD)), &s.sessions[0].number().to_string());
    let mut a = Attach::start(v, &url, s.dir.path());
    let c = wait_until(Duration::from_secs(60), || {
        let c = connections(&s.sock);
        (c.len() == 1).then_some(c)
    })
    .unwrap_or_else(|| panic!("the client never connected\n{}", a.log()));
    let id = c[0]["id"].as_u64().unwrap();
    let out = v.run(&client_home_in(s.dir.path()), &["info", &url]);
    assert!(out.success(), "xpra info: {out}");
    let display = format!(":{}", s.sessions[0].number());
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with(&format!("connections.{id}.display=")) && l.ends_with(&display)),
        "xpra info does not list connection {id} to {display}: {out}"
    );
    assert!(
        out.stdout
            .contains(&format!("connections.{id}.username={USER}")),
        "xpra info does not show the user: {out}"
    );
    a.assert_running("after xpra info");
}

xgate_integration_tests::test_table! {
    info_lists_connections:
    xpra_6_info_lists_gateway_connections(Version::V6);
    xpra_3_info_lists_gateway_connections(Version::V3);
}
