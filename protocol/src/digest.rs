//! Challenge digests (§3.3–3.5): what a client computes from its password and the server's salt,
//! and what a server checks.
//!
//! `gendigest(name, key, msg)` follows xpra's `xpra/net/digest.py`:
//! - `hmac+<hash>`: lowercase hex text of HMAC(key, msg); plain `hmac` is `hmac+md5` (xpra 3.x).
//! - `xor`: `msg` right-padded with zeros or truncated to `len(key)`, XORed with `key`.
//! - `des`: the VNC d3des response: key padded/truncated to 8 bytes (with VNC's bit-reversed key
//!   schedule), msg padded/truncated to 16 bytes, each half DES-ECB encrypted; hex text.

use des::cipher::{BlockEncrypt, KeyInit};
use hmac::{Mac, SimpleHmac};
use subtle::ConstantTimeEq;

/// Why a digest could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// A digest name this crate does not know.
    #[error("unknown digest {0:?}")]
    Unknown(String),
    /// xpra refuses to compute a digest of an empty key or message.
    #[error("empty key or message for digest {0}")]
    EmptyInput(&'static str),
}

/// The hash functions xpra offers for `hmac+<hash>` (Python hashlib defaults for blake2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// MD5 (also plain `hmac`, xpra 3.x).
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA3-224.
    Sha3_224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
    /// BLAKE2b with a 64-byte digest.
    Blake2b,
    /// BLAKE2s with a 32-byte digest.
    Blake2s,
}

impl HashAlgorithm {
    const ALL: [HashAlgorithm; 12] = [
        HashAlgorithm::Md5,
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha224,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
        HashAlgorithm::Sha3_224,
        HashAlgorithm::Sha3_256,
        HashAlgorithm::Sha3_384,
        HashAlgorithm::Sha3_512,
        HashAlgorithm::Blake2b,
        HashAlgorithm::Blake2s,
    ];

    /// hashlib's name.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha224 => "sha224",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Sha3_224 => "sha3_224",
            HashAlgorithm::Sha3_256 => "sha3_256",
            HashAlgorithm::Sha3_384 => "sha3_384",
            HashAlgorithm::Sha3_512 => "sha3_512",
            HashAlgorithm::Blake2b => "blake2b",
            HashAlgorithm::Blake2s => "blake2s",
        }
    }

    fn hmac(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        fn run<D>(key: &[u8], msg: &[u8]) -> Vec<u8>
        where
            D: hmac::digest::Digest + hmac::digest::core_api::BlockSizeUser,
        {
            // SimpleHmac accepts keys of any length: the error case cannot happen.
            match <SimpleHmac<D> as Mac>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(msg);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            HashAlgorithm::Md5 => run::<md5::Md5>(key, msg),
            HashAlgorithm::Sha1 => run::<sha1::Sha1>(key, msg),
            HashAlgorithm::Sha224 => run::<sha2::Sha224>(key, msg),
            HashAlgorithm::Sha256 => run::<sha2::Sha256>(key, msg),
            HashAlgorithm::Sha384 => run::<sha2::Sha384>(key, msg),
            HashAlgorithm::Sha512 => run::<sha2::Sha512>(key, msg),
            HashAlgorithm::Sha3_224 => run::<sha3::Sha3_224>(key, msg),
            HashAlgorithm::Sha3_256 => run::<sha3::Sha3_256>(key, msg),
            HashAlgorithm::Sha3_384 => run::<sha3::Sha3_384>(key, msg),
            HashAlgorithm::Sha3_512 => run::<sha3::Sha3_512>(key, msg),
            HashAlgorithm::Blake2b => run::<blake2::Blake2b512>(key, msg),
            HashAlgorithm::Blake2s => run::<blake2::Blake2s256>(key, msg),
        }
    }
}

/// A challenge digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digest {
    /// `hmac+<hash>` (or plain `hmac` for MD5).
    Hmac(HashAlgorithm),
    /// `xor` (also what `kerberos`, `gss`, `keycloak` use).
    Xor,
    /// `des`: the VNC challenge response.
    Des,
}

