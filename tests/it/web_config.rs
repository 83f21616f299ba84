//! `--web.config.file`: parsing and its error messages, basic auth, real TLS handshakes
//! on loopback against the committed test PKI, and reloading.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::wait::{check, Wait};
use hyper::header::{HeaderMap, HeaderValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use wolkvox_exporter::web::{
    AuthDenied, AuthResult, ClientAuthType, LoadedWebConfig, WatchOptions, WebConfig, WebConfigHandle,
};

const DEADLINE: Duration = Duration::from_secs(20);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// Loads `yaml` from a fresh directory and returns the error message.
fn load_error(yaml: &str) -> (String, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "web.yml", yaml);
    match WebConfig::load(&path) {
        Ok(_) => panic!("expected {yaml:?} to be refused"),
        Err(e) => (e.to_string(), path),
    }
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
}

fn basic(user: &str, password: &str) -> HeaderValue {
    let raw = format!("{user}:{password}");
    HeaderValue::from_str(&format!("Basic {}", base64(raw.as_bytes()))).expect("header")
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn tls_yaml(extra: &str) -> String {
    format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n{extra}",
        fixture("server.crt"),
        fixture("server.key")
    )
}

// ---------------------------------------------------------------- parsing

#[test]
fn a_complete_file_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("s3cret", 4).expect("hash");
    let yaml = format!(
        "{}  client_ca_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  min_version: TLS12\n  max_version: TLS13\n  prefer_server_cipher_suites: true\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\nbasic_auth_users:\n  prometheus: '{hash}'\n",
        tls_yaml(""),
        fixture("ca.crt")
    );
    let path = write(dir.path(), "web.yml", &yaml);
    let config = WebConfig::load(&path).expect("valid config");
    assert!(config.tls_enabled());
    assert!(config.tls.is_some());
    assert_eq!(config.client_auth, Some(ClientAuthType::RequireAndVerifyClientCert));
    assert!(config.basic_auth_enabled());
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    assert_eq!(config.watched_files().len(), 4, "{:?}", config.watched_files());

    let mut headers = HeaderMap::new();
    config.apply_headers(&mut headers);
    assert_eq!(headers["x-frame-options"], "deny");
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");
}

#[test]
fn an_empty_file_or_empty_sections_enable_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    for yaml in ["", "# only a comment\n", "tls_server_config: {}\nbasic_auth_users: {}\n"] {
        let path = write(dir.path(), "web.yml", yaml);
        let config = WebConfig::load(&path).expect("valid");
        assert!(!config.tls_enabled(), "{yaml:?}");
        assert!(!config.basic_auth_enabled(), "{yaml:?}");
        assert_eq!(config.check_basic_auth(None), AuthResult::NotRequired);
    }
    let disabled = LoadedWebConfig::disabled();
    assert!(!disabled.tls_enabled() && !disabled.basic_auth_enabled());
}

#[test]
fn unknown_keys_are_named() {
    let (message, path) = load_error("tls_config:\n  cert_file: x\n");
    assert_contains(&message, &[&path.display().to_string(), "unknown field `tls_config`"]);

    let (message, _) = load_error("tls_server_config:\n  certfile: x\n");
    assert_contains(&message, &["tls_server_config", "unknown field `certfile`"]);

    let (message, _) = load_error("http_server_config:\n  header:\n    X-Frame-Options: deny\n");
    assert_contains(&message, &["http_server_config", "unknown field `header`"]);
}

#[test]
fn syntax_errors_name_the_file() {
    let (message, path) = load_error("tls_server_config: [unclosed\n");
    assert_contains(&message, &[&path.display().to_string()]);
    let (message, _) = load_error("basic_auth_users: [a, b]\n");
    assert_contains(&message, &["basic_auth_users"]);
}

#[test]
fn a_missing_file_is_reported_with_its_path() {
    let error = WebConfig::load("/nonexistent/web.yml").expect_err("missing");
    assert_contains(&error.to_string(), &["/nonexistent/web.yml", "cannot read", "No such file"]);
}

