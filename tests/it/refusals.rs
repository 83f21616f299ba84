//! Commands that cannot hurt: `backfill` refuses before its first report request what
//! would overwrite, collide or spend too much (an existing or non-regular `--output`,
//! paths it cannot write, an empty label, a state path in use, a range beyond today's
//! allowance), a full disk leaves no temporary file, and the exporter's own start-up
//! errors are one logfmt line. Every refusal is held against the simulated Wolkvox's
//! request log. Ranges are fixed past dates, so no test depends on today's date.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::config::{Operation, TestConfig};
use crate::support::exporter::{exporter_bin, run_to_exit, Exporter, Finished};
use crate::support::wait::Wait;
use chrono::{TimeZone, Utc};
use wolkvox_exporter::backfill::{self, BackfillError, Bars, Bound, Options};
use wolkvox_sim::{Wolkvox, WolkvoxConfig};

const DEADLINE: Duration = Duration::from_secs(120);

/// Ten agents' records on 2025-03-10, Bogota time.
fn fake(tweak: impl FnOnce(&mut WolkvoxConfig)) -> Wolkvox {
    let at = |h| Utc.with_ymd_and_hms(2025, 3, 10, h, 0, 0).unwrap();
    let mut config = WolkvoxConfig::bounded(at(5), at(23));
    tweak(&mut config);
    Wolkvox::start(config)
}

/// The configuration of one operation on `fake`, written to `dir/config.yml`.
fn config(dir: &Path, state: &Path, fake: &Wolkvox) -> String {
    std::fs::create_dir_all(dir).unwrap();
    TestConfig::new(state).op(Operation::fake("main", fake).reports(&["agent_13"])).write(dir)
}

fn backfill(config: &str, output: &Path, extra: &[&str]) -> Finished {
    let output = format!("--output={}", output.display());
    let mut args = vec![
        "backfill",
        config,
        "--from=2025-03-10",
        "--to=2025-03-10",
        &output,
        "--label=job=wolkvox",
        "--label=instance=exporter:9798",
    ];
    args.extend_from_slice(extra);
    run_to_exit(&args, &[], DEADLINE)
}

/// Exit status 2, `says` on one logfmt error line, no request, and no claim of a resume.
fn assert_refused(out: &Finished, fake: &Wolkvox, says: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("level=error")).collect();
    assert_eq!(errors.len(), 1, "{}", out.text());
    assert!(errors[0].starts_with("ts=") && errors[0].contains(says), "{}", out.text());
    assert!(!out.text().contains("resume"), "{}", out.text());
    assert_eq!(fake.requests(), 0, "a refusal spends nothing: {}", out.text());
}

/// The files in `dir`, as names.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_existing_output_is_kept_unless_overwrite_is_given() {
    let fake = fake(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = config(dir.path(), &state, &fake);
    let output = dir.path().join("history.om");
    std::fs::write(&output, "precious\n").unwrap();
    let out = backfill(&config, &output, &[]);
    assert_refused(&out, &fake, "exists; name a new file, or pass --output.overwrite");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "precious\n");
    // Another exporter's state is a regular file like any other.
    let other = dir.path().join("other-state.json");
    std::fs::write(&other, "{\"version\":2}").unwrap();
    assert_refused(&backfill(&config, &other, &[]), &fake, "exists");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "{\"version\":2}");
    assert_eq!(
        files(dir.path()),
        ["config.yml", "history.om", "other-state.json"],
        "no state, progress, lock or temporary file"
    );

    let out = backfill(&config, &output, &["--output.overwrite"]);
    assert!(out.status.success(), "{}", out.text());
    let written = std::fs::read_to_string(&output).unwrap();
    assert!(written.starts_with("# HELP") && written.ends_with("# EOF\n"));
    // As readable as a file created plainly (promtool may run as another user).
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let plain = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    std::fs::remove_file(&plain).unwrap();
    std::fs::write(&plain, "").unwrap();
    assert_eq!(mode(&output), mode(&plain));
    assert_eq!(
        files(dir.path()),
        ["config.yml", "history.om", "other-state.json", "state.json", "state.json.lock"]
    );
}

