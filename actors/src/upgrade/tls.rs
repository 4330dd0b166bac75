//! TLS with openssl: the acceptor built from `ssl-cert`, `ssl-key`, `ssl-ca-certs` and
//! `ssl-client-verify-mode`, and the default certificate generated on first run.
//!
//! Protocols and ciphers are Mozilla's "intermediate" profile (TLS 1.2 and 1.3, forward-secret
//! AEAD suites only), which `openssl::ssl::SslAcceptor::mozilla_intermediate_v5` sets.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslRef, SslVerifyMode, SslVersion};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Name, X509NameBuilder, X509};
use xgate_config::ClientVerifyMode;
use xgate_messages::CertificateSubject;

/// The file name of the generated certificate (key and certificate in one PEM, like the
/// `/etc/xpra/ssl-cert.pem` that xpra's packages generate).
pub const DEFAULT_CERT_FILE: &str = "ssl-cert.pem";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// openssl refused a file or a setting.
    #[error("{what}: {source}")]
    Ssl {
        /// What was being done (names the option and the file).
        what: String,
        /// openssl's errors.
        source: ErrorStack,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

fn ssl_err(what: impl Into<String>) -> impl FnOnce(ErrorStack) -> TlsError {
    let what = what.into();
    move |source| TlsError::Ssl { what, source }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Builds the server's acceptor. `key` defaults to `cert` (one PEM holding both). With `ca`,
/// client certificates are requested (`optional` unless the mode says otherwise) and verified
/// against it.
pub fn build_acceptor(
    cert: &Path,
    key: Option<&Path>,
    ca: Option<&Path>,
    verify: Option<ClientVerifyMode>,
) -> Result<SslAcceptor, TlsError> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(ssl_err("TLS acceptor"))?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(ssl_err("TLS minimum version"))?;
    b.set_certificate_chain_file(cert)
        .map_err(ssl_err(format!("ssl-cert {}", cert.display())))?;
    let key = key.unwrap_or(cert);
    b.set_private_key_file(key, SslFiletype::PEM)
        .map_err(ssl_err(format!("ssl-key {}", key.display())))?;
    b.check_private_key().map_err(ssl_err(format!(
        "ssl-key {} does not match ssl-cert",
        key.display()
    )))?;
    let mode = verify.unwrap_or(if ca.is_some() {
        ClientVerifyMode::Optional
    } else {
        ClientVerifyMode::None
    });
    if let Some(ca) = ca {
        b.set_ca_file(ca)
            .map_err(ssl_err(format!("ssl-ca-certs {}", ca.display())))?;
        let names = X509Name::load_client_ca_file(ca)
            .map_err(ssl_err(format!("ssl-ca-certs {}", ca.display())))?;
        b.set_client_ca_list(names);
    }
    b.set_verify(match mode {
        ClientVerifyMode::None => SslVerifyMode::NONE,
        ClientVerifyMode::Optional => SslVerifyMode::PEER,
        ClientVerifyMode::Required => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
    });
    // Sessions are resumed by ticket only; no server-side cache to bound.
    b.set_session_id_context(b"xgate")
        .map_err(ssl_err("TLS session id context"))?;
    // No TLS 1.3 session tickets: they are sent after the handshake, while xpra's Python client
    // already reads in one thread and writes its hello in another on the same SSL object; about
    // one 6.5.5 `connect-test` in six then never sent its hello (the login timed out). xpra's
    // clients do not resume sessions anyway.
    b.set_num_tickets(0)
        .map_err(ssl_err("TLS session tickets"))?;
    Ok(b.build())
}

/// The SHA-256 fingerprint of the first certificate in a PEM file, as `AB:CD:...`.
pub fn fingerprint(cert: &Path) -> Result<String, TlsError> {
    let pem = std::fs::read(cert).map_err(io_err(cert))?;
    let x = X509::from_pem(&pem).map_err(ssl_err(format!("ssl-cert {}", cert.display())))?;
    let d = x
        .digest(MessageDigest::sha256())
        .map_err(ssl_err("certificate digest"))?;
    Ok(d.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// A self-signed ECDSA P-256 certificate for `names` (DNS names or IP addresses), valid for ten
/// years, usable for TLS servers.
pub fn self_signed(names: &[String]) -> Result<(PKey<Private>, X509), ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(
        Nid::COMMONNAME,
        names.first().map_or("xgate", String::as_str),
    )?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "xgate")?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    let not_after = Asn1Time::days_from_now(3650)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_agreement()
            .build()?,
    )?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let mut san = SubjectAlternativeName::new();
    for n in names {
        if n.parse::<std::net::IpAddr>().is_ok() {
            san.ip(n);
        } else {
            san.dns(n);
        }
    }
    let san = san.build(&b.x509v3_context(None, None))?;
    b.append_extension(san)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((key, b.build()))
}

/// Makes sure `state_dir` holds a certificate to serve when none is configured: generates
/// [`DEFAULT_CERT_FILE`] (key and certificate, mode 0600) on first run, for this host's name,
/// `localhost` and the loopback addresses. Returns the path and whether it was created now.
/// `owner` is the user the gateway will run as after dropping root.
pub fn ensure_default_certificate(
    state_dir: &Path,
    owner: Option<(u32, u32)>,
) -> Result<(PathBuf, bool), TlsError> {
    let path = state_dir.join(DEFAULT_CERT_FILE);
    if path.exists() {
        return Ok((path, false));
    }
    std::fs::create_dir_all(state_dir).map_err(io_err(state_dir))?;
    let mut names = vec!["localhost".to_string()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() && h != "localhost" {
            names.insert(0, h.to_string());
        }
    }
    names.extend(["127.0.0.1".to_string(), "::1".to_string()]);
    let (key, cert) = self_signed(&names).map_err(ssl_err("generating a certificate"))?;
    let mut pem = key
        .private_key_to_pem_pkcs8()
        .map_err(ssl_err("encoding the key"))?;
    pem.extend(cert.to_pem().map_err(ssl_err("encoding the certificate"))?);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path))?;
    f.write_all(&pem).map_err(io_err(&path))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(io_err(&path))?;
    }
    Ok((path, true))
}

/// The subject of the client certificate, when the client presented one and it verified
/// against `ssl-ca-certs` (the handshake fails on a bad certificate whenever one is requested;
/// the verify result is checked again here so that no unverified name ever reaches auth).
pub fn verified_peer_subject(ssl: &SslRef) -> Option<CertificateSubject> {
    if ssl.verify_result() != openssl::x509::X509VerifyResult::OK {
        return None;
    }
    let cert = ssl.peer_certificate()?;
    let entries = cert
        .subject_name()
        .entries()
        .filter_map(|e| {
            let field = e.object().nid().short_name().ok()?.to_string();
            let value = e.data().to_string().ok()?;
            Some((field, value))
        })
        .collect();
    Some(CertificateSubject { entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn default_certificate_is_private_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (path, created) = ensure_default_certificate(dir.path(), None).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (_, again) = ensure_default_certificate(dir.path(), None).unwrap();
        assert!(!again);
        build_acceptor(&path, None, None, None).unwrap();
        let fp = fingerprint(&path).unwrap();
        assert_eq!(fp.len(), 32 * 3 - 1);
    }

    #[test]
    fn missing_files_name_the_option() {
        let Err(e) = build_acceptor(Path::new("/nonexistent.pem"), None, None, None) else {
            panic!("a missing certificate was accepted");
        };
        assert!(
            e.to_string().starts_with("ssl-cert /nonexistent.pem"),
            "{e}"
        );
    }
}