#[test]
fn unreadable_referenced_files_name_key_and_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!("tls_server_config:\n  cert_file: /x/y.crt\n  key_file: {}\n", fixture("server.key"));
    let path = write(dir.path(), "web.yml", &yaml);
    let message = WebConfig::load(&path).expect_err("missing cert").to_string();
    assert_contains(
        &message,
        &[&path.display().to_string(), "tls_server_config.cert_file: cannot read /x/y.crt: No such file"],
    );

    let yaml =
        format!("tls_server_config:\n  cert_file: {}\n  key_file: missing.key\n", fixture("server.crt"));
    let path = write(dir.path(), "web.yml", &yaml);
    let message = WebConfig::load(&path).expect_err("missing key").to_string();
    let expected =
        format!("tls_server_config.key_file: cannot read {}", dir.path().join("missing.key").display());
    assert_contains(&message, &[&expected]);
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    for name in ["server.crt", "server.key", "ca.crt"] {
        std::fs::copy(fixtures().join(name), certs.join(name)).expect("copy");
    }
    let yaml = "tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n  client_ca_file: certs/ca.crt\n  client_auth_type: VerifyClientCertIfGiven\n";
    let path = write(dir.path(), "web.yml", yaml);
    // The test's working directory is the crate root, where `certs/` does not exist.
    let config = WebConfig::load(&path).expect("relative paths");
    assert!(config.tls_enabled());
    assert!(config.watched_files().contains(&dir.path().join("certs/server.crt")));
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let yaml = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        fixture("server.crt"),
        fixture("unrelated.key")
    );
    let (message, _) = load_error(&yaml);
    assert_contains(&message, &["does not match the certificate", "unrelated.key", "server.crt"]);
}

#[test]
fn pem_files_without_the_expected_blocks_are_refused() {
    let yaml = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        fixture("server.key"),
        fixture("server.key")
    );
    let (message, _) = load_error(&yaml);
    assert_contains(&message, &["tls_server_config.cert_file", "no CERTIFICATE block"]);

    let yaml = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        fixture("server.crt"),
        fixture("server.crt")
    );
    let (message, _) = load_error(&yaml);
    assert_contains(&message, &["tls_server_config.key_file", "PRIVATE KEY"]);
}

#[test]
fn inconsistent_tls_settings_name_the_key() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            "tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n".into(),
            vec!["tls_server_config.cert_file: missing"],
        ),
        (
            format!("tls_server_config:\n  cert_file: {}\n", fixture("server.crt")),
            vec!["tls_server_config.key_file: missing"],
        ),
        (
            tls_yaml("  client_auth_type: Sometimes\n"),
            vec!["tls_server_config.client_auth_type", "\"Sometimes\"", "RequireAndVerifyClientCert"],
        ),
        (
            tls_yaml(&format!("  client_ca_file: {}\n", fixture("ca.crt"))),
            vec!["tls_server_config.client_ca_file", "NoClientCert"],
        ),
        (
            tls_yaml("  client_auth_type: RequireAndVerifyClientCert\n"),
            vec!["tls_server_config.client_ca_file: missing"],
        ),
        // The settings are checked before any file is read: a mistyped CA path still
        // gets the advice about client_auth_type.
        (
            tls_yaml("  client_ca_file: /nonexistent/ca.crt\n"),
            vec!["tls_server_config.client_ca_file", "NoClientCert"],
        ),
        (
            tls_yaml("  client_auth_type: Sometimes\n  client_ca_file: /nonexistent/ca.crt\n"),
            vec!["tls_server_config.client_auth_type", "\"Sometimes\""],
        ),
        (tls_yaml("  min_version: TLS10\n"), vec!["tls_server_config.min_version", "TLS10 is not supported"]),
        (tls_yaml("  max_version: TLS14\n"), vec!["tls_server_config.max_version", "unknown TLS version"]),
        (
            tls_yaml("  min_version: TLS13\n  max_version: TLS12\n"),
            vec!["tls_server_config.min_version: TLS13 is above max_version TLS12"],
        ),
        (
            tls_yaml("  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
            vec!["tls_server_config.cipher_suites: not supported"],
        ),
        (
            tls_yaml("  client_allowed_sans: [scraper.test]\n"),
            vec!["tls_server_config.client_allowed_sans: not supported"],
        ),
        (
            tls_yaml("  cert: inline\n"),
            vec!["tls_server_config.cert_file: set only one of cert and cert_file"],
        ),
        ("rate_limit:\n  burst: 1\n".into(), vec!["rate_limit: not supported"]),
        (
            "http_server_config:\n  headers:\n    Server: nginx\n".into(),
            vec!["http_server_config.headers.Server", "cannot be configured"],
        ),
        (
            "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n".into(),
            vec!["http_server_config.headers.X-Content-Type-Options", "nosniff"],
        ),
    ];
    for (yaml, expected) in cases {
        let (message, _) = load_error(&yaml);
        assert_contains(&message, &expected);
    }
}

