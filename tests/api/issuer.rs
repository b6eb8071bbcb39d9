//! The identity provider's keys stay current without a restart: a JWKS file or an HTTPS URL is
//! re-read every `--jwks-refresh`, a new key is trusted, a withdrawn key stops verifying, a
//! broken document changes nothing, and an unreachable URL falls back to the cached copy.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Header};
use prescrypt::auth::{AUDIENCE, Role};
use prescrypt::keys::NamedKey;
use reqwest::StatusCode;

use crate::helpers::*;

const ISSUER: &str = "https://idp.example";

/// A key of the identity provider (a fresh Ed25519 key in its own directory).
fn idp_key(dir: &Path, name: &str) -> NamedKey {
    prescrypt::keys::dev_issuer(&dir.join(name)).unwrap()
}

fn publish(path: &Path, keys: &[&NamedKey]) {
    let jwks = JwkSet {
        keys: keys.iter().map(|key| key.jwk().unwrap()).collect(),
    };
    // Renamed over, as a provider's deployment would, so a refresh never reads half a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, serde_json::to_vec(&jwks).unwrap()).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

fn token_of(key: &NamedKey) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.as_str().to_owned());
    let claims = claims_as(
        Role::Prescriber,
        PRESCRIBER_ORG,
        "G1234567",
        ISSUER,
        AUDIENCE,
        600,
    );
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

async fn status_for(app: &TestApp, bearer: &str) -> StatusCode {
    app.get("/api/v1/prescriptions", bearer).await.0
}

/// Polls until `bearer` is answered with `want`, for at most ten refresh intervals.
async fn until_status(app: &TestApp, bearer: &str, want: StatusCode) {
    for _ in 0..100 {
        if status_for(app, bearer).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "still {} instead of {want} after 10 s",
        status_for(app, bearer).await
    );
}

#[tokio::test]
async fn a_rotated_jwks_file_takes_effect_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (idp_key(dir.path(), "old"), idp_key(dir.path(), "new"));
    let jwks = dir.path().join("jwks.json");
    publish(&jwks, &[&old]);
    let app = TestApp::builder()
        .production()
        .flags(["--jwks-file", jwks.to_str().unwrap()])
        .flags(["--jwks-issuer", ISSUER, "--jwks-refresh", "1s"])
        .spawn()
        .await;
    assert_eq!(status_for(&app, &token_of(&old)).await, StatusCode::OK);
    assert_eq!(
        status_for(&app, &token_of(&new)).await,
        StatusCode::UNAUTHORIZED
    );

    // Rotation: both published, then the old one withdrawn.
    publish(&jwks, &[&old, &new]);
    until_status(&app, &token_of(&new), StatusCode::OK).await;
    assert_eq!(status_for(&app, &token_of(&old)).await, StatusCode::OK);
    publish(&jwks, &[&new]);
    until_status(&app, &token_of(&old), StatusCode::UNAUTHORIZED).await;

    // A broken document is not an empty one: the last good keys stay trusted.
    std::fs::write(&jwks, b"{\"keys\": [").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(status_for(&app, &token_of(&new)).await, StatusCode::OK);
    std::fs::write(&jwks, b"{\"keys\": []}").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(status_for(&app, &token_of(&new)).await, StatusCode::OK);
}

/// A real HTTPS server (Python's `http.server` behind `ssl`, with a certificate `openssl`
/// makes for 127.0.0.1) serving a directory.
struct HttpsServer {
    child: Child,
    port: u16,
}

impl HttpsServer {
    fn serve(dir: &Path, cert: &Path, key: &Path) -> Self {
        let script = r#"
import functools, http.server, ssl, sys
directory, cert, key = sys.argv[1:4]
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
handler = functools.partial(Quiet, directory=directory)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(dir)
            .arg(cert)
            .arg(key)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (the HTTPS identity provider of this test)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the HTTPS server printed {line:?}, not its port"));
        Self { child, port }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The identity provider's private CA and its server certificate for 127.0.0.1, made by
/// `openssl`: returns (CA certificate, server certificate, server key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let openssl = |args: &[&str], files: &[&Path]| {
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(args)
            .args(files)
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs (it makes the identity provider's certificates)");
        assert!(status.success(), "openssl req {args:?} failed");
    };
    openssl(
        &["-subj", "/CN=Test IdP CA", "-keyout"],
        &[&ca_key, Path::new("-out"), &ca],
    );
    openssl(
        &[
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-CA",
        ],
        &[
            &ca,
            Path::new("-CAkey"),
            &ca_key,
            Path::new("-keyout"),
            &key,
            Path::new("-out"),
            &cert,
        ],
    );
    (ca, cert, key)
}

#[tokio::test]
async fn keys_from_an_https_url_are_refreshed_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (idp_key(dir.path(), "old"), idp_key(dir.path(), "new"));
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    publish(&site.join("jwks.json"), &[&old]);
    let (ca, cert, key) = certificates(dir.path());
    let server = HttpsServer::serve(&site, &cert, &key);
    let url = format!("https://127.0.0.1:{}/jwks.json", server.port);
    let keys_dir = dir.path().join("service-keys");
    let flags = |url: &str| {
        vec![
            "--jwks-url".to_owned(),
            url.to_owned(),
            "--jwks-ca".to_owned(),
            ca.to_str().unwrap().to_owned(),
            "--jwks-issuer".to_owned(),
            ISSUER.to_owned(),
            "--jwks-refresh".to_owned(),
            "1s".to_owned(),
        ]
    };
    let app = TestApp::builder()
        .keys_dir(&keys_dir)
        .production()
        .flags(flags(&url))
        .spawn()
        .await;
    assert_eq!(status_for(&app, &token_of(&old)).await, StatusCode::OK);

    publish(&site.join("jwks.json"), &[&new]);
    until_status(&app, &token_of(&new), StatusCode::OK).await;
    assert_eq!(
        status_for(&app, &token_of(&old)).await,
        StatusCode::UNAUTHORIZED,
        "a key the provider withdrew still verifies"
    );

    // The provider goes away: a new instance starts from the cached copy of its keys.
    drop(server);
    let restarted = TestApp::builder()
        .keys_dir(&keys_dir)
        .production()
        .flags(flags(&url))
        .spawn()
        .await;
    assert_eq!(
        status_for(&restarted, &token_of(&new)).await,
        StatusCode::OK
    );
    assert_eq!(
        status_for(&restarted, &token_of(&old)).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_jwks_url_must_be_https_and_reachable_at_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |url: &str| {
        let mut builder = TestApp::builder()
            .keys_dir(dir.path().join("keys"))
            .production()
            .flags(["--jwks-url", url, "--jwks-issuer", ISSUER]);
        prescrypt::startup::Application::build(&builder.config())
            .map(|_| ())
            .expect_err("the service started")
            .to_string()
    };
    let plain = refused("http://127.0.0.1:9/jwks.json");
    assert!(plain.contains("https://"), "{plain}");
    // Nothing listens on port 9 of loopback and no copy is cached yet.
    let unreachable = refused("https://127.0.0.1:9/jwks.json");
    assert!(unreachable.contains("reading the JWKS"), "{unreachable}");
}
