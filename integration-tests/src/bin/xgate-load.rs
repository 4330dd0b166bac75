//! `xgate-load`: a fake xpra server and client for measuring relays.
//!
//! Each measuring mode prints a human-readable summary on stderr and one JSON object on stdout.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use tokio::net::TcpListener;
use xgate_actors::relay::transport::TargetTls;
use xgate_config::ClientVerifyMode;
use xgate_integration_tests::load::procfs::{tree_pss_bytes, tree_rss_bytes};
use xgate_integration_tests::load::stats::summarize;
use xgate_integration_tests::load::wire::{parse_compressor, parse_encoder};
use xgate_integration_tests::load::{
    serve, Client, ClientConfig, LoadError, ServerConfig, Transport, Wire,
};
use xgate_protocol::{Compressor, PacketEncoder};

/// Load generator for xpra relays: a fake server, and a fake client that measures.
#[derive(Parser, Debug)]
#[command(name = "xgate-load", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

/// Packet encoding options shared by the server and the client.
#[derive(Args, Debug, Clone)]
struct WireArgs {
    /// Packet encoder: rencodeplus, rencode or bencode.
    #[arg(long, default_value = "rencodeplus", value_parser = parse_encoder)]
    encoder: PacketEncoder,
    /// Compressor for main packets: lz4, zlib, brotli or none.
    #[arg(long, default_value = "lz4", value_parser = parse_compressor)]
    compressor: Compressor,
    /// Compression level (0 = off).
    #[arg(long, default_value_t = 1)]
    level: u8,
    /// The `version` announced in the hello.
    #[arg(long = "xpra-version", default_value = "6.5")]
    xpra_version: String,
}

impl WireArgs {
    fn wire(&self) -> Wire {
        Wire {
            encoder: self.encoder,
            compressor: self.compressor,
            level: self.level,
        }
    }
}

/// Where and how the fake client connects.
#[derive(Args, Debug, Clone)]
struct ClientArgs {
    /// The address to connect to (`host:port`): the fake server, a gateway or a proxy.
    #[arg(long)]
    target: String,
    /// Username in the hello.
    #[arg(long, default_value = "xgbench")]
    username: String,
    /// Password for answering a challenge.
    #[arg(long)]
    password: Option<String>,
    /// Display to ask for (sent as `display` and `session.display`).
    #[arg(long)]
    display: Option<String>,
    /// Seconds the handshake and each wait may take.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Connect with a WebSocket inside TLS (`wss://`) instead of plain TCP.
    #[arg(long)]
    wss: bool,
    /// With `--wss`: CA certificates to verify the server with; without, the server's
    /// certificate is not verified (a gateway's generated self-signed one).
    #[arg(long)]
    ssl_ca_certs: Option<std::path::PathBuf>,
    /// Instead of connecting to `--target`, run this command (split on blanks) and speak
    /// through its stdin/stdout, e.g. `ssh -p 10022 alice@127.0.0.1 xpra _proxy 100`.
    #[arg(long)]
    via_command: Option<String>,
    #[command(flatten)]
    wire: WireArgs,
}

