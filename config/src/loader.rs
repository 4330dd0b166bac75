//! Layering: embedded default or `--config` file, command line, `XGATE_*` environment.
//!
//! The layers are merged as TOML tables by hand rather than with the `config` crate: every
//! key must keep the origin of its effective value (file and line, variable, option) so that
//! errors can name it, and the `config` crate's merged tree does not say where a value came
//! from. Each key's value is also deserialized on its own first, so that a refused value is
//! attributed to exactly one key and one origin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::{Spanned, Value};

use crate::config::Config;
use crate::error::{ConfigError, Origin};
use crate::expand::Expander;

/// The embedded default configuration, used when no `--config` file is given: listens on
/// 127.0.0.1:14501 only, password file in the state dir, the invoking user's sessions.
pub const EMBEDDED_DEFAULT: &str = include_str!("../xgate-default.toml");

/// How an option takes values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// One value; a later layer or a repeated command-line option replaces it.
    Scalar,
    /// A yes/no value; `--name` alone means yes and `--no-name` means no.
    Flag,
    /// Repeatable: a string or an array in TOML, accumulated on the command line, `;`- or
    /// newline-separated in the environment.
    List,
}

/// Every option name (xpra's spelling) with its kind. `config` is not an option of the
/// struct: it selects the file (see [`parse_cli_overrides`]).
pub const OPTIONS: &[(&str, OptionKind)] = &[
    ("bind-tcp", OptionKind::List),
    ("bind-ssl", OptionKind::List),
    ("bind-ws", OptionKind::List),
    ("bind-wss", OptionKind::List),
    ("bind-ssh", OptionKind::List),
    ("bind", OptionKind::List),
    ("auth", OptionKind::List),
    ("tcp-auth", OptionKind::List),
    ("ssl-auth", OptionKind::List),
    ("ws-auth", OptionKind::List),
    ("wss-auth", OptionKind::List),
    ("ssh-auth", OptionKind::List),
    ("socket-dirs", OptionKind::List),
    ("target", OptionKind::List),
    ("max-connections", OptionKind::Scalar),
    ("max-connections-per-address", OptionKind::Scalar),
    ("login-timeout", OptionKind::Scalar),
    ("peek-timeout", OptionKind::Scalar),
    ("connect-timeout", OptionKind::Scalar),
    ("connect-retry", OptionKind::Scalar),
    ("max-packet-size", OptionKind::Scalar),
    ("max-initial-packet-size", OptionKind::Scalar),
    ("auth-failure-delay", OptionKind::Scalar),
    ("max-auth-failures", OptionKind::Scalar),
    ("auth-failure-window", OptionKind::Scalar),
    ("auth-failure-ban-time", OptionKind::Scalar),
    ("idle-timeout", OptionKind::Scalar),
    ("compression-level", OptionKind::Scalar),
    ("ssl-cert", OptionKind::Scalar),
    ("ssl-key", OptionKind::Scalar),
    ("ssl-ca-certs", OptionKind::Scalar),
    ("ssl-client-verify-mode", OptionKind::Scalar),
    ("ssl-mode", OptionKind::Scalar),
    ("ssl-server-verify-mode", OptionKind::Scalar),
    ("ssl-server-ca-certs", OptionKind::Scalar),
    ("ssh-host-key", OptionKind::Scalar),
    ("ssh-authorized-keys", OptionKind::Scalar),
    ("ssh-key", OptionKind::Scalar),
    ("ssh-known-hosts", OptionKind::Scalar),
    ("ssh-accept-new-host-keys", OptionKind::Flag),
    ("www", OptionKind::Scalar),
    ("http-headers", OptionKind::Scalar),
    ("control-socket", OptionKind::Scalar),
    ("bind-metrics", OptionKind::Scalar),
    ("actor", OptionKind::List),
    ("state-dir", OptionKind::Scalar),
    ("uid", OptionKind::Scalar),
    ("gid", OptionKind::Scalar),
    ("allow-stop", OptionKind::Flag),
    ("debug", OptionKind::List),
    ("video-encoders", OptionKind::List),
    ("reencode", OptionKind::Scalar),
    ("proxy-start-sessions", OptionKind::Flag),
    ("proxy-start-command", OptionKind::Scalar),
    ("proxy-start-timeout", OptionKind::Scalar),
];

