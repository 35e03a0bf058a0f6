//! Progress: an indicatif bar on a terminal, plain lines otherwise, or nothing.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How to show progress (on stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar if stderr is a terminal, else plain lines.
    Auto,
    /// Plain lines.
    Plain,
    /// Nothing.
    Off,
}

/// One phase's progress.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    label: String,
    total: u64,
    done: u64,
    last: Instant,
}

impl Progress {
    /// Starts a phase of `total` steps.
    pub fn start(mode: ProgressMode, label: &str, total: u64) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let (bar, plain) = match mode {
            ProgressMode::Off => (None, false),
            ProgressMode::Auto if terminal => {
                let bar = ProgressBar::new(total);
                let style = ProgressStyle::with_template(
                    "{msg:>18} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
                )
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.set_message(label.to_owned());
                (Some(bar), false)
            }
            _ => (None, true),
        };
        if plain && total > 0 {
            eprintln!("{label}: 0/{total}");
        }
        Progress {
            bar,
            plain,
            label: label.to_owned(),
            total,
            done: 0,
            last: Instant::now(),
        }
    }

    /// `n` more steps done.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(b) = &self.bar {
            b.inc(n);
        } else if self.plain && self.last.elapsed() >= Duration::from_secs(2) {
            self.last = Instant::now();
            eprintln!("{}: {}/{}", self.label, self.done, self.total);
        }
    }

    /// The phase is over.
    pub fn finish(self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        } else if self.plain && self.total > 0 {
            eprintln!("{}: {}/{} done", self.label, self.done, self.total);
        }
    }
}
