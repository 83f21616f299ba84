//! The tests' one configuration builder: YAML with 1 s cycles, quick retries and a 2 s
//! timeout by default, each knob a test changes set by name, for the in-process
//! exporter (`config()`) or the binary (`write()`).

use std::path::{Path, PathBuf};

use wolkvox_exporter::config::{Config, FileConfig, Overrides};

use wolkvox_sim::Wolkvox;

/// Where an operation's token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    Inline(String),
    File(PathBuf),
}

/// One operation: 1000 licenses unless set (1 s cycles of several reports spend more
/// than a real operation's day).
#[derive(Debug, Clone)]
pub struct Operation {
    pub name: String,
    pub base_url: String,
    pub token: TokenSource,
    pub timezone: String,
    pub licenses: u32,
    /// `None` follows the exporter's default reports; each with its interval, if set.
    pub reports: Option<Vec<(String, Option<String>)>>,
}

impl Operation {
    pub fn new(name: &str, base_url: &str, token: &str, timezone: &str) -> Operation {
        Operation {
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            token: TokenSource::Inline(token.to_owned()),
            timezone: timezone.to_owned(),
            licenses: 1000,
            reports: None,
        }
    }

    /// An operation on Colombia time served by the simulated Wolkvox `fake`.
    pub fn fake(name: &str, fake: &Wolkvox) -> Operation {
        Operation::new(name, fake.base_url(), fake.token(), "America/Bogota")
    }

    pub fn timezone(mut self, timezone: &str) -> Operation {
        self.timezone = timezone.to_owned();
        self
    }

    pub fn base_url(mut self, base_url: &str) -> Operation {
        self.base_url = base_url.to_owned();
        self
    }

    pub fn token_file(mut self, path: &Path) -> Operation {
        self.token = TokenSource::File(path.to_owned());
        self
    }

    pub fn licenses(mut self, licenses: u32) -> Operation {
        self.licenses = licenses;
        self
    }

    /// The reports to follow, by name, at the poll interval.
    pub fn reports(mut self, reports: &[&str]) -> Operation {
        self.reports = Some(reports.iter().map(|r| (r.to_string(), None)).collect());
        self
    }

    /// Follows one more report, at its own interval.
    pub fn report_every(mut self, report: &str, interval: &str) -> Operation {
        self.reports.get_or_insert_with(Vec::new).push((report.to_owned(), Some(interval.to_owned())));
        self
    }
}

/// A test configuration; every setter returns the builder.
#[derive(Debug, Clone)]
pub struct TestConfig {
    pub interval: String,
    pub overlap: String,
    pub catch_up: String,
    pub timeout: String,
    pub retry_attempts: u32,
    pub daily_reserve: Option<f64>,
    pub max_body_bytes: Option<u64>,
    pub max_agents: Option<usize>,
    pub max_flows: Option<usize>,
    pub state: PathBuf,
    pub operations: Vec<Operation>,
}

impl TestConfig {
    /// No operation yet, the state saved at `state`.
    pub fn new(state: &Path) -> TestConfig {
        TestConfig {
            interval: "1s".to_owned(),
            overlap: "30m".to_owned(),
            catch_up: "24h".to_owned(),
            timeout: "2s".to_owned(),
            retry_attempts: 6,
            daily_reserve: None,
            max_body_bytes: None,
            max_agents: None,
            max_flows: None,
            state: state.to_owned(),
            operations: Vec::new(),
        }
    }

    pub fn op(mut self, operation: Operation) -> TestConfig {
        self.operations.push(operation);
        self
    }

    pub fn catch_up(mut self, catch_up: &str) -> TestConfig {
        self.catch_up = catch_up.to_owned();
        self
    }

    pub fn timeout(mut self, timeout: &str) -> TestConfig {
        self.timeout = timeout.to_owned();
        self
    }

    pub fn retry_attempts(mut self, attempts: u32) -> TestConfig {
        self.retry_attempts = attempts;
        self
    }

    pub fn daily_reserve(mut self, reserve: f64) -> TestConfig {
        self.daily_reserve = Some(reserve);
        self
    }

    pub fn max_body_bytes(mut self, bytes: u64) -> TestConfig {
        self.max_body_bytes = Some(bytes);
        self
    }

    pub fn max_agents(mut self, agents: usize) -> TestConfig {
        self.max_agents = Some(agents);
        self
    }

    pub fn max_flows(mut self, flows: usize) -> TestConfig {
        self.max_flows = Some(flows);
        self
    }

    /// The YAML text.
    pub fn yaml(&self) -> String {
        let mut y = format!(
            "poll:\n  interval: {}\n  allow_fast: true\n  overlap: {}\n  delay: 0s\n  catch_up: {}\n\
             api:\n  timeout: {}\n  requests_per_second: 1000\n  retry_initial: 20ms\n  retry_max: 200ms\n  retry_attempts: {}\n",
            self.interval, self.overlap, self.catch_up, self.timeout, self.retry_attempts
        );
        if let Some(reserve) = self.daily_reserve {
            y.push_str(&format!("  daily_reserve: {reserve}\n"));
        }
        if let Some(bytes) = self.max_body_bytes {
            y.push_str(&format!("  max_body_bytes: {bytes}\n"));
        }
        y.push_str("metrics:\n");
        if let Some(agents) = self.max_agents {
            y.push_str(&format!("  max_agents: {agents}\n"));
        }
        if let Some(flows) = self.max_flows {
            y.push_str(&format!("  max_flows: {flows}\n"));
        }
        y.push_str(&format!("state:\n  path: {}\noperations:\n", self.state.display()));
        for op in &self.operations {
            let token = match &op.token {
                TokenSource::Inline(t) => format!("token: {t}"),
                TokenSource::File(p) => format!("token_file: {}", p.display()),
            };
            y.push_str(&format!(
                "  - name: {}\n    base_url: {}\n    {token}\n    timezone: {}\n    licenses: {}\n",
                op.name, op.base_url, op.timezone, op.licenses
            ));
            if let Some(reports) = &op.reports {
                y.push_str("    reports:\n");
                for (r, interval) in reports {
                    y.push_str(&format!("      {r}:\n"));
                    if let Some(i) = interval {
                        y.push_str(&format!("        interval: {i}\n"));
                    }
                }
            }
        }
        y
    }

    /// The configuration as `main` would build it from the file.
    pub fn config(&self) -> Config {
        Config::build(
            FileConfig::parse(&self.yaml()).expect("test YAML parses"),
            &Overrides::default(),
            |_| None,
        )
        .expect("test configuration is valid")
    }

    /// Writes the YAML to `dir/config.yml` and returns the `--config.file=` argument.
    pub fn write(&self, dir: &Path) -> String {
        write_yaml(dir, &self.yaml())
    }
}

/// Writes `yaml` to `dir/config.yml` and returns the `--config.file=` argument.
pub fn write_yaml(dir: &Path, yaml: &str) -> String {
    let path = dir.join("config.yml");
    std::fs::write(&path, yaml).expect("write the test configuration");
    format!("--config.file={}", path.display())
}