impl ClientArgs {
    fn config(&self) -> Result<ClientConfig, LoadError> {
        let transport = if let Some(command) = &self.via_command {
            Transport::Command(command.split_whitespace().map(str::to_string).collect())
        } else if self.wss {
            let mode = if self.ssl_ca_certs.is_some() {
                ClientVerifyMode::Required
            } else {
                ClientVerifyMode::None
            };
            let tls = TargetTls::new(mode, self.ssl_ca_certs.as_deref())
                .map_err(|e| LoadError::Unexpected(e.to_string()))?;
            Transport::Wss(tls)
        } else {
            Transport::Tcp
        };
        Ok(ClientConfig {
            target: self.target.clone(),
            wire: self.wire.wire(),
            username: self.username.clone(),
            password: self.password.clone(),
            display: self.display.clone(),
            version: self.wire.xpra_version.clone(),
            timeout: Duration::from_secs(self.timeout),
            transport,
        })
    }
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Run the fake xpra server until killed.
    Server {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: String,
        /// Require this password (hmac+sha256 challenge).
        #[arg(long)]
        password: Option<String>,
        /// Pixel bytes per draw packet.
        #[arg(long, default_value_t = 1 << 20)]
        draw_size: usize,
        /// Print per-connection errors.
        #[arg(long)]
        verbose: bool,
        #[command(flatten)]
        wire: WireArgs,
    },
    /// Stream 1 MiB draws server to client for a while; report MB/s.
    Throughput {
        #[command(flatten)]
        client: ClientArgs,
        /// Seconds to measure.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Parallel connections (their bytes are added up).
        #[arg(long, default_value_t = 1)]
        connections: usize,
    },
    /// Ping round trips at a given rate; report p50/p99/p999 in microseconds.
    Latency {
        #[command(flatten)]
        client: ClientArgs,
        /// Measured pings.
        #[arg(long, default_value_t = 5000)]
        count: usize,
        /// Pings per second (one outstanding at a time).
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// Pings sent first and not counted.
        #[arg(long, default_value_t = 200)]
        warmup: usize,
    },
    /// Sequential connections: connect, hello, server hello; report p50/p99 in microseconds.
    Setup {
        #[command(flatten)]
        client: ClientArgs,
        /// Connections to time.
        #[arg(long, default_value_t = 200)]
        count: usize,
        /// Connections made first and not counted.
        #[arg(long, default_value_t = 5)]
        warmup: usize,
    },
    /// Hold idle proxied connections open; report the RSS growth of a process tree per connection.
    Idle {
        #[command(flatten)]
        client: ClientArgs,
        /// Connections to open.
        #[arg(long, default_value_t = 500)]
        count: usize,
        /// The process whose RSS (with its descendants') is measured: the gateway or the proxy.
        #[arg(long)]
        pid: u32,
        /// Milliseconds to wait before each RSS reading.
        #[arg(long, default_value_t = 1000)]
        settle_ms: u64,
        /// Connections opened at once.
        #[arg(long, default_value_t = 16)]
        parallel: usize,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.mode).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xgate-load: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mode: Mode) -> Result<(), LoadError> {
    match mode {
        Mode::Server {
            bind,
            password,
            draw_size,
            verbose,
            wire,
        } => {
            let listener = TcpListener::bind(&bind)
                .await
                .map_err(|e| LoadError::io(format!("listening on {bind}"), e))?;
            let addr = listener
                .local_addr()
                .map_err(|e| LoadError::io("reading the bound address", e))?;
            println!("listening {addr}");
            let config = ServerConfig {
                wire: wire.wire(),
                password,
                version: wire.xpra_version.clone(),
                draw_size,
                ..ServerConfig::default()
            };
            serve(listener, config, verbose).await
        }
        Mode::Throughput {
            client,
            seconds,
            connections,
        } => throughput(&client.config()?, seconds, connections.max(1)).await,
        Mode::Latency {
            client,
            count,
            rate,
            warmup,
        } => latency(&client.config()?, count, rate, warmup).await,
        Mode::Setup {
            client,
            count,
            warmup,
        } => setup(&client.config()?, count, warmup).await,
        Mode::Idle {
            client,
            count,
            pid,
            settle_ms,
            parallel,
        } => {
            idle(
                &client.config()?,
                count,
                pid,
                Duration::from_millis(settle_ms),
                parallel.max(1),
            )
            .await
        }
    }
}

async fn throughput(
    config: &ClientConfig,
    seconds: f64,
    connections: usize,
) -> Result<(), LoadError> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(LoadError::Unexpected(format!(
            "--seconds must be positive, not {seconds}"
        )));
    }
    let duration = Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let config = config.clone();
        tasks.push(tokio::spawn(async move {
            let (mut client, _) = Client::connect(&config).await?;
            let stats = client.stream(duration, config.timeout).await?;
            client.disconnect().await;
            Ok::<_, LoadError>(stats)
        }));
    }
    let (mut bytes, mut draws, mut secs) = (0u64, 0u64, 0f64);
    for t in tasks {
        let s = t
            .await
            .map_err(|e| LoadError::Unexpected(format!("a connection task failed: {e}")))??;
        bytes += s.bytes;
        draws += s.draws;
        secs = secs.max(s.elapsed.as_secs_f64());
    }
    let mbps = bytes as f64 / secs.max(1e-9) / 1e6;
    eprintln!(
        "throughput {}: {mbps:.1} MB/s ({draws} draws, {bytes} bytes in {secs:.2} s, {connections} connection(s))",
        config.target
    );
    println!(
        "{}",
        json!({"mode": "throughput", "target": config.target, "mb_per_s": mbps, "draws": draws,
               "bytes": bytes, "seconds": secs, "connections": connections})
    );
    Ok(())
}

