//! Issue #9: re-encoding through the gateway. A real session (xterm) is reached through the real
//! xgate with the session option `reencode=yes` (or the gateway's `--reencode=yes`, the default of
//! sessions that do not say); the server is asked for raw rgb only, and the
//! gateway's EncoderPool (libx264 or libvpx here: no NVIDIA driver) makes the video the client
//! decodes. The real client's own log shows which video decoder it ran (h264 for 3.1.3, whose
//! avcodec decodes it; vp8 for the 6.5.5 PyPI client, which decodes VP8/VP9 only), and a
//! screenshot of the client's Xvfb matches the session's own screenshot of the window (within a
//! tolerance: the codec is lossy).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use xgate_integration_tests::harness::{
    run_with_timeout, wait_until, Attach, Gateway, Guarded, Session, TestDir, TestUser, Version,
};

/// The largest root-mean-square difference (ImageMagick's normalised RMSE, 0 to 1) between the
/// session's window and the client's picture of it when the client sees video only (its
/// `auto_refresh_delay` is 0). Measured here: 0.006 – 0.016 (libx264), 0.009 – 0.027 (libvpx);
/// a blank window of the right size scores about 0.28.
const MAX_RMSE_VIDEO: f64 = 0.06;

/// The same once the gateway's lossless refresh has painted the idle window: exact but for
/// rounding.
const MAX_RMSE_REFRESHED: f64 = 0.001;

/// How far (RMSE) the session's xterm must be from a blank window before the pictures are
/// compared: the listing fills it (about 0.28 once it has scrolled).
const MIN_CONTENT: f64 = 0.15;

/// Time allowed for the client to attach and show the picture.
const TIMEOUT: Duration = Duration::from_secs(90);

/// A window's geometry: width, height, absolute x and y.
type Geometry = (u32, u32, i64, i64);

/// Every window `xwininfo -root -tree` lists (its output as `text`): the line and the geometry.
fn windows(text: &str) -> Vec<(String, Geometry)> {
    // Lines end like `  484x316+0+0  +270+226`.
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().rev();
            let abs = f.next()?;
            let rel = f.next()?;
            let (size, _) = rel.split_once('+')?;
            let (w, h) = size.split_once('x')?;
            let mut a = abs.strip_prefix('+')?.split('+');
            let ax: i64 = a.next()?.parse().ok()?;
            let ay: i64 = a.next()?.parse().ok()?;
            Some((l.to_string(), (w.parse().ok()?, h.parse().ok()?, ax, ay)))
        })
        .collect()
}

/// `xwininfo -root -tree` on a display, run by `cmd` (root for the client's Xvfb, the test user
/// for the session's).
fn xwininfo(mut cmd: Command) -> String {
    assert!(
        Path::new("/usr/bin/xwininfo").exists(),
        "/usr/bin/xwininfo (x11-utils) is missing: run scripts/setup-deps"
    );
    run_with_timeout(cmd.args(["-root", "-tree"]), Duration::from_secs(20)).stdout
}

/// The title of the changing xterm the test starts in the session.
const TITLE: &str = "xgate-reencode-test";

/// What the test's xterm runs: a listing that scrolls for a few seconds (raw rgb draws, and
/// `scroll` draws from 3.1.3 servers), then stays still so that the two pictures can be compared.
const SCROLLING: &str =
    "for i in $(seq 1 40); do ls -l /usr/bin | head -n 30; echo \"pass $i\"; sleep 0.05; done; \
     printf '\\033[41m red \\033[42m green \\033[44m blue \\033[0m\\n'; exec sleep 1000";

/// Starts the test's xterm on the session's display, as the session's user.
fn start_changing_xterm(session: &Session, dir: &Path) -> Guarded {
    let mut c = TestUser::get().command("/usr/bin/env");
    c.arg(format!("DISPLAY=:{}", session.number())).args([
        "/usr/bin/xterm",
        "-T",
        TITLE,
        "-geometry",
        "80x30+0+0",
        "-e",
        "sh",
        "-c",
        SCROLLING,
    ]);
    Guarded::spawn("xterm", &mut c, &dir.join("xterm.log"))
}

