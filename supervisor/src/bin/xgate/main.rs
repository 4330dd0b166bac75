//! `xgate`: the gateway binary.
//!
//! ```text
//! xgate run [--config FILE] [--bind-tcp=ADDR ...]   run the gateway (xpra's option names)
//! xgate ctl [--json] COMMAND [ARGS]                talk to a running gateway
//! xgate auth-db DATABASE COMMAND [ARGS]          xpra's sqlite tool (create, add, remove, list, authenticate)
//! xgate version                                    print the version
//! ```
#![forbid(unsafe_code)]

mod authdb;
mod bind;
mod control;
mod ctl;
mod privileges;
mod run;
mod state;
mod tree;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// xgate: one door in front of many xpra sessions.
#[derive(Debug, Parser)]
#[command(name = "xgate", version, about)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway. Options are xpra's (`--bind-tcp=0.0.0.0:14501`, `--tcp-auth=...`) and
    /// override the config file (`--config FILE`, else the embedded default); `XGATE_*`
    /// environment variables override both.
    Run {
        /// Options, as `--name=value` or `--name value`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        options: Vec<String>,
    },
    /// Talk to a running gateway through its control socket (`xgate ctl help`).
    Ctl(ctl::CtlArgs),
    /// Manage a user database like xpra's sqlite tool: `create`, `add username password [uid gid
    /// displays env_options session_options]`, `remove username [password]`, `list`,
    /// `authenticate username password`. DATABASE is a sqlite file, `sqlite:///PATH` or
    /// `postgresql://user:password@host:port/dbname`.
    #[command(name = "auth-db")]
    AuthDb {
        /// The database.
        database: String,
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::AuthDb { database, args } => match authdb::run(&database, &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Command::Ctl(args) => ctl::ctl(&args),
        Command::Version => {
            println!("xgate {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Run { options } => match run::run(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xgate: {e}");
                ExitCode::from(1)
            }
        },
    }
}
