//! The exporter binary as a child process for black-box tests: it listens on a free
//! loopback port, its logs are captured, and every wait has a deadline; or a subcommand
//! (`check`) run to its exit.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::http;
use super::wait::Wait;

/// How long the exporter may take to log its listen address and answer `/-/ready`. The
/// demo is ready after its 35-day catch-up, about 50 s alone on two cores; the tests
/// share one process, so it may run beside another test's catch-up.
pub const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the exporter may take to exit after SIGTERM (the contract says 10 s).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub fn exporter_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wolkvox-exporter"))
}

/// Output captured from the child, with a condition variable signalled on every line.
#[derive(Default)]
struct Logs {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Default)]
struct LogState {
    text: String,
    open_streams: usize,
}

impl Logs {
    fn capture(self: &Arc<Self>, stream: impl Read + Send + 'static) {
        self.state.lock().unwrap().open_streams += 1;
        let logs = Arc::clone(self);
        thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut state = logs.state.lock().unwrap();
                        state.text.push_str(&String::from_utf8_lossy(&line));
                        if !state.text.ends_with('\n') {
                            state.text.push('\n');
                        }
                        logs.changed.notify_all();
                    }
                }
            }
            logs.state.lock().unwrap().open_streams -= 1;
            logs.changed.notify_all();
        });
    }

    fn snapshot(&self) -> String {
        self.state.lock().unwrap().text.clone()
    }

    /// Waits until `find` returns something for the captured text, the streams close
    /// (the process exited) or the deadline passes.
    fn wait_for<T>(&self, deadline: Instant, mut find: impl FnMut(&str) -> Option<T>) -> Option<T> {
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(found) = find(&state.text) {
                return Some(found);
            }
            let now = Instant::now();
            if state.open_streams == 0 || now >= deadline {
                return None;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
    }
}

pub struct Exporter {
    child: Child,
    addr: SocketAddr,
    telemetry_path: String,
    logs: Arc<Logs>,
    exit: Option<ExitStatus>,
}

impl Exporter {
    /// Starts the exporter with `args` and waits until it is ready; panics with its logs
    /// if it is not.
    pub fn start(args: &[&str]) -> Exporter {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Exporter {
        Self::spawn(args, env).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like `start_with_env`, but returns the failure (with the logs) instead of
    /// panicking, for tests that expect the exporter to refuse to start.
    ///
    /// `--web.listen-address=127.0.0.1:0` is added unless `args` has a listen address.
    /// `WOLKVOX_*` variables of the test's own environment are not passed on.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Result<Exporter, String> {
        let mut exporter = Self::spawn_listening(args, env)?;
        exporter.wait_ready(Instant::now() + START_TIMEOUT)?;
        Ok(exporter)
    }

    /// Starts the exporter and returns once it listens, without waiting for `/-/ready`
    /// (which waits for every report's first cycle: during a long catch-up, minutes).
    pub fn start_listening(args: &[&str]) -> Exporter {
        Self::spawn_listening(args, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    fn spawn_listening(args: &[&str], env: &[(&str, &str)]) -> Result<Exporter, String> {
        let mut command = Command::new(exporter_bin());
        command.args(args);
        if !args.iter().any(|a| a.starts_with("--web.listen-address")) {
            command.arg("--web.listen-address=127.0.0.1:0");
        }
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("WOLKVOX_") {
                command.env_remove(name);
            }
        }
        command.envs(env.iter().copied());
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child =
            command.spawn().map_err(|e| format!("cannot start {}: {e}", exporter_bin().display()))?;

        let logs = Arc::new(Logs::default());
        logs.capture(child.stdout.take().expect("piped stdout"));
        logs.capture(child.stderr.take().expect("piped stderr"));

        let telemetry_path = args
            .iter()
            .find_map(|a| a.strip_prefix("--web.telemetry-path="))
            .unwrap_or("/metrics")
            .to_string();
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = match logs.wait_for(deadline, listen_address) {
            Some(addr) => addr,
            None => {
                let _ = child.kill();
                let status = child.wait().ok();
                return Err(format!(
                    "the exporter (args {args:?}) did not log `msg=listening address=...` within \
                     {START_TIMEOUT:?}; exit status {status:?}; logs:\n{}",
                    logs.snapshot()
                ));
            }
        };
        Ok(Exporter { child, addr, telemetry_path, logs, exit: None })
    }

    fn wait_ready(&mut self, deadline: Instant) -> Result<(), String> {
        let url = self.url("/-/ready");
        let timeout = deadline.saturating_duration_since(Instant::now());
        let ready = Wait::new("/-/ready", timeout).poll(|| {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
                return Err(Err(format!("the exporter exited ({status}) before /-/ready answered 200")));
            }
            match http::get(&url) {
                Ok(r) if r.status == 200 => Ok(()),
                Ok(r) => Err(Ok(format!("status {}", r.status))),
                Err(e) => Err(Ok(e.to_string())),
            }
        });
        match ready {
            Ok(()) => Ok(()),
            Err(Err(exited)) => Err(format!("{exited}; logs:\n{}", self.logs())),
            Err(Ok(last)) => Err(format!(
                "/-/ready did not answer 200 within {START_TIMEOUT:?} (last: {last}); logs:\n{}",
                self.logs()
            )),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The exposition at the telemetry path; panics unless it answers 200.
    pub fn metrics(&self) -> String {
        let response = http::get(&self.url(&self.telemetry_path))
            .unwrap_or_else(|e| panic!("GET {}: {e}; logs:\n{}", self.telemetry_path, self.logs()));
        assert_eq!(
            response.status,
            200,
            "GET {} answered {}: {}",
            self.telemetry_path,
            response.status,
            response.text()
        );
        response.text()
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        self.logs.snapshot()
    }

    /// Scrapes until `predicate` accepts the exposition, and returns that exposition.
    /// Panics with the last exposition and the logs after `timeout`.
    pub fn wait_for_metrics(&self, timeout: Duration, predicate: impl Fn(&str) -> bool) -> String {
        let found =
            Wait::new("the expected exposition", timeout).every(Duration::from_millis(50)).poll(|| {
                let text = self.metrics();
                if predicate(&text) {
                    Ok(text)
                } else {
                    Err(text)
                }
            });
        found.unwrap_or_else(|last| {
            panic!(
                "the exposition did not reach the expected state within {timeout:?}.\n\
                 last exposition:\n{last}\nlogs:\n{}",
                self.logs()
            )
        })
    }

    /// Waits until the logs contain `needle`; returns all logs so far.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        self.logs.wait_for(deadline, |text| text.contains(needle).then(|| text.to_string())).unwrap_or_else(
            || panic!("no log line with {needle:?} within {timeout:?}; logs:\n{}", self.logs()),
        )
    }

    /// Sends SIGTERM and waits for the exit; panics (after SIGKILL) if it takes longer
    /// than `STOP_TIMEOUT`.
    pub fn terminate(&mut self) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {} failed", self.child.id());
        match self.wait_for_exit(STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                self.kill();
                panic!(
                    "the exporter did not exit within {STOP_TIMEOUT:?} of SIGTERM; logs:\n{}",
                    self.logs()
                );
            }
        }
    }

    /// SIGKILL: no chance to save state.
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the killed exporter");
        self.exit = Some(status);
        status
    }

    /// The exit status once the process has exited, waiting at most `timeout`.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exit.is_none() {
            let child = &mut self.child;
            self.exit = Wait::new("the exporter to exit", timeout)
                .poll(|| child.try_wait().expect("try_wait on the exporter").ok_or(()))
                .ok();
        }
        self.exit
    }
}