/// `XGATE_*` variables that are not options and are left alone: `XGATE_CONFIG` (the config
/// file when no `--config` is given), `XGATE_LOG` (for the binary's log filter), and any
/// `XGATE_TEST_*` (test harnesses).
pub const RESERVED_ENV_VARS: &[&str] = &["XGATE_CONFIG", "XGATE_LOG"];

/// The kind of option `name`, or `None` if xgate has no such option.
pub fn option_kind(name: &str) -> Option<OptionKind> {
    OPTIONS.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known option closest to `name`, if it is close enough to be a likely typo.
fn suggest(name: &str) -> Option<String> {
    OPTIONS
        .iter()
        .map(|(n, _)| (levenshtein(name, n), *n))
        .min()
        .filter(|(d, n)| *d <= (n.len() / 3).max(2))
        .map(|(_, n)| n.to_owned())
}

fn unknown(key: &str, origin: Origin) -> ConfigError {
    ConfigError::UnknownKey {
        key: key.to_owned(),
        origin,
        suggestion: suggest(key),
    }
}

/// Turns `xgate run` arguments into `(option, value)` pairs, in order.
///
/// Accepted forms: `--name=value`, `--name value`, `--flag` / `--no-flag` for yes/no options,
/// `-d CATEGORIES` / `-dCATEGORIES` (= `--debug`), and `--config FILE`, returned as the pair
/// `("config", FILE)` which [`ConfigLoader::cli`] takes as the file to load. Unknown options
/// are refused with the closest known name; stray arguments are refused.
pub fn parse_cli_overrides(args: &[String]) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let (name, inline) = if let Some(rest) = arg.strip_prefix("--") {
            match rest.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (rest.to_owned(), None),
            }
        } else if let Some(rest) = arg.strip_prefix("-d") {
            (
                "debug".to_owned(),
                (!rest.is_empty()).then(|| rest.trim_start_matches('=').to_owned()),
            )
        } else {
            return Err(ConfigError::CommandLine {
                message: format!("unexpected argument {arg:?} (options are written --name=value)"),
            });
        };
        let kind = match (name.as_str(), option_kind(&name)) {
            ("config", _) => OptionKind::Scalar,
            (_, Some(k)) => k,
            (n, None) => match n.strip_prefix("no-").map(option_kind) {
                Some(Some(OptionKind::Flag)) if inline.is_none() => {
                    out.push((n["no-".len()..].to_owned(), "no".to_owned()));
                    continue;
                }
                _ => {
                    return Err(unknown(
                        &name,
                        Origin::Cli {
                            option: format!("--{name}"),
                        },
                    ))
                }
            },
        };
        let value = match (inline, kind) {
            (Some(v), _) => v,
            (None, OptionKind::Flag) => "yes".to_owned(),
            (None, _) => match args.get(i) {
                Some(v) if !v.starts_with("--") => {
                    i += 1;
                    v.clone()
                }
                _ => {
                    return Err(ConfigError::CommandLine {
                        message: format!("option --{name} needs a value (--{name}=VALUE)"),
                    })
                }
            },
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Which of the command line and the environment wins when both set a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precedence {
    /// DESIGN.md: "`XGATE_*` environment variables override both" (the default).
    #[default]
    EnvOverCli,
    /// The more common convention: the command line wins over the environment.
    CliOverEnv,
}

/// Builds a [`Config`] from the layers. See the crate documentation for the order.
#[derive(Debug, Clone)]
pub struct ConfigLoader {
    file: Option<PathBuf>,
    cli: Vec<(String, String)>,
    env: Vec<(String, String)>,
    expander: Option<Expander>,
    precedence: Precedence,
}

impl Default for ConfigLoader {
    fn default() -> Self {
        Self::new()
    }
}

type Layer = BTreeMap<String, (Value, Origin)>;

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl ConfigLoader {
    /// A loader over the process environment, with no file (the embedded default) and no
    /// command-line options.
    pub fn new() -> Self {
        ConfigLoader {
            file: None,
            cli: Vec::new(),
            env: std::env::vars().collect(),
            expander: None,
            precedence: Precedence::default(),
        }
    }

    /// Loads `path` instead of the embedded default.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Command-line pairs from [`parse_cli_overrides`]; a `("config", FILE)` pair selects the
    /// file (the last one wins).
    pub fn cli(mut self, pairs: Vec<(String, String)>) -> Self {
        for (k, v) in pairs {
            if k == "config" {
                self.file = Some(PathBuf::from(v));
            } else {
                self.cli.push((k, v));
            }
        }
        self
    }

    /// Replaces the environment snapshot (both the `XGATE_*` options and the variables used
    /// for expansion, unless [`ConfigLoader::expander`] is given). For tests and embedding.
    pub fn env<I: IntoIterator<Item = (String, String)>>(mut self, vars: I) -> Self {
        self.env = vars.into_iter().collect();
        self
    }

    /// Uses this expander instead of one built from the environment snapshot.
    pub fn expander(mut self, expander: Expander) -> Self {
        self.expander = Some(expander);
        self
    }

    /// Chooses whether the environment or the command line wins.
    pub fn precedence(mut self, precedence: Precedence) -> Self {
        self.precedence = precedence;
        self
    }

    /// The file that will be loaded: `--config`, else `XGATE_CONFIG`, else `None` (the
    /// embedded default).
    pub fn config_file(&self) -> Option<PathBuf> {
        self.file.clone().or_else(|| {
            self.env
                .iter()
                .find(|(k, v)| k == "XGATE_CONFIG" && !v.is_empty())
                .map(|(_, v)| PathBuf::from(v))
        })
    }

    /// Merges the layers, parses every value, expands paths and validates.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut merged = match self.config_file() {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
                    path: path.clone(),
                    source,
                })?;
                let p = path.clone();
                file_layer(&text, &path, move |line| Origin::File {
                    path: p.clone(),
                    line: Some(line),
                })?
            }
            None => file_layer(EMBEDDED_DEFAULT, Path::new("<embedded default>"), |line| {
                Origin::Embedded { line }
            })?,
        };
        let cli = self.cli_layer()?;
        let env = self.env_layer()?;
        let (first, second) = match self.precedence {
            Precedence::EnvOverCli => (cli, env),
            Precedence::CliOverEnv => (env, cli),
        };
        merged.extend(first);
        merged.extend(second);

        // Each key alone first, so an error is pinned to one key and its origin.
        let mut table = toml::Table::new();
        let mut origins = BTreeMap::new();
        for (key, (value, origin)) in merged {
            let mut one = toml::Table::new();
            one.insert(key.clone(), value.clone());
            if let Err(e) = Value::Table(one).try_into::<Config>() {
                return Err(ConfigError::invalid(&key, &origin, e.message()));
            }
            table.insert(key.clone(), value);
            origins.insert(key, origin);
        }
        let mut config: Config =
            Value::Table(table)
                .try_into()
                .map_err(|e| ConfigError::InvalidValue {
                    key: String::new(),
                    origin: Origin::Default,
                    reason: e.message().to_owned(),
                })?;
        config.set_origins(origins);
        let expander = match &self.expander {
            Some(e) => e.clone(),
            None => Expander::from_env(self.env.iter().cloned()),
        };
        config.expand(&expander);
        config.validate()?;
        Ok(config)
    }

    fn cli_layer(&self) -> Result<Layer, ConfigError> {
        let mut layer = Layer::new();
        for (key, value) in &self.cli {
            let origin = Origin::Cli {
                option: format!("--{key}"),
            };
            match option_kind(key) {
                None => return Err(unknown(key, origin)),
                Some(OptionKind::List) => {
                    let entry = layer
                        .entry(key.clone())
                        .or_insert_with(|| (Value::Array(Vec::new()), origin));
                    if let Value::Array(a) = &mut entry.0 {
                        a.push(Value::String(value.clone()));
                    }
                }
                Some(_) => {
                    layer.insert(key.clone(), (Value::String(value.clone()), origin));
                }
            }
        }
        Ok(layer)
    }

    fn env_layer(&self) -> Result<Layer, ConfigError> {
        let mut layer = Layer::new();
        let mut vars: Vec<&(String, String)> = self.env.iter().collect();
        vars.sort();
        for (var, value) in vars {
            let Some(rest) = var.strip_prefix("XGATE_") else {
                continue;
            };
            if RESERVED_ENV_VARS.contains(&var.as_str()) || rest.starts_with("TEST_") {
                continue;
            }
            if value.is_empty() {
                continue;
            }
            let key = rest.to_ascii_lowercase().replace('_', "-");
            let origin = Origin::Env { var: var.clone() };
            let value = match option_kind(&key) {
                None => return Err(unknown(&key, origin)),
                Some(OptionKind::List) => Value::Array(
                    split_env_list(&key, value)
                        .into_iter()
                        .map(Value::String)
                        .collect(),
                ),
                Some(_) => Value::String(value.clone()),
            };
            layer.insert(key, (value, origin));
        }
        Ok(layer)
    }
}

