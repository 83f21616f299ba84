//! The deployment files checked by the tools operators use on them: hadolint, dclint,
//! promtool, amtool, a live Prometheus, kubernetes-validate, the Prometheus Operator's
//! CRD models, systemd-analyze. The tools come from scripts/setup/20-deploy-tools.sh;
//! a missing tool fails the test.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::wait::{check, Wait};
use serde_yaml_ng::Value;

/// The Kubernetes version the manifests are validated against.
const KUBERNETES_VERSION: &str = "1.30.0";
/// `systemd-analyze security` exposure ceiling, in tenths (2.0 = "OK").
const SYSTEMD_EXPOSURE_THRESHOLD: &str = "20";
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(rel: &str) -> Value {
    serde_yaml_ng::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(rel: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(&read(rel))
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// `v["a"]["b"]...` that panics with the path when a key is missing.
fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| v.get(*k).unwrap_or_else(|| panic!("missing key {k:?} in path {path:?}")))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).as_str().unwrap_or_else(|| panic!("{path:?} is not a string"))
}

fn seq_at<'a>(v: &'a Value, path: &[&str]) -> &'a Vec<Value> {
    at(v, path).as_sequence().unwrap_or_else(|| panic!("{path:?} is not a list"))
}

struct Output {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn text(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Runs an external tool with a deadline; a missing tool is a failure that says how to
/// install it.
fn run_tool(program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(repo())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot run {program:?} ({e}); install the deploy tools with scripts/setup/20-deploy-tools.sh")
    });
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_owned();
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let finished = Wait::new(format!("{program} to finish"), TOOL_TIMEOUT)
        .poll(|| child.try_wait().expect("wait").ok_or(()));
    let Ok(status) = finished else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{program} {args:?} did not finish within {TOOL_TIMEOUT:?}");
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Checks an example configuration file with the exporter's own validation; token
/// files (which point at secrets mounted at run time) are replaced by a temporary one.
fn assert_valid_exporter_config(rel: &str, text: &str) {
    use wolkvox_exporter::config::{Config, FileConfig, Overrides};
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "example-token\n").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut file = FileConfig::parse(text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(!file.operations.is_empty(), "{rel}: no operations");
    for op in &mut file.operations {
        if let Some(path) = &op.token_file {
            assert!(path.is_absolute(), "{rel}: token_file {path:?} is not absolute");
            op.token_file = Some(token.clone());
        }
    }
    Config::build(file, &Overrides::default(), |_| None)
        .unwrap_or_else(|e| panic!("{rel} is not a valid exporter config: {e}"));
}

// ---- container image -------------------------------------------------------------------

#[test]
fn dockerfile_passes_hadolint_at_warning_level() {
    let out = run_tool("hadolint", &["--failure-threshold", "warning", "--no-color", "Dockerfile"], None);
    assert!(out.status.success(), "hadolint:\n{}", out.text());
    assert!(out.stdout.trim().is_empty(), "hadolint reported:\n{}", out.text());
}

#[test]
fn dockerfile_builds_a_small_non_root_image_with_a_cached_dependency_layer() {
    let text = read("Dockerfile");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("Dockerfile has no line starting with {needle:?}"))
    };
    // Dependencies are built from the manifests alone, before the sources arrive.
    let manifests = pos("COPY Cargo.toml Cargo.lock");
    let sources = pos("COPY src ");
    let dep_build = lines[manifests..sources].iter().any(|l| l.contains("cargo build --release --locked"));
    assert!(manifests < sources && dep_build, "no dependency build between the manifest and source copies");
    // The final stage: distroless, non-root, port, state volume, entrypoint.
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    assert_eq!(lines[last_from], "FROM gcr.io/distroless/cc-debian12:nonroot");
    let final_stage = &lines[last_from..];
    assert!(final_stage.contains(&"USER 65532:65532"));
    assert!(final_stage.contains(&"EXPOSE 9798"));
    assert!(final_stage.contains(&"VOLUME [\"/var/lib/wolkvox-exporter\"]"));
    assert!(final_stage.iter().any(|l| l.starts_with("ENTRYPOINT [\"/usr/local/bin/wolkvox-exporter\", \"--state.path=/var/lib/wolkvox-exporter/state.json\"]")));
    for label in ["title", "source", "version", "revision", "licenses", "created"] {
        assert!(text.contains(&format!("org.opencontainers.image.{label}=")), "OCI label {label} missing");
    }
    // The build image is at least the crate's minimum Rust version.
    let arg = lines.iter().find_map(|l| l.strip_prefix("ARG RUST_VERSION=")).expect("ARG RUST_VERSION");
    let manifest: toml_like::Manifest = toml_like::parse(&read("Cargo.toml"));
    assert!(
        toml_like::version_at_least(arg, &manifest.rust_version),
        "RUST_VERSION {arg} is older than rust-version {}",
        manifest.rust_version
    );
}

#[test]
fn dockerfile_dependency_stage_works_with_only_the_manifests() {
    // The RUN after `COPY Cargo.toml Cargo.lock ./` and the copies of the workspace
    // members' manifests, replayed on a copy of just those files. `cargo build` becomes
    // a build of a bin target that does not exist: cargo then parses the manifests
    // (which fails without a file for every declared bench, example or test, or
    // without a member's sources), resolves the lock file and stops before compiling
    // anything.
    let text = read("Dockerfile");
    let lines: Vec<&str> = text.lines().collect();
    let copy = lines
        .iter()
        .position(|l| l.trim() == "COPY Cargo.toml Cargo.lock ./")
        .expect("COPY Cargo.toml Cargo.lock ./");
    let mut manifests = vec!["Cargo.toml".to_owned(), "Cargo.lock".to_owned()];
    let mut next = copy + 1;
    while let Some(member) = lines[next]
        .trim()
        .strip_prefix("COPY ")
        .and_then(|rest| rest.split_whitespace().next())
        .filter(|source| source.ends_with("/Cargo.toml"))
    {
        manifests.push(member.to_owned());
        next += 1;
    }
    // Every workspace member's manifest is copied before the dependency build.
    for member in ["crates/api/Cargo.toml", "crates/sim/Cargo.toml"] {
        assert!(manifests.iter().any(|m| m == member), "{member} is not copied");
    }
    let mut run = String::new();
    for line in &lines[next..] {
        let (body, more) = match line.trim_end().strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line.trim_end(), false),
        };
        run.push_str(body);
        run.push(' ');
        if !more {
            break;
        }
    }
    let run = run.trim().strip_prefix("RUN ").expect("a RUN after the COPY");
    let build = "cargo build --release --locked";
    assert!(run.contains(build), "the dependency RUN does not build: {run}");
    let probe = "{ cargo build --release --locked --offline --bin manifest-probe 2>probe.log \
                 || grep -q 'no bin target named .manifest-probe.' probe.log; }";
    let run = run.replace(build, probe);
    let dir = tempfile::tempdir().unwrap();
    for file in &manifests {
        let to = dir.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo().join(file), to).unwrap();
    }
    let script = format!("export CARGO_TARGET_DIR='{0}/target' && cd '{0}' && {run}", dir.path().display());
    let out = run_tool("bash", &["-o", "pipefail", "-c", &script], None);
    let log = std::fs::read_to_string(dir.path().join("probe.log")).unwrap_or_default();
    assert!(out.status.success(), "{script}\n{}\ncargo:\n{log}", out.text());
    assert!(log.contains("wolkvox-exporter"), "cargo:\n{log}");
    assert!(!dir.path().join("src").exists(), "placeholders left in src/");
    for member in ["crates/api", "crates/sim"] {
        assert!(!dir.path().join(member).join("src").exists(), "placeholders left in {member}/src/");
    }
    assert!(!dir.path().join("target").exists(), "the probe compiled something");
}

