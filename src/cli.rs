//! The command line, in Prometheus exporter conventions (`--web.listen-address`,
//! `--poll.interval`...), and its translation into a validated configuration. Every flag
//! is global: it works the same before or after a subcommand's name.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{defaults, Config, ConfigError, FileConfig, Overrides, PollConfig};
use crate::logging::LogFormat;
use crate::shard::Shard;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "wolkvox-exporter",
    version,
    // A flag given again wins, so a container's entrypoint flags can be overridden.
    args_override_self = true,
    about = "Prometheus exporter for Wolkvox contact centers: per-agent transfers, conferences, calls and transfer destinations"
)]
pub struct Args {
    /// YAML configuration file (one or many operations).
    #[arg(long = "config.file", value_name = "PATH", global = true)]
    pub config_file: Option<PathBuf>,
    /// Address to listen on; `:9798` means every interface.
    #[arg(long = "web.listen-address", default_value = ":9798", value_name = "ADDR", global = true)]
    pub listen_address: String,
    /// Path under which metrics are served.
    #[arg(long = "web.telemetry-path", default_value = "/metrics", value_name = "PATH", global = true)]
    pub telemetry_path: String,
    /// Web configuration file (TLS and basic auth, exporter-toolkit format).
    #[arg(long = "web.config.file", value_name = "PATH", global = true)]
    pub web_config_file: Option<PathBuf>,
    /// Log level: trace, debug, info, warn, error.
    #[arg(long = "log.level", default_value = "info", value_name = "LEVEL", global = true)]
    pub log_level: String,
    /// Log format.
    #[arg(long = "log.format", value_enum, default_value = "logfmt", global = true)]
    pub log_format: LogFormat,
    /// How often each report is polled; under 5m only with --poll.allow-fast.
    #[arg(long = "poll.interval", value_name = "DURATION", global = true, default_value_t = PollConfig::default().interval.into())]
    pub poll_interval: humantime::Duration,
    /// Trailing period re-read every cycle to catch late records.
    #[arg(long = "poll.overlap", value_name = "DURATION", global = true, default_value_t = PollConfig::default().overlap.into())]
    pub poll_overlap: humantime::Duration,
    /// The newest period not read yet (the API's records settle).
    #[arg(long = "poll.delay", value_name = "DURATION", global = true, default_value_t = PollConfig::default().delay.into())]
    pub poll_delay: humantime::Duration,
    /// How far back the first start reads.
    #[arg(long = "poll.catch-up", value_name = "DURATION", global = true, default_value_t = PollConfig::default().catch_up.into())]
    pub poll_catch_up: humantime::Duration,
    /// Accept a poll interval under the API's 5m cadence.
    #[arg(long = "poll.allow-fast", global = true)]
    pub poll_allow_fast: bool,
    /// How long after a local day's end a daily report compares it.
    #[arg(long = "reconcile.delay", value_name = "DURATION", global = true, default_value_t = PollConfig::default().reconcile_delay.into())]
    pub reconcile_delay: humantime::Duration,
    /// Where the persisted state lives.
    #[arg(long = "state.path", value_name = "PATH", global = true, default_value = defaults::STATE_PATH)]
    pub state_path: PathBuf,
    /// Run against the built-in simulated operation; no credentials needed.
    #[arg(long, global = true)]
    pub demo: bool,
    /// Follow only the operations whose name hashes to shard I of N replicas.
    #[arg(long, value_name = "I/N", default_value = "0/1", global = true)]
    pub shard: Shard,
    /// Without a subcommand the exporter runs and serves its metrics.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The flags given on the command line (the others are defaults, which the
    /// configuration file overrides).
    #[arg(skip)]
    pub given: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Checks each operation once (token, caller IP, reports, allowance, plan), prints
    /// what it found and exits: 0 when everything works, 1 otherwise. Spends one
    /// request per enabled report and one (token_info) per operation.
    Check,
    /// Reads the enabled reports' history into an OpenMetrics file for `promtool tsdb
    /// create-blocks-from openmetrics`, and writes the state file (--state.path, which
    /// must not exist) that the exporter then continues from. Exit status 0 when done;
    /// 1 when stopped early (it says whether the same command resumes); 2 when refused
    /// before its first report request (bad usage, paths, the state's lock, the cost).
    Backfill(crate::backfill::Options),
}

/// The demo's settings where no flag says otherwise: 15 s cycles, its whole history read
/// on the first start (`wolkvox_sim::DEMO_HISTORY`), its own state file.
const DEMO_INTERVAL: Duration = Duration::from_secs(15);
const DEMO_CATCH_UP: Duration = Duration::from_secs(35 * 86_400);
const DEMO_STATE_PATH: &str = "data/demo-state.json";
/// The demo's licenses: a limit of 1,000,000 requests a day, what the simulated API reports
/// for a token without one (enough for 1 s cycles of every report).
pub const DEMO_LICENSES: u32 = 1000;

/// The demo's operation, as a configuration file would give it: every report, served by
/// the simulated API at `base_url`.
pub fn demo_operation(base_url: &str, token: &str) -> crate::config::FileOperation {
    crate::config::FileOperation {
        name: Some("demo".into()),
        base_url: Some(base_url.to_owned()),
        token: Some(crate::config::Token::new(token.to_owned())),
        licenses: Some(DEMO_LICENSES),
        reports: Some(crate::reports::KINDS.iter().map(|k| (k.name.to_string(), None)).collect()),
        ..crate::config::FileOperation::default()
    }
}