/// Splits a list given in one environment variable: on newlines if there is one, else on
/// `;` — except for `target`, whose session options use `;`, which splits on newlines only.
/// (Commas cannot separate: bind and auth specs contain them.)
fn split_env_list(key: &str, value: &str) -> Vec<String> {
    let parts: Vec<&str> = if value.contains('\n') || key == "target" {
        value.split('\n').collect()
    } else {
        value.split(';').collect()
    };
    parts
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn file_layer(
    text: &str,
    path: &Path,
    origin: impl Fn(usize) -> Origin,
) -> Result<Layer, ConfigError> {
    let parsed: BTreeMap<String, Spanned<Value>> =
        toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().replace('\n', "; "),
        })?;
    let mut layer = Layer::new();
    for (key, value) in parsed {
        let o = origin(line_of(text, value.span().start));
        if option_kind(&key).is_none() {
            return Err(unknown(&key, o));
        }
        layer.insert(key, (value.into_inner(), o));
    }
    Ok(layer)
}

/// Parses `args` (the arguments after `xgate run`) and loads the configuration from the
/// process environment: `ConfigLoader::new().cli(parse_cli_overrides(args)?).load()`.
pub fn load_from_args(args: &[String]) -> Result<Config, ConfigError> {
    ConfigLoader::new().cli(parse_cli_overrides(args)?).load()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::{self, Deserialize, Deserializer, Visitor};

    /// A deserializer that only records the field names a struct asks for.
    struct Fields<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("fields only"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields only"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    #[test]
    fn options_table_matches_config_fields() {
        let mut fields: &'static [&'static str] = &[];
        let _ = Config::deserialize(Fields(&mut fields));
        let mut fields: Vec<&str> = fields.to_vec();
        let mut names: Vec<&str> = OPTIONS.iter().map(|(n, _)| *n).collect();
        fields.sort_unstable();
        names.sort_unstable();
        assert_eq!(fields, names);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("bind-tpc").as_deref(), Some("bind-tcp"));
        assert_eq!(suggest("tcp_auth").as_deref(), Some("tcp-auth"));
        assert_eq!(
            suggest("max-conections").as_deref(),
            Some("max-connections")
        );
        assert_eq!(suggest("completely-different-thing"), None);
    }

    #[test]
    fn env_list_splitting() {
        assert_eq!(split_env_list("bind-tcp", "a:1;b:2"), vec!["a:1", "b:2"]);
        assert_eq!(
            split_env_list("bind-tcp", "a:1,auth=x\nb:2"),
            vec!["a:1,auth=x", "b:2"]
        );
        assert_eq!(
            split_env_list("target", "1=tcp://h/;password=x"),
            vec!["1=tcp://h/;password=x"]
        );
        assert_eq!(
            split_env_list("target", "1=/a\n2=/b;x=y"),
            vec!["1=/a", "2=/b;x=y"]
        );
    }

    #[test]
    fn lines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