/// Just enough of Cargo.toml for the checks above (no TOML parser among the dependencies).
mod toml_like {
    pub struct Manifest {
        pub rust_version: String,
    }

    pub fn parse(text: &str) -> Manifest {
        let rust_version = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == "rust-version").then(|| v.trim().trim_matches('"').to_owned())
            })
            .expect("rust-version in Cargo.toml");
        Manifest { rust_version }
    }

    pub fn version_at_least(have: &str, want: &str) -> bool {
        let nums = |s: &str| -> Vec<u32> { s.split('.').map(|p| p.parse().unwrap()).collect() };
        nums(have) >= nums(want)
    }
}

#[test]
fn dockerignore_keeps_what_the_dockerfile_copies() {
    let ignore = read(".dockerignore");
    let rules: Vec<&str> =
        ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert_eq!(rules.first(), Some(&"*"), "the context starts from nothing");
    for kept in ["!Cargo.toml", "!Cargo.lock", "!src/", "!src/**", "!crates/", "!crates/**"] {
        assert!(rules.contains(&kept), ".dockerignore does not keep {kept}");
    }
    // Every COPY from the context names only kept paths.
    for line in read("Dockerfile").lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from=") {
            continue;
        }
        let parts: Vec<&str> = rest.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            // Kept by its own rule, or by a rule keeping everything under a folder.
            let kept = rules.iter().any(|r| {
                r.strip_prefix('!').is_some_and(|k| {
                    k.trim_end_matches('/') == src.trim_end_matches('/')
                        || k.strip_suffix("/**").is_some_and(|dir| src.starts_with(&format!("{dir}/")))
                })
            });
            assert!(kept, "COPY {src} is excluded by .dockerignore");
        }
    }
}

// ---- Compose ---------------------------------------------------------------------------

/// The default of a `${VAR:-default}` interpolation, or the text itself.
fn compose_default(s: &str) -> String {
    match s.find("${") {
        Some(start) => {
            let end = s[start..].find('}').expect("closing brace") + start;
            let inner = &s[start + 2..end];
            let default = inner.split_once(":-").map(|(_, d)| d).unwrap_or("");
            format!("{}{}{}", &s[..start], default, compose_default(&s[end + 1..]))
        }
        None => s.to_owned(),
    }
}

#[test]
fn compose_file_passes_dclint() {
    let out = run_tool("dclint", &["--max-warnings", "0", "--no-color", "compose.yaml"], None);
    assert!(out.status.success(), "dclint:\n{}", out.text());
}

#[test]
fn compose_stack_has_its_services_and_mounts_files_that_exist() {
    let compose = yaml("compose.yaml");
    let services = at(&compose, &["services"]).as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    assert_eq!(names, BTreeSet::from(["alertmanager", "grafana", "prometheus", "wolkvox-exporter"]));
    // Demo mode unless the environment says otherwise.
    let exporter = at(&compose, &["services", "wolkvox-exporter"]);
    assert_eq!(compose_default(str_at(exporter, &["command"])), "--demo");
    // Every bind mount's source exists in the repository (with the defaults).
    let mut binds = Vec::new();
    for (name, service) in services {
        for volume in service.get("volumes").and_then(Value::as_sequence).into_iter().flatten() {
            let spec = compose_default(volume.as_str().unwrap());
            let source = spec.split(':').next().unwrap().to_owned();
            if source.starts_with('.') {
                assert!(repo().join(&source).exists(), "{name:?} mounts {source}, which does not exist");
                binds.push(spec);
            }
        }
    }
    let secret = compose_default(str_at(&compose, &["secrets", "wolkvox_token", "file"]));
    assert!(repo().join(&secret).is_file(), "secret file {secret} missing");
    for wanted in [
        "./alerts/wolkvox.rules.yml:/etc/prometheus/rules/wolkvox.rules.yml:ro",
        "./deploy/compose/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
        "./grafana/provisioning:/etc/grafana/provisioning:ro",
    ] {
        assert!(binds.iter().any(|b| b == wanted), "no bind mount {wanted}");
    }
    // Grafana's dashboard provider reads the directory the dashboards are mounted on.
    let dashboards_mount = binds
        .iter()
        .find_map(|b| b.strip_prefix("./grafana/dashboards:"))
        .expect("grafana/dashboards mounted")
        .trim_end_matches(":ro")
        .to_owned();
    let provider_paths: Vec<String> = std::fs::read_dir(repo().join("grafana/provisioning/dashboards"))
        .expect("grafana/provisioning/dashboards")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .flat_map(|p| {
            let v: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            seq_at(&v, &["providers"])
                .iter()
                .map(|pr| str_at(pr, &["options", "path"]).to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        provider_paths.contains(&dashboards_mount),
        "no dashboard provider reads {dashboards_mount} (they read {provider_paths:?})"
    );
    // Grafana's data source is the stack's Prometheus.
    let datasources = read("grafana/provisioning/datasources/wolkvox.yml");
    assert!(datasources.contains("url: http://prometheus:9090"));
    // The real-mode config file is a valid exporter config.
    let config = "deploy/compose/wolkvox-exporter.yml";
    assert_valid_exporter_config(config, &read(config));
}

/// The compose Prometheus config with the rules path pointing into the repository and
/// the Compose service addresses replaced.
fn compose_prometheus_config(targets: &[(&str, String)], scrape_interval: Option<&str>) -> String {
    let mut text = read("deploy/compose/prometheus.yml");
    let rules = repo().join("alerts/wolkvox.rules.yml");
    assert!(
        text.contains("/etc/prometheus/rules/wolkvox.rules.yml"),
        "rule_files no longer names the mounted rules"
    );
    text = text.replace("/etc/prometheus/rules/wolkvox.rules.yml", rules.to_str().unwrap());
    for (from, to) in targets {
        assert!(text.contains(from), "prometheus.yml has no target {from}");
        text = text.replace(from, to);
    }
    if let Some(interval) = scrape_interval {
        text = text
            .replace("scrape_interval: 15s", &format!("scrape_interval: {interval}"))
            .replace("scrape_timeout: 10s", &format!("scrape_timeout: {interval}"))
            .replace("evaluation_interval: 15s", &format!("evaluation_interval: {interval}"));
    }
    text
}

#[test]
fn compose_prometheus_config_and_rules_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, compose_prometheus_config(&[], None)).unwrap();
    let out = run_tool("promtool", &["check", "config", config.to_str().unwrap()], None);
    assert!(out.status.success(), "promtool check config:\n{}", out.text());
    assert!(
        out.stdout.contains("SUCCESS: 1 rule files found") || out.text().contains("1 rule files found"),
        "the rules file was not checked:\n{}",
        out.text()
    );
}