/// `--output=/dev/full` run as root replaced the device node with a regular file. A
/// device node (made here when the test may: as root), a FIFO and a directory are
/// never replaced, even with `--output.overwrite`, and nothing is spent.
#[test]
fn a_non_regular_output_is_never_replaced() {
    let fake = fake(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &dir.path().join("state.json"), &fake);
    let made = |program: &str, args: &[&str]| {
        Command::new(program).args(args).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    let fifo = dir.path().join("fifo.om");
    assert!(made("mkfifo", &[fifo.to_str().unwrap()]));
    let directory = dir.path().join("dir.om");
    std::fs::create_dir(&directory).unwrap();
    let mut outputs = vec![fifo, directory];
    let device = dir.path().join("full.om");
    // The numbers of /dev/full.
    if made("mknod", &[device.to_str().unwrap(), "c", "1", "7"]) {
        outputs.push(device);
    } else {
        eprintln!("not root: the device-node case is left out (the FIFO and directory stand for it)");
    }
    for output in outputs {
        let kind = std::fs::symlink_metadata(&output).unwrap().file_type();
        let out = backfill(&config, &output, &["--output.overwrite"]);
        assert_refused(&out, &fake, "exists and is not a regular file");
        let now = std::fs::symlink_metadata(&output).unwrap().file_type();
        assert_eq!(
            (now.is_fifo(), now.is_dir(), now.is_char_device()),
            (kind.is_fifo(), kind.is_dir(), kind.is_char_device()),
            "{} was replaced",
            output.display()
        );
    }
}

/// What used to be found only after every request (a missing directory, one that takes
/// no file, the state's own files) is refused before the first.
#[test]
fn paths_are_checked_before_the_first_request() {
    let fake = fake(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = config(dir.path(), &state, &fake);
    let cases: [(PathBuf, &str); 5] = [
        (dir.path().join("missing/history.om"), "is not usable"),
        ("/sys/wolkvox-history.om".into(), "cannot create a file in /sys"),
        (state.clone(), "is --state.path"),
        (dir.path().join("sub/../state.json"), "is --state.path"),
        (dir.path().join("state.json.backfill"), "is the backfill's progress file"),
    ];
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    for (output, says) in cases {
        let out = backfill(&config, &output, &[]);
        assert_refused(&out, &fake, says);
        assert!(!state.exists() && !dir.path().join("state.json.backfill").exists());
    }
    let out = backfill(&config, &dir.path().join("history.om"), &["--state.path=/sys/wolkvox/state.json"]);
    assert_refused(&out, &fake, "--state.path /sys/wolkvox/state.json: cannot lock");
    // A shard that follows no operation has nothing to backfill ("main" is in shard 1
    // of 2).
    let out = backfill(&config, &dir.path().join("history.om"), &["--shard=0/2"]);
    assert_refused(&out, &fake, "operations=\"main: shard 1/2\"");
    // An empty label value would make the history a series of its own.
    let out = backfill(&config, &dir.path().join("history.om"), &["--label=job="]);
    assert_refused(&out, &fake, "empty value");
    assert!(out.stderr.contains("--label"), "{}", out.text());
}

/// Two backfills on one state path, and an exporter with either: the second gets an
/// error naming the first one's pid and spends nothing (its requests would go to a
/// fake of its own), and the finished state has no stale progress file beside it.
#[test]
fn one_process_at_a_time_works_on_a_state_path() {
    let slow = fake(|c| c.latency = Duration::from_millis(1500));
    let other = fake(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let first = config(&dir.path().join("a"), &state, &slow);
    let second = config(&dir.path().join("b"), &state, &other);
    let output = dir.path().join("history.om");
    let mut child = Command::new(exporter_bin())
        .args([
            "backfill",
            &first,
            "--from=2025-03-10",
            "--to=2025-03-10",
            &format!("--output={}", output.display()),
            "--label=job=wolkvox",
            "--label=instance=exporter:9798",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let holder = format!("in use by process {}", child.id());
    Wait::new("the first backfill's first request", DEADLINE)
        .until(|| (slow.requests() > 0).then_some(()).ok_or("none yet"));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let in_process = |config: &str| {
        let path = config.trim_start_matches("--config.file=");
        let yaml = std::fs::read_to_string(path).unwrap();
        let config = wolkvox_exporter::config::Config::build(
            wolkvox_exporter::config::FileConfig::parse(&yaml).unwrap(),
            &Default::default(),
            |_| None,
        )
        .unwrap();
        let day = Bound::Day(chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap());
        let options = Options {
            from: day,
            to: Some(day),
            step: Duration::from_secs(300),
            output: dir.path().join("second.om"),
            overwrite: false,
            labels: vec![("job".into(), "w".into()), ("instance".into(), "i".into())],
            spread: false,
        };
        let clock = std::sync::Arc::new(wolkvox_exporter::clock::SystemClock);
        runtime.block_on(backfill::run(&config, &options, clock, &Bars::default(), std::future::pending()))
    };
    let err = in_process(&second).unwrap_err();
    assert!(matches!(err, BackfillError::Locked(_)), "{err}");
    assert!(err.to_string().contains(&holder), "{err}");
    let exporter = run_to_exit(&[&second, "--web.listen-address=127.0.0.1:0"], &[], DEADLINE);
    assert_refused(&exporter, &other, &holder);
    assert!(exporter.stderr.contains("flag=--state.path"), "{}", exporter.text());

    let done = Wait::new("the first backfill to finish", DEADLINE)
        .until(|| child.try_wait().unwrap().ok_or("running"));
    assert!(done.success());
    assert_eq!(
        files(dir.path()),
        ["a", "b", "history.om", "state.json", "state.json.lock"],
        "the state and the history, no progress file"
    );

    // The exporter on the written state holds it in turn.
    let exporter = Exporter::start_listening(&[&second]);
    let err = in_process(&config(&dir.path().join("c"), &state, &fake(|_| {}))).unwrap_err();
    assert!(err.to_string().contains(&format!("in use by process {}", exporter.pid())), "{err}");
    drop(exporter);
}

/// The output's directory is a 256 KiB tmpfs, mounted for the test (root only): the
/// write fails with a full disk, no temporary file is left, the progress is kept and
/// the command says so; the same command, with room, writes without reading again.
#[test]
fn a_full_disk_leaves_no_temporary_file_and_the_same_command_resumes() {
    let fake = fake(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = config(dir.path(), &state, &fake);
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mount = |options: &str| {
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs", small.to_str().unwrap()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !mount("size=256k") {
        eprintln!("skipped: mounting a tmpfs needs root (CAP_SYS_ADMIN)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&small);
    let output = small.join("history.om");

    let out = backfill(&config, &output, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert!(out.stderr.contains("No space left on device"), "{}", out.text());
    assert!(
        out.stderr.contains("the progress is saved in")
            && out.stderr.contains("the same command resumes from there"),
        "{}",
        out.text()
    );
    assert!(files(&small).is_empty(), "left behind: {:?}", files(&small));
    assert!(dir.path().join("state.json.backfill").exists() && !state.exists());
    let reports = |fake: &Wolkvox| fake.requests() - fake.requests_for("token_info") as u64;
    let read = reports(&fake);
    assert!(read > 0);

    assert!(mount("remount,size=64m"));
    let out = backfill(&config, &output, &[]);
    assert!(out.status.success(), "{}", out.text());
    assert_eq!(reports(&fake), read, "written without reading again");
    assert!(std::fs::read_to_string(&output).unwrap().ends_with("# EOF\n"));
    assert_eq!(files(&small), ["history.om"]);
    assert!(state.exists() && !dir.path().join("state.json.backfill").exists());
}

/// The plan is said, and refused beyond what today's allowance leaves: two millennia on
/// one licence before any request; three years after token_info alone (the API's 40 a
/// day); with `--spread` today's share is read and the run stops, saying it resumes.
#[test]
fn a_backfill_beyond_todays_allowance_is_refused_with_its_figures() {
    let fake = fake(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mut test_config = TestConfig::new(&state)
        .op(Operation::fake("main", &fake).licenses(1).reports(&["agent_13", "cdr_1"]));
    test_config.interval = "2h".to_owned();
    let config = test_config.write(dir.path());
    let output = dir.path().join("history.om");
    let out = backfill(&config, &output, &["--from=0001-01-01"]);
    assert_refused(&out, &fake, "about 47");
    for figure in ["requests (agent_13: 23", "cdr_1: 23", "token_info not asked", "--spread"] {
        assert!(out.stderr.contains(figure), "{figure}: {}", out.text());
    }

    let limited = fake_limited();
    let mut test_config = TestConfig::new(&state)
        .op(Operation::fake("main", &limited).licenses(1).reports(&["agent_13", "cdr_1"]));
    test_config.interval = "2h".to_owned();
    let config = test_config.write(dir.path());
    let range = ["--from=2020-01-01", "--to=2022-12-31"];
    let out = backfill(&config, &output, &range);
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert_eq!(limited.requests(), 1, "token_info only");
    assert_eq!(limited.requests_for("token_info"), 1);
    assert!(
        out.stdout.starts_with("backfill plan: operation main, 2020-01-01 00:00 to 2023-01-01 00:00 (America/Bogota, 1096 days): about 72 requests (agent_13: 36, cdr_1: 36;"),
        "{}",
        out.text()
    );
    assert!(
        out.stdout.contains(": 36 a day for the exporter (token_info, itself 1 request), less "),
        "{}",
        out.text()
    );
    assert!(out.stdout.contains(" Does NOT fit today; at this pace about "), "{}", out.text());
    assert!(out.stderr.contains("Pass --spread"), "{}", out.text());
    assert!(!state.exists() && !dir.path().join("state.json.backfill").exists());

    let out = backfill(&config, &output, &[&range[..], &["--spread"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert!(
        out.stdout.contains("stopped: today's request allowance is spent, or what is left of it is kept for the exporter's polling; run the same command after the operation's midnight to resume"),
        "{}",
        out.text()
    );
    assert!(dir.path().join("state.json.backfill").exists() && !output.exists());
    let spent = limited.requests();
    assert!((3..=36).contains(&spent), "{spent} requests, within the 36 of the day");
}

/// A token the API refuses is found by token_info: no report request follows.
#[test]
fn a_refused_token_stops_the_backfill_before_its_first_report_request() {
    let fake = fake(|c| c.invalid_token = true);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = config(dir.path(), &state, &fake);
    let out = backfill(&config, &dir.path().join("history.om"), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(
        out.stderr.contains("token_info was refused: invalid, expired or malformed token"),
        "{}",
        out.text()
    );
    assert_eq!((fake.requests(), fake.requests_for("token_info")), (1, 1));
    assert!(!state.exists() && !dir.path().join("state.json.backfill").exists());
}

fn fake_limited() -> Wolkvox {
    fake(|c| c.daily_limit = Some(40))
}

/// `--web.listen-address` that cannot be listened on, and values of megabytes in a
/// configuration: one logfmt line naming the flag or key, at most 200 characters of the
/// value, exit status 2.
#[test]
fn start_up_errors_are_one_short_line_naming_the_flag_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let state = format!("--state.path={}", dir.path().join("state.json").display());
    let env = [("WOLKVOX_SERVER", "0042"), ("WOLKVOX_TOKEN", "x")];
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = format!("--web.listen-address={}", taken.local_addr().unwrap());
    for (address, says) in [
        ("--web.listen-address=nonsense", "invalid socket address"),
        ("--web.listen-address=:99999", "invalid port value"),
        (taken.as_str(), "in use"),
    ] {
        let out = run_to_exit(&[&state, address], &env, DEADLINE);
        assert_eq!(out.status.code(), Some(2), "{}", out.text());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.text());
        assert!(
            out.stderr.starts_with("ts=") && out.stderr.contains("flag=--web.listen-address"),
            "{}",
            out.text()
        );
        assert!(out.stderr.contains(says), "{}", out.text());
    }

    let huge = "x".repeat(52 << 20);
    for (yaml, key) in [
        (format!("poll:\n  interval: \"{huge}\"\n"), "poll.interval"),
        (
            format!("operations:\n  - server: \"0042\"\n    token: t\n    timezone: \"{huge}\"\n"),
            "operations[0].timezone",
        ),
    ] {
        let config = crate::support::config::write_yaml(dir.path(), &yaml);
        let out = run_to_exit(&["check", &config], &[], DEADLINE);
        assert_eq!(out.status.code(), Some(2), "{}", &out.stderr[..out.stderr.len().min(500)]);
        assert!(out.stderr.len() < 1_000, "{} bytes on stderr", out.stderr.len());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr.contains(key) && out.stderr.contains(&format!("... ({} bytes)", 52 << 20)),
            "{}",
            out.stderr
        );
    }
    let flag = format!("--poll.overlap={}", "y".repeat(100_000));
    let out = run_to_exit(&[&flag], &env, DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.len() < 1_000 && out.stderr.contains("--poll.overlap"), "{}", out.stderr);
}