/// The session's xterm, captured on the session's own display: the reference picture.
fn session_xterm(session: &Session, out: &Path) -> Result<(u32, u32), String> {
    let user = TestUser::get();
    let display = format!(":{}", session.number());
    let mut c = user.command("/usr/bin/env");
    c.arg(format!("DISPLAY={display}")).arg("/usr/bin/xwininfo");
    let tree = xwininfo(c);
    let (line, (w, h, _, _)) = windows(&tree)
        .into_iter()
        .find(|(l, _)| l.contains(TITLE))
        .ok_or_else(|| format!("no {TITLE} window on the session's display:\n{tree}"))?;
    let id = line
        .split_whitespace()
        .next()
        .ok_or("no window id")?
        .to_string();
    let _ = std::fs::remove_file(out);
    let mut c = user.command("/usr/bin/env");
    c.arg(format!("DISPLAY={display}"))
        .args(["/usr/bin/import", "-window", &id])
        .arg(out);
    let r = run_with_timeout(&mut c, Duration::from_secs(30));
    if r.success() && out.exists() {
        Ok((w, h))
    } else {
        Err(format!("import of the session's xterm failed: {r}"))
    }
}

/// Crops the client's display to `g` into `out`.
fn grab(display: &str, g: Geometry, out: &Path) -> bool {
    let (w, h, x, y) = g;
    run_with_timeout(
        Command::new("/usr/bin/import")
            .args(["-display", display, "-window", "root", "-crop"])
            .arg(format!("{w}x{h}+{x}+{y}"))
            .arg("+repage")
            .arg(out),
        Duration::from_secs(30),
    )
    .success()
}

/// ImageMagick's normalised RMSE between two pictures of the same size.
fn rmse(a: &Path, b: &Path) -> Result<f64, String> {
    let out = run_with_timeout(
        Command::new("/usr/bin/compare")
            .args(["-metric", "RMSE"])
            .arg(a)
            .arg(b)
            .arg("null:"),
        Duration::from_secs(30),
    );
    // `compare` prints `12.3 (0.000188)` on stderr; exit status 1 means "different", not failure.
    let text = out.all();
    let start = text.find('(').ok_or_else(|| format!("compare: {out}"))?;
    let end = text[start..]
        .find(')')
        .ok_or_else(|| format!("compare: {out}"))?;
    text[start + 1..start + end]
        .parse()
        .map_err(|_| format!("compare: {out}"))
}

/// The logs of one attach.
struct Logs {
    /// The client's output.
    client: String,
    /// The gateway's log.
    gateway: String,
    /// The end of the session's server log.
    server: String,
}

/// Where re-encoding is turned on.
#[derive(Clone, Copy)]
enum Switch {
    /// The user's multifile row: session option `reencode=yes`.
    SessionOption,
    /// The gateway's `--reencode=yes` (the row says nothing).
    GatewayDefault,
}

