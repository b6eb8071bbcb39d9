//! `prescrypt prescriber keygen|enrol|sign` as a GP system runs it, against the real service on
//! loopback; and docs/examples/verify_prescription.py (PyJWT) verifying what it issued.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use data_encoding::BASE64URL_NOPAD;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use prescrypt::auth::Role;
use prescrypt_contract::SignedPrescription;
use prescrypt_contract::routes;
use prescrypt_contract::signed::PRESCRIBER_JWS_TYP;
use prescrypt_contract::views::{PrescriberKey, PrescriberKeySet, PrescriptionView, PublicJwk};
use prescrypt_pharmacy::api::ApiError;
use prescrypt_testkit::{
    PRESCRIBER, PRESCRIBER_ORG, Run, Service, new_prescription, prescrypt_bin,
};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The Python that runs the example (with PyJWT and cryptography): `PRESCRYPT_PYTHON`, else
/// `python3`. `.ci/run` installs them in a virtual environment and sets it.
const PYTHON_ENV: &str = "PRESCRYPT_PYTHON";
const VERIFY_EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/docs/examples/verify_prescription.py"
);

/// A GP workstation: a directory for the key, bodies and the token file.
pub(crate) struct Workstation {
    dir: TempDir,
    server: String,
}

impl Workstation {
    fn new(server: &str) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            server: server.to_owned(),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to a file of the workstation; its path as a string.
    pub(crate) fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write file");
        path.to_str().expect("utf8").to_owned()
    }

    /// `prescrypt prescriber ARGS` with `stdin`, no token from the environment, the service's URL.
    pub(crate) fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(prescrypt_bin!())
            .arg("prescriber")
            .args(args)
            .env("PRESCRYPT_SERVER", &self.server)
            .env_remove("PRESCRYPT_TOKEN")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run prescrypt prescriber");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        Run::from(&child.wait_with_output().expect("wait"))
    }

    /// `keygen --out NAME`: the printed JWK.
    fn keygen(&self, name: &str) -> Value {
        let run = self.run(&["keygen", "--out", name], "");
        assert_eq!(run.code, 0, "{run:?}");
        serde_json::from_str(run.stdout.trim()).expect("keygen prints JSON")
    }
}

/// The public key and kid in a key file `prescrypt prescriber keygen` wrote.
fn key_file_public(path: &Path) -> (VerifyingKey, String) {
    let key = SigningKey::from_pkcs8_der(&std::fs::read(path).expect("key file"))
        .expect("the key file is Ed25519 PKCS#8");
    let jwk = PublicJwk::ed25519(key.verifying_key().as_bytes());
    (key.verifying_key(), jwk.thumbprint())
}

/// Keygen, a token file for the tests' prescriber, enrol: the workstation and its key's kid.
pub(crate) fn enrolled(service: &Service) -> (Workstation, String) {
    let gp = Workstation::new(&service.url);
    let jwk = gp.keygen("gp-key.pk8");
    gp.write(
        "gp.jwt",
        &(service.token(Role::Prescriber, PRESCRIBER_ORG, PRESCRIBER) + "\n"),
    );
    let run = gp.run(
        &["enrol", "--key", "gp-key.pk8", "--token-file", "gp.jwt"],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    let key: PrescriberKey = serde_json::from_str(run.stdout.trim()).expect("a PrescriberKey");
    assert_eq!(key.kid, jwk["kid"].as_str().expect("kid"));
    assert_eq!(
        (key.sub.as_str(), key.org.as_str()),
        (PRESCRIBER, PRESCRIBER_ORG)
    );
    assert_eq!(key.revoked_at, None);
    (gp, key.kid)
}

#[test]
fn keygen_writes_a_private_key_file_and_never_overwrites_one() {
    let gp = Workstation::new("http://127.0.0.1:9");
    let jwk = gp.keygen("gp-key.pk8");
    let path = gp.path("gp-key.pk8");
    let mode = std::fs::metadata(&path)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");

    // The printed JWK is the file's public key, and its kid the RFC 7638 thumbprint.
    let (public, kid) = key_file_public(&path);
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["x"], BASE64URL_NOPAD.encode(public.as_bytes()));
    assert_eq!(jwk["kid"], kid.as_str());
    assert!(jwk.get("d").is_none(), "{jwk}");

    let before = std::fs::read(&path).expect("key file");
    let again = gp.run(&["keygen", "--out", "gp-key.pk8"], "");
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stdout.is_empty(), "{again:?}");
    assert!(again.stderr.contains("already exists"), "{again:?}");
    assert_eq!(std::fs::read(&path).expect("key file"), before);

    // A second key is another key.
    let other = gp.keygen("other.pk8");
    assert_ne!(other["kid"], jwk["kid"]);
}

