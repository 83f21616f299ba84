//! The token never leaves the exporter: the binary runs at trace level against APIs
//! driving every error path (each fault kind, invalid token, quota, 400, 401, 403
//! variants, an unreachable server, and error texts that echo the token back), and the
//! token is searched for in the logs, the exposition, the landing page and every error
//! body. A token file readable by others is warned about.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::clock::{anchored, TestClock};
use crate::support::config::{Operation, TestConfig};
use crate::support::exporter::Exporter;
use crate::support::exposition::Exposition;
use crate::support::http;
use wolkvox_sim::Reply;
use wolkvox_sim::{Fault, Wolkvox, WolkvoxConfig};

/// Every token carries this marker, so a leak of any of them, or of a part, is found.
const MARKER: &str = "wvx-SECRET";

fn token(kind: &str) -> String {
    let salt: u32 = rand::random();
    format!("{MARKER}-{kind}-{salt:08x}")
}

/// The scripted API answers in turn with each error the vendor documents, most of them
/// echoing the caller's token in their text, as careless servers do.
fn echoing_errors(req: &wolkvox_sim::Request) -> Reply {
    let t = req.token.clone().unwrap_or_default();
    match req.number % 11 {
        0 => Reply::error(400, &format!("The API does not exist or parameters are missing ({t})")),
        1 => Reply::error(401, &format!("Token missing: {t}")),
        2 => Reply::error(403, &format!("Invalid, expired or malformed token {t}")),
        3 => Reply::error(403, &format!("Exceeds the limit of simultaneous requests per token {t}")),
        4 => Reply::error(403, &format!("Server under maintenance (backups) for {t}")),
        5 => Reply::error(403, &format!("Forbidden for {t}")),
        6 => Reply::html(502, &format!("<html>bad gateway for token {t}</html>")),
        7 => Reply::html(200, &format!("<html>login page, token={t}</html>")),
        8 => Reply::json(200, format!(r#"{{"code":200,"msg":"{t}","data":[{{"agent_id":"1"#)),
        9 => Reply::json(302, format!("moved, token {t}")),
        _ => Reply::html(404, &format!("<html>no such page for {t}</html>")),
    }
}

fn assert_clean(what: &str, text: &str, tokens: &[String]) {
    for t in tokens {
        assert!(!text.contains(t.as_str()), "{what} holds a token:\n{text}");
    }
    assert!(!text.contains(MARKER), "{what} holds part of a token:\n{text}");
}

/// A raw request, for what an HTTP client will not send (malformed or refused methods).
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn run(log_level: &str) {
    // The binary reads the real clock: histories are placed before it, anchored.
    let (sim, end) = anchored(chrono::Duration::hours(3));
    let bounded = || WolkvoxConfig::new(sim.clone());

    let mut chaos_cfg = bounded();
    chaos_cfg.token = token("chaos");
    chaos_cfg.fault_probability = 0.7;
    chaos_cfg.fault_kinds = Fault::ALL.to_vec();
    chaos_cfg.fault_kinds.push(Fault::Simultaneous);
    chaos_cfg.timeout_delay = Duration::from_secs(3);
    let chaos = Wolkvox::start(chaos_cfg);

    let mut invalid_cfg = bounded();
    invalid_cfg.token = token("invalid");
    invalid_cfg.invalid_token = true;
    let invalid = Wolkvox::start(invalid_cfg);

    let mut quota_cfg = bounded();
    quota_cfg.token = token("quota");
    quota_cfg.daily_limit = Some(1);
    // Its day stays the one the test began in: no new allowance at the local midnight.
    quota_cfg.clock = TestClock::at(end).sim_clock();
    let quota = Wolkvox::start(quota_cfg);

    let echo = Wolkvox::start(WolkvoxConfig::scripted(echoing_errors));
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    let dir = tempfile::tempdir().unwrap();
    let echo_token = token("echo");
    let token_file = dir.path().join("echo.token");
    std::fs::write(&token_file, format!("{echo_token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let unreachable_token = token("unreachable");
    let tokens = vec![
        chaos.token().to_owned(),
        invalid.token().to_owned(),
        quota.token().to_owned(),
        echo_token.clone(),
        unreachable_token.clone(),
    ];
    let unreachable = format!("http://127.0.0.1:{closed_port}");
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("chaos", &chaos))
        .op(Operation::fake("invalid", &invalid))
        .op(Operation::fake("quota", &quota))
        .op(Operation::new("echo", echo.base_url(), "", "America/Bogota").token_file(&token_file))
        .op(Operation::new("unreachable", &unreachable, &unreachable_token, "America/Bogota"))
        .write(dir.path());
    let mut exporter = Exporter::start(&[&config, log_level]);

    let expected: &[(&str, &[&str])] = &[
        ("chaos", &["http_5xx", "timeout", "connect", "bad_response", "maintenance", "concurrency_limit"]),
        ("invalid", &["invalid_token"]),
        ("quota", &["quota_exceeded"]),
        (
            "echo",
            &[
                "bad_request",
                "unauthorized",
                "invalid_token",
                "concurrency_limit",
                "maintenance",
                "forbidden",
                "http_5xx",
                "bad_response",
            ],
        ),
        ("unreachable", &["connect"]),
    ];
    let text = exporter.wait_for_metrics(Duration::from_secs(90), |t| {
        let m = Exposition::parse(t);
        expected.iter().all(|(op, reasons)| {
            reasons.iter().all(|r| {
                m.sum("wolkvox_api_request_errors_total", &[("operation", op), ("reason", r)]) >= 1.0
            })
        }) && echo.requests() >= 11
    });
    assert_clean("/metrics", &text, &tokens);

    let om = http::get_with_headers(
        &exporter.url("/metrics"),
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    )
    .unwrap();
    assert_clean("/metrics (OpenMetrics)", &om.text(), &tokens);
    let landing = http::get(&exporter.url("/")).unwrap();
    assert_eq!(landing.status, 200);
    let page = landing.text();
    assert!(page.contains("echo") && page.contains("down"), "{page}");
    assert_clean("the landing page", &page, &tokens);
    for path in ["/-/healthy", "/-/ready", "/nope", "/metrics/../x"] {
        let r = http::get(&exporter.url(path)).unwrap();
        assert_clean(path, &format!("{:?} {}", r.headers, r.text()), &tokens);
    }
    for request in [
        &b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..],
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nwolkvox-token: nothing\r\nConnection: close\r\n\r\n",
    ] {
        assert_clean("an error answer", &raw(exporter.addr(), request), &tokens);
    }

    assert!(exporter.terminate().success());
    let logs = exporter.logs();
    assert_clean("the logs", &logs, &tokens);
    assert!(logs.contains("token file is readable by other users") && logs.contains("mode=644"), "{logs}");
    assert!(logs.contains(&token_file.display().to_string()), "the warning names the file");
    let state = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
    assert_clean("the state file", &state, &tokens);
    println!(
        "{log_level}: {} log lines, {} bytes of exposition, no token anywhere",
        logs.lines().count(),
        text.len()
    );
}

#[test]
fn no_token_anywhere_at_trace_level() {
    run("--log.level=trace");
}

#[test]
fn no_token_anywhere_with_every_library_at_trace() {
    // A full filter directive: the HTTP client and server libraries log at trace too.
    run("--log.level=trace,wolkvox_exporter=trace");
}