#[test]
fn compose_alertmanager_config_passes_amtool() {
    let out = run_tool("amtool", &["check-config", "deploy/compose/alertmanager.yml"], None);
    assert!(out.status.success(), "amtool check-config:\n{}", out.text());
}

/// A real Prometheus run with a given configuration file (the support builder writes its
/// own configuration; this test needs the Compose one). Killed on drop.
struct ComposePrometheus {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl ComposePrometheus {
    /// Starts Prometheus with the configuration `config_for(port)`, retrying on a port
    /// taken between the probe and the bind, and waits for `/-/ready`.
    fn start(config_for: impl Fn(u16) -> String) -> ComposePrometheus {
        let mut failures = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_loopback_port();
            let config = dir.path().join("prometheus.yml");
            std::fs::write(&config, config_for(port)).unwrap();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let child = Command::new(crate::support::prometheus::prometheus_bin())
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start prometheus");
            let mut prometheus = ComposePrometheus { child, port, dir };
            let ready = Wait::new("prometheus ready", Duration::from_secs(30))
                .every(Duration::from_millis(100))
                .poll(|| {
                    if let Ok(Some(status)) = prometheus.child.try_wait() {
                        return Err(Some(status));
                    }
                    let ready =
                        crate::support::http::get(&prometheus.url("/-/ready")).is_ok_and(|r| r.status == 200);
                    check(ready, || None)
                });
            match ready {
                Ok(()) => return prometheus,
                Err(Some(status)) => failures.push_str(&format!("exited {status}:\n{}\n", prometheus.log())),
                Err(None) => panic!("prometheus not ready within 30s:\n{}", prometheus.log()),
            }
            if !failures.contains("address already in use") {
                break;
            }
        }
        panic!("prometheus did not start:\n{failures}");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `data` of a successful API answer.
    fn api(&self, path: &str) -> Option<serde_json::Value> {
        let response = crate::support::http::get(&self.url(path)).ok()?;
        let body: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
        (body["status"] == "success").then(|| body["data"].clone())
    }
}

impl Drop for ComposePrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port()
}

#[test]
fn compose_prometheus_scrapes_the_exporter_in_demo_mode() {
    // The exporter as the Compose service runs it: its default command and environment,
    // the state path the image's entrypoint adds, the secret at a repository path.
    let compose = yaml("compose.yaml");
    let service = at(&compose, &["services", "wolkvox-exporter"]);
    let secret = repo().join(compose_default(str_at(&compose, &["secrets", "wolkvox_token", "file"])));
    let env: Vec<(String, String)> = seq_at(service, &["environment"])
        .iter()
        .filter_map(|e| e.as_str()?.split_once('='))
        .map(|(k, v)| {
            let v = v.replace("/run/secrets/wolkvox_token", secret.to_str().unwrap());
            (k.to_owned(), v)
        })
        .collect();
    let state = tempfile::tempdir().unwrap();
    let mut args: Vec<String> =
        compose_default(str_at(service, &["command"])).split_whitespace().map(str::to_owned).collect();
    assert_eq!(args, ["--demo"]);
    args.push(format!("--state.path={}", state.path().join("state.json").display()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let exporter = crate::support::exporter::Exporter::start_with_env(&args, &env);

    // Nothing listens on the Alertmanager port: alerts are not what this test is about.
    let alertmanager = format!("127.0.0.1:{}", free_loopback_port());
    let prometheus = ComposePrometheus::start(|port| {
        compose_prometheus_config(
            &[
                ("wolkvox-exporter:9798", exporter.addr().to_string()),
                ("alertmanager:9093", alertmanager.clone()),
                ("localhost:9090", format!("127.0.0.1:{port}")),
            ],
            Some("1s"),
        )
    });

    let mut last = serde_json::Value::Null;
    let up = Wait::new("the wolkvox target up", Duration::from_secs(60))
        .every(Duration::from_millis(200))
        .poll(|| {
            let up = prometheus
                .api("/api/v1/query?query=wolkvox_exporter_build_info%7Bjob%3D%22wolkvox%22%7D")
                .is_some_and(|d| d["result"].as_array().is_some_and(|r| !r.is_empty()));
            if let Some(targets) = prometheus.api("/api/v1/targets") {
                let wolkvox_up = targets["activeTargets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t["labels"]["job"] == "wolkvox" && t["health"] == "up");
                last = targets;
                return check(wolkvox_up && up, || ());
            }
            Err(())
        });
    assert!(
        up.is_ok(),
        "the wolkvox target is not up after 60s; targets: {last}\nprometheus log:\n{}\nexporter logs:\n{}",
        prometheus.log(),
        exporter.logs()
    );
    // The project's rules are loaded, every group of them.
    let rules = prometheus.api("/api/v1/rules").expect("rules");
    let loaded: BTreeSet<String> =
        rules["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap().to_owned()).collect();
    let expected: BTreeSet<String> = seq_at(&yaml("alerts/wolkvox.rules.yml"), &["groups"])
        .iter()
        .map(|g| str_at(g, &["name"]).to_owned())
        .collect();
    assert_eq!(loaded, expected);
}

// ---- Kubernetes ------------------------------------------------------------------------

const K8S: &str = "deploy/kubernetes";
const OPERATOR_GROUP: &str = "monitoring.coreos.com/";

/// Every manifest under deploy/kubernetes (not the kustomization), file by file.
fn k8s_files() -> Vec<(String, Vec<Value>)> {
    manifests(K8S)
}

/// Every manifest in the directory `dir` (not its kustomization), file by file.
fn manifests(dir: &str) -> Vec<(String, Vec<Value>)> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .filter(|n| n != "kustomization.yaml")
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
        .into_iter()
        .map(|f| {
            let docs = yaml_docs(&format!("{dir}/{f}"));
            (f, docs)
        })
        .collect()
}

fn k8s_object<'a>(files: &'a [(String, Vec<Value>)], kind: &str) -> &'a Value {
    let found: Vec<&Value> = files
        .iter()
        .flat_map(|(_, docs)| docs)
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind}");
    found[0]
}