#[test]
fn enrol_then_sign_issues_a_prescription_the_enrolled_key_verifies() {
    let service = Service::start(prescrypt_bin!());
    let (gp, kid) = enrolled(&service);
    let (public, _) = key_file_public(&gp.path("gp-key.pk8"));
    let body = new_prescription();
    gp.write("rx-body.json", &body.to_string());

    let run = gp.run(
        &[
            "sign",
            "rx-body.json",
            "--key",
            "gp-key.pk8",
            "--token-file",
            "gp.jwt",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    let created: PrescriptionView =
        serde_json::from_str(run.stdout.trim()).expect("a prescription");
    let jws = created.prescriber_jws.clone().expect("prescriber_jws");

    // The prescriber JWS verifies with the enrolled key and carries what was asked for.
    let (signing_input, signature) = jws.rsplit_once('.').expect("compact JWS");
    let signature: [u8; 64] = BASE64URL_NOPAD
        .decode(signature.as_bytes())
        .expect("base64url")
        .try_into()
        .expect("64 bytes");
    public
        .verify_strict(signing_input.as_bytes(), &Signature::from_bytes(&signature))
        .expect("the prescriber signature verifies with the enrolled key");
    let (header, payload) = signing_input.split_once('.').expect("signing input");
    let header: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(header.as_bytes()).expect("b64"))
            .expect("json");
    assert_eq!(
        header,
        json!({"alg": "EdDSA", "kid": kid, "typ": PRESCRIBER_JWS_TYP})
    );
    let signed: SignedPrescription =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(payload.as_bytes()).expect("b64"))
            .expect("json");
    assert_eq!(signed.id, created.id);
    assert_eq!(signed.prescriber.id, PRESCRIBER);
    assert_eq!(
        signed.patient.name,
        body["patient"]["name"].as_str().expect("name")
    );
    let displays: Vec<&str> = signed.items.iter().map(|i| i.display.as_str()).collect();
    assert_eq!(
        displays,
        ["Paracetamol 500mg tablets", "Amoxicillin 500mg capsules"]
    );

    // The centre keeps exactly that signature.
    let central = service.central(&created.id);
    assert_eq!(central["prescriber_jws"], jws.as_str());

    // The body from stdin, the token from the environment: a second, different prescription.
    let mut piped = Command::new(prescrypt_bin!());
    piped
        .args(["prescriber", "sign", "-", "--key"])
        .arg(gp.path("gp-key.pk8"))
        .env("PRESCRYPT_SERVER", &service.url)
        .env(
            "PRESCRYPT_TOKEN",
            service.token(Role::Prescriber, PRESCRIBER_ORG, PRESCRIBER),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = piped.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.to_string().as_bytes())
        .expect("stdin");
    let second = Run::from(&child.wait_with_output().expect("wait"));
    assert_eq!(second.code, 0, "{second:?}");
    let second: PrescriptionView = serde_json::from_str(second.stdout.trim()).expect("json");
    assert_ne!(second.id, created.id);
    assert!(second.prescriber_jws.is_some());
}

