//! The crate's one error type, and where a value came from.

use std::fmt;
use std::path::PathBuf;

/// Where the effective value of a key came from.
///
/// Every error about a value names it, so that an operator knows which of the four layers
/// (struct defaults, embedded default or `--config` file, command line, environment) to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The value built into [`crate::Config::default`] (no layer set the key).
    Default,
    /// The embedded default configuration file (used when no `--config` is given).
    Embedded {
        /// 1-based line of the key's value in the embedded file.
        line: usize,
    },
    /// A TOML file given with `--config`.
    File {
        /// The file as given.
        path: PathBuf,
        /// 1-based line of the key's value; `None` when unknown.
        line: Option<usize>,
    },
    /// An `XGATE_*` environment variable.
    Env {
        /// The variable's name, e.g. `XGATE_BIND_TCP`.
        var: String,
    },
    /// A command-line option.
    Cli {
        /// The option as written by the user's key, e.g. `--bind-tcp`.
        option: String,
    },
}

impl fmt::Display for Origin {
    /// Renders as a phrase that follows the key in messages: `in FILE:LINE`,
    /// `from environment variable XGATE_X`, `from the command line (--x)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("in the built-in defaults"),
            Origin::Embedded { line } => {
                write!(f, "in the embedded default configuration (line {line})")
            }
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "in {}:{line}", path.display()),
            Origin::File { path, line: None } => write!(f, "in {}", path.display()),
            Origin::Env { var } => write!(f, "from environment variable {var}"),
            Origin::Cli { option } => write!(f, "from the command line ({option})"),
        }
    }
}

/// A value that does not parse, as reported by the typed parsers ([`crate::BindSpec`] and
/// friends) before a key and an origin are known.
///
/// Displays as `"VALUE": REASON`, which [`ConfigError::InvalidValue`] embeds after the key and
/// origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?}: {reason}")]
pub struct ValueError {
    /// The offending text, as written.
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

impl ValueError {
    /// A refusal of `value` for `reason`.
    pub fn new(value: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// Everything that can go wrong while loading or validating the configuration.
///
/// Each variant names the key and the [`Origin`] where one applies; none is worth retrying
/// (a configuration error needs a person to fix it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value that does not parse or breaks a rule (e.g. a port out of range).
    #[error("invalid value for '{key}' {origin}: {reason}")]
    InvalidValue {
        /// The option name (xpra's spelling, e.g. `bind-tcp`).
        key: String,
        /// Where the refused value came from.
        origin: Origin,
        /// Why, usually `"VALUE": reason`.
        reason: String,
    },
    /// An option name that xgate does not know (a typo, usually).
    #[error("unknown option '{key}' {origin}{}", suggestion_text(.suggestion))]
    UnknownKey {
        /// The name as written (for the environment: converted to an option name).
        key: String,
        /// Where it was written.
        origin: Origin,
        /// The closest known option name, if one is close.
        suggestion: Option<String>,
    },
    /// A TOML syntax error.
    #[error("syntax error in {} at line {line}: {message}", path.display())]
    Syntax {
        /// The file (or `<embedded default>`).
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// The parser's description.
        message: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        /// The file as given.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A malformed command line (missing value, stray argument).
    #[error("invalid command line: {message}")]
    CommandLine {
        /// What is wrong, naming the argument.
        message: String,
    },
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    }
}

impl ConfigError {
    /// Configuration errors are never transient: retrying without a change gives the same error.
    pub fn is_retryable(&self) -> bool {
        false
    }

    /// The option the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::InvalidValue { key, .. } | ConfigError::UnknownKey { key, .. } => {
                Some(key)
            }
            _ => None,
        }
    }

    /// Where the offending value came from, when known.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ConfigError::InvalidValue { origin, .. } | ConfigError::UnknownKey { origin, .. } => {
                Some(origin)
            }
            _ => None,
        }
    }

    pub(crate) fn invalid(key: &str, origin: &Origin, reason: impl Into<String>) -> Self {
        ConfigError::InvalidValue {
            key: key.to_owned(),
            origin: origin.clone(),
            reason: reason.into(),
        }
    }
}
