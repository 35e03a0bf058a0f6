//! `daylight audit`: mirror and verify a log, apply the rules, write
//! `DIR/findings.json`; exit 0 clean, 1 rule findings, 2 integrity failure,
//! 3 when the audit could not run. `daylight audit report`: the
//! transparency report from the verified mirror.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use daylight_auditor::{audit, AuditDir, AuditOptions, ProgressMode, Rules, Status};

/// Audit arguments.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    /// The log's base URL, e.g. http://127.0.0.1:8080, or a mirror's
    /// monitoring prefix for it, MIRROR/<hex sha256(origin)> (tiles only:
    /// the key comes from --log-key, the directory, or the mirror's /logs).
    #[arg(long, required = true)]
    log: Option<String>,
    /// The audit directory: mirror, kept checkpoints, evidence, findings.json.
    #[arg(long, required = true)]
    dir: Option<PathBuf>,
    /// The log's first key (`name+keyid+base64`), obtained out of band: the
    /// chain of log keys starts there instead of at the oldest key the log
    /// presents on the first run (trust on first use). A directory pinned to
    /// another key refuses to run.
    #[arg(long = "log-key")]
    log_key: Option<String>,
    /// A witness's monitoring URL prefix to compare checkpoints with (besides
    /// the witnesses the log lists); repeatable.
    #[arg(long = "witness")]
    witnesses: Vec<String>,
    /// A C2SP tlog-mirror of the log to compare with it once the log is
    /// verified: its monitoring prefix MIRROR/<hex sha256(origin)> (or its
    /// base URL); repeatable.
    #[arg(long = "mirror")]
    mirrors: Vec<String>,
    /// At most this many tiles and entry bundles fetched from each mirror
    /// per run and compared with the verified tree.
    #[arg(long = "mirror-sample", default_value_t = daylight_auditor::mirrors::DEFAULT_SAMPLE)]
    mirror_sample: usize,
    /// Keep polling for new checkpoints until Ctrl-C (or an integrity failure).
    #[arg(long)]
    follow: bool,
    /// Seconds between polls with --follow.
    #[arg(long, default_value_t = 30)]
    interval: u64,
    /// With --follow, stop after this many audits.
    #[arg(long)]
    max_rounds: Option<u64>,
    /// Rule thresholds, a JSON file (see auditor/README.md).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// The time to evaluate the rules at (RFC 3339), default now.
    #[arg(long)]
    now: Option<String>,
    /// Threads for parsing and signature checks (default: every core).
    #[arg(long)]
    threads: Option<usize>,
}

/// Audit subcommands.
#[derive(Subcommand)]
enum AuditCommand {
    /// Write the transparency report (Markdown, CSV, JSON) to DIR/report/ from
    /// the verified mirror; prints the Markdown.
    Report {
        /// The audit directory of an earlier `daylight audit`.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Runs `daylight audit`. Exits the process with 1 or 2 on findings.
pub fn run(args: AuditArgs) -> Result<()> {
    if let Some(AuditCommand::Report { dir }) = args.command {
        let dir = AuditDir::open(&dir)?;
        let report = daylight_auditor::report::write_report(&dir)?;
        print!("{}", report.to_markdown());
        eprintln!(
            "wrote {}/report/report.{{md,csv,json}}",
            dir.path().display()
        );
        return Ok(());
    }
    let code = match audit_command(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("daylight: {err:#}");
            3
        }
    };
    let _ = std::io::stdout().flush();
    if code != 0 {
        std::process::exit(i32::from(code));
    }
    Ok(())
}

fn audit_command(args: AuditArgs) -> Result<u8> {
    let (Some(log), Some(dir)) = (args.log, args.dir) else {
        anyhow::bail!("--log and --dir are required");
    };
    let mut opts = AuditOptions::new(&log, dir);
    opts.witnesses = args.witnesses;
    opts.mirrors = args.mirrors;
    opts.mirror_sample = args.mirror_sample;
    opts.trusted_key = args.log_key;
    opts.progress = ProgressMode::Auto;
    if let Some(t) = args.threads {
        opts.threads = t.max(1);
    }
    if let Some(path) = &args.rules {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        opts.rules = Rules::from_json(&text)?;
    }
    let fixed_now = match &args.now {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--now {t:?} is not RFC 3339"))?
                .with_timezone(&chrono::Utc),
        ),
        None => None,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut round = 0u64;
        loop {
            round += 1;
            opts.now = fixed_now.unwrap_or_else(chrono::Utc::now);
            let result = tokio::select! {
                r = audit(&opts) => r,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("interrupted; run again to resume");
                    return Ok(3);
                }
            };
            let (report, _) = result.map_err(|e| explain(e, &opts.log_url))?;
            print!("{}", report.summary());
            println!("findings: {}", opts.dir.join("findings.json").display());
            let _ = std::io::stdout().flush();
            let done = !args.follow
                || report.status == Status::IntegrityFailure
                || args.max_rounds.is_some_and(|m| round >= m);
            if done {
                return Ok(report.exit_code);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(args.interval.max(1))) => {}
                _ = tokio::signal::ctrl_c() => return Ok(report.exit_code),
            }
        }
    })
}

/// An audit that could not start, with what to check: a log that does not
/// answer its first request is most likely not there.
fn explain(err: daylight_auditor::AuditError, log: &str) -> anyhow::Error {
    match &err {
        daylight_auditor::AuditError::Fetch { url, .. }
            if url.ends_with("/api/v1/log") || url.ends_with("/checkpoint") =>
        {
            anyhow::anyhow!(
                "{err}; is a Daylight log (or a mirror's prefix for it) serving at {log}? check --log"
            )
        }
        _ => err.into(),
    }
}
