//! The client side of the `ssl://`, `ws://` and `wss://` transports, for sessions that live
//! behind another xpra server reached over TLS or WebSocket.
//!
//! TLS is openssl's client (TLS 1.2 and 1.3) verifying the server's chain against
//! `ssl-server-ca-certs` (else the system's trust store) and its name or address against the
//! target's host, unless `ssl-server-verify-mode` is `none`. WebSocket is the upgrade xpra's own
//! client sends (reference §5.3: `GET PATH`, subprotocol `binary`, the accept key checked), then
//! the gateway's frame codec ([`crate::upgrade::ws::WsStream`]) in client mode, which masks every
//! frame it sends.

use std::io;
use std::path::Path;
use std::pin::Pin;

use bytes::BytesMut;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;
use xgate_config::ClientVerifyMode;

use crate::upgrade::tls::TlsError;
use crate::upgrade::ws::{accept_key, WsStream};

/// The largest WebSocket response head accepted from a target.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// The largest WebSocket frame accepted from a target: a whole packet with its chunk headers
/// (the relay checks each xpra chunk against `max-packet-size` too).
const MAX_FRAME: u64 = xgate_protocol::ABS_MAX_PACKET_SIZE as u64 + 64 * 1024;

/// How the gateway checks the certificates of `ssl://` and `wss://` targets.
#[derive(Clone)]
pub struct TargetTls {
    /// openssl's client context, with the CA certificates loaded.
    connector: SslConnector,
    /// Whether the chain and the host name are verified (`ssl-server-verify-mode`).
    verify: bool,
}

impl std::fmt::Debug for TargetTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetTls")
            .field("verify", &self.verify)
            .finish()
    }
}

fn ssl_err(what: &str) -> impl FnOnce(openssl::error::ErrorStack) -> TlsError + '_ {
    move |source| TlsError::Ssl {
        what: what.to_string(),
        source,
    }
}

impl TargetTls {
    /// From `ssl-server-verify-mode` and `ssl-server-ca-certs` (read now, before root is
    /// dropped). `optional` verifies like `required`: a TLS server always has a certificate.
    pub fn new(mode: ClientVerifyMode, ca: Option<&Path>) -> Result<TargetTls, TlsError> {
        let mut b = SslConnector::builder(SslMethod::tls_client())
            .map_err(ssl_err("TLS client for targets"))?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(ssl_err("TLS client minimum version"))?;
        if let Some(ca) = ca {
            b.set_ca_file(ca)
                .map_err(ssl_err(&format!("ssl-server-ca-certs {}", ca.display())))?;
        }
        let verify = mode != ClientVerifyMode::None;
        if !verify {
            b.set_verify(SslVerifyMode::NONE);
        }
        Ok(TargetTls {
            connector: b.build(),
            verify,
        })
    }
}

