//! Path expansion as xpra's `osexpand`: `~`, `$UID`, `$GID`, `$USER`, `$HOME`,
//! `$XDG_RUNTIME_DIR`, `$XDG_STATE_HOME`, `$STATE_DIR` and other environment variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Expands variables in configuration paths.
///
/// `$NAME` and `${NAME}` are replaced when `NAME` is one of the built-in variables or is in
/// the environment given to [`Expander::from_env`]; anything else is left as written (so an
/// `exec` command's `${username}` survives). A leading `~` or `~/` is the home directory.
///
/// Built-ins: `UID`, `GID` (the process's), `USER`, `HOME` (environment, else the password
/// database), `XDG_RUNTIME_DIR` (environment, else `/run/user/$UID`), `XDG_STATE_HOME`
/// (environment, else `~/.local/state`), and `STATE_DIR` once the `state-dir` option is
/// known.
#[derive(Debug, Clone, Default)]
pub struct Expander {
    vars: BTreeMap<String, String>,
}

impl Expander {
    /// Builds the variables from an environment snapshot (normally `std::env::vars()`) and the
    /// process's own uid and gid.
    pub fn from_env<I: IntoIterator<Item = (String, String)>>(env: I) -> Self {
        let mut vars: BTreeMap<String, String> = env.into_iter().collect();
        let ids = crate::accounts::process_ids();
        if let Some((uid, gid)) = ids {
            vars.insert("UID".into(), uid.to_string());
            vars.insert("GID".into(), gid.to_string());
        }
        let pw = ids.and_then(|(uid, _)| crate::accounts::by_uid(uid));
        if !vars.contains_key("USER") {
            let user = vars
                .get("LOGNAME")
                .cloned()
                .or_else(|| pw.as_ref().map(|p| p.name.clone()));
            if let Some(u) = user {
                vars.insert("USER".into(), u);
            }
        }
        if !vars.contains_key("HOME") {
            if let Some(account) = &pw {
                vars.insert("HOME".into(), account.home.to_string_lossy().into_owned());
            }
        }
        let mut e = Expander { vars };
        e.fill_defaults();
        e
    }

    /// An expander with exactly these variables (plus the derived defaults for
    /// `XDG_RUNTIME_DIR` and `XDG_STATE_HOME`); for tests and for callers that know better.
    pub fn with_vars<I: IntoIterator<Item = (String, String)>>(vars: I) -> Self {
        let mut e = Expander {
            vars: vars.into_iter().collect(),
        };
        e.fill_defaults();
        e
    }

    fn fill_defaults(&mut self) {
        if !self.vars.contains_key("XDG_RUNTIME_DIR") {
            if let Some(uid) = self.vars.get("UID").cloned() {
                self.vars
                    .insert("XDG_RUNTIME_DIR".into(), format!("/run/user/{uid}"));
            }
        }
        if !self.vars.contains_key("XDG_STATE_HOME") {
            if let Some(home) = self.vars.get("HOME").cloned() {
                self.vars
                    .insert("XDG_STATE_HOME".into(), format!("{home}/.local/state"));
            }
        }
    }

    /// Sets (or replaces) one variable, e.g. `STATE_DIR`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_owned(), value.into());
    }

    /// The value of a variable, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Expands `~` and variables in `text`.
    pub fn expand(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        if let Some(after) = text.strip_prefix('~') {
            if after.is_empty() || after.starts_with('/') {
                if let Some(home) = self.get("HOME") {
                    out.push_str(home);
                    rest = after;
                }
            }
        }
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, len) = if let Some(inner) = after.strip_prefix('{') {
                match inner.find('}') {
                    Some(j) => (&inner[..j], j + 2),
                    None => ("", 0),
                }
            } else {
                let j = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..j], j)
            };
            match self.vars.get(name) {
                Some(v) if !name.is_empty() => {
                    out.push_str(v);
                    rest = &after[len..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Expands a path.
    pub fn expand_path(&self, path: &Path) -> PathBuf {
        match path.to_str() {
            Some(s) => PathBuf::from(self.expand(s)),
            None => path.to_path_buf(),
        }
    }
}
