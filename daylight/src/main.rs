//! `daylight`: one binary, a subcommand for each role.

mod agency;
mod audit;
mod bench;
mod custodian;
mod demo;
mod escrow;
mod gate;
mod key;
mod log;
mod migrate;
mod mirror;
mod serve_config;
mod witness;

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
    /// Create, configure and serve a log.
    #[command(subcommand)]
    Log(log::LogCommand),
    /// Submit requests to a log as an agency or court.
    #[command(subcommand)]
    Agency(agency::AgencyCommand),
    /// The provider's offline release gate: verify a bundle under a policy.
    #[command(subcommand)]
    Gate(gate::GateCommand),
    /// The whole system on this machine: a log, three witnesses, sample data,
    /// a provider policy, a ready bundle and the auditor.
    Demo(demo::DemoArgs),
    /// Load generators for benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run a C2SP tlog-witness that cosigns logs' checkpoints.
    #[command(subcommand)]
    Witness(witness::WitnessCommand),
    /// Run a C2SP tlog-mirror that stores logs' entries and cosigns what it holds.
    #[command(subcommand)]
    Mirror(mirror::MirrorCommand),
    /// Threshold custody: a custodian holding one share of each escrowed
    /// key, released only for a verified request after its own receipt is
    /// in the log.
    #[command(subcommand)]
    Custodian(custodian::CustodianCommand),
    /// Threshold custody: split a key among custodians, recover it for a
    /// request bundle.
    #[command(subcommand)]
    Escrow(escrow::EscrowCommand),
    /// Mirror and verify a log, apply the rules, write DIR/findings.json
    /// (exit 0 clean, 1 findings, 2 integrity failure).
    Audit(audit::AuditArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Servers report what they do; one-shot commands speak only on trouble.
    let serving = matches!(
        cli.command,
        Command::Log(log::LogCommand::Serve { .. })
            | Command::Witness(witness::WitnessCommand::Serve { .. })
            | Command::Mirror(mirror::MirrorCommand::Serve { .. })
            | Command::Custodian(custodian::CustodianCommand::Serve { .. })
    );
    let format = match &cli.command {
        Command::Log(log::LogCommand::Serve(args)) => match args.resolve() {
            Ok(settings) => settings.log_format,
            Err(err) => {
                eprintln!("daylight: {err:#}");
                return ExitCode::FAILURE;
            }
        },
        _ => serve_config::LogFormat::Text,
    };
    init_tracing(if serving { "info" } else { "warn" }, format);
    let result = match cli.command {
        Command::Key(cmd) => key::run(cmd),
        Command::Log(cmd) => log::run(cmd),
        Command::Agency(cmd) => agency::run(cmd),
        Command::Gate(cmd) => gate::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Demo(args) => demo::run(args),
        Command::Witness(cmd) => witness::run(cmd),
        Command::Mirror(cmd) => mirror::run(cmd),
        Command::Custodian(cmd) => custodian::run(cmd),
        Command::Escrow(cmd) => escrow::run(cmd),
        Command::Audit(args) => audit::run(args),
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

/// Logs go to stderr, as text or one JSON object a line; `RUST_LOG`
/// overrides the default level.
fn init_tracing(default: &str, format: serve_config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        serve_config::LogFormat::Text => builder.try_init(),
        serve_config::LogFormat::Json => builder.json().try_init(),
    };
}
