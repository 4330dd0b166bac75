//! `actor`: plug-in actors placed in the supervision tree (`[[actor]]` tables in TOML, or
//! `KIND:key=value,key=value` on the command line and in `XGATE_ACTOR`).
//!
//! ```toml
//! [[actor]]
//! kind = "audit-log"
//! path = "/var/log/xgate/audit.jsonl"
//! events = ["connection-opened", "connection-closed"]
//!
//! [[actor]]
//! kind = "exec"
//! name = "hook"
//! command = "/etc/xgate/auth-hook.sh"
//! role = "auth"
//! ```
//! On the command line, `events` are separated by `+`:
//! `--actor=audit-log:path=/tmp/audit.jsonl,events=connection-opened+connection-closed`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::error::ValueError;

/// One `[[actor]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActorSpec {
    /// The plug-in kind (`audit-log`, `exec`, or a kind registered by a plug-in crate).
    pub kind: String,
    /// Its name in the tree and for `hook:name=`; defaults to the kind.
    pub name: String,
    /// The events it receives (`connection-opened`, ...; `all` for every one).
    pub events: Vec<String>,
    /// The other keys, as text (`path`, `command`, `role`, ...).
    pub options: BTreeMap<String, String>,
}

impl fmt::Display for ActorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:name={}", self.kind, self.name)?;
        if !self.events.is_empty() {
            write!(f, ",events={}", self.events.join("+"))?;
        }
        for (k, v) in &self.options {
            write!(f, ",{k}={v}")?;
        }
        Ok(())
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl ActorSpec {
    fn from_pairs(
        kind: &str,
        pairs: impl IntoIterator<Item = (String, Vec<String>)>,
        whole: &str,
    ) -> Result<ActorSpec, ValueError> {
        let kind = kind.trim();
        if !valid_name(kind) {
            return Err(ValueError::new(
                whole,
                "an actor needs a kind (letters, digits, - _ .)",
            ));
        }
        let mut spec = ActorSpec {
            kind: kind.to_owned(),
            name: kind.to_owned(),
            ..ActorSpec::default()
        };
        for (k, v) in pairs {
            match k.as_str() {
                "kind" => {}
                "name" => {
                    let name = v.join(",");
                    if !valid_name(&name) {
                        return Err(ValueError::new(
                            whole,
                            format!("invalid actor name '{name}'"),
                        ));
                    }
                    spec.name = name;
                }
                "events" => spec.events = v.into_iter().filter(|e| !e.is_empty()).collect(),
                _ => {
                    spec.options.insert(k, v.join(","));
                }
            }
        }
        Ok(spec)
    }

    /// Parses the text form `KIND[:key=value,key=value]` (`events=a+b`).
    pub fn parse(text: &str) -> Result<ActorSpec, ValueError> {
        let t = text.trim();
        let (kind, rest) = match t.find([':', ',']) {
            Some(i) => (&t[..i], &t[i + 1..]),
            None => (t, ""),
        };
        let mut pairs = Vec::new();
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| ValueError::new(text, format!("'{part}' is not key=value")))?;
            let k = k.trim().to_owned();
            let v: Vec<String> = if k == "events" {
                v.split('+').map(|e| e.trim().to_owned()).collect()
            } else {
                vec![v.trim().to_owned()]
            };
            pairs.push((k, v));
        }
        Self::from_pairs(kind, pairs, text)
    }

    fn from_table(table: &toml::Table) -> Result<ActorSpec, ValueError> {
        let whole = toml::Value::Table(table.clone()).to_string();
        let kind = table
            .get("kind")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| ValueError::new(&whole, "an [[actor]] needs kind = \"...\""))?;
        let mut pairs = Vec::new();
        for (k, v) in table {
            let values = match v {
                toml::Value::String(s) => vec![s.clone()],
                toml::Value::Array(a) => a
                    .iter()
                    .map(|x| match x {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
                toml::Value::Table(_) => {
                    return Err(ValueError::new(&whole, format!("'{k}' cannot be a table")))
                }
                other => vec![other.to_string()],
            };
            pairs.push((k.clone(), values));
        }
        Self::from_pairs(kind, pairs, &whole)
    }
}

/// `actor`: a string, a table, or an array of strings and tables. Names must be unique.
pub(crate) fn actors<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ActorSpec>, D::Error> {
    let v = toml::Value::deserialize(d)?;
    let items = match v {
        toml::Value::Array(a) => a,
        other => vec![other],
    };
    let mut out: Vec<ActorSpec> = Vec::new();
    for item in items {
        let spec = match &item {
            toml::Value::String(s) if s.trim().is_empty() => continue,
            toml::Value::String(s) => ActorSpec::parse(s),
            toml::Value::Table(t) => ActorSpec::from_table(t),
            other => Err(ValueError::new(
                other.to_string(),
                "expected a table or a string KIND:key=value,...",
            )),
        }
        .map_err(de::Error::custom)?;
        if out.iter().any(|o| o.name == spec.name) {
            return Err(de::Error::custom(ValueError::new(
                &spec.name,
                "two actors have this name; give one a name = \"...\"",
            )));
        }
        out.push(spec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form() {
        let a = ActorSpec::parse(
            "audit-log:path=/tmp/a.jsonl,events=connection-opened+connection-closed",
        )
        .unwrap();
        assert_eq!(a.kind, "audit-log");
        assert_eq!(a.name, "audit-log");
        assert_eq!(a.events, ["connection-opened", "connection-closed"]);
        assert_eq!(a.options["path"], "/tmp/a.jsonl");
        let b = ActorSpec::parse("exec,name=hook,command=/bin/hook.sh,role=auth").unwrap();
        assert_eq!(b.name, "hook");
        assert_eq!(b.options["role"], "auth");
        assert!(ActorSpec::parse(":x=1").is_err());
        assert!(ActorSpec::parse("exec:command").is_err());
        assert!(ActorSpec::parse("exec:name=a b").is_err());
    }

    #[test]
    fn table_form() {
        let t: toml::Table = toml::from_str(
            "kind = \"audit-log\"\npath = \"/x\"\nevents = [\"connection-opened\"]\nmax = 3",
        )
        .unwrap();
        let a = ActorSpec::from_table(&t).unwrap();
        assert_eq!(a.events, ["connection-opened"]);
        assert_eq!(a.options["max"], "3");
        assert_eq!(a.options["path"], "/x");
        let t: toml::Table = toml::from_str("path = \"/x\"").unwrap();
        assert!(ActorSpec::from_table(&t).is_err());
    }
}