#[test]
fn kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let checked = validate_core_manifests(K8S);
    assert!(checked >= 6, "only {checked} core resources validated");
}

/// Runs kubernetes-validate on every file of `dir` holding core kinds; returns how many
/// resources passed.
fn validate_core_manifests(dir: &str) -> usize {
    let mut checked = 0;
    for (file, docs) in manifests(dir) {
        let core: Vec<&Value> =
            docs.iter().filter(|d| !str_at(d, &["apiVersion"]).starts_with(OPERATOR_GROUP)).collect();
        if core.is_empty() {
            continue;
        }
        assert_eq!(core.len(), docs.len(), "{file} mixes core and operator kinds");
        let path = format!("{dir}/{file}");
        let out = run_tool(
            "kubernetes-validate",
            &["--kubernetes-version", KUBERNETES_VERSION, "--strict", &path],
            None,
        );
        let text = out.text();
        assert!(out.status.success(), "kubernetes-validate {file}:\n{text}");
        assert!(!text.contains("WARN") && !text.contains("ERROR"), "kubernetes-validate {file}:\n{text}");
        for doc in core {
            let resource = format!(
                "passed for resource {}/{}",
                str_at(doc, &["kind"]).to_lowercase(),
                str_at(doc, &["metadata", "name"])
            );
            assert!(text.contains(&resource), "{file}: no {resource:?} in\n{text}");
            checked += 1;
        }
    }
    checked
}