impl Digest {
    /// Parses a digest name as found in the caps and the challenge packet.
    pub fn parse(name: &str) -> Result<Digest, DigestError> {
        match name {
            "xor" | "kerberos" | "gss" | "keycloak" => return Ok(Digest::Xor),
            "des" => return Ok(Digest::Des),
            "hmac" => return Ok(Digest::Hmac(HashAlgorithm::Md5)),
            _ => {}
        }
        // "type:value" digests (e.g. "kerberos:...") are xor-based.
        if let Some((kind, _)) = name.split_once(':') {
            if matches!(kind, "kerberos" | "gss" | "keycloak") {
                return Ok(Digest::Xor);
            }
        }
        name.strip_prefix("hmac+")
            .and_then(|h| HashAlgorithm::ALL.into_iter().find(|a| a.name() == h))
            .map(Digest::Hmac)
            .ok_or_else(|| DigestError::Unknown(name.to_owned()))
    }

    /// The canonical name (`hmac+md5` for plain `hmac`).
    pub fn name(self) -> String {
        match self {
            Digest::Hmac(h) => format!("hmac+{}", h.name()),
            Digest::Xor => "xor".to_owned(),
            Digest::Des => "des".to_owned(),
        }
    }

    /// Computes the digest of `msg` keyed by `key`.
    pub fn compute(self, key: &[u8], msg: &[u8]) -> Result<Vec<u8>, DigestError> {
        if key.is_empty() || msg.is_empty() {
            return Err(DigestError::EmptyInput(match self {
                Digest::Hmac(h) => h.name(),
                Digest::Xor => "xor",
                Digest::Des => "des",
            }));
        }
        Ok(match self {
            Digest::Hmac(h) => hex::encode(h.hmac(key, msg)).into_bytes(),
            Digest::Xor => xor(key, msg),
            Digest::Des => hex::encode(vnc_des_response(key, msg)).into_bytes(),
        })
    }
}

/// The digests this crate can compute, in the order xpra 6.x advertises them in its `digest` caps.
pub const SUPPORTED_DIGESTS: &[&str] = &[
    "xor",
    "hmac+sha512",
    "hmac+sha3_512",
    "hmac+sha3_384",
    "hmac+sha3_256",
    "hmac+sha3_224",
    "hmac+sha384",
    "hmac+sha256",
    "hmac+sha224",
    "hmac+blake2s",
    "hmac+blake2b",
    "des",
];

/// The salt digests this crate can compute (no xor/des), as xpra 6.x advertises `salt-digest`:
/// [`SUPPORTED_DIGESTS`] less its first (`xor`) and last (`des`) entries.
pub const SUPPORTED_SALT_DIGESTS: &[&str] = match SUPPORTED_DIGESTS {
    [_xor, hmacs @ .., _des] => hmacs,
    _ => panic!("SUPPORTED_DIGESTS lists xor, the hmacs, then des"),
};

/// xpra's `choose_digest`: the strongest offered digest, preferring
/// `hmac+sha512` > `hmac+sha384` > `hmac+sha256` > `hmac+sha224` > (3.x: `hmac+sha1` > `hmac+md5`
/// > `hmac`) > `xor` > `des`.
pub fn choose_digest<'a>(offered: &[&'a str]) -> Option<&'a str> {
    const ORDER: [&str; 9] = [
        "hmac+sha512",
        "hmac+sha384",
        "hmac+sha256",
        "hmac+sha224",
        "hmac+sha1",
        "hmac+md5",
        "hmac",
        "xor",
        "des",
    ];
    ORDER
        .iter()
        .find_map(|want| offered.iter().find(|o| *o == want).copied())
}

/// Like [`choose_digest`], for the salt digest: xor and des are never chosen (xpra 6.x refuses them).
pub fn choose_salt_digest<'a>(offered: &[&'a str]) -> Option<&'a str> {
    choose_digest(offered).filter(|d| !matches!(*d, "xor" | "des"))
}

/// xpra's `gendigest(digest, key, msg)`.
pub fn gendigest(name: &str, key: &[u8], msg: &[u8]) -> Result<Vec<u8>, DigestError> {
    Digest::parse(name)?.compute(key, msg)
}

