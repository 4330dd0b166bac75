//! The server side of xpra's challenge (reference §3.3–3.5): make a challenge for the digests a
//! client offers, and check the response it sends back.

use rand::RngCore;
use std::collections::{HashSet, VecDeque};
use xgate_protocol::digest::{
    choose_digest, choose_salt_digest, combine_salts, verify_response, xor_recover_password,
};
use xgate_protocol::{PacketEncoder, Value};

/// Length of the random server salt (xpra's `DEFAULT_SALT_LENGTH`).
pub const SALT_LENGTH: usize = 64;

/// A challenge that was sent and awaits its response.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The random salt, used once.
    pub server_salt: Vec<u8>,
    /// The digest the response is computed with (`hmac+sha512`...).
    pub digest: String,
    /// The digest that combines client and server salts.
    pub salt_digest: String,
}

/// Why a challenge could not be made or a response not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The client offers no hmac digest that the gateway accepts over this transport.
    #[error("no acceptable digest offered (client offers: {0})")]
    NoDigest(String),
    /// The response hello lacks a field.
    #[error("the response lacks '{0}'")]
    Missing(&'static str),
    /// The combined salt was seen before: a replayed response.
    #[error("salt reused")]
    SaltReused,
    /// The response does not match any password.
    #[error("wrong password")]
    Mismatch,
    /// The auth module needs the password itself and the client does not offer `xor`.
    #[error(
        "the auth module needs the 'xor' digest, which the client does not offer (it offers: {0})"
    )]
    NoXor(String),
    /// The response is to a challenge of another digest than the one asked.
    #[error("the response is not to an 'xor' challenge")]
    NotXor,
}

fn offered<'a>(hello: &'a Value, key: &str) -> Vec<&'a str> {
    hello
        .lookup(key)
        .and_then(Value::as_list)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

impl Challenge {
    /// A fresh challenge for a client's hello. Only hmac digests are used: xor and des would
    /// reveal the password (xor) or are weak (des); only `pam` needs xor
    /// ([`Challenge::for_hello_xor`]).
    pub fn for_hello(hello: &Value) -> Result<Challenge, ChallengeError> {
        let digests = offered(hello, "digest");
        let hmac: Vec<&str> = digests
            .iter()
            .copied()
            .filter(|d| d.starts_with("hmac"))
            .collect();
        let digest =
            choose_digest(&hmac).ok_or_else(|| ChallengeError::NoDigest(digests.join(",")))?;
        Ok(Challenge::with_digest(hello, digest))
    }

    /// A fresh `xor` challenge, whose response carries the password itself, for the modules
    /// that must hand it on (`pam`, as xpra's `req_xor`). The salts are still combined with an
    /// hmac digest. Whether the transport is safe for it is the caller's decision.
    pub fn for_hello_xor(hello: &Value) -> Result<Challenge, ChallengeError> {
        let digests = offered(hello, "digest");
        if !digests.contains(&"xor") {
            return Err(ChallengeError::NoXor(digests.join(",")));
        }
        Ok(Challenge::with_digest(hello, "xor"))
    }

    fn with_digest(hello: &Value, digest: &str) -> Challenge {
        let salts = offered(hello, "salt-digest");
        // xpra 3.x clients that do not list salt digests fall back to xor, which 6.x refuses;
        // their lists always include hmac ones, so a missing list means the same digest
        // (sha256 under an xor challenge).
        let salt_digest = choose_salt_digest(&salts).unwrap_or(if digest == "xor" {
            "hmac+sha256"
        } else {
            digest
        });
        let mut server_salt = vec![0u8; SALT_LENGTH];
        rand::thread_rng().fill_bytes(&mut server_salt);
        Challenge {
            server_salt,
            digest: digest.to_string(),
            salt_digest: salt_digest.to_string(),
        }
    }