async fn latency(
    config: &ClientConfig,
    count: usize,
    rate: u32,
    warmup: usize,
) -> Result<(), LoadError> {
    let (mut client, _) = Client::connect(config).await?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples = Vec::with_capacity(count);
    for i in 0..warmup + count {
        tick.tick().await;
        let rtt = client.ping(config.timeout).await?;
        if i >= warmup {
            samples.push(rtt);
        }
    }
    client.disconnect().await;
    let s = summarize(&mut samples);
    eprintln!(
        "latency {}: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us (min {:.1}, max {:.1}, {} pings at {rate}/s)",
        config.target, s.p50_us, s.p99_us, s.p999_us, s.min_us, s.max_us, s.count
    );
    println!(
        "{}",
        json!({"mode": "latency", "target": config.target, "count": s.count, "rate": rate,
               "p50_us": s.p50_us, "p99_us": s.p99_us, "p999_us": s.p999_us,
               "min_us": s.min_us, "max_us": s.max_us})
    );
    Ok(())
}

async fn setup(config: &ClientConfig, count: usize, warmup: usize) -> Result<(), LoadError> {
    let mut samples = Vec::with_capacity(count);
    for i in 0..warmup + count {
        let (client, elapsed) = Client::connect(config).await?;
        client.disconnect().await;
        if i >= warmup {
            samples.push(elapsed);
        }
    }
    let s = summarize(&mut samples);
    eprintln!(
        "setup {}: p50 {:.1} us, p99 {:.1} us (min {:.1}, max {:.1}, {} connections)",
        config.target, s.p50_us, s.p99_us, s.min_us, s.max_us, s.count
    );
    println!(
        "{}",
        json!({"mode": "setup", "target": config.target, "count": s.count,
               "p50_us": s.p50_us, "p99_us": s.p99_us, "min_us": s.min_us, "max_us": s.max_us})
    );
    Ok(())
}

async fn idle(
    config: &ClientConfig,
    count: usize,
    pid: u32,
    settle: Duration,
    parallel: usize,
) -> Result<(), LoadError> {
    let read = || {
        tree_rss_bytes(pid)
            .ok_or_else(|| LoadError::Unexpected(format!("cannot read /proc/{pid}/status")))
    };
    tokio::time::sleep(settle).await;
    let (before, procs_before) = read()?;
    let pss_before = tree_pss_bytes(pid);
    let started = Instant::now();
    let mut held = Vec::with_capacity(count);
    let mut opened = 0;
    while opened < count {
        let batch = parallel.min(count - opened);
        let mut tasks = Vec::with_capacity(batch);
        for _ in 0..batch {
            let config = config.clone();
            tasks.push(tokio::spawn(async move { Client::connect(&config).await }));
        }
        for t in tasks {
            let (client, _) = t
                .await
                .map_err(|e| LoadError::Unexpected(format!("a connection task failed: {e}")))??;
            held.push(tokio::spawn(client.idle()));
        }
        opened += batch;
    }
    let open_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let (after, procs_after) = read()?;
    let pss_after = tree_pss_bytes(pid);
    let pss_per = match (pss_before, pss_after) {
        (Some(b), Some(a)) => Some((a as f64 - b as f64) / count.max(1) as f64),
        _ => None,
    };
    for h in &held {
        if h.is_finished() {
            return Err(LoadError::Unexpected(
                "an idle connection was closed before the reading".into(),
            ));
        }
    }
    let per = (after as f64 - before as f64) / count.max(1) as f64;
    eprintln!(
        "idle {}: pid {pid} RSS {:.1} MiB -> {:.1} MiB with {count} connections: {:.0} bytes ({:.1} KiB) per connection (PSS: {}); processes {procs_before} -> {procs_after}",
        config.target,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        per,
        per / 1024.0,
        pss_per.map_or_else(|| "n/a".to_string(), |p| format!("{:.1} KiB", p / 1024.0)),
    );
    println!(
        "{}",
        json!({"mode": "idle", "target": config.target, "count": count, "pid": pid,
               "rss_before": before, "rss_after": after, "bytes_per_connection": per,
               "pss_bytes_per_connection": pss_per,
               "processes_before": procs_before, "processes_after": procs_after, "open_seconds": open_secs})
    );
    for h in held {
        h.abort();
    }
    Ok(())
}
