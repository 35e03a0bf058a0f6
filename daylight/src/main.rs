//! `daylight`: one binary, a subcommand for each role.

mod key;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Daylight: a public, witnessed, audited log of exceptional-access requests.
#[derive(Parser)]
#[command(name = "daylight", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and inspect signing keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Key(cmd) => key::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line on stderr: the chain of causes, outermost first.
            eprintln!("daylight: {err:#}");
            ExitCode::FAILURE
        }
    }
}
