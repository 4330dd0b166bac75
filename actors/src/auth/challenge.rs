//! The server side of xpra's challenge (reference §3.3–3.5): make a challenge for the digests a
//! client offers, and check the response it sends back.

use rand::RngCore;
use std::collections::{HashSet, VecDeque};
use xgate_protocol::digest::{choose_digest, choose_salt_digest, combine_salts, verify_response};
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
    /// reveal the password (xor) or are weak (des), and none of the gateway's modules needs them.
    pub fn for_hello(hello: &Value) -> Result<Challenge, ChallengeError> {
        let digests = offered(hello, "digest");
        let hmac: Vec<&str> = digests
            .iter()
            .copied()
            .filter(|d| d.starts_with("hmac"))
            .collect();
        let digest =
            choose_digest(&hmac).ok_or_else(|| ChallengeError::NoDigest(digests.join(",")))?;
        let salts = offered(hello, "salt-digest");
        // xpra 3.x clients that do not list salt digests fall back to xor, which 6.x refuses;
        // their lists always include hmac ones, so a missing list means the same digest.
        let salt_digest = choose_salt_digest(&salts).unwrap_or(digest);
        let mut server_salt = vec![0u8; SALT_LENGTH];
        rand::thread_rng().fill_bytes(&mut server_salt);
        Ok(Challenge {
            server_salt,
            digest: digest.to_string(),
            salt_digest: salt_digest.to_string(),
        })
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
        if !ledger.insert(combined) {
            return Err(ChallengeError::SaltReused);
        }
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