/// Validates ServiceMonitor and PrometheusRule objects with the validators that
/// @kubernetes-models/prometheus-operator generates from the operator's API types (the
/// same definitions its CRD schemas come from).
const CRD_VALIDATOR: &str = r#"
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";
const base = process.argv[1] + "/@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/";
const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const obj of objects) {
  const mod = await import(pathToFileURL(base + obj.kind + ".js").href);
  try {
    new mod[obj.kind](obj).validate();
    console.log(`valid ${obj.kind}/${obj.metadata.name}`);
  } catch (e) {
    failed++;
    console.log(`INVALID ${obj.kind}/${obj.metadata.name}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
"#;

fn node_models_prefix() -> String {
    std::env::var("WOLKVOX_DEPLOY_NODE_PREFIX").unwrap_or_else(|_| "/opt/wolkvox-deploy-tools".to_owned())
        + "/node_modules"
}

#[test]
fn operator_resources_validate_against_the_prometheus_operator_schemas() {
    let objects: Vec<serde_json::Value> = k8s_files()
        .into_iter()
        .flat_map(|(_, docs)| docs)
        .filter(|d| str_at(d, &["apiVersion"]).starts_with(OPERATOR_GROUP))
        .map(|d| serde_json::to_value(d).unwrap())
        .collect();
    let kinds: BTreeSet<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, BTreeSet::from(["PrometheusRule", "ServiceMonitor"]));
    let models = node_models_prefix();
    assert!(
        Path::new(&models).join("@kubernetes-models/prometheus-operator/package.json").is_file(),
        "{models} has no @kubernetes-models/prometheus-operator; run scripts/setup/20-deploy-tools.sh"
    );
    let input = serde_json::to_string(&objects).unwrap();
    let out = run_tool("node", &["--input-type=module", "-e", CRD_VALIDATOR, &models], Some(&input));
    assert!(out.status.success(), "CRD validation:\n{}", out.text());
    assert_eq!(out.stdout.matches("valid ").count(), objects.len(), "{}", out.text());
    // The validator itself rejects a broken object (so the check above can fail).
    let broken = serde_json::json!([{
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "broken"},
        "spec": {"endpoints": [{"port": 9798, "interval": "30 seconds"}]}
    }]);
    let out =
        run_tool("node", &["--input-type=module", "-e", CRD_VALIDATOR, &models], Some(&broken.to_string()));
    assert!(!out.status.success(), "a broken ServiceMonitor passed:\n{}", out.text());
}

#[test]
fn kustomization_lists_every_manifest_but_the_secret_example() {
    let kustomization = yaml(&format!("{K8S}/kustomization.yaml"));
    assert_eq!(str_at(&kustomization, &["apiVersion"]), "kustomize.config.k8s.io/v1beta1");
    assert_eq!(str_at(&kustomization, &["kind"]), "Kustomization");
    let listed: BTreeSet<String> =
        seq_at(&kustomization, &["resources"]).iter().map(|r| r.as_str().unwrap().to_owned()).collect();
    let present: BTreeSet<String> =
        k8s_files().into_iter().map(|(f, _)| f).filter(|f| f != "secret.example.yaml").collect();
    assert_eq!(listed, present);
    // The image the Deployment names is the one kustomize rewrites.
    let image = str_at(&seq_at(&kustomization, &["images"])[0], &["name"]).to_owned();
    let files = k8s_files();
    let deployment = k8s_object(&files, "Deployment");
    let container = &seq_at(deployment, &["spec", "template", "spec", "containers"])[0];
    assert_eq!(str_at(container, &["image"]), image);
}

#[test]
fn deployment_is_hardened_and_wired_to_its_service_config_secret_and_volume() {
    let files = k8s_files();
    let deployment = k8s_object(&files, "Deployment");
    let pod = at(deployment, &["spec", "template", "spec"]);
    assert_eq!(at(pod, &["securityContext", "runAsNonRoot"]), &Value::Bool(true));
    assert_eq!(at(pod, &["automountServiceAccountToken"]), &Value::Bool(false));
    let containers = seq_at(pod, &["containers"]);
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = at(c, &["securityContext"]);
    assert_eq!(at(sc, &["readOnlyRootFilesystem"]), &Value::Bool(true));
    assert_eq!(at(sc, &["allowPrivilegeEscalation"]), &Value::Bool(false));
    assert_eq!(seq_at(sc, &["capabilities", "drop"]), &vec![Value::from("ALL")]);
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            at(c, &["resources", kind, resource]);
        }
    }
    assert_eq!(str_at(c, &["livenessProbe", "httpGet", "path"]), "/-/healthy");
    assert_eq!(str_at(c, &["readinessProbe", "httpGet", "path"]), "/-/ready");
    let port = &seq_at(c, &["ports"])[0];
    assert_eq!(at(port, &["containerPort"]).as_u64(), Some(9798));
    let port_name = str_at(port, &["name"]);
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(str_at(c, &[probe, "httpGet", "port"]), port_name);
    }
    // The flags are the exporter's, and --state.path comes from the image only (twice is
    // an error for a single-valued flag).
    let args: Vec<&str> = seq_at(c, &["args"]).iter().map(|a| a.as_str().unwrap()).collect();
    assert!(args.contains(&"--web.listen-address=:9798"));
    assert!(!args.iter().any(|a| a.starts_with("--state.path")));
    let config_arg = args.iter().find_map(|a| a.strip_prefix("--config.file=")).expect("--config.file");

    // Mounts: the config file, the token directory, the state volume.
    let volumes = seq_at(pod, &["volumes"]);
    let volume = |name: &str| {
        volumes.iter().find(|v| str_at(v, &["name"]) == name).unwrap_or_else(|| panic!("no volume {name}"))
    };
    let mounts = seq_at(c, &["volumeMounts"]);
    let mount_of = |pred: &dyn Fn(&Value) -> bool| -> (&Value, &Value) {
        let m = mounts.iter().find(|m| pred(volume(str_at(m, &["name"])))).expect("mount");
        (m, volume(str_at(m, &["name"])))
    };
    let configmap = k8s_object(&files, "ConfigMap");
    let (config_mount, config_volume) = mount_of(&|v| v.get("configMap").is_some());
    assert_eq!(str_at(config_volume, &["configMap", "name"]), str_at(configmap, &["metadata", "name"]));
    let config_key = str_at(config_mount, &["subPath"]);
    assert_eq!(str_at(config_mount, &["mountPath"]), config_arg);
    let config_text = str_at(configmap, &["data", config_key]);

    let secret = k8s_object(&files, "Secret");
    let (secret_mount, secret_volume) = mount_of(&|v| v.get("secret").is_some());
    assert_eq!(str_at(secret_volume, &["secret", "secretName"]), str_at(secret, &["metadata", "name"]));
    // Every operation's token file is a key of the Secret, under the mount.
    let file_config: Value = serde_yaml_ng::from_str(config_text).unwrap();
    let secret_dir = str_at(secret_mount, &["mountPath"]);
    for op in seq_at(&file_config, &["operations"]) {
        let token_file = str_at(op, &["token_file"]);
        let key = token_file
            .strip_prefix(&format!("{secret_dir}/"))
            .unwrap_or_else(|| panic!("token_file {token_file} is not under {secret_dir}"));
        at(secret, &["stringData", key]);
    }
    assert_valid_exporter_config("deploy/kubernetes/configmap.yaml", config_text);

    let pvc = k8s_object(&files, "PersistentVolumeClaim");
    let (state_mount, state_volume) = mount_of(&|v| v.get("persistentVolumeClaim").is_some());
    assert_eq!(
        str_at(state_volume, &["persistentVolumeClaim", "claimName"]),
        str_at(pvc, &["metadata", "name"])
    );
    assert_eq!(str_at(state_mount, &["mountPath"]), "/var/lib/wolkvox-exporter");

    // The Service selects the pod and exposes the named port; the ServiceMonitor selects
    // the Service and scrapes that port.
    let pod_labels = at(deployment, &["spec", "template", "metadata", "labels"]);
    let service = k8s_object(&files, "Service");
    for (k, v) in at(service, &["spec", "selector"]).as_mapping().unwrap() {
        assert_eq!(pod_labels.get(k.as_str().unwrap()), Some(v), "selector {k:?}");
    }
    let service_port = &seq_at(service, &["spec", "ports"])[0];
    assert_eq!(str_at(service_port, &["targetPort"]), port_name);
    let monitor = k8s_object(&files, "ServiceMonitor");
    let service_labels = at(service, &["metadata", "labels"]);
    for (k, v) in at(monitor, &["spec", "selector", "matchLabels"]).as_mapping().unwrap() {
        assert_eq!(service_labels.get(k.as_str().unwrap()), Some(v), "matchLabels {k:?}");
    }
    let endpoint = &seq_at(monitor, &["spec", "endpoints"])[0];
    assert_eq!(str_at(endpoint, &["port"]), str_at(service_port, &["name"]));
    assert_eq!(str_at(endpoint, &["path"]), "/metrics");
}

#[test]
fn prometheusrule_groups_equal_the_rules_file() {
    let rules = yaml("alerts/wolkvox.rules.yml");
    let files = k8s_files();
    let rule = k8s_object(&files, "PrometheusRule");
    assert_eq!(str_at(rule, &["apiVersion"]), "monitoring.coreos.com/v1");
    let spec = at(rule, &["spec"]).as_mapping().unwrap();
    assert_eq!(spec.len(), 1, "spec holds only groups");
    let (generated, source) = (seq_at(rule, &["spec", "groups"]), seq_at(&rules, &["groups"]));
    assert!(!source.is_empty());
    assert_eq!(generated.len(), source.len(), "number of groups");
    for (g, s) in generated.iter().zip(source) {
        let name = str_at(s, &["name"]);
        assert_eq!(str_at(g, &["name"]), name);
        let (g_rules, s_rules) = (seq_at(g, &["rules"]), seq_at(s, &["rules"]));
        assert_eq!(g_rules.len(), s_rules.len(), "number of rules in group {name}");
        for (gr, sr) in g_rules.iter().zip(s_rules) {
            assert_eq!(gr, sr, "a rule of group {name} differs");
        }
        assert_eq!(g, s, "group {name} differs outside its rules");
    }
    // And the generator reproduces the committed manifest byte for byte.
    let out = run_tool("bash", &["scripts/gen-prometheusrule.sh", "--check"], None);
    assert!(out.status.success(), "{}", out.text());
}

// ---- Kubernetes: shards ----------------------------------------------------------------

/// The overlay that runs the exporter as a StatefulSet of shards (a sibling of the base:
/// kustomize refuses an overlay inside its base's directory).
const K8S_SHARDED: &str = "deploy/kubernetes-sharded";

/// The base ServiceMonitor gives the exporter one `instance` whatever pod runs it (the
/// series carry on across a pod's replacement, and a backfill can name it in advance);
/// the sharded overlay replaces that relabeling with the pod's stable name, so that
/// each shard is its own instance.
#[test]
fn the_servicemonitor_keeps_one_instance_per_exporter_and_per_shard() {
    let base = k8s_files();
    let monitor = k8s_object(&base, "ServiceMonitor");
    let relabelings = seq_at(&seq_at(monitor, &["spec", "endpoints"])[0], &["relabelings"]);
    assert_eq!(str_at(&relabelings[0], &["targetLabel"]), "instance");
    assert_eq!(str_at(&relabelings[0], &["replacement"]), "wolkvox-exporter");
    assert!(relabelings[0].get("sourceLabels").is_none());
    assert_eq!(str_at(&relabelings[1], &["action"]), "labeldrop");
    assert_eq!(str_at(&relabelings[1], &["regex"]), "pod|container");
    // The job the rules' target alerts look for.
    assert_eq!(str_at(&relabelings[2], &["targetLabel"]), "job");
    let rules = std::fs::read_to_string("alerts/wolkvox.rules.yml").unwrap();
    let job = str_at(&relabelings[2], &["replacement"]);
    assert!(rules.contains(&format!("up{{job=\"{job}\"}}")), "{job}");

    let kustomization = yaml(&format!("{K8S_SHARDED}/kustomization.yaml"));
    let patch = seq_at(&kustomization, &["patches"])
        .iter()
        .find(|p| {
            p.get("target").and_then(|t| t.get("kind")).and_then(Value::as_str) == Some("ServiceMonitor")
        })
        .expect("the overlay patches the ServiceMonitor");
    let ops: Vec<Value> = serde_yaml_ng::from_str(str_at(patch, &["patch"])).unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(str_at(&ops[0], &["op"]), "replace");
    assert_eq!(str_at(&ops[0], &["path"]), "/spec/endpoints/0/relabelings/0");
    let value = at(&ops[0], &["value"]);
    assert_eq!(str_at(value, &["targetLabel"]), "instance");
    assert_eq!(seq_at(value, &["sourceLabels"]), &vec![Value::from("__meta_kubernetes_pod_name")]);
}

#[test]
fn sharded_manifests_validate_against_the_kubernetes_schemas() {
    let checked = validate_core_manifests(K8S_SHARDED);
    assert_eq!(checked, 3, "the StatefulSet, its Service and the config patch");
}

/// The one inline patch of `kind` (a `$patch: delete`), parsed.
fn deletion_of(patches: &[Value], kind: &str) -> Option<Value> {
    patches
        .iter()
        .filter_map(|p| p.get("patch").and_then(Value::as_str))
        .map(|text| serde_yaml_ng::from_str::<Value>(text).unwrap())
        .find(|p| p.get("kind").and_then(Value::as_str) == Some(kind))
}

#[test]
fn sharded_overlay_swaps_the_deployment_for_a_statefulset_of_shards() {
    use clap::Parser;
    use wolkvox_exporter::cli::Args;
    use wolkvox_exporter::shard::Shard;

    let base = k8s_files();
    let files = manifests(K8S_SHARDED);
    let kustomization = yaml(&format!("{K8S_SHARDED}/kustomization.yaml"));
    let base_kustomization = yaml(&format!("{K8S}/kustomization.yaml"));

    // Every file is a resource or a patch; the base comes in whole, with its image.
    let resources: BTreeSet<String> =
        seq_at(&kustomization, &["resources"]).iter().map(|r| r.as_str().unwrap().to_owned()).collect();
    assert!(resources.contains("../kubernetes"), "{resources:?}");
    let patches = seq_at(&kustomization, &["patches"]);
    let patch_files: BTreeSet<String> =
        patches.iter().filter_map(|p| p.get("path").and_then(Value::as_str).map(str::to_owned)).collect();
    for (file, _) in &files {
        assert!(
            resources.contains(file) != patch_files.contains(file),
            "{file} must be either a resource or a patch"
        );
    }
    assert_eq!(at(&kustomization, &["images"]), at(&base_kustomization, &["images"]));

    // The base's Deployment and its single state claim are deleted by name.
    let deployment = k8s_object(&base, "Deployment");
    let pvc = k8s_object(&base, "PersistentVolumeClaim");
    for (kind, object) in [("Deployment", deployment), ("PersistentVolumeClaim", pvc)] {
        let patch = deletion_of(patches, kind).unwrap_or_else(|| panic!("no {kind} deletion"));
        assert_eq!(str_at(&patch, &["$patch"]), "delete");
        assert_eq!(str_at(&patch, &["metadata", "name"]), str_at(object, &["metadata", "name"]));
    }

    // The pods are the Deployment's, but for the shard argument and its variable, and
    // the state volume: one claim per replica instead of the one shared claim.
    let set = k8s_object(&files, "StatefulSet");
    let replicas = at(set, &["spec", "replicas"]).as_u64().unwrap() as u32;
    assert!(replicas > 1);
    assert_eq!(at(set, &["spec", "selector"]), at(deployment, &["spec", "selector"]));
    let (mut pod, mut base_pod) =
        (at(set, &["spec", "template"]).clone(), at(deployment, &["spec", "template"]).clone());
    let take = |pod: &mut Value, key: &str| -> Value {
        let container = &mut pod["spec"]["containers"][0];
        container.as_mapping_mut().unwrap().remove(key).unwrap_or(Value::Null)
    };
    let (args, base_args) = (take(&mut pod, "args"), take(&mut base_pod, "args"));
    let env = take(&mut pod, "env");
    assert_eq!(take(&mut base_pod, "env"), Value::Null);
    let volumes = pod["spec"].as_mapping_mut().unwrap().remove("volumes").unwrap();
    let base_volumes = base_pod["spec"].as_mapping_mut().unwrap().remove("volumes").unwrap();
    assert_eq!(pod, base_pod, "the pod templates differ beyond args, env and volumes");

    let shard_arg = format!("--shard=$(SHARD_INDEX)/{replicas}");
    let mut expected_args = base_args.as_sequence().unwrap().clone();
    expected_args.push(Value::from(shard_arg.as_str()));
    assert_eq!(args.as_sequence().unwrap(), &expected_args);
    let env = env.as_sequence().unwrap();
    assert_eq!(env.len(), 1);
    assert_eq!(str_at(&env[0], &["name"]), "SHARD_INDEX");
    assert_eq!(
        str_at(&env[0], &["valueFrom", "fieldRef", "fieldPath"]),
        "metadata.labels['apps.kubernetes.io/pod-index']"
    );
    // Each replica's arguments, once Kubernetes expands its ordinal, are the exporter's
    // own flags and name its shard; one past the last ordinal would be refused.
    let args: Vec<&str> = expected_args.iter().map(|a| a.as_str().unwrap()).collect();
    let with_index = |i: u32| -> Vec<String> {
        std::iter::once("wolkvox-exporter".to_owned())
            .chain(args.iter().map(|a| a.replace("$(SHARD_INDEX)", &i.to_string())))
            .collect()
    };
    for i in 0..replicas {
        let parsed = Args::try_parse_from(with_index(i)).unwrap();
        assert_eq!(parsed.shard, Shard::new(i, replicas).unwrap());
    }
    assert!(Args::try_parse_from(with_index(replicas)).is_err());

    let state = "/var/lib/wolkvox-exporter";
    let claim_volume = |v: &Value| v.get("persistentVolumeClaim").is_some();
    let base_volumes: Vec<&Value> =
        base_volumes.as_sequence().unwrap().iter().filter(|v| !claim_volume(v)).collect();
    let volumes: Vec<&Value> = volumes.as_sequence().unwrap().iter().collect();
    assert_eq!(volumes, base_volumes);
    let mounts = seq_at(&pod, &["spec", "containers"])[0]["volumeMounts"].as_sequence().unwrap().clone();
    let state_mount = mounts.iter().find(|m| str_at(m, &["mountPath"]) == state).expect("a state mount");
    let templates = seq_at(set, &["spec", "volumeClaimTemplates"]);
    assert_eq!(templates.len(), 1);
    assert_eq!(str_at(&templates[0], &["metadata", "name"]), str_at(state_mount, &["name"]));
    assert_eq!(seq_at(&templates[0], &["spec", "accessModes"]), &vec![Value::from("ReadWriteOnce")]);

    // The governing Service is headless and not scraped; the base's Service, which the
    // ServiceMonitor scrapes, selects every replica.
    let headless = k8s_object(&files, "Service");
    assert_eq!(str_at(set, &["spec", "serviceName"]), str_at(headless, &["metadata", "name"]));
    assert_eq!(str_at(headless, &["spec", "clusterIP"]), "None");
    let pod_labels = at(set, &["spec", "template", "metadata", "labels"]);
    let selects_pods = |service: &Value| {
        at(service, &["spec", "selector"])
            .as_mapping()
            .unwrap()
            .iter()
            .all(|(k, v)| pod_labels.get(k.as_str().unwrap()) == Some(v))
    };
    assert!(selects_pods(headless));
    assert!(selects_pods(k8s_object(&base, "Service")));
    let monitor = k8s_object(&base, "ServiceMonitor");
    let headless_labels = at(headless, &["metadata", "labels"]);
    let scraped = at(monitor, &["spec", "selector", "matchLabels"])
        .as_mapping()
        .unwrap()
        .iter()
        .all(|(k, v)| headless_labels.get(k.as_str().unwrap()) == Some(v));
    assert!(!scraped, "the ServiceMonitor would scrape every replica twice");

    // The configuration replaces the base's; it is valid, its token files are keys
    // under the Secret's mount, and every shard has an operation to follow.
    let config = k8s_object(&files, "ConfigMap");
    assert_eq!(
        str_at(config, &["metadata", "name"]),
        str_at(k8s_object(&base, "ConfigMap"), &["metadata", "name"])
    );
    let text = str_at(config, &["data", "config.yaml"]);
    assert_valid_exporter_config(&format!("{K8S_SHARDED}/config-patch.yaml"), text);
    let secret_dir = mounts
        .iter()
        .find(|m| str_at(m, &["name"]) == "token")
        .map(|m| str_at(m, &["mountPath"]))
        .expect("the token mount");
    let parsed: Value = serde_yaml_ng::from_str(text).unwrap();
    let mut per_shard = vec![0; replicas as usize];
    for op in seq_at(&parsed, &["operations"]) {
        let name = str_at(op, &["name"]);
        let token_file = str_at(op, &["token_file"]);
        assert_eq!(token_file, format!("{secret_dir}/{name}"));
        per_shard[Shard::of(name, replicas) as usize] += 1;
    }
    assert!(per_shard.iter().all(|n| *n > 0), "{per_shard:?}");
}

// ---- Kubernetes: history on day one ------------------------------------------------------

/// The one-off backfill, outside the base's kustomization: a Job that runs `wolkvox-exporter
/// backfill` as the Deployment runs the exporter, and a pod of the Prometheus image that
/// holds the same claim for promtool.
const K8S_BACKFILL: &str = "deploy/kubernetes-backfill";

#[test]
fn backfill_manifests_validate_against_the_kubernetes_schemas() {
    let checked = validate_core_manifests(K8S_BACKFILL);
    assert_eq!(checked, 2, "the Job and the promtool pod");
}

/// The volume of `pod` that `container` mounts at `path`.
fn volume_mounted_at<'a>(pod: &'a Value, container: &Value, path: &str) -> &'a Value {
    let mount = seq_at(container, &["volumeMounts"])
        .iter()
        .find(|m| str_at(m, &["mountPath"]) == path)
        .unwrap_or_else(|| panic!("nothing mounted at {path}"));
    seq_at(pod, &["volumes"])
        .iter()
        .find(|v| str_at(v, &["name"]) == str_at(mount, &["name"]))
        .unwrap_or_else(|| panic!("no volume for the mount at {path}"))
}

/// Whether every `key: value` of `selector` is among `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector.as_mapping().unwrap().iter().all(|(k, v)| labels.get(k.as_str().unwrap()) == Some(v))
}