/// One attach with re-encoding on: returns the logs once the client's picture matched the
/// session's.
fn attach_reencoded(version: Version, switch: Switch, client_args: &[&str], max_rmse: f64) -> Logs {
    let dir = TestDir::new(&format!("reencode-{}", version.name()));
    let session = Session::start(version, false, dir.path());
    let n = session.number();
    let user = xgate_integration_tests::harness::TestUser::get();
    let users = dir.write(
        "users.txt",
        &match switch {
            Switch::SessionOption => {
                format!("alice|secret|{0}|{0}|:{n}||reencode=yes\n", user.name)
            }
            Switch::GatewayDefault => format!("alice|secret|{0}|{0}|:{n}\n", user.name),
        },
    );
    let control = dir.join("control.sock");
    let mut args = vec![
        format!("--tcp-auth=multifile:filename={}", users.display()),
        format!("--control-socket={}", control.display()),
    ];
    if let Switch::GatewayDefault = switch {
        args.push("--reencode=yes".into());
    }
    let gateway = Gateway::start(dir.path(), &args);
    let url = gateway.url(Some(("alice", "secret")), &n.to_string());
    let client_args: Vec<String> = client_args.iter().map(|a| a.to_string()).collect();
    let mut client = Attach::start_with(version, &url, dir.path(), &client_args, None);
    // The session draws the xterm; the test's own xterm then scrolls and settles.
    session.wait_for_pixels("session.png", TIMEOUT);
    let _xterm = start_changing_xterm(&session, dir.path());
    let display = client.display();
    let reference = dir.join("session-xterm.png");
    let client_png = dir.join("client-xterm.png");
    let mut last = String::from("nothing compared yet");
    let matched: Option<f64> = wait_until(TIMEOUT, || {
        // Retake the reference each time: the shell's prompt may appear after the first one.
        let size = match session_xterm(&session, &reference) {
            Ok(s) => s,
            Err(e) => {
                last = e;
                return None;
            }
        };
        let mut c = Command::new("/usr/bin/xwininfo");
        c.args(["-display", &display]);
        let tree = xwininfo(c);
        let candidates: Vec<Geometry> = windows(&tree)
            .into_iter()
            .map(|(_, g)| g)
            .filter(|&(w, h, _, _)| (w, h) == size)
            .collect();
        if candidates.is_empty() {
            last = format!(
                "no {}x{} window on the client's display {display}:\n{tree}",
                size.0, size.1
            );
            return None;
        }
        // What a picture of the right size but without the content would score: a blank one.
        let blank = dir.join("blank.png");
        let made = run_with_timeout(
            Command::new("/usr/bin/convert")
                .arg("-size")
                .arg(format!("{}x{}", size.0, size.1))
                .arg("xc:white")
                .arg(&blank),
            Duration::from_secs(30),
        );
        let baseline = match (made.success(), rmse(&reference, &blank)) {
            (true, Ok(b)) => b,
            (_, Err(e)) => {
                last = e;
                return None;
            }
            (false, _) => {
                last = format!("convert: {made}");
                return None;
            }
        };
        // Until the listing fills the session's xterm, a blank picture would pass too.
        if baseline < MIN_CONTENT {
            last = format!("the session's xterm shows little yet (RMSE against blank {baseline})");
            return None;
        }
        for g in candidates {
            if !grab(&display, g, &client_png) {
                last = "import on the client's display failed".into();
                continue;
            }
            match rmse(&reference, &client_png) {
                Ok(v) if v <= max_rmse && v < baseline / 10.0 => return Some(v),
                Ok(v) => {
                    last = format!(
                        "RMSE {v} (limit {max_rmse}, a blank picture: {baseline}) for the client window at {g:?}"
                    )
                }
                Err(e) => last = e,
            }
        }
        None
    });
    let Some(v) = matched else {
        panic!(
            "the client's picture never matched the session's: {last}\n{}\n{}",
            client.process.log_tail(),
            gateway.process.log_tail()
        );
    };
    eprintln!("xpra {}: client picture RMSE {v}", version.name());
    client.assert_running("while attached");
    check_encoder_info(&control);
    // The client's picture must be more than a uniform rectangle of the right size (an xterm's
    // core-font text is two colours, and a screen of it can compress below 4 KB of PNG).
    let stats = xgate_integration_tests::harness::xpra::png_stats(&client_png).unwrap();
    assert!(
        stats.colours >= 2 && stats.mean > 0.005 && stats.mean < 0.995 && stats.size.0 >= 100,
        "the client's picture is not a window's: {stats:?}"
    );
    let client_log = client.log();
    // The client leaves: the gateway's re-encoding direction ends and says what it did.
    client.process.signal("INT");
    let ended = wait_until(Duration::from_secs(20), || {
        gateway
            .log()
            .lines()
            .find(|l| l.contains("re-encoding direction ended"))
            .map(str::to_string)
    });
    let ended = ended.unwrap_or_else(|| {
        panic!(
            "the re-encoding direction did not end with the client\n{}",
            gateway.process.log_tail()
        )
    });
    eprintln!("xpra {}: {ended}", version.name());
    Logs {
        client: client_log,
        gateway: gateway.log(),
        server: session.server_log(),
    }
}

/// `xgate ctl --socket SOCKET --json COMMAND`: the answer's `data`.
fn ctl(socket: &Path, command: &str) -> serde_json::Value {
    let out = run_with_timeout(
        Command::new(xgate_integration_tests::harness::gateway::xgate_bin())
            .arg("ctl")
            .arg("--socket")
            .arg(socket)
            .arg("--json")
            .arg(command),
        Duration::from_secs(20),
    );
    assert!(out.success(), "xgate ctl {command}: {out}");
    let answer: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("xgate ctl {command} answered no JSON ({e}): {out}"));
    answer["data"].clone()
}

