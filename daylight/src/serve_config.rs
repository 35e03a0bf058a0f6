//! `daylight log serve` settings: command-line flags over a TOML file
//! (`--config FILE`) over defaults. With several frontends an operator keeps
//! one file per frontend instead of long command lines; every flag has a key
//! of the same name, and a key the file should not have is an error naming it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

/// How the server writes its logs.
#[derive(clap::ValueEnum, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for a log aggregator.
    Json,
}

/// The flags of `daylight log serve`; each may also come from the file.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (keys as the flags are
    /// named, e.g. `dir = "/var/lib/daylight"`, `key-rate = 50`); flags
    /// given on the command line win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The log's directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Records per second each registered key may submit, with bursts of
    /// ten times that; beyond it, 429. 0 turns the limit off [default: 100].
    #[arg(long)]
    pub key_rate: Option<f64>,
    /// This frontend's name in the sequencer lease, when several serve one
    /// database [default: the host name].
    #[arg(long)]
    pub name: Option<String>,
    /// Log lines as text or JSON [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Publish the log as static C2SP tlog-tiles files in this directory
    /// (created if missing), for any web server or CDN to serve.
    #[arg(long, value_name = "DIR", conflicts_with = "publish")]
    pub publish_dir: Option<PathBuf>,
    /// Publish to an S3-compatible bucket, `s3://BUCKET[/PREFIX]`;
    /// credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long, value_name = "S3_URL")]
    pub publish: Option<String>,
    /// The bucket's endpoint, for anything but AWS (R2, MinIO, Ceph, ...).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The bucket's region [default: AWS_REGION, else us-east-1].
    #[arg(long)]
    pub s3_region: Option<String>,
    /// Address the bucket as BUCKET.HOST (virtual-hosted style) instead of
    /// HOST/BUCKET (path style, the default).
    #[arg(long)]
    pub s3_virtual_hosted: bool,
}

/// The same settings as read from a TOML file.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServeFile {
    dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    key_rate: Option<f64>,
    name: Option<String>,
    log_format: Option<LogFormat>,
    publish_dir: Option<PathBuf>,
    publish: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_virtual_hosted: Option<bool>,
}

/// Where `log serve` and `log migrate` publish tiles.
#[derive(Clone, Debug, Default)]
pub struct Publication {
    /// A directory.
    pub dir: Option<PathBuf>,
    /// An `s3://` URL.
    pub s3: Option<String>,
    /// The bucket's endpoint.
    pub endpoint: Option<String>,
    /// The bucket's region.
    pub region: Option<String>,
    /// Virtual-hosted addressing.
    pub virtual_hosted: bool,
}

impl Publication {
    /// The publication target these settings name, if any.
    pub fn target(&self) -> Result<Option<daylight_log_server::publish::Target>> {
        use daylight_log_server::publish::{S3Options, Target};
        if self.s3.is_none()
            && (self.endpoint.is_some() || self.region.is_some() || self.virtual_hosted)
        {
            bail!("s3-endpoint, s3-region and s3-virtual-hosted apply only with publish = \"s3://...\"");
        }
        Ok(match (&self.dir, &self.s3) {
            (Some(_), Some(_)) => bail!("publish-dir and publish (a bucket) exclude each other"),
            (Some(dir), None) => Some(Target::directory(dir).context("--publish-dir")?),
            (None, Some(url)) => Some(
                Target::s3(
                    url,
                    &S3Options {
                        endpoint: self.endpoint.clone(),
                        region: self.region.clone(),
                        virtual_hosted: self.virtual_hosted,
                        credentials: None,
                    },
                )
                .context("--publish")?,
            ),
            (None, None) => None,
        })
    }
}

/// `log serve`'s settings, resolved.
#[derive(Clone, Debug)]
pub struct ServeSettings {
    /// The log's directory.
    pub dir: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Per-key submissions per second (0: no limit).
    pub key_rate: f64,
    /// The frontend's name in the lease.
    pub name: Option<String>,
    /// How to log.
    pub log_format: LogFormat,
    /// Where tiles go.
    pub publication: Publication,
}

