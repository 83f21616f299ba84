//! The exporter behind `--web.config.file`: TLS with a verified certificate, basic auth
//! on every endpoint, and a bad file refused at start naming the key.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::clock::{reference_end, TestClock};
use crate::support::config::{Operation, TestConfig};
use crate::support::exporter::exporter_bin;
use crate::support::inproc::InProc;
use crate::support::wait::{check, Wait};
use wolkvox_exporter::web::{WebConfig, WebConfigHandle};
use wolkvox_sim::{Wolkvox, WolkvoxConfig};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
}

fn client() -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(fixtures().join("ca.crt")).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_basic_auth_guard_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("scrape-pass", 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {f}/server.crt\n  key_file: {f}/server.key\n  min_version: TLS12\n\
             basic_auth_users:\n  prometheus: '{hash}'\n",
            f = fixtures().display()
        ),
    )
    .unwrap();
    let end = reference_end();
    let clock = TestClock::at(end + chrono::Duration::minutes(1));
    let mut fake_config = WolkvoxConfig::bounded(end - chrono::Duration::hours(1), end);
    fake_config.clock = clock.sim_clock();
    let fake = Wolkvox::start(fake_config);
    let config =
        TestConfig::new(&dir.path().join("s.json")).op(Operation::fake("op", &fake)).catch_up("2h").config();
    let mut options = wolkvox_exporter::app::Options::new(config);
    options.clock = clock.shared();
    options.web = WebConfigHandle::fixed(WebConfig::load(&web).unwrap());
    let exporter = InProc::start_with(options).await;
    let port = exporter.addr.port();
    let c = client();
    // Ready once the first cycle of every report has finished (503 before it).
    let ready = format!("https://localhost:{port}/-/ready");
    Wait::new("the exporter to be ready", Duration::from_secs(30))
        .until_async(|| async {
            let status = c
                .get(&ready)
                .basic_auth("prometheus", Some("scrape-pass"))
                .send()
                .await
                .map(|r| r.status().as_u16());
            check(status.as_ref().is_ok_and(|s| *s == 200), || format!("{status:?}"))
        })
        .await;
    for path in ["/metrics", "/-/healthy", "/-/ready", "/"] {
        let url = format!("https://localhost:{port}{path}");
        let denied = c.get(&url).send().await.unwrap();
        assert_eq!(denied.status(), 401, "{path} without credentials");
        let challenge = denied.headers()["www-authenticate"].to_str().unwrap().to_lowercase();
        assert!(challenge.starts_with("basic"), "{challenge}");
        let wrong = c.get(&url).basic_auth("prometheus", Some("nope")).send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{path} with a wrong password");
        let ok = c.get(&url).basic_auth("prometheus", Some("scrape-pass")).send().await.unwrap();
        assert_eq!(ok.status(), 200, "{path} with credentials");
    }
    let body = c
        .get(format!("https://localhost:{port}/metrics"))
        .basic_auth("prometheus", Some("scrape-pass"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("wolkvox_up{operation=\"op\"}"));
    // Plain HTTP on the TLS port gets no metrics.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .basic_auth("prometheus", Some("scrape-pass"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    exporter.stop().await;
}

#[test]
fn a_bad_web_config_is_refused_at_start_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: /nonexistent/cert.pem\n  key_file: /nonexistent/key.pem\n",
    )
    .unwrap();
    let out = Command::new(exporter_bin())
        .args(["--demo", "--web.listen-address=127.0.0.1:0"])
        .arg(format!("--web.config.file={}", path.display()))
        .arg(format!("--state.path={}", dir.path().join("s.json").display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls_server_config.cert_file"), "{err}");
}