#[test]
fn backfill_job_writes_the_series_the_servicemonitor_scrapes_into_the_deployments_claim() {
    use clap::Parser;
    use std::collections::BTreeMap;
    use wolkvox_exporter::cli::{Args, Command as Cli};

    let base = k8s_files();
    let files = manifests(K8S_BACKFILL);
    let job = k8s_object(&files, "Job");
    let deployment = k8s_object(&base, "Deployment");
    let (pod, base_pod) =
        (at(job, &["spec", "template", "spec"]), at(deployment, &["spec", "template", "spec"]));
    let restart = pod.get("restartPolicy").and_then(Value::as_str);
    assert!(
        matches!(restart, Some("Never" | "OnFailure")),
        "restartPolicy {restart:?}: a Job's pod must not restart Always"
    );
    let containers = seq_at(pod, &["containers"]);
    assert_eq!(containers.len(), 1);
    let (c, base_c) = (&containers[0], &seq_at(base_pod, &["containers"])[0]);

    // The Deployment's image (as kustomize rewrites it), user, file system, account,
    // volumes and mounts: the same config, token Secret and state claim.
    let kustomization = yaml(&format!("{K8S}/kustomization.yaml"));
    let image = &seq_at(&kustomization, &["images"])[0];
    assert_eq!(str_at(image, &["name"]), str_at(base_c, &["image"]));
    assert_eq!(
        str_at(c, &["image"]),
        format!("{}:{}", str_at(image, &["newName"]), str_at(image, &["newTag"]))
    );
    for key in ["securityContext", "serviceAccountName", "automountServiceAccountToken", "volumes"] {
        assert_eq!(at(pod, &[key]), at(base_pod, &[key]), "pod {key}");
    }
    for key in ["securityContext", "volumeMounts"] {
        assert_eq!(at(c, &[key]), at(base_c, &[key]), "container {key}");
    }
    let state_dir = "/var/lib/wolkvox-exporter";
    let pvc = k8s_object(&base, "PersistentVolumeClaim");
    assert_eq!(
        str_at(volume_mounted_at(pod, c, state_dir), &["persistentVolumeClaim", "claimName"]),
        str_at(pvc, &["metadata", "name"])
    );
    let secret = k8s_object(&base, "Secret");
    let secret_volume = seq_at(pod, &["volumes"])
        .iter()
        .find(|v| v.get("secret").is_some())
        .expect("the token Secret is mounted");
    assert_eq!(str_at(secret_volume, &["secret", "secretName"]), str_at(secret, &["metadata", "name"]));

    // The arguments are the exporter's own backfill flags, once Kubernetes has expanded
    // the pod's namespace; the state path comes from the image's entrypoint, on the claim.
    let env = seq_at(c, &["env"]);
    assert_eq!(env.len(), 1);
    assert_eq!(str_at(&env[0], &["name"]), "POD_NAMESPACE");
    assert_eq!(str_at(&env[0], &["valueFrom", "fieldRef", "fieldPath"]), "metadata.namespace");
    let namespace = "monitoring";
    let args: Vec<String> = std::iter::once("wolkvox-exporter".to_owned())
        .chain(
            seq_at(c, &["args"]).iter().map(|a| a.as_str().unwrap().replace("$(POD_NAMESPACE)", namespace)),
        )
        .collect();
    assert!(!args.iter().any(|a| a.starts_with("--state.path")));
    assert!(read("Dockerfile").contains(&format!("\"--state.path={state_dir}/state.json\"")));
    let parsed = Args::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let Some(Cli::Backfill(backfill)) = &parsed.command else {
        panic!("{args:?} is not the backfill subcommand");
    };
    assert!(args.iter().any(|a| a.starts_with("--from=")));
    assert!(
        backfill.output.starts_with(state_dir),
        "--output={} is not on the state claim",
        backfill.output.display()
    );
    let config_arg = args.iter().find_map(|a| a.strip_prefix("--config.file=")).expect("--config.file");
    let base_args: Vec<&str> = seq_at(base_c, &["args"]).iter().map(|a| a.as_str().unwrap()).collect();
    assert!(base_args.contains(&format!("--config.file={config_arg}").as_str()));

    // The labels are those the ServiceMonitor gives the exporter's series: job and
    // instance from its relabelings, service from the Service's name, namespace,
    // endpoint from the scraped port; pod and container are dropped.
    let service = k8s_object(&base, "Service");
    let monitor = k8s_object(&base, "ServiceMonitor");
    assert!(at(monitor, &["spec"]).get("jobLabel").is_none());
    let endpoint = &seq_at(monitor, &["spec", "endpoints"])[0];
    let relabelings = seq_at(endpoint, &["relabelings"]);
    let replaced = |label: &str| {
        relabelings
            .iter()
            .find(|r| r.get("targetLabel").and_then(Value::as_str) == Some(label))
            .map(|r| str_at(r, &["replacement"]))
            .unwrap_or_else(|| panic!("the ServiceMonitor sets {label}"))
    };
    let (job_name, instance) = (replaced("job"), replaced("instance"));
    let dropped = relabelings
        .iter()
        .find(|r| r.get("action").and_then(Value::as_str) == Some("labeldrop"))
        .map(|r| str_at(r, &["regex"]))
        .expect("the ServiceMonitor drops the pod's labels");
    let service_name = str_at(service, &["metadata", "name"]);
    let expected: BTreeMap<&str, &str> = BTreeMap::from([
        ("job", job_name),
        ("instance", instance),
        ("namespace", namespace),
        ("service", service_name),
        ("endpoint", str_at(endpoint, &["port"])),
    ]);
    let labels: BTreeMap<&str, &str> =
        backfill.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(labels, expected);
    for label in dropped.split('|') {
        assert!(!labels.contains_key(label), "{label} is dropped when scraped");
    }

    // Neither the Service (so neither the ServiceMonitor) nor the Deployment selects the
    // Job's pod.
    let pod_labels = at(job, &["spec", "template", "metadata", "labels"]);
    assert!(!selects(at(service, &["spec", "selector"]), pod_labels));
    assert!(!selects(at(deployment, &["spec", "selector", "matchLabels"]), pod_labels));

    // The promtool pod holds the same claim, with a writable temporary directory for
    // promtool under a read-only root, and is not scraped either.
    let promtool = k8s_object(&files, "Pod");
    let promtool_pod = at(promtool, &["spec"]);
    let promtool_c = &seq_at(promtool_pod, &["containers"])[0];
    assert!(str_at(promtool_c, &["image"]).starts_with("prom/prometheus:"));
    assert_eq!(
        str_at(
            volume_mounted_at(promtool_pod, promtool_c, state_dir),
            &["persistentVolumeClaim", "claimName"]
        ),
        str_at(pvc, &["metadata", "name"])
    );
    assert!(volume_mounted_at(promtool_pod, promtool_c, "/tmp").get("emptyDir").is_some());
    assert_eq!(at(promtool_pod, &["securityContext"]), at(base_pod, &["securityContext"]));
    assert!(!selects(at(service, &["spec", "selector"]), at(promtool, &["metadata", "labels"])));
}

