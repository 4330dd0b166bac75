//! EncoderPool benchmark: 1080p frames captured from an Xvfb through x11rb, encoded through the
//! EncoderPool, against the ffmpeg command-line tool with the same encoder and settings on the same
//! frames in the same run; latency per frame; and behaviour under overload.
//!
//! ```text
//! cargo run --release -p xgate-integration-tests --bin xgate-encode-bench -- \
//!     [--encoder libx264] [--frames 60] [--passes 5] [--rounds 3] [--overload-secs 10]
//!     [--overload-windows 4] [--work DIR]
//! ```
//! Needs `Xvfb`, `ffmpeg`, `xterm` and ImageMagick's `convert` (scripts/setup-deps installs them).
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix::Actor;
use bytes::Bytes;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, Rectangle};
use xgate_actors::encoder::{EncoderPool, EncoderSettings, X11Capture};
use xgate_messages::encode::{EncodeFrame, EncodeRefused, GetEncoderInfo, RawFrame, StreamKey};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;

/// Command-line options.
struct Options {
    encoder: String,
    frames: usize,
    passes: usize,
    overload_secs: u64,
    overload_windows: u64,
    rounds: usize,
    work: PathBuf,
}

fn parse() -> Options {
    let mut o = Options {
        encoder: "libx264".into(),
        frames: 60,
        passes: 5,
        overload_secs: 10,
        overload_windows: 4,
        rounds: 3,
        work: std::env::temp_dir().join(format!("xgate-encode-bench-{}", std::process::id())),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_default();
        match a.as_str() {
            "--encoder" => o.encoder = val(),
            "--frames" => o.frames = val().parse().unwrap_or(o.frames),
            "--passes" => o.passes = val().parse().unwrap_or(o.passes),
            "--overload-secs" => o.overload_secs = val().parse().unwrap_or(o.overload_secs),
            "--overload-windows" => {
                o.overload_windows = val().parse().unwrap_or(o.overload_windows)
            }
            "--rounds" => o.rounds = val().parse::<usize>().unwrap_or(o.rounds).max(1),
            "--work" => o.work = PathBuf::from(val()),
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    o
}

/// A child process killed on drop.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need(program: &str) {
    let found = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| Path::new(d).join(program).exists());
    if !found {
        eprintln!("{program} is missing: run scripts/setup-deps");
        std::process::exit(1);
    }
}

/// Starts `Xvfb :N -screen 0 1920x1080x24` on a free display number.
fn start_xvfb(work: &Path) -> (Kill, String) {
    for n in 150..250 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            || Path::new(&format!("/tmp/.X{n}-lock")).exists()
        {
            continue;
        }
        let display = format!(":{n}");
        let log = std::fs::File::create(work.join("xvfb.log")).expect("xvfb log");
        let child = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting Xvfb");
        let guard = Kill(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && X11Capture::connect(Some(&display)).is_ok()
            {
                return (guard, display);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "Xvfb {display} did not start (see {})",
            work.join("xvfb.log").display()
        );
    }
    panic!("no free X display number in 150..250");
}