impl Args {
    /// Parses a command line, noting which flags it gave.
    pub fn parse_from<I, T>(args: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Args::command().try_get_matches_from(args)?;
        let mut args = Args::from_arg_matches(&matches)?;
        let mut all = vec![&matches];
        all.extend(matches.subcommand().map(|(_, m)| m));
        args.given = Args::command()
            .get_arguments()
            .map(|a| a.get_id().as_str().to_owned())
            .filter(|id| {
                all.iter().any(|m| {
                    m.try_contains_id(id).unwrap_or(false)
                        && m.value_source(id) == Some(ValueSource::CommandLine)
                })
            })
            .collect();
        Ok(args)
    }

    fn given(&self, id: &str) -> bool {
        self.given.iter().any(|g| g == id)
    }

    pub fn overrides(&self) -> Overrides {
        let flag = |id: &str, value: humantime::Duration, demo: Option<Duration>| {
            if self.given(id) {
                Some(*value)
            } else {
                demo.filter(|_| self.demo)
            }
        };
        Overrides {
            interval: flag("poll_interval", self.poll_interval, Some(DEMO_INTERVAL)),
            overlap: flag("poll_overlap", self.poll_overlap, None),
            delay: flag("poll_delay", self.poll_delay, None),
            catch_up: flag("poll_catch_up", self.poll_catch_up, Some(DEMO_CATCH_UP)),
            allow_fast: self.poll_allow_fast || self.demo,
            state_path: if self.given("state_path") {
                Some(self.state_path.clone())
            } else {
                self.demo.then(|| PathBuf::from(DEMO_STATE_PATH))
            },
            reconcile_delay: flag("reconcile_delay", self.reconcile_delay, None),
        }
    }

    /// Reads the file (if any) and builds the configuration, every operation of it (the
    /// command keeps the shard's); in demo mode, `demo_operation` replaces the file's.
    pub fn config(
        &self,
        env: impl Fn(&str) -> Option<String>,
        demo_operation: Option<crate::config::FileOperation>,
    ) -> Result<Config, ConfigError> {
        let mut file = self.config_file.as_deref().map(FileConfig::load).transpose()?.unwrap_or_default();
        if let Some(op) = demo_operation {
            file.operations = vec![op];
        }
        Config::build(file, &self.overrides(), env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::parse_from(std::iter::once("wolkvox-exporter").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn flags_read_the_same_after_the_subcommand() {
        let flags = [
            "--config.file=x.yml",
            "--log.level=debug",
            "--log.format=json",
            "--state.path=s.json",
            "--poll.interval=10m",
            "--shard=1/3",
            "--reconcile.delay=3h",
        ];
        let before = parse(&[&flags[..], &["check"]].concat());
        let after = parse(&[&["check"], &flags[..]].concat());
        assert_eq!(format!("{before:?}"), format!("{after:?}"));
        assert_eq!(after.command, Some(Command::Check));
        assert_eq!(after.shard, Shard::new(1, 3).unwrap());
        assert_eq!(after.log_level, "debug");
        assert_eq!(after.overrides().reconcile_delay, Some(Duration::from_secs(3 * 3600)));
        assert_eq!(after.overrides().overlap, None, "not given: the file decides");
        // A flag given again wins, wherever it is.
        let again = parse(&["--log.level=info", "check", "--log.level=warn"]);
        assert_eq!(again.log_level, "warn");
        assert_eq!(parse(&[]).command, None);
        assert_eq!(parse(&[]).shard, Shard::ALL);
    }

    #[test]
    fn bad_durations_are_usage_errors_naming_the_flag() {
        for (flag, bad) in [("--poll.overlap", "later"), ("--poll.delay", "-1s")] {
            let err = Args::parse_from(["wolkvox-exporter", &format!("{flag}={bad}")]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{flag}");
            let text = err.to_string();
            assert!(text.contains(&format!("'{flag} <DURATION>'")) && text.contains(bad), "{text}");
        }
        let help = Args::command().render_long_help().to_string();
        for default in
            ["[default: 5m]", "[default: 30m]", "[default: 1m]", "[default: 1day]", "[default: 2h]"]
        {
            assert!(help.contains(default), "--help misses {default}");
        }
    }

    #[test]
    fn a_bad_shard_is_a_usage_error_naming_the_flag() {
        for bad in ["--shard=3/3", "--shard=0/0", "--shard=x"] {
            let err = Args::try_parse_from(["wolkvox-exporter", "check", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
            assert!(err.to_string().contains("'--shard <I/N>'"), "{err}");
        }
    }

    #[test]
    fn the_configuration_keeps_only_the_shards_operations() {
        let env = |k: &str| match k {
            "WOLKVOX_SERVER" => Some("0042".to_owned()),
            "WOLKVOX_TOKEN" => Some("t".to_owned()),
            "WOLKVOX_OPERATION" => Some("main".to_owned()),
            _ => None,
        };
        // "main" is in shard 1 of 2 (pinned in `shard`'s tests).
        let names = |shard: &str| -> Vec<String> {
            let args = parse(&[&format!("--shard={shard}")]);
            let mut config = args.config(env, None).unwrap();
            args.shard.select(&mut config);
            config.operations.into_iter().map(|op| op.name).collect()
        };
        assert_eq!(names("1/2"), ["main"]);
        assert!(names("0/2").is_empty());
        assert_eq!(names("0/1"), ["main"]);
    }
}