#[test]
fn a_refusal_by_the_service_is_printed_plainly() {
    let service = Service::start(prescrypt_bin!());
    let gp = Workstation::new(&service.url);
    let jwk = gp.keygen("never-enrolled.pk8");
    let token = service.token(Role::Prescriber, PRESCRIBER_ORG, PRESCRIBER);
    gp.write("gp.jwt", &token);
    gp.write("rx-body.json", &new_prescription().to_string());

    // What the service answers a prepare with a key nobody enrolled.
    let mut prepare = new_prescription();
    prepare["kid"] = jwk["kid"].clone();
    let Err(ApiError::Refused(problem)) =
        service
            .prescriber()
            .post_route(routes::PREPARE, &prepare, None)
    else {
        panic!("a prepare with a key nobody enrolled was not refused");
    };

    let run = gp.run(
        &[
            "sign",
            "rx-body.json",
            "--key",
            "never-enrolled.pk8",
            "--token-file",
            "gp.jwt",
        ],
        "",
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    let stderr = run.stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "one plain line: {run:?}");
    assert!(stderr.contains("prepare refused"), "{run:?}");
    assert!(stderr.contains(&problem.title), "{run:?}");
    assert!(stderr.contains(&problem.detail), "{run:?}");
    assert!(
        stderr.contains(&format!("HTTP {}", problem.status)),
        "{run:?}"
    );
    assert!(!stderr.contains(&token), "the token was printed: {run:?}");

    // A pharmacist cannot enrol a prescriber key.
    gp.write(
        "ph.jwt",
        &service.token(
            Role::Pharmacist,
            prescrypt_testkit::PHARMACY,
            prescrypt_testkit::PHARMACIST,
        ),
    );
    let run = gp.run(
        &[
            "enrol",
            "--key",
            "never-enrolled.pk8",
            "--token-file",
            "ph.jwt",
        ],
        "",
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("enrol refused"), "{run:?}");
    assert!(run.stderr.contains("HTTP 403"), "{run:?}");
}

#[test]
fn the_python_example_verifies_both_signatures_of_a_signed_prescription() {
    let service = Service::start(prescrypt_bin!());
    let (gp, kid) = enrolled(&service);
    gp.write("rx-body.json", &new_prescription().to_string());
    let run = gp.run(
        &[
            "sign",
            "rx-body.json",
            "--key",
            "gp-key.pk8",
            "--token-file",
            "gp.jwt",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    let rx = gp.write("rx.json", run.stdout.trim());
    let prescriber_keys = service
        .prescriber()
        .get_route(routes::PRESCRIBER_KEYS_JWKS)
        .expect("prescriber keys");
    let _: PrescriberKeySet = serde_json::from_str(&prescriber_keys).expect("a PrescriberKeySet");
    let prescriber_keys = gp.write("prescriber-keys.json", &prescriber_keys);
    let jwks = service.prescriber().get_route(routes::JWKS).expect("jwks");
    let jwks = gp.write("jwks.json", &jwks);

    let verified = python(&[VERIFY_EXAMPLE, &rx, &prescriber_keys, &jwks]);
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(
        verified.stdout.contains(&format!(
            "Signed by {PRESCRIBER} ({PRESCRIBER_ORG}), key {kid}"
        )),
        "{verified:?}"
    );

    // What is shown must be what was signed: another patient name fails.
    let mut altered: Value = serde_json::from_str(run.stdout.trim()).expect("json");
    altered["patient"]["name"] = json!("John Smith");
    let altered = gp.write("altered.json", &altered.to_string());
    let refused = python(&[VERIFY_EXAMPLE, &altered, &prescriber_keys, &jwks]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("NOT VERIFIED"), "{refused:?}");

    // The countersignature of another signed prescription does not cover this prescriber JWS.
    let other = gp.run(
        &[
            "sign",
            "rx-body.json",
            "--key",
            "gp-key.pk8",
            "--token-file",
            "gp.jwt",
        ],
        "",
    );
    assert_eq!(other.code, 0, "{other:?}");
    let other: Value = serde_json::from_str(other.stdout.trim()).expect("json");
    let mut swapped: Value = serde_json::from_str(run.stdout.trim()).expect("json");
    swapped["jws"] = other["jws"].clone();
    let swapped = gp.write("swapped.json", &swapped.to_string());
    let refused = python(&[VERIFY_EXAMPLE, &swapped, &prescriber_keys, &jwks]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("another prescriber JWS"),
        "{refused:?}"
    );
}

/// Runs the Python of [`PYTHON_ENV`]; fails the test (never skips it) when it or PyJWT is missing.
fn python(args: &[&str]) -> Run {
    let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_owned());
    let probe = Command::new(&python)
        .args(["-c", "import jwt, cryptography"])
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}; set {PYTHON_ENV} to a Python with PyJWT"));
    assert!(
        probe.status.success(),
        "{python} lacks PyJWT or cryptography (`pip install pyjwt cryptography`, or set \
         {PYTHON_ENV}): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    Run::from(
        &Command::new(&python)
            .args(args)
            .output()
            .expect("run python"),
    )
}