fn read_file(path: &Path) -> Result<ServeFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // toml's message spans lines (it quotes the file); keep its first one,
    // which names the key and the line.
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().to_string();
        let line = e.span().map(|s| {
            text.as_bytes()[..s.start.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        });
        match line {
            Some(l) => anyhow::anyhow!("{}: line {l}: {msg}", path.display()),
            None => anyhow::anyhow!("{}: {msg}", path.display()),
        }
    })
}

impl ServeArgs {
    /// Flags over the file over defaults.
    pub fn resolve(&self) -> Result<ServeSettings> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => ServeFile::default(),
        };
        let dir = self
            .dir
            .clone()
            .or(file.dir)
            .context("no log directory: give --dir, or dir = \"...\" in the --config file")?;
        let key_rate = self.key_rate.or(file.key_rate).unwrap_or(100.0);
        if !(key_rate.is_finite() && key_rate >= 0.0) {
            bail!("key-rate must be a number of records per second, 0 or more");
        }
        let default_listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        // A flag for one publication target replaces the file's, whichever.
        let (pub_dir, pub_s3) = if self.publish_dir.is_some() || self.publish.is_some() {
            (self.publish_dir.clone(), self.publish.clone())
        } else {
            (file.publish_dir, file.publish)
        };
        Ok(ServeSettings {
            dir,
            listen: self.listen.or(file.listen).unwrap_or(default_listen),
            key_rate,
            name: self.name.clone().or(file.name),
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            publication: Publication {
                dir: pub_dir,
                s3: pub_s3,
                endpoint: self.s3_endpoint.clone().or(file.s3_endpoint),
                region: self.s3_region.clone().or(file.s3_region),
                virtual_hosted: self.s3_virtual_hosted || file.s3_virtual_hosted.unwrap_or(false),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("serve.toml");
        std::fs::write(&path, text).unwrap();
        (tmp, path)
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let (_t, path) = file(
            "dir = \"/srv/log\"\nlisten = \"127.0.0.1:9000\"\nkey-rate = 5\n\
             log-format = \"json\"\npublish = \"s3://b/p\"\ns3-endpoint = \"http://127.0.0.1:9\"\n",
        );
        let args = ServeArgs {
            config: Some(path),
            key_rate: Some(7.0),
            ..Default::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.dir, PathBuf::from("/srv/log"));
        assert_eq!(s.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(s.key_rate, 7.0);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.publication.s3.as_deref(), Some("s3://b/p"));
        assert_eq!(
            s.publication.endpoint.as_deref(),
            Some("http://127.0.0.1:9")
        );
        let bare = ServeArgs {
            dir: Some("/d".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(bare.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!((bare.key_rate, bare.log_format), (100.0, LogFormat::Text));
        assert!(bare.publication.target().unwrap().is_none());
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let (_t, path) = file("dir = \"/d\"\nkey_rate = 5\n");
        let err = ServeArgs {
            config: Some(path),
            ..Default::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("key_rate") && err.contains("line 2"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn bad_values_and_missing_settings_are_errors() {
        for (text, expect) in [
            ("dir = 5\n", "line 1"),
            ("dir = \"/d\"\nlisten = \"nowhere\"\n", "line 2"),
            ("dir = \"/d\"\nkey-rate = -1\n", "key-rate"),
            ("listen = \"127.0.0.1:1\"\n", "no log directory"),
            ("dir = \"/d\"\nlog-format = \"xml\"\n", "line 2"),
        ] {
            let (_t, path) = file(text);
            let err = ServeArgs {
                config: Some(path),
                ..Default::default()
            }
            .resolve()
            .unwrap_err()
            .to_string();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
        let missing = ServeArgs {
            config: Some("/nonexistent/serve.toml".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{missing:#}").contains("/nonexistent/serve.toml"));
        let stray = Publication {
            endpoint: Some("http://x".into()),
            ..Default::default()
        };
        assert!(stray.target().is_err());
    }
}