/// Puts a picture with detail everywhere on the root window (ImageMagick plasma fractal, drawn
/// with PutImage) and an xterm running `top`, so that frames look like a desktop with moving content.
fn dress(display: &str) -> Vec<Kill> {
    let out = Command::new("convert")
        .args([
            "-size",
            "1920x1080",
            "-seed",
            "7",
            "plasma:fractal",
            "-depth",
            "8",
            "BGRA:-",
        ])
        .output()
        .expect("ImageMagick convert");
    assert!(
        out.status.success() && out.stdout.len() == 1920 * 1080 * 4,
        "ImageMagick convert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (conn, screen) = x11rb::connect(Some(display)).expect("x11 connect");
    let root = conn.setup().roots[screen].root;
    let gc = conn.generate_id().expect("gc id");
    conn.create_gc(gc, root, &CreateGCAux::new())
        .expect("create gc");
    let rows = 64usize;
    for (i, chunk) in out.stdout.chunks(1920 * 4 * rows).enumerate() {
        let h = (chunk.len() / (1920 * 4)) as u16;
        conn.put_image(
            x11rb::protocol::xproto::ImageFormat::Z_PIXMAP,
            root,
            gc,
            1920,
            h,
            0,
            (i * rows) as i16,
            0,
            24,
            chunk,
        )
        .expect("PutImage");
    }
    let _ = conn.get_input_focus().map(|c| c.reply());
    let mut kids = Vec::new();
    if let Ok(c) = Command::new("xterm")
        .env("DISPLAY", display)
        .args(["-geometry", "120x40+1000+80", "-e", "top", "-d", "0.2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        kids.push(Kill(c));
    }
    std::thread::sleep(Duration::from_millis(700));
    kids
}

/// Captures `k` frames, moving the picture between captures: the root is panned 6 pixels left
/// (CopyArea onto itself) and a bright box moves across; `top` repaints its xterm on its own.
fn capture(display: &str, k: usize) -> (Vec<RawFrame>, Vec<Duration>) {
    let cap = X11Capture::connect(Some(display)).expect("x11 capture");
    assert_eq!(cap.size(), (WIDTH, HEIGHT));
    let (conn, screen) = x11rb::connect(Some(display)).expect("x11 connect");
    let root = conn.setup().roots[screen].root;
    let gc = conn.generate_id().expect("gc id");
    conn.create_gc(
        gc,
        root,
        &CreateGCAux::new()
            .foreground(0x00ffd040)
            .subwindow_mode(x11rb::protocol::xproto::SubwindowMode::INCLUDE_INFERIORS),
    )
    .expect("create gc");
    let mut frames = Vec::with_capacity(k);
    let mut times = Vec::with_capacity(k);
    for i in 0..k {
        let _ = conn.copy_area(root, root, gc, 6, 0, 0, 0, 1914, 1080);
        let x = ((i * 29) % 1700) as i16;
        let _ = conn.poly_fill_rectangle(
            root,
            gc,
            &[Rectangle {
                x,
                y: 700,
                width: 200,
                height: 150,
            }],
        );
        let _ = conn.get_input_focus().map(|c| c.reply());
        let t = Instant::now();
        let f = cap.capture().expect("GetImage");
        times.push(t.elapsed());
        frames.push(f);
    }
    (frames, times)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The ffmpeg command line with the same encoder and settings as the pool.
fn ffmpeg_args(encoder: &str, raw: &Path, passes: usize) -> Vec<String> {
    let mut a: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-stream_loop",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push((passes.saturating_sub(1)).to_string());
    for s in [
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr0",
        "-s",
        "1920x1080",
        "-r",
        "25",
        "-i",
    ] {
        a.push(s.into());
    }
    a.push(raw.display().to_string());
    for s in [
        "-sws_flags",
        "bicubic",
        "-pix_fmt",
        "yuv420p",
        "-color_range",
        "tv",
        "-colorspace",
        "bt470bg",
        "-bf",
        "0",
        "-c:v",
    ] {
        a.push(s.into());
    }
    a.push(encoder.into());
    for (k, v) in xgate_actors::encoder::stream::encoder_options(encoder) {
        a.push(format!("-{k}"));
        a.push(v.into());
    }
    match encoder {
        "libvpx" => a.extend(["-b:v".into(), (1920 * 1080 * 4).to_string()]),
        "libvpx-vp9" => a.extend(["-b:v".into(), "0".into()]),
        _ => {}
    }
    a.extend(["-f".into(), "null".into(), "-".into()]);
    a
}

fn key(window: u64) -> StreamKey {
    StreamKey {
        connection: 1,
        window,
    }
}

fn main() {
    let o = parse();
    for p in ["Xvfb", "ffmpeg", "convert", "xterm"] {
        need(p);
    }
    std::fs::create_dir_all(&o.work).expect("work dir");
    let codec = xgate_actors::encoder::stream::codec_of(&o.encoder).unwrap_or_else(|| {
        eprintln!("unknown encoder {}", o.encoder);
        std::process::exit(2)
    });
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {} cores, {cpu}; load average at start: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load.trim()
    );
    let ffv = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    println!("{ffv}");

    // 1. Frames from Xvfb through x11rb.
    let (_xvfb, display) = start_xvfb(&o.work);
    let _kids = dress(&display);
    let (frames, grab) = capture(&display, o.frames);
    let mut g = grab.clone();
    g.sort();
    println!(
        "capture: {} frames 1920x1080 BGRX from Xvfb {display} via x11rb GetImage: p50 {} p99 {} per frame",
        frames.len(),
        ms(pct(&g, 0.5)),
        ms(pct(&g, 0.99))
    );
    let raw = o.work.join("frames.raw");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&raw).expect("frames.raw"));
        for fr in &frames {
            f.write_all(&fr.data).expect("write frames");
        }
    }
    let total = o.frames * o.passes;

    // 2. The ffmpeg command line on the same frames (file in the page cache: read it once first).
    let _ = std::fs::read(&raw);
    let args = ffmpeg_args(&o.encoder, &raw, o.passes);
    println!("baseline: ffmpeg {}", args.join(" "));
    let run_cli = move || {
        let t = Instant::now();
        let st = Command::new("ffmpeg").args(&args).status().expect("ffmpeg");
        assert!(st.success(), "ffmpeg failed");
        total as f64 / t.elapsed().as_secs_f64()
    };

    let sys = actix::System::new();
    sys.block_on(async move {
        let settings = EncoderSettings {
            encoders: vec![o.encoder.clone()],
            ..EncoderSettings::default()
        };
        let pool = EncoderPool::new(settings.clone()).start();
        let info = pool.send(GetEncoderInfo).await.expect("info");
        println!("pool: {} workers, queue limit {}, encoders {:?}", info.workers, info.queue_limit,
            info.encoders.iter().map(|s| format!("{}={}", s.name, if s.available { "ok".to_string() } else { s.reason.clone().unwrap_or_default() })).collect::<Vec<_>>());
        let req = |i: usize, window: u64| EncodeFrame {
            key: key(window),
            codec,
            frame: frames[i % frames.len()].clone(),
            keyframe: false,
            tag: i as u64,
        };

        // 3. Throughput, interleaved with the CLI run (the machine is shared: alternating
        //    rounds see the same background load): one window, two frames outstanding (one
        //    encoding, one waiting); a new window per round, so each round starts a stream.
        let mut ratios = Vec::new();
        for round in 0..o.rounds {
            let cli_fps = run_cli();
            let t = Instant::now();
            let mut inflight = std::collections::VecDeque::new();
            let mut bytes = 0usize;
            let window = 100 + round as u64;
            for i in 0..total {
                inflight.push_back(pool.send(req(i, window)));
                if inflight.len() >= 2 {
                    if let Some(f) = inflight.pop_front() {
                        bytes += f.await.expect("mailbox").expect("encode").data.len();
                    }
                }
            }
            while let Some(f) = inflight.pop_front() {
                bytes += f.await.expect("mailbox").expect("encode").data.len();
            }
            let pool_fps = total as f64 / t.elapsed().as_secs_f64();
            ratios.push(pool_fps / cli_fps);
            println!(
                "round {round}: ffmpeg CLI {cli_fps:.1} fps, EncoderPool {pool_fps:.1} fps = {:.1} % of the CLI ({:.1} KiB/frame)",
                100.0 * pool_fps / cli_fps,
                bytes as f64 / total as f64 / 1024.0
            );
        }
        ratios.sort_by(|a, b| a.total_cmp(b));
        println!(
            "EncoderPool / ffmpeg CLI over {} rounds: median {:.1} %, min {:.1} %, max {:.1} %",
            ratios.len(),
            100.0 * ratios[ratios.len() / 2],
            100.0 * ratios[0],
            100.0 * ratios[ratios.len() - 1]
        );

        // 4. Latency: one frame at a time, from send to answer (a fresh window: frame 0 included).
        let mut lat = Vec::new();
        let mut enc_only = Vec::new();
        for i in 0..o.frames.clamp(2, 120) * 2 {
            let t = Instant::now();
            let e = pool.send(req(i, 2)).await.expect("mailbox").expect("encode");
            lat.push(t.elapsed());
            enc_only.push(Duration::from_micros(e.encode_us));
        }
        lat.sort();
        enc_only.sort();
        println!(
            "latency per frame (send to answer, one at a time, {} frames): p50 {} p99 {} max {}; encode alone p50 {} p99 {}",
            lat.len(),
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.99)),
            ms(*lat.last().unwrap_or(&Duration::ZERO)),
            ms(pct(&enc_only, 0.5)),
            ms(pct(&enc_only, 0.99)),
        );

        // 5. Overload: N windows each submitting 25 fresh 1080p frames a second (a copy per
        //    frame, as a relay's framebuffer snapshot would be) for the given time.
        let pool2 = EncoderPool::new(settings).start();
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let rss_before = rss_kb("VmRSS:");
        let offered_fps = 25.0 * o.overload_windows as f64;
        let period = Duration::from_secs_f64(1.0 / offered_fps);
        let deadline = Instant::now() + Duration::from_secs(o.overload_secs);
        let mut answers = Vec::new();
        let mut peak_rss = rss_before;
        let mut series: Vec<u64> = Vec::new();
        let mut i = 0usize;
        let mut tick = tokio::time::interval(period);
        let started = Instant::now();
        while Instant::now() < deadline {
            tick.tick().await;
            let window = 10 + (i as u64 % o.overload_windows);
            let src = &frames[i % frames.len()];
            let frame = RawFrame { data: Bytes::copy_from_slice(&src.data), ..src.clone() };
            let t = Instant::now();
            let f = pool2.send(EncodeFrame { key: key(window), codec, frame, keyframe: false, tag: i as u64 });
            answers.push(actix::spawn(async move { (f.await, t.elapsed()) }));
            i += 1;
            if i.is_multiple_of(10) {
                peak_rss = peak_rss.max(rss_kb("VmRSS:"));
            }
            if i as f64 % offered_fps < 1.0 {
                series.push(rss_kb("VmRSS:") / 1024);
            }
        }
        let submitted = i;
        let mut encoded = 0;
        let mut coalesced = 0;
        let mut full = 0;
        let mut other = 0;
        let mut lat = Vec::new();
        for a in answers {
            match a.await {
                Ok((Ok(Ok(_)), d)) => {
                    encoded += 1;
                    lat.push(d);
                }
                Ok((Ok(Err(EncodeRefused::Coalesced)), _)) => coalesced += 1,
                Ok((Ok(Err(EncodeRefused::QueueFull)), _)) => full += 1,
                _ => other += 1,
            }
        }
        let wall = started.elapsed();
        lat.sort();
        let info = pool2.send(GetEncoderInfo).await.expect("info");
        let hwm = rss_kb("VmHWM:");
        println!(
            "overload: {} windows x 25 fps = {offered_fps:.0} fps offered for {:.1} s: {submitted} submitted, {encoded} encoded ({:.1} fps), {coalesced} coalesced, {full} refused (queue full), {other} other",
            o.overload_windows, wall.as_secs_f64(), encoded as f64 / wall.as_secs_f64()
        );
        println!(
            "overload: latency of encoded frames p50 {} p99 {}; pool counters: frames {} coalesced {} skipped {} peak queue {} (limit {})",
            ms(pct(&lat, 0.5)), ms(pct(&lat, 0.99)),
            info.counters.frames, info.counters.coalesced, info.counters.skipped,
            info.counters.peak_queue_depth, info.queue_limit
        );
        println!(
            "overload: RSS before {} MiB, each second {:?} MiB, sampled peak {} MiB, VmHWM {} MiB (the {} captured frames themselves hold {} MiB)",
            rss_before / 1024, series, peak_rss / 1024, hwm / 1024, frames.len(),
            frames.iter().map(|f| f.data.len()).sum::<usize>() / (1 << 20)
        );
    });
    let _ = std::fs::remove_file(&raw);
}