fn io_error(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Connects to `host:port` over TCP, without Nagle's delay (the relay writes whole packets).
pub async fn tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let s = TcpStream::connect((host, port)).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Runs the TLS handshake with a target server as `host` (the name sent as SNI and verified,
/// or an IP address verified against the certificate's subjectAltName).
pub async fn tls<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    host: &str,
    settings: &TargetTls,
) -> io::Result<SslStream<S>> {
    let mut config = settings
        .connector
        .configure()
        .map_err(|e| io_error(format!("TLS: {e}")))?;
    if !settings.verify {
        config.set_verify_hostname(false);
    }
    let ssl = config
        .into_ssl(host)
        .map_err(|e| io_error(format!("TLS: {e}")))?;
    let mut s = SslStream::new(ssl, stream).map_err(|e| io_error(format!("TLS: {e}")))?;
    if let Err(e) = Pin::new(&mut s).connect().await {
        let verify = s.ssl().verify_result();
        let why = if verify == openssl::x509::X509VerifyResult::OK {
            e.to_string()
        } else {
            format!("certificate verify failed: {}", verify.error_string())
        };
        return Err(io_error(format!("TLS handshake with {host}: {why}")));
    }
    Ok(s)
}

/// Upgrades an HTTP connection to a WebSocket as xpra's client does (`GET path`, subprotocol
/// `binary`) and checks the answer: status 101, `Upgrade: websocket`, the accept key of the key
/// sent, and the `binary` subprotocol.
pub async fn websocket<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    port: u16,
    path: &str,
) -> io::Result<WsStream<S>> {
    let key = openssl::base64::encode_block(&rand::random::<[u8; 16]>());
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let path = if path.starts_with('/') { path } else { "/" };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut buf = BytesMut::with_capacity(4096);
    let head_len = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() >= MAX_RESPONSE_HEAD {
            return Err(io_error(format!(
                "the WebSocket upgrade answer exceeds {MAX_RESPONSE_HEAD} bytes"
            )));
        }
        buf.reserve(4096);
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed during the WebSocket upgrade",
            ));
        }
    };
    let head = buf.split_to(head_len);
    check_upgrade_response(&String::from_utf8_lossy(&head), &accept_key(&key)).map_err(io_error)?;
    Ok(WsStream::client(stream, buf, MAX_FRAME))
}

/// Checks a server's answer to a WebSocket upgrade (its head, CRLF separated).
fn check_upgrade_response(head: &str, expected_accept: &str) -> Result<(), String> {
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "101" {
        return Err(format!(
            "the server refused the WebSocket upgrade: {}",
            status.trim()
        ));
    }
    let (mut upgrade, mut accept, mut binary) = (false, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            "sec-websocket-accept" => accept = value == expected_accept,
            "sec-websocket-protocol" => binary = value.split(',').any(|p| p.trim() == "binary"),
            _ => {}
        }
    }
    match (upgrade, accept, binary) {
        (false, _, _) => Err("the server's 101 lacks `Upgrade: websocket`".into()),
        (_, false, _) => Err("wrong or missing Sec-WebSocket-Accept".into()),
        (_, _, false) => Err("the server did not accept the `binary` subprotocol".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_answers_are_checked_like_xpra() {
        let accept = accept_key("dGhlIHNhbXBsZSBub25jZQ==");
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: binary\r\n\r\n"
        );
        assert_eq!(check_upgrade_response(&ok, &accept), Ok(()));
        assert!(check_upgrade_response(&ok, "other").is_err());
        assert!(check_upgrade_response(&ok.replace("binary", "base64"), &accept).is_err());
        assert!(
            check_upgrade_response("HTTP/1.1 400 Bad Request\r\n\r\n", &accept)
                .is_err_and(|e| e.contains("400 Bad Request"))
        );
    }

    /// The upgrade and the masked client frames against this crate's own server side.
    #[tokio::test]
    async fn websocket_client_talks_to_the_server_side() {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let server_task = tokio::spawn(async move {
            let mut buf = BytesMut::new();
            let req = crate::upgrade::http::read_request(
                &mut server,
                &mut buf,
                std::time::Duration::from_secs(5),
            )
            .await
            .expect("read")
            .expect("a request");
            assert_eq!(req.path(), "/100");
            let answer = crate::upgrade::ws::check_upgrade(&req).expect("a valid upgrade");
            server.write_all(answer.as_bytes()).await.expect("101");
            let mut ws = WsStream::new(server, buf, 1 << 20);
            let mut got = [0u8; 5];
            ws.read_exact(&mut got).await.expect("payload");
            ws.write_all(b"world").await.expect("answer");
            ws.flush().await.expect("flush");
            got
        });
        let mut ws = websocket(client, "127.0.0.1", 80, "/100")
            .await
            .expect("upgrade");
        ws.write_all(b"hello").await.expect("send");
        ws.flush().await.expect("flush");
        let mut got = [0u8; 5];
        ws.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"world");
        assert_eq!(&server_task.await.expect("server"), b"hello");
    }
}
