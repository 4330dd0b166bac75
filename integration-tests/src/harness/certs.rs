//! Certificates made with the real `openssl` command, with the recipe of xpra's SSL documentation
//! (`docs/Network/SSL.md`: a CA key and self-signed CA certificate, a key and CSR, the CSR signed
//! by the CA): a server certificate for 127.0.0.1 and client certificates for the tests of
//! client-certificate authentication.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::proc::{run_with_timeout, CmdOutput};
use super::TestDir;

/// The `openssl` command-line tool.
pub const OPENSSL: &str = "/usr/bin/openssl";

/// A CA and a server certificate signed by it, with a subjectAltName for 127.0.0.1 and
/// localhost so that clients verify the host. The CA gets a keyUsage extension: Python 3.11
/// (Debian 12) verifies with X509_STRICT, which refuses a CA certificate without one ("CA cert
/// does not include key usage extension"). Every file is readable by everyone (0644), so that
/// the dropped gateway and xpra servers run as the test user can read them.
#[derive(Debug)]
pub struct Certs {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The directory holding them, and the CA's key for [`Certs::client`].
    dir: TestDir,
}

/// A client certificate and its key.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// Runs `openssl ARGS` in `dir`; panics with its output when it fails.
pub fn openssl(dir: &Path, args: &[&str]) -> CmdOutput {
    assert!(
        Path::new(OPENSSL).exists(),
        "{OPENSSL} is missing: run scripts/setup-deps"
    );
    let out = run_with_timeout(
        Command::new(OPENSSL).current_dir(dir).args(args),
        Duration::from_secs(60),
    );
    assert!(out.success(), "openssl {args:?}: {out}");
    out
}

/// A self-signed CA named `cn`: `NAME.key` and `NAME.crt` in `dir`.
fn make_ca(dir: &Path, name: &str, cn: &str) {
    let key = format!("{name}.key");
    let crt = format!("{name}.crt");
    openssl(dir, &["genrsa", "-out", &key, "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "365",
            "-key",
            &key,
            "-out",
            &crt,
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A key and a certificate for `subject`, signed by the CA `ca` (`ca.crt`/`ca.key` in `dir`),
/// with the extensions in `ext` (an openssl extension file's text): `NAME.key`, `NAME.crt`.
fn make_signed(dir: &Path, ca: &str, name: &str, subject: &str, ext: &str) -> ClientCert {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let crt = format!("{name}.crt");
    let extfile = format!("{name}.ext");
    std::fs::write(dir.join(&extfile), ext).expect("write an extension file");
    openssl(dir, &["genrsa", "-out", &key, "2048"]);
    openssl(
        dir,
        &["req", "-new", "-key", &key, "-out", &csr, "-subj", subject],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "365",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &crt,
            "-extfile",
            &extfile,
        ],
    );
    for f in [&key, &crt] {
        super::set_mode(&dir.join(f), 0o644);
    }
    ClientCert {
        cert: dir.join(crt),
        key: dir.join(key),
    }
}

impl Certs {
    /// A CA and a server certificate for 127.0.0.1 signed by it.
    pub fn make() -> Certs {
        let dir = TestDir::new("certs");
        let p = dir.path();
        make_ca(p, "ca", "xgate test CA");
        super::set_mode(&p.join("ca.crt"), 0o644);
        let server = make_signed(
            p,
            "ca",
            "server",
            "/CN=localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        Certs {
            ca: p.join("ca.crt"),
            cert: server.cert,
            key: server.key,
            dir,
        }
    }

    /// A client certificate whose subject is `subject` (`/CN=carol/O=example`), signed by this
    /// CA.
    pub fn client(&self, name: &str, subject: &str) -> ClientCert {
        make_signed(
            self.dir.path(),
            "ca",
            name,
            subject,
            "extendedKeyUsage=clientAuth\n",
        )
    }

    /// A client certificate for `subject` signed by another CA, which this one does not trust.
    pub fn untrusted_client(&self, name: &str, subject: &str) -> ClientCert {
        let p = self.dir.path();
        if !p.join("rogue-ca.crt").exists() {
            make_ca(p, "rogue-ca", "not the xgate test CA");
        }
        make_signed(
            p,
            "rogue-ca",
            name,
            subject,
            "extendedKeyUsage=clientAuth\n",
        )
    }

    /// `--ssl-cert=...` and `--ssl-key=...` for a gateway or xpra server serving this
    /// certificate.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            format!("--ssl-cert={}", self.cert.display()),
            format!("--ssl-key={}", self.key.display()),
        ]
    }
}