#[test]
fn inline_pem_is_accepted_and_not_echoed_in_debug() {
    let dir = tempfile::tempdir().expect("tempdir");
    let indent = |text: String| text.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let cert = std::fs::read_to_string(fixtures().join("server.crt")).expect("cert");
    let key = std::fs::read_to_string(fixtures().join("server.key")).expect("key");
    let yaml = format!("tls_server_config:\n  cert: |\n{}  key: |\n{}", indent(cert), indent(key.clone()));
    let path = write(dir.path(), "web.yml", &yaml);
    let config = WebConfig::load(&path).expect("inline PEM");
    assert!(config.tls_enabled());
    assert_eq!(config.watched_files(), std::slice::from_ref(&path));

    let parsed = WebConfig::parse(&yaml, &path).expect("parse");
    let debug = format!("{parsed:?}");
    let key_body = key.lines().nth(1).expect("key body");
    assert!(!debug.contains(key_body), "{debug}");
}

#[test]
fn bad_bcrypt_hashes_name_the_user() {
    let (message, path) = load_error("basic_auth_users:\n  alice: hunter2\n");
    assert_contains(
        &message,
        &[&path.display().to_string(), "basic_auth_users.alice: not a valid bcrypt hash"],
    );
    assert!(!message.contains("hunter2"), "{message}");

    let (message, _) = load_error(
        "basic_auth_users:\n  bob: '$2y$99$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi'\n",
    );
    assert_contains(&message, &["basic_auth_users.bob", "cost 99"]);
}

#[test]
fn the_tls_page_example_loads() {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/tls.md"))
        .expect("docs/tls.md");
    let section = page.find("## An example").expect("the page's example section");
    let page = &page[section..];
    let start = page.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let yaml = &page[start..];
    let yaml = &yaml[..yaml.find("```").expect("end of block")];

    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    std::fs::create_dir(&tls).expect("mkdir");
    for (from, to) in
        [("server.crt", "server.crt"), ("server.key", "server.key"), ("ca.crt", "scrapers-ca.crt")]
    {
        std::fs::copy(fixtures().join(from), tls.join(to)).expect("copy");
    }
    let config = WebConfig::load(write(dir.path(), "web.yml", yaml)).expect("docs/tls.md example");
    assert!(config.tls_enabled() && config.basic_auth_enabled());
    assert!(config.check_basic_auth(Some(&basic("prometheus", "example-password"))).is_allowed());
}

// ---------------------------------------------------------------- basic auth

fn auth_config(users: &[(&str, &str, u32)]) -> Arc<LoadedWebConfig> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut yaml = String::from("basic_auth_users:\n");
    for (user, password, cost) in users {
        let hash = bcrypt::hash(password, *cost).expect("hash");
        yaml.push_str(&format!("  {user}: '{hash}'\n"));
    }
    WebConfig::load(write(dir.path(), "web.yml", &yaml)).expect("auth config")
}