/// The gateway says, through its control socket, which H.264 encoder it uses (libx264 here: no
/// NVIDIA driver, and why NVENC is not used) and how many frames it re-encoded.
fn check_encoder_info(control: &Path) {
    let info = ctl(control, "info");
    let encoder = &info["encoder"];
    let nvenc = encoder["encoders"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == "h264_nvenc"))
        .unwrap_or_else(|| panic!("no h264_nvenc in the probe: {info}"));
    if nvenc["available"] == true {
        assert_eq!(encoder["active_h264"], "h264_nvenc", "{info}");
    } else {
        // No NVIDIA driver (or no NVENC engine): libx264, and the probe says why not NVENC.
        assert_eq!(encoder["active_h264"], "libx264", "{info}");
        assert!(
            nvenc["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "NVENC unavailable without a reason: {info}"
        );
    }
    assert!(
        encoder["counters"]["frames"].as_u64().unwrap_or(0) >= 1,
        "the EncoderPool counted no frame: {info}"
    );
    let metrics = ctl(control, "metrics");
    let text = metrics["text"].as_str().unwrap_or_default();
    let frames: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("xgate_encoder_frames_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        frames >= 1,
        "xgate_encoder_frames_total is {frames}:\n{text}"
    );
}

/// Client log lines that mean a draw was not painted.
const DRAW_ERRORS: [&str; 5] = [
    "decode failed",
    "csc mode is missing",
    "Error drawing",
    "Error processing",
    "failed to decode",
];

/// Checks what the client's and the server's logs say about the session's draws: the gateway
/// chose `coding`, the client painted several draws of it (the xterm scrolled), none
/// failed, and the server saw no decode errors in the acks that reached it.
fn check_logs(version: Version, logs: &Logs, coding: &str) {
    let Logs {
        client,
        gateway,
        server,
    } = logs;
    let v = version.name();
    assert!(
        gateway.contains(&format!(
            "re-encoding this session: the server sends raw rgb, the client gets {coding}"
        )),
        "the gateway did not choose {coding} for the {v} client:\n{gateway}"
    );
    assert!(
        client
            .lines()
            .any(|l| l.contains("paint_with_video_decoder") && l.contains(&format!("'{coding}'"))),
        "the {v} client's log shows no {coding} video decoder:\n{client}"
    );
    // 3.1.3 logs the coding as `b'h264'`, 6.5.5 as `vp8,`.
    let (quoted, bare) = (format!("'{coding}'"), format!(", {coding}, "));
    let draws = client
        .lines()
        .filter(|l| l.contains("draw_region(") && (l.contains(&quoted) || l.contains(&bare)))
        .count();
    // At least the session's two xterms and their later content.
    assert!(
        draws >= 4,
        "the {v} client painted only {draws} {coding} draws:\n{client}"
    );
    for e in DRAW_ERRORS {
        assert!(
            !client.contains(e),
            "the {v} client's log says {e:?}:\n{client}"
        );
    }
    assert!(
        !server.contains("decoding error"),
        "the {v} server was told of client decoding errors:\n{server}"
    );
    eprintln!("xpra {v}: the client painted {draws} {coding} draws made by the gateway");
}

#[test]
fn xpra_3_client_receives_h264_made_by_the_gateway() {
    // `-d paint`: the client logs every draw with its coding, and each video decoder it creates.
    // No lossless refresh: the picture compared is the decoded video.
    let args = ["-d", "paint", "--auto-refresh-delay=0"];
    let logs = attach_reencoded(Version::V3, Switch::SessionOption, &args, MAX_RMSE_VIDEO);
    check_logs(Version::V3, &logs, "h264");
}

#[test]
fn xpra_6_client_receives_vp8_made_by_the_gateway() {
    // The PyPI 6.5.5 client decodes VP8/VP9 only. `-d paint,video`: draws and video decoders.
    let args = ["-d", "paint,video", "--auto-refresh-delay=0"];
    let logs = attach_reencoded(Version::V6, Switch::SessionOption, &args, MAX_RMSE_VIDEO);
    check_logs(Version::V6, &logs, "vp8");
}

#[test]
fn xpra_3_client_gets_a_lossless_refresh_after_video() {
    // The client's default auto_refresh_delay (150 ms): the idle window ends up exact. Turned on
    // by the gateway's default rather than the session's option.
    let logs = attach_reencoded(
        Version::V3,
        Switch::GatewayDefault,
        &["-d", "paint"],
        MAX_RMSE_REFRESHED,
    );
    check_logs(Version::V3, &logs, "h264");
}

#[test]
fn xpra_6_client_gets_a_lossless_refresh_after_video() {
    let logs = attach_reencoded(
        Version::V6,
        Switch::GatewayDefault,
        &["-d", "paint,video"],
        MAX_RMSE_REFRESHED,
    );
    check_logs(Version::V6, &logs, "vp8");
}