    /// The `challenge` packet: `[challenge, salt, auth_caps, digest, salt_digest, prompt]`.
    /// xpra 3.x sends `""` as auth caps when there is no encryption, later versions `{}`.
    pub fn packet(&self, encoder: PacketEncoder, prompt: &str) -> Value {
        let caps = if encoder == PacketEncoder::RencodePlus {
            Value::Dict(Vec::new())
        } else {
            Value::from("")
        };
        Value::List(vec![
            Value::from("challenge"),
            Value::from(self.server_salt.clone()),
            caps,
            Value::from(self.digest.as_str()),
            Value::from(self.salt_digest.as_str()),
            Value::from(prompt),
        ])
    }

    /// Checks the response carried by `hello` against `passwords` (`None`: any response is
    /// accepted, as `allow` does). The combined salt is recorded in `ledger` so that a response
    /// can never be replayed.
    pub fn verify(
        &self,
        hello: &Value,
        passwords: Option<&[Vec<u8>]>,
        ledger: &mut SaltLedger,
    ) -> Result<(), ChallengeError> {
        self.verify_matched(hello, passwords, ledger).map(|_| ())
    }

    /// Like [`Challenge::verify`], and says which of `passwords` matched (the first, when several
    /// equal ones do; `None` with `allow`): the `sqlite`/`sql` modules look up the sessions of the
    /// row with that password, as xpra does.
    pub fn verify_matched(
        &self,
        hello: &Value,
        passwords: Option<&[Vec<u8>]>,
        ledger: &mut SaltLedger,
    ) -> Result<Option<usize>, ChallengeError> {
        let Response {
            response,
            client_salt,
            ..
        } = self.response_of(hello, ledger)?;
        let Some(passwords) = passwords else {
            return Ok(None);
        };
        // Check every candidate so that the time taken does not say which one matched.
        let mut found = None;
        for (i, pw) in passwords.iter().enumerate() {
            let matched = verify_response(
                &self.digest,
                &self.salt_digest,
                pw,
                &self.server_salt,
                client_salt,
                response,
            )
            .unwrap_or(false);
            if matched && found.is_none() {
                found = Some(i);
            }
        }
        if found.is_some() {
            Ok(found)
        } else {
            Err(ChallengeError::Mismatch)
        }
    }

    /// The password an `xor` response carries (xpra's `unxor_response`): the response XORed
    /// with the combined salt. The combined salt is recorded in `ledger`, as for any response.
    pub fn recover_password(
        &self,
        hello: &Value,
        ledger: &mut SaltLedger,
    ) -> Result<Vec<u8>, ChallengeError> {
        if self.digest != "xor" {
            return Err(ChallengeError::NotXor);
        }
        let r = self.response_of(hello, ledger)?;
        Ok(xor_recover_password(r.response, &r.combined))
    }

    /// The response a hello carries; its combined salt is recorded in `ledger` (a salt seen
    /// before is a replay).
    fn response_of<'h>(
        &self,
        hello: &'h Value,
        ledger: &mut SaltLedger,
    ) -> Result<Response<'h>, ChallengeError> {
        let response = hello
            .lookup("challenge_response")
            .and_then(Value::as_bytes)
            .ok_or(ChallengeError::Missing("challenge_response"))?;
        let client_salt = hello
            .lookup("challenge_client_salt")
            .and_then(Value::as_bytes)
            .ok_or(ChallengeError::Missing("challenge_client_salt"))?;
        let combined = combine_salts(&self.salt_digest, client_salt, &self.server_salt)
            .map_err(|_| ChallengeError::Mismatch)?;
        if !ledger.insert(combined.clone()) {
            return Err(ChallengeError::SaltReused);
        }
        Ok(Response {
            response,
            client_salt,
            combined,
        })
    }
}

/// A challenge response, read from the client's hello.
struct Response<'h> {
    /// `challenge_response`: the digest, or with `xor` the password XORed with the salt.
    response: &'h [u8],
    /// `challenge_client_salt`.
    client_salt: &'h [u8],
    /// The salt both sides combined from the client's and the server's.
    combined: Vec<u8>,
}