#[test]
fn basic_auth_checks_every_kind_of_header() {
    let config = auth_config(&[("prometheus", "correct horse", 4), ("other", "x:y", 4)]);
    let denied = |d| AuthResult::Denied(d);

    assert_eq!(config.check_basic_auth(None), denied(AuthDenied::Missing));
    for malformed in [
        "Basic",
        "Basic !!notbase64!!",
        "Basic cHJvbWV0aGV1cw==", // "prometheus", no colon
        "Bearer cHJvbWV0aGV1czpjb3JyZWN0IGhvcnNl",
    ] {
        let header = HeaderValue::from_static(malformed);
        assert_eq!(config.check_basic_auth(Some(&header)), denied(AuthDenied::Malformed), "{malformed}");
    }
    assert_eq!(
        config.check_basic_auth(Some(&basic("prometheus", "wrong"))),
        denied(AuthDenied::InvalidCredentials)
    );
    assert_eq!(
        config.check_basic_auth(Some(&basic("nobody", "correct horse"))),
        denied(AuthDenied::InvalidCredentials)
    );
    assert_eq!(
        config.check_basic_auth(Some(&basic("prometheus", "correct horse"))),
        AuthResult::Allowed { user: "prometheus".into() }
    );
    // Passwords may contain ':'; the scheme is case-insensitive.
    let lower = HeaderValue::from_str(&format!("basic {}", base64(b"other:x:y"))).expect("header");
    assert!(config.check_basic_auth(Some(&lower)).is_allowed());
    assert_eq!(AuthDenied::InvalidCredentials.as_str(), "invalid_credentials");
}

#[test]
fn a_verified_credential_is_cached() {
    // Cost 10 takes tens of milliseconds even optimised; a cached answer takes microseconds.
    let config = auth_config(&[("prometheus", "pw", 10)]);
    let header = basic("prometheus", "pw");
    let started = Instant::now();
    assert!(config.check_basic_auth(Some(&header)).is_allowed());
    let first = started.elapsed();
    let started = Instant::now();
    for _ in 0..10 {
        assert!(config.check_basic_auth(Some(&header)).is_allowed());
    }
    let cached = started.elapsed();
    assert!(cached < first / 5, "first {first:?}, ten cached {cached:?}");
    // A wrong password is never served from the cache.
    assert!(!config.check_basic_auth(Some(&basic("prometheus", "pw2"))).is_allowed());
}

#[tokio::test]
async fn authorize_runs_off_the_async_workers() {
    let config = auth_config(&[("prometheus", "pw", 4)]);
    let allowed = config.clone().authorize(Some(basic("prometheus", "pw"))).await;
    assert_eq!(allowed, AuthResult::Allowed { user: "prometheus".into() });
    let denied = config.authorize(None).await;
    assert_eq!(denied, AuthResult::Denied(AuthDenied::Missing));
}

// ---------------------------------------------------------------- TLS handshakes

fn certs(name: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(fixtures().join(name))
        .expect("open cert")
        .collect::<Result<_, _>>()
        .expect("parse cert")
}

fn key(name: &str) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(fixtures().join(name)).expect("key")
}

/// A client trusting the fixture CA, limited to `versions`, with an optional client
/// certificate (`client.crt` signed by the CA or `other-client.crt` signed by another).
fn client(
    versions: &[&'static rustls::SupportedProtocolVersion],
    identity: Option<&str>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in certs("ca.crt") {
        roots.add(cert).expect("CA");
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(name) => builder
            .with_client_auth_cert(certs(&format!("{name}.crt")), key(&format!("{name}.key")))
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

const ALL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

struct Outcome {
    server: Result<(), String>,
    client: Result<(rustls::ProtocolVersion, Option<Vec<u8>>), String>,
}

/// One connection on loopback: the server accepts with `acceptor` and answers "pong"
/// to "ping"; both sides report how it went.
async fn handshake(acceptor: TlsAcceptor, client_config: Arc<ClientConfig>) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let mut ping = [0u8; 4];
        tls.read_exact(&mut ping).await.map_err(|e| e.to_string())?;
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    });
    let client = async {
        let tcp = TcpStream::connect(address).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let mut tls =
            TlsConnector::from(client_config).connect(name, tcp).await.map_err(|e| e.to_string())?;
        let (_, connection) = tls.get_ref();
        let version = connection.protocol_version().ok_or("no version")?;
        let alpn = connection.alpn_protocol().map(<[u8]>::to_vec);
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut pong = [0u8; 4];
        tls.read_exact(&mut pong).await.map_err(|e| e.to_string())?;
        if &pong != b"pong" {
            return Err(format!("unexpected answer {pong:?}"));
        }
        Ok((version, alpn))
    };
    let client =
        tokio::time::timeout(DEADLINE, client).await.unwrap_or_else(|_| Err("client timed out".into()));
    let server = match tokio::time::timeout(DEADLINE, server).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(join.to_string()),
        Err(_) => Err("server timed out".into()),
    };
    Outcome { server, client }
}