/// What a run of the binary to its exit printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Both streams, for failure messages.
    pub fn text(&self) -> String {
        format!("exit status {}\nstdout:\n{}\nstderr:\n{}", self.status, self.stdout, self.stderr)
    }
}

/// Runs the exporter with `args` (a subcommand such as `check`) until it exits, at most
/// `timeout`, and returns what it printed; panics with its output after the deadline.
/// `WOLKVOX_*` variables of the test's own environment are not passed on.
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Finished {
    let mut command = Command::new(exporter_bin());
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WOLKVOX_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child =
        command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", exporter_bin().display()));
    let read = |mut stream: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("piped stderr")));
    let exited = Wait::new("the exporter to exit", timeout)
        .poll(|| child.try_wait().expect("try_wait on the exporter").ok_or(()));
    let status = match exited {
        Ok(status) => status,
        Err(()) => {
            let _ = child.kill();
            let status = child.wait().expect("wait for the killed exporter");
            panic!(
                "the exporter (args {args:?}) did not exit within {timeout:?}; {status}\n\
                 stdout:\n{}\nstderr:\n{}",
                stdout.join().unwrap_or_default(),
                stderr.join().unwrap_or_default()
            );
        }
    };
    Finished { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// Resident and peak resident memory of a process, in KiB, from `/proc`.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address of the logfmt (or JSON) line announcing `msg=listening`, made
/// connectable: an unspecified IP becomes loopback.
fn listen_address(logs: &str) -> Option<SocketAddr> {
    logs.lines()
        .filter(|line| line.contains("msg=listening") || line.contains("\"msg\":\"listening\""))
        .find_map(|line| {
            let value = line
                .split([' ', ','])
                .find_map(|field| {
                    field.strip_prefix("address=").or_else(|| field.strip_prefix("\"address\":"))
                })?
                .trim_start_matches('"');
            let end = value.find(['"', '}']).unwrap_or(value.len());
            let mut addr: SocketAddr = value[..end].parse().ok()?;
            if addr.ip().is_unspecified() {
                addr.set_ip(if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            Some(addr)
        })
}
