//! Builds the typed [`Config`] from the file, the flags and the environment, and checks
//! every value; each error names the key, flag or variable the value came from.

use std::path::PathBuf;
use std::time::Duration;

use super::operation::validate_operation;
use super::plan;
use super::{
    check_interval, defaults, env, invalid, ApiConfig, Config, ConfigError, FileConfig, MetricsConfig,
    OperationConfig, Overrides, PollConfig,
};

/// Puts a flag's value over the file's; the name of the source it came from, for
/// range errors.
fn flag_over(
    flag: &'static str,
    key: &'static str,
    given: Option<Duration>,
    value: &mut Duration,
) -> &'static str {
    given.map_or(key, |given| {
        *value = given;
        flag
    })
}

impl Config {
    /// Validates the file, the flags that override it and, when the file names no
    /// operation, the `WOLKVOX_*` environment (read through `env`).
    pub fn build(
        file: FileConfig,
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let poll = poll_config(file.poll, overrides)?;
        let api = check_api(file.api)?;
        let metrics = check_metrics(file.metrics)?;

        let mut raw_ops: Vec<_> = file
            .operations
            .into_iter()
            .enumerate()
            .map(|(i, op)| op.into_raw(i))
            .collect::<Result<_, _>>()?;
        if raw_ops.is_empty() {
            raw_ops.extend(env::operation(&env)?);
        }
        if raw_ops.is_empty() {
            return Err(invalid(
                "operations",
                "no operation configured: give --config.file with `operations:`, \
                 set WOLKVOX_SERVER or WOLKVOX_BASE_URL, or run with --demo",
            ));
        }
        let mut operations: Vec<OperationConfig> = Vec::with_capacity(raw_ops.len());
        for (index, raw) in raw_ops.into_iter().enumerate() {
            let op = validate_operation(raw, &poll, &env)?;
            if operations.iter().any(|o| o.name == op.name) {
                return Err(invalid(
                    format!("operations[{index}].name"),
                    format!("duplicate operation name {:?}", op.name),
                ));
            }
            check_plan(&op, &api)?;
            operations.push(op);
        }

        let state_path = overrides
            .state_path
            .clone()
            .or(file.state.path)
            .unwrap_or_else(|| PathBuf::from(defaults::STATE_PATH));
        Ok(Config { poll, api, metrics, operations, state_path })
    }
}

/// Refuses an operation whose reports, at their intervals, would spend more requests a
/// day than its share of the allowance: it would run out every day.
fn check_plan(op: &OperationConfig, api: &ApiConfig) -> Result<(), ConfigError> {
    let planned = plan::daily_requests(&op.reports);
    let allowance = plan::daily_allowance(op.daily_limit(), api.daily_reserve);
    if planned <= allowance {
        return Ok(());
    }
    Err(invalid(
        format!("operation {:?}", op.name),
        format!(
            "its reports would spend {planned} requests a day ({}), more than the {allowance} \
             it may use ({} licenses x 1000, less api.daily_reserve {}%); {}, or raise \
             licenses if the operation has more",
            plan::describe(&op.reports),
            op.licenses,
            api.daily_reserve * 100.0,
            plan::fitting_hint(&op.reports, allowance)
        ),
    ))
}

fn poll_config(mut poll: PollConfig, o: &Overrides) -> Result<PollConfig, ConfigError> {
    let interval_key = flag_over("--poll.interval", "poll.interval", o.interval, &mut poll.interval);
    flag_over("--poll.overlap", "poll.overlap", o.overlap, &mut poll.overlap);
    flag_over("--poll.delay", "poll.delay", o.delay, &mut poll.delay);
    let catch_up_key = flag_over("--poll.catch-up", "poll.catch_up", o.catch_up, &mut poll.catch_up);
    flag_over("--reconcile.delay", "poll.reconcile_delay", o.reconcile_delay, &mut poll.reconcile_delay);
    poll.allow_fast |= o.allow_fast;
    check_interval(interval_key, poll.interval, poll.allow_fast)?;
    if poll.catch_up.as_secs() == 0 {
        return Err(invalid(catch_up_key, "must be at least 1s"));
    }
    Ok(poll)
}

/// The first of `checks` (key, whether its value is wrong, what it must be) that fails.
fn first_wrong<const N: usize>(checks: [(&str, bool, &str); N]) -> Result<(), ConfigError> {
    match checks.into_iter().find(|(_, wrong, _)| *wrong) {
        Some((key, _, message)) => Err(invalid(key, message)),
        None => Ok(()),
    }
}

fn check_api(api: ApiConfig) -> Result<ApiConfig, ConfigError> {
    first_wrong([
        ("api.timeout", api.timeout.is_zero(), "must be positive"),
        ("api.max_body_bytes", api.max_body_bytes < 1024, "must be at least 1024"),
        (
            "api.daily_reserve",
            !(0.0..1.0).contains(&api.daily_reserve),
            "must be a fraction in [0, 1), e.g. 0.1",
        ),
        (
            "api.requests_per_second",
            !(api.requests_per_second > 0.0 && api.requests_per_second.is_finite()),
            "must be positive",
        ),
        ("api.retry_initial", api.retry_initial.is_zero(), "must be positive"),
        ("api.retry_max", api.retry_max < api.retry_initial, "must not be below api.retry_initial"),
    ])?;
    Ok(api)
}