// ---- systemd ---------------------------------------------------------------------------

const UNIT: &str = "deploy/systemd/wolkvox-exporter.service";

/// The unit, with ExecStart pointing at the binary under test (verify requires an
/// executable), in a temporary directory.
fn unit_for_analysis() -> (tempfile::TempDir, PathBuf) {
    let text = read(UNIT);
    assert!(text.contains("ExecStart=/usr/local/bin/wolkvox-exporter "));
    let text = text.replace(
        "ExecStart=/usr/local/bin/wolkvox-exporter ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_wolkvox-exporter")),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wolkvox-exporter.service");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let (_dir, unit) = unit_for_analysis();
    let out = run_tool("systemd-analyze", &["verify", "--man=no", unit.to_str().unwrap()], None);
    // verify exits 0 on unknown keys and bad values; it only warns, naming the file.
    let complaints: Vec<&str> =
        out.stderr.lines().chain(out.stdout.lines()).filter(|l| l.contains("wolkvox-exporter")).collect();
    assert!(out.status.success() && complaints.is_empty(), "systemd-analyze verify:\n{}", out.text());
}

#[test]
fn systemd_unit_is_hardened() {
    let (_dir, unit) = unit_for_analysis();
    let threshold = format!("--threshold={SYSTEMD_EXPOSURE_THRESHOLD}");
    let out =
        run_tool("systemd-analyze", &["security", "--offline=yes", &threshold, unit.to_str().unwrap()], None);
    assert!(out.status.success(), "exposure above {SYSTEMD_EXPOSURE_THRESHOLD}/100:\n{}", out.text());
    let text = read(UNIT);
    for line in [
        "DynamicUser=yes",
        "StateDirectory=wolkvox-exporter",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "LoadCredential=wolkvox_token:/etc/wolkvox-exporter/token",
        "Environment=WOLKVOX_TOKEN_FILE=%d/wolkvox_token",
    ] {
        assert!(text.lines().any(|l| l == line), "unit lacks {line}");
    }
    // The example config reads the credential that LoadCredential provides.
    let config = read("deploy/systemd/wolkvox-exporter.yml");
    assert!(config.contains("/run/credentials/wolkvox-exporter.service/wolkvox_token"));
    assert_valid_exporter_config("deploy/systemd/wolkvox-exporter.yml", &config);
}