/// The combined salt both sides compute: `gendigest(salt_digest, client_salt, server_salt)`.
pub fn combine_salts(
    salt_digest: &str,
    client_salt: &[u8],
    server_salt: &[u8],
) -> Result<Vec<u8>, DigestError> {
    gendigest(salt_digest, client_salt, server_salt)
}

/// Python's `strtobytes` for a password: latin-1 when every character is at most U+00FF,
/// else UTF-8.
pub fn password_bytes(password: &str) -> Vec<u8> {
    if password.chars().all(|c| u32::from(c) <= 0xFF) {
        password.chars().map(|c| c as u8).collect()
    } else {
        password.as_bytes().to_vec()
    }
}

/// The client's `challenge_response` (§3.4). With `des` the server salt is used directly
/// (and the client sends it back as its client salt).
pub fn client_response(
    digest: &str,
    salt_digest: &str,
    password: &[u8],
    server_salt: &[u8],
    client_salt: &[u8],
) -> Result<Vec<u8>, DigestError> {
    let d = Digest::parse(digest)?;
    let salt = if d == Digest::Des {
        server_salt.to_vec()
    } else {
        combine_salts(salt_digest, client_salt, server_salt)?
    };
    d.compute(password, &salt)
}

/// Server side (§3.5): whether `response` is what a client knowing `password` would send,
/// compared in constant time.
pub fn verify_response(
    digest: &str,
    salt_digest: &str,
    password: &[u8],
    server_salt: &[u8],
    client_salt: &[u8],
    response: &[u8],
) -> Result<bool, DigestError> {
    let expected = client_response(digest, salt_digest, password, server_salt, client_salt)?;
    Ok(bool::from(expected.ct_eq(response)))
}

/// For xor-based auth modules: the password a response carries, `response XOR salt`.
pub fn xor_recover_password(response: &[u8], salt: &[u8]) -> Vec<u8> {
    xor(response, salt)
}

fn xor(key: &[u8], msg: &[u8]) -> Vec<u8> {
    key.iter()
        .enumerate()
        .map(|(i, k)| k ^ msg.get(i).copied().unwrap_or(0))
        .collect()
}