fn check_metrics(metrics: MetricsConfig) -> Result<MetricsConfig, ConfigError> {
    let buckets = &metrics.duration_buckets;
    let bad_buckets = buckets.is_empty()
        || buckets.iter().any(|b| !b.is_finite() || *b <= 0.0)
        || buckets.windows(2).any(|w| w[0] >= w[1]);
    first_wrong([
        (
            "metrics.duration_buckets",
            bad_buckets,
            "must be a non-empty, strictly increasing list of positive finite numbers",
        ),
        ("metrics.max_agents", metrics.max_agents == 0, "must be at least 1"),
        ("metrics.max_flows", metrics.max_flows == 0, "must be at least 1"),
        ("metrics.chain_horizon", metrics.chain_horizon < Duration::from_secs(1), "must be at least 1s"),
        ("metrics.max_open_chains", metrics.max_open_chains == 0, "must be at least 1"),
    ])?;
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "operations:\n  - name: bog\n    server: \"0042\"\n    token: abc\n    licenses: 20\n";

    fn with_flags(yaml: &str, o: Overrides) -> Result<Config, ConfigError> {
        Config::build(FileConfig::parse(yaml).unwrap(), &o, |_| None)
    }

    #[test]
    fn a_plan_over_the_allowance_is_refused_with_its_figures() {
        let yaml = "operations:\n  - name: bog\n    server: \"0042\"\n    token: abc\n    reports:\n      agent_13:\n      cdr_1:\n      agent_13_1:\n        interval: 4m\n";
        let o = Overrides { allow_fast: true, ..Default::default() };
        let err = with_flags(yaml, o).unwrap_err().to_string();
        assert_eq!(
            err,
            "operation \"bog\": its reports would spend 936 requests a day (agent_13 every 5m: 288, \
             cdr_1 every 5m: 288, agent_13_1 every 4m: 360), more than the 900 it may use \
             (1 licenses x 1000, less api.daily_reserve 10%); every report at an interval of \
             4m 48s or longer fits, or raise licenses if the operation has more"
        );
        let fits = yaml.replace("interval: 4m", "interval: 6m");
        assert!(with_flags(&fits, Overrides::default()).is_ok());
    }

    #[test]
    fn fast_interval_needs_the_flag() {
        let o = Overrides { interval: Some(Duration::from_secs(20)), allow_fast: true, ..Default::default() };
        let c = with_flags(OK, o).unwrap();
        assert_eq!(c.poll.interval, Duration::from_secs(20));
        let o = Overrides { interval: Some(Duration::from_secs(20)), ..Default::default() };
        let err = with_flags(OK, o).unwrap_err();
        assert!(err.to_string().starts_with("--poll.interval:"), "{err}");
        let yaml = format!("poll:\n  allow_fast: true\n  interval: 20s\n{OK}");
        assert_eq!(with_flags(&yaml, Overrides::default()).unwrap().poll.interval, Duration::from_secs(20));
    }

    #[test]
    fn flags_override_the_file_and_errors_name_the_flag() {
        let yaml = format!("poll:\n  overlap: 10m\n  catch_up: 1h\n{OK}");
        let o = Overrides {
            overlap: Some(Duration::from_secs(45 * 60)),
            state_path: Some("/tmp/s.json".into()),
            ..Default::default()
        };
        let c = with_flags(&yaml, o).unwrap();
        assert_eq!(c.poll.overlap, Duration::from_secs(45 * 60));
        assert_eq!(c.poll.catch_up, Duration::from_secs(3600));
        assert_eq!(c.state_path, PathBuf::from("/tmp/s.json"));

        let cases = [
            (
                Overrides { catch_up: Some(Duration::ZERO), ..Default::default() },
                "--poll.catch-up: must be at least 1s",
            ),
            (
                Overrides {
                    interval: Some(Duration::from_millis(50)),
                    allow_fast: true,
                    ..Default::default()
                },
                "--poll.interval: must be at least 100ms",
            ),
        ];
        for (o, expected) in cases {
            let err = with_flags(&yaml, o).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{err}");
        }
    }

    #[test]
    fn a_base_url_host_that_is_no_label_asks_for_a_name() {
        let yaml = "operations:\n  - base_url: http://[::1]:9\n    token: a\n";
        let err = with_flags(yaml, Overrides::default()).unwrap_err().to_string();
        assert!(err.starts_with("operations[0].base_url: the operation's name"), "{err}");
        let named = "operations:\n  - base_url: http://[::1]:9\n    name: local\n    token: a\n";
        let c = with_flags(named, Overrides::default()).unwrap();
        assert_eq!(c.operations[0].base_url, "http://[::1]:9");
    }
}