fn acceptor_for(extra: &str) -> TlsAcceptor {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "web.yml", &tls_yaml(extra));
    let config = WebConfig::load(&path).expect("TLS config");
    config.tls.clone().expect("TLS on")
}

#[tokio::test]
async fn a_client_trusting_the_ca_completes_a_handshake() {
    let outcome = handshake(acceptor_for(""), client(ALL_VERSIONS, None)).await;
    outcome.server.expect("server side");
    let (version, alpn) = outcome.client.expect("client side");
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn a_required_client_certificate_is_enforced() {
    let verify =
        format!("  client_ca_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n", fixture("ca.crt"));
    let without = handshake(acceptor_for(&verify), client(ALL_VERSIONS, None)).await;
    assert!(without.server.is_err(), "server accepted a client without a certificate");
    assert!(without.client.is_err());

    let untrusted = handshake(acceptor_for(&verify), client(ALL_VERSIONS, Some("other-client"))).await;
    assert!(untrusted.server.is_err(), "server accepted a certificate from another CA");

    let with = handshake(acceptor_for(&verify), client(ALL_VERSIONS, Some("client"))).await;
    with.server.expect("server side");
    with.client.expect("client side");
}

#[tokio::test]
async fn client_auth_policies_that_do_not_require_or_verify() {
    let if_given =
        format!("  client_ca_file: {}\n  client_auth_type: VerifyClientCertIfGiven\n", fixture("ca.crt"));
    handshake(acceptor_for(&if_given), client(ALL_VERSIONS, None))
        .await
        .server
        .expect("no certificate is fine");
    let bad = handshake(acceptor_for(&if_given), client(ALL_VERSIONS, Some("other-client"))).await;
    assert!(bad.server.is_err(), "a given certificate is still verified");

    let any = "  client_auth_type: RequireAnyClientCert\n";
    handshake(acceptor_for(any), client(ALL_VERSIONS, Some("other-client")))
        .await
        .server
        .expect("any certificate is accepted");
    let none = handshake(acceptor_for(any), client(ALL_VERSIONS, None)).await;
    assert!(none.server.is_err(), "a certificate is required");

    handshake(acceptor_for("  client_auth_type: RequestClientCert\n"), client(ALL_VERSIONS, None))
        .await
        .server
        .expect("requested, not required");
}

#[tokio::test]
async fn protocol_versions_are_bounded() {
    let tls12_only = client(&[&rustls::version::TLS12], None);
    let refused = handshake(acceptor_for("  min_version: TLS13\n"), tls12_only.clone()).await;
    assert!(refused.server.is_err() && refused.client.is_err());

    let outcome = handshake(acceptor_for("  max_version: TLS12\n"), client(ALL_VERSIONS, None)).await;
    let (version, _) = outcome.client.expect("TLS 1.2 handshake");
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);

    handshake(acceptor_for(""), tls12_only).await.client.expect("TLS 1.2 is allowed by default");
}

// ---------------------------------------------------------------- reloading

fn fast_options(sighup: bool) -> WatchOptions {
    WatchOptions {
        poll_interval: if sighup { Duration::from_secs(3600) } else { Duration::from_millis(50) },
        settle_delay: Duration::from_millis(10),
        reload_on_sighup: sighup,
    }
}

fn users_yaml(users: &[(&str, &str)]) -> String {
    let mut yaml = String::from("basic_auth_users:\n");
    for (user, password) in users {
        let hash = bcrypt::hash(password, 4).expect("hash");
        yaml.push_str(&format!("  {user}: '{hash}'\n"));
    }
    yaml
}

/// Waits for `condition`, failing the test at the deadline.
async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    Wait::new(what, DEADLINE)
        .every(Duration::from_millis(10))
        .until_async(|| std::future::ready(check(condition(), || "not yet")))
        .await;
}