/// d3des `generate_response`: DES-ECB of each 8-byte half of the (padded) challenge, keyed by the
/// (padded) password with each byte's bits reversed (VNC's key schedule quirk).
fn vnc_des_response(password: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut key = [0u8; 8];
    for (k, p) in key.iter_mut().zip(password) {
        *k = p.reverse_bits();
    }
    let mut out = [0u8; 16];
    for (o, c) in out.iter_mut().zip(challenge) {
        *o = *c;
    }
    let cipher = des::Des::new(&key.into());
    for half in out.chunks_exact_mut(8) {
        cipher.encrypt_block(half.into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_3_4_test_vector() {
        let server_salt: Vec<u8> = (0u8..64).collect();
        let client_salt: Vec<u8> = (0x64u8..=0x83).collect();
        assert_eq!(client_salt.len(), 32);
        let salt = combine_salts("hmac+sha256", &client_salt, &server_salt).unwrap();
        assert_eq!(
            salt,
            b"c6ddbd2786d6182d273a23d702751593631bcccd0d4ce9850310f9f675ab2cd3"
        );
        let pw = password_bytes("secret");
        let response = gendigest("hmac+sha256", &pw, &salt).unwrap();
        assert_eq!(
            response,
            b"c8df66360e37a10c9af2d9ba5fa6f67653ac78ce74fb1dcf7b71e32ad44cb419"
        );
        assert_eq!(
            client_response(
                "hmac+sha256",
                "hmac+sha256",
                &pw,
                &server_salt,
                &client_salt
            )
            .unwrap(),
            response
        );
        assert!(verify_response(
            "hmac+sha256",
            "hmac+sha256",
            &pw,
            &server_salt,
            &client_salt,
            &response
        )
        .unwrap());
        assert!(!verify_response(
            "hmac+sha256",
            "hmac+sha256",
            b"wrong",
            &server_salt,
            &client_salt,
            &response
        )
        .unwrap());
    }

    #[test]
    fn every_hmac_has_the_right_length() {
        for (name, hex_len) in [
            ("hmac", 32),
            ("hmac+md5", 32),
            ("hmac+sha1", 40),
            ("hmac+sha224", 56),
            ("hmac+sha256", 64),
            ("hmac+sha384", 96),
            ("hmac+sha512", 128),
            ("hmac+sha3_224", 56),
            ("hmac+sha3_256", 64),
            ("hmac+sha3_384", 96),
            ("hmac+sha3_512", 128),
            ("hmac+blake2b", 128),
            ("hmac+blake2s", 64),
        ] {
            assert_eq!(
                gendigest(name, b"k", b"m").unwrap().len(),
                hex_len,
                "{name}"
            );
        }
        for name in SUPPORTED_DIGESTS.iter().chain(SUPPORTED_SALT_DIGESTS) {
            assert!(Digest::parse(name).is_ok());
        }
        assert!(SUPPORTED_SALT_DIGESTS
            .iter()
            .all(|d| d.starts_with("hmac+")));
        assert_eq!(SUPPORTED_SALT_DIGESTS.len() + 2, SUPPORTED_DIGESTS.len());
        assert!(matches!(
            gendigest("hmac+sha999", b"k", b"m"),
            Err(DigestError::Unknown(_))
        ));
        assert!(matches!(
            gendigest("hmac+sha256", b"", b"m"),
            Err(DigestError::EmptyInput(_))
        ));
    }

    #[test]
    fn hmac_known_answers() {
        // RFC 2202 / RFC 4231 test case 2 ("Jefe").
        let msg = b"what do ya want for nothing?";
        assert_eq!(
            gendigest("hmac+md5", b"Jefe", msg).unwrap(),
            b"750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            gendigest("hmac+sha256", b"Jefe", msg).unwrap(),
            b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn xor_pads_and_truncates_the_message() {
        assert_eq!(gendigest("xor", b"abc", b"\x01\x02").unwrap(), b"\x60\x60c");
        assert_eq!(
            gendigest("xor", b"ab", b"\x01\x02\x03").unwrap(),
            b"\x60\x60"
        );
        let salt = b"0123456789";
        let resp = gendigest("xor", b"secret", salt).unwrap();
        assert_eq!(xor_recover_password(&resp, salt), b"secret");
    }

    #[test]
    fn des_matches_xpra_d3des() {
        // xpra's tests/unittests/unit/net/d3des_test.py: deskey(0123456789abcdef) encrypts
        // 0123456789abcdef to 6e09a37726dd560c.
        let key = hex::decode("0123456789abcdef").unwrap();
        let block = hex::decode("0123456789abcdef").unwrap();
        let r = vnc_des_response(&key, &[block.clone(), block].concat());
        assert_eq!(hex::encode(&r[..8]), "6e09a37726dd560c");
        assert_eq!(hex::encode(&r[8..]), "6e09a37726dd560c");
        // d3des.py's own self-test: key "test1234", "hello321" -> b4 66 01 55 6e 5a 31 09.
        let r = vnc_des_response(b"test1234", b"hello321");
        assert_eq!(&r[..8], b"\xb4f\x01UnZ1\t");
        let d = gendigest("des", b"pw", &[7u8; 64]).unwrap();
        assert_eq!(d.len(), 32);
        assert_eq!(
            d,
            gendigest("des", b"pw\0\0\0\0\0\0extra", &[7u8; 16]).unwrap()
        );
    }

    #[test]
    fn choosing() {
        let offered = ["xor", "hmac+sha3_512", "hmac+sha256", "hmac+sha512", "des"];
        assert_eq!(choose_digest(&offered), Some("hmac+sha512"));
        assert_eq!(choose_digest(&["des", "xor"]), Some("xor"));
        assert_eq!(choose_digest(&["des"]), Some("des"));
        assert_eq!(choose_digest(&["hmac", "xor"]), Some("hmac"));
        assert_eq!(choose_digest(&["u2f"]), None);
        assert_eq!(choose_salt_digest(&["xor", "des"]), None);
        assert_eq!(
            choose_salt_digest(&["xor", "hmac+sha224"]),
            Some("hmac+sha224")
        );
    }

    #[test]
    fn latin1_passwords() {
        assert_eq!(password_bytes("é"), [0xE9]);
        assert_eq!(password_bytes("€"), "€".as_bytes());
        assert_eq!(password_bytes("abc"), b"abc");
    }
}
