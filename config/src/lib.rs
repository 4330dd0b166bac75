//! xgate configuration: xpra's option names and value syntax, from an embedded default or a
//! TOML file (`--config`), the command line and `XGATE_*` environment variables.
//!
//! ```no_run
//! # fn main() -> Result<(), xgate_config::ConfigError> {
//! let args: Vec<String> = std::env::args().skip(2).collect(); // after `xgate run`
//! let config = xgate_config::ConfigLoader::new()
//!     .cli(xgate_config::parse_cli_overrides(&args)?)
//!     .load()?; // parsed, expanded and validated
//! println!("{:?}", config.bind_tcp);
//! # Ok(()) }
//! ```
//!
//! Layers, lowest first: the struct defaults ([`Config::default`]); the embedded default file
//! ([`EMBEDDED_DEFAULT`]) *or* the `--config` file, which replaces it; command-line options;
//! `XGATE_*` variables (DESIGN.md: "Command-line options override the file; `XGATE_*`
//! environment variables override both"; see [`Precedence`] to swap the last two). A layer
//! that sets a key replaces that key's whole value (lists included). Every value remembers its
//! [`Origin`], and every error names the key and that origin.
//!
//! Syntax per layer (option names and kinds: [`OPTIONS`]):
//! - TOML: `bind-tcp = "0.0.0.0:14501"` or `bind-tcp = ["a", "b"]`; numbers, durations
//!   (`31`, `"500ms"`) and sizes (`16777216`, `"16M"`) as integers or strings. Unknown keys
//!   and tables are refused.
//! - Command line ([`parse_cli_overrides`]): `--name=value`, `--name value`, `--flag`,
//!   `--no-flag`, `-d auth,network`, `--config FILE`. A repeated list option accumulates and
//!   replaces the file's list; `--bind-tcp=` (empty) clears a list. The last scalar wins.
//! - Environment: `XGATE_BIND_TCP` for `bind-tcp` (upper case, `_` for `-`). A list is split
//!   on newlines if the value has one, else on `;` (not on commas: bind and auth specs have
//!   them); `XGATE_TARGET` splits on newlines only, since session options use `;`. An empty
//!   variable counts as unset. `XGATE_CONFIG` names the file when `--config` is absent;
//!   `XGATE_LOG` and `XGATE_TEST_*` are ignored; any other unknown `XGATE_*` is an error.
//!
//! Paths are expanded after merging (see [`Expander`]): `~`, `$HOME`, `$USER`, `$UID`,
//! `$GID`, `$XDG_RUNTIME_DIR`, `$XDG_STATE_HOME` and `$STATE_DIR` (the `state-dir` value).
#![forbid(unsafe_code)]

pub mod accounts;
mod actor;
mod config;
mod de;
mod error;
mod expand;
mod loader;
mod values;

pub use actor::ActorSpec;
pub use config::{Config, ListenerKind, DEFAULT_SOCKET_DIRS, DEFAULT_VIDEO_ENCODERS};
pub use error::{ConfigError, Origin, ValueError};
pub use expand::Expander;
pub use loader::{
    load_from_args, option_kind, parse_cli_overrides, ConfigLoader, OptionKind, Precedence,
    EMBEDDED_DEFAULT, OPTIONS, RESERVED_ENV_VARS,
};
pub use values::{
    parse_bool, parse_display, parse_duration, parse_options, parse_session_options, parse_size,
    AuthSpec, BindHost, BindSpec, ClientVerifyMode, DebugCategory, Display, Options, ReencodeMode,
    SslMode, TargetSpec, TargetUri, UnixBindSpec, UserSpec, KNOWN_AUTH_MODULES, XPRA_DEFAULT_PORT,
};