/// Combined salts already used (xpra's `USED_SALT`), bounded: the oldest are forgotten first.
#[derive(Debug, Default)]
pub struct SaltLedger {
    /// Membership.
    seen: HashSet<Vec<u8>>,
    /// Insertion order, for forgetting.
    order: VecDeque<Vec<u8>>,
}

/// How many combined salts are remembered.
const LEDGER_SIZE: usize = 65536;

impl SaltLedger {
    /// Records a salt; false when it was seen before.
    pub fn insert(&mut self, salt: Vec<u8>) -> bool {
        if self.seen.contains(&salt) {
            return false;
        }
        if self.order.len() >= LEDGER_SIZE {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(salt.clone());
        self.order.push_back(salt);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_protocol::digest::client_response;

    fn hello_with(digests: &[&str]) -> Value {
        Value::dict([
            ("digest", Value::list(digests.iter().copied())),
            ("salt-digest", Value::list(["hmac+sha256"])),
        ])
    }

    #[test]
    fn strongest_hmac_is_chosen_and_xor_never() {
        let c = Challenge::for_hello(&hello_with(&["xor", "hmac+sha256", "hmac+sha512", "des"]))
            .unwrap();
        assert_eq!(c.digest, "hmac+sha512");
        assert!(Challenge::for_hello(&hello_with(&["xor", "des"])).is_err());
    }

    #[test]
    fn xor_challenge_recovers_the_password_once() {
        assert!(matches!(
            Challenge::for_hello_xor(&hello_with(&["hmac+sha256"])),
            Err(ChallengeError::NoXor(_))
        ));
        let c = Challenge::for_hello_xor(&hello_with(&["hmac+sha512", "xor"])).unwrap();
        assert_eq!(
            (c.digest.as_str(), c.salt_digest.as_str()),
            ("xor", "hmac+sha256")
        );
        let client_salt = vec![9u8; 64];
        // Longer than the combined salt (64 hex characters): the rest goes in clear, as in xpra.
        let password = "pässwörd-".repeat(10);
        let pw = xgate_protocol::digest::password_bytes(&password);
        let resp =
            client_response("xor", &c.salt_digest, &pw, &c.server_salt, &client_salt).unwrap();
        assert_ne!(resp, pw);
        let reply = Value::dict([
            ("challenge_response", Value::from(resp)),
            ("challenge_client_salt", Value::from(client_salt)),
        ]);
        let mut ledger = SaltLedger::default();
        assert_eq!(c.recover_password(&reply, &mut ledger), Ok(pw));
        assert_eq!(
            c.recover_password(&reply, &mut ledger),
            Err(ChallengeError::SaltReused)
        );
        let hmac = Challenge::for_hello(&hello_with(&["hmac+sha256", "xor"])).unwrap();
        assert_eq!(
            hmac.recover_password(&reply, &mut SaltLedger::default()),
            Err(ChallengeError::NotXor)
        );
    }

    #[test]
    fn response_is_verified_once() {
        let c = Challenge::for_hello(&hello_with(&["hmac+sha256"])).unwrap();
        let client_salt = vec![7u8; 32];
        let resp = client_response(
            &c.digest,
            &c.salt_digest,
            b"secret",
            &c.server_salt,
            &client_salt,
        )
        .unwrap();
        let reply = Value::dict([
            ("challenge_response", Value::from(resp)),
            ("challenge_client_salt", Value::from(client_salt)),
        ]);
        let mut ledger = SaltLedger::default();
        let good = [b"secret".to_vec()];
        let bad = [b"other".to_vec()];
        assert_eq!(
            c.verify(&reply, Some(&bad), &mut SaltLedger::default()),
            Err(ChallengeError::Mismatch)
        );
        assert_eq!(c.verify(&reply, Some(&good), &mut ledger), Ok(()));
        assert_eq!(
            c.verify(&reply, Some(&good), &mut ledger),
            Err(ChallengeError::SaltReused)
        );
    }
}