#[tokio::test]
async fn a_changed_file_is_applied_and_a_broken_one_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "web.yml", &users_yaml(&[("alice", "a")]));
    let initial = WebConfig::load(&path).expect("initial");
    let handle = WebConfigHandle::watch(&path, initial, fast_options(false));
    let mut changes = handle.subscribe();
    let alice = basic("alice", "a");
    let bob = basic("bob", "b");
    assert!(handle.current().check_basic_auth(Some(&alice)).is_allowed());

    write(dir.path(), "web.yml", &users_yaml(&[("bob", "b")]));
    tokio::time::timeout(DEADLINE, changes.changed()).await.expect("reload in time").expect("watcher alive");
    let current = handle.current();
    assert!(current.check_basic_auth(Some(&bob)).is_allowed());
    assert!(!current.check_basic_auth(Some(&alice)).is_allowed());
    assert_eq!(handle.stats().successes.load(Ordering::Relaxed), 1);

    for broken in [
        "basic_auth_users:\n  bob: not-a-hash\n".to_string(),
        "basic_auth_users: [\n".to_string(),
        // Would turn authentication off: refused while running.
        String::new(),
    ] {
        let failures = handle.stats().failures.load(Ordering::Relaxed);
        write(dir.path(), "web.yml", &broken);
        wait_for("the failure to be counted", || {
            handle.stats().failures.load(Ordering::Relaxed) == failures + 1
        })
        .await;
        assert!(handle.current().check_basic_auth(Some(&bob)).is_allowed());
        assert_eq!(handle.stats().last_reload_successful.load(Ordering::Relaxed), 0);
    }
    // A refused version is reported once, not on every poll: three more looks at the
    // files change nothing.
    let checks = handle.stats().checks.load(Ordering::Relaxed);
    wait_for("three more polls", || handle.stats().checks.load(Ordering::Relaxed) >= checks + 3).await;
    assert_eq!(handle.stats().failures.load(Ordering::Relaxed), 3);
    assert!(!changes.has_changed().expect("watcher alive"));

    write(dir.path(), "web.yml", &users_yaml(&[("carol", "c")]));
    tokio::time::timeout(DEADLINE, changes.changed()).await.expect("reload in time").expect("watcher alive");
    assert!(handle.current().check_basic_auth(Some(&basic("carol", "c"))).is_allowed());
    assert_eq!(handle.stats().successes.load(Ordering::Relaxed), 2);
    assert_eq!(handle.stats().last_reload_successful.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn referenced_certificate_files_are_watched_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["server.crt", "server.key"] {
        std::fs::copy(fixtures().join(name), dir.path().join(name)).expect("copy");
    }
    let path =
        write(dir.path(), "web.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let initial = WebConfig::load(&path).expect("initial");
    let handle = WebConfigHandle::watch(&path, initial.clone(), fast_options(false));

    // The web config is unchanged; the key file is replaced by one that does not match.
    std::fs::copy(fixtures().join("unrelated.key"), dir.path().join("server.key")).expect("copy");
    wait_for("the mismatch to be counted", || handle.stats().failures.load(Ordering::Relaxed) == 1).await;
    assert!(Arc::ptr_eq(&handle.current(), &initial));

    // Turning TLS off is refused while running.
    std::fs::copy(fixtures().join("server.key"), dir.path().join("server.key")).expect("copy");
    wait_for("the repaired key to load", || handle.stats().successes.load(Ordering::Relaxed) == 1).await;
    write(dir.path(), "web.yml", "basic_auth_users: {}\n");
    wait_for("the TLS switch to be refused", || handle.stats().failures.load(Ordering::Relaxed) == 2).await;
    assert!(handle.current().tls_enabled());
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_forces_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "web.yml", &users_yaml(&[("alice", "a")]));
    let initial = WebConfig::load(&path).expect("initial");
    // Polling is effectively off, so only the signal can trigger the reload.
    let handle = WebConfigHandle::watch(&path, initial, fast_options(true));
    let mut changes = handle.subscribe();
    write(dir.path(), "web.yml", &users_yaml(&[("bob", "b")]));
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    tokio::time::timeout(DEADLINE, changes.changed()).await.expect("reload in time").expect("watcher alive");
    assert!(handle.current().check_basic_auth(Some(&basic("bob", "b"))).is_allowed());
}
