//! `prescrypt prescriber …`: what a GP system does to issue prescriber-signed prescriptions
//! (docs/signatures.md), as a command line for scripts and the walk-through.
//!
//! - `keygen`: a new Ed25519 key in a private PKCS#8 file; prints its public JWK and `kid`.
//! - `enrol`: binds the key's public half to the caller (`POST /api/v1/prescriber-keys`).
//! - `sign`: prepares a create body, checks that what the service will sign is what was asked
//!   for, signs it with the key and creates the prescription.
//!
//! The private key never leaves the file; the bearer token is never printed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use data_encoding::BASE64URL_NOPAD;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signer, SigningKey};
use prescrypt_contract::limits::BODY_LIMIT;
use prescrypt_contract::signed::PRESCRIBER_JWS_TYP;
use prescrypt_contract::views::{
    EnrolKey, NewPrescription, PrepareRequest, Prepared, PrescriberKey, PrescriptionView,
    PublicJwk, SignedCreate,
};
use prescrypt_contract::{Problem, SignedPrescription, routes};
use reqwest::blocking::{Client, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::keys;
use crate::prescriptions::validate_new;
use crate::signing::canonical_json;

/// Where `keygen` writes and the other commands read the key by default.
pub const DEFAULT_KEY_FILE: &str = "prescriber-key.pk8";
/// Most bytes read of an answer from the service.
const MAX_ANSWER: u64 = 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum PrescriberCommand {
    /// Make a new Ed25519 signing key: a PKCS#8 file private (0600) from its creation (an
    /// existing file is never overwritten); prints the public JWK with its `kid` as JSON.
    Keygen {
        #[arg(long, default_value = DEFAULT_KEY_FILE)]
        out: PathBuf,
    },
    /// Enrol the key's public half for the prescriber of the token; prints the enrolled key.
    Enrol {
        #[arg(long, default_value = DEFAULT_KEY_FILE)]
        key: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Issue a prescription signed with the key: prepare FILE (a create body; `-` reads stdin),
    /// check that the content to sign is the one asked for, sign it, create it; prints the
    /// prescription.
    Sign {
        /// The create body (JSON: patient, items, …) as for `POST /api/v1/prescriptions`.
        file: PathBuf,
        #[arg(long, default_value = DEFAULT_KEY_FILE)]
        key: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// The service and the caller's credentials.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The service's base URL.
    #[arg(
        long,
        env = "PRESCRYPT_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// A file holding the prescriber's bearer token (takes precedence over `--token`).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The prescriber's bearer token.
    #[arg(long, env = "PRESCRYPT_TOKEN", hide_env_values = true)]
    token: Option<Secret>,
    /// How long to wait for each answer, e.g. `30s`.
    #[arg(long, default_value = "30s", value_parser = crate::config::parse_interval)]
    timeout: Duration,
}

/// A bearer token: never shown, not even in `Debug`.
#[derive(Clone)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.trim().to_owned()))
    }
}

/// Runs one `prescrypt prescriber` command. A failure (a refusal by the service included) is
/// printed plainly on stderr, one line, and exits with status 1.
pub fn run(command: PrescriberCommand) -> anyhow::Result<()> {
    if let Err(error) = execute(command) {
        eprintln!("prescrypt prescriber: {error:#}");
        std::process::exit(1);
    }
    Ok(())
}

fn execute(command: PrescriberCommand) -> anyhow::Result<()> {
    match command {
        PrescriberCommand::Keygen { out } => {
            if out.symlink_metadata().is_ok() {
                bail!(
                    "{} already exists; a key file is never overwritten (give another --out)",
                    out.display()
                );
            }
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            keys::write_private_key(&out, &key)
                .with_context(|| format!("{}: cannot create the key file", out.display()))?;
            let jwk = public_jwk(&key);
            let mut shown = serde_json::to_value(&jwk)?;
            shown["kid"] = jwk.thumbprint().into();
            println!("{shown}");
            Ok(())
        }
        PrescriberCommand::Enrol { key, server } => {
            let key = read_key(&key)?;
            let service = Service::new(&server)?;
            let body = EnrolKey {
                jwk: public_jwk(&key),
            };
            let (enrolled, text) =
                service.post::<PrescriberKey>(routes::PRESCRIBER_KEYS, &body, "enrol")?;
            if enrolled.kid != body.jwk.thumbprint() {
                bail!(
                    "the service enrolled kid {} for a key whose kid is {}",
                    enrolled.kid,
                    body.jwk.thumbprint()
                );
            }
            println!("{text}");
            Ok(())
        }
        PrescriberCommand::Sign { file, key, server } => {
            let key = read_key(&key)?;
            let body = read_body(&file)?;
            let service = Service::new(&server)?;
            let created = sign(&service, &key, body)?;
            println!("{created}");
            Ok(())
        }
    }
}

fn public_jwk(key: &SigningKey) -> PublicJwk {
    PublicJwk::ed25519(key.verifying_key().as_bytes())
}

fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    let der = keys::read_private_key(path)
        .with_context(|| format!("{}: cannot read the prescriber key", path.display()))?;
    SigningKey::from_pkcs8_der(&der)
        .map_err(|e| anyhow::anyhow!("{}: not an Ed25519 PKCS#8 key: {e}", path.display()))
}

/// The create body in `path` (`-`: stdin), at most the service's body limit.
fn read_body(path: &Path) -> anyhow::Result<NewPrescription> {
    let name = path.display();
    let mut text = Vec::new();
    let limit = u64::try_from(BODY_LIMIT)? + 1;
    if path == Path::new("-") {
        std::io::stdin().take(limit).read_to_end(&mut text)?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("{name}: cannot open"))?
            .take(limit)
            .read_to_end(&mut text)
            .with_context(|| format!("{name}: cannot read"))?;
    }
    if text.len() > BODY_LIMIT {
        bail!("{name}: larger than the service's {BODY_LIMIT}-byte limit");
    }
    serde_json::from_slice(&text).with_context(|| format!("{name}: not a prescription create body"))
}

/// Prepare, check, sign, create; returns the created prescription's JSON text.
fn sign(service: &Service, key: &SigningKey, body: NewPrescription) -> anyhow::Result<String> {
    let kid = public_jwk(key).thumbprint();
    let request = PrepareRequest {
        kid: kid.clone(),
        prescription: body,
    };
    let (prepared, _) = service.post::<Prepared>(routes::PREPARE, &request, "prepare")?;
    check_prepared(&prepared, &kid, &request.prescription)
        .context("refusing to sign what the service prepared")?;
    let signature = key.sign(prepared.signing_input.as_bytes());
    let signed = SignedCreate {
        prepared_id: prepared.prepared_id.clone(),
        signature: BASE64URL_NOPAD.encode(&signature.to_bytes()),
    };
    let (created, text) =
        service.post::<PrescriptionView>(routes::PRESCRIPTIONS, &signed, "create")?;
    let ours = format!("{}.{}", prepared.signing_input, signed.signature);
    if created.prescriber_jws.as_deref() != Some(ours.as_str()) {
        bail!(
            "the service created {} without the prescriber signature just made",
            created.id
        );
    }
    Ok(text)
}

/// That `prepared` is what a prescriber may sign for `asked`: its signing input is a JWS signing
/// input with the expected header (our `kid`) whose payload is exactly the canonical JSON of the
/// prescription it shows, and that prescription carries the patient, items and the rest of
/// `asked`.
fn check_prepared(prepared: &Prepared, kid: &str, asked: &NewPrescription) -> anyhow::Result<()> {
    let Some((header, payload)) = prepared.signing_input.split_once('.') else {
        bail!("signing_input is not BASE64URL(header).BASE64URL(payload)");
    };
    let decode = |part: &str, name: &str| {
        BASE64URL_NOPAD
            .decode(part.as_bytes())
            .with_context(|| format!("signing_input: the {name} is not BASE64URL"))
    };
    let header: Value = serde_json::from_slice(&decode(header, "header")?)
        .context("signing_input: the header is not JSON")?;
    let expected = json!({"alg": "EdDSA", "kid": kid, "typ": PRESCRIBER_JWS_TYP});
    if header != expected {
        bail!("signing_input: header {header} is not {expected}");
    }
    let payload = decode(payload, "payload")?;
    let shown = canonical_json(&prepared.prescription)?;
    if payload != shown.as_bytes() {
        bail!("signing_input: the payload is not the prescription shown");
    }
    let content: SignedPrescription =
        serde_json::from_slice(&payload).context("signing_input: the payload")?;
    let asked = validate_new(asked, chrono::Utc::now().date_naive())
        .map_err(|e| anyhow::anyhow!("the request itself: {e}"))?;
    if let Some(field) = asked.difference_from(&content) {
        bail!("the prepared {field} is not the one asked for");
    }
    Ok(())
}

/// The service, with the caller's token.
struct Service {
    http: Client,
    server: String,
    token: String,
}

impl Service {
    fn new(args: &ServerArgs) -> anyhow::Result<Self> {
        let token = match (&args.token_file, &args.token) {
            (Some(file), _) => std::fs::read_to_string(file)
                .with_context(|| format!("{}: cannot read the token file", file.display()))?
                .trim()
                .to_owned(),
            (None, Some(Secret(token))) => token.clone(),
            (None, None) => {
                bail!("no bearer token: give --token-file FILE, --token or PRESCRYPT_TOKEN")
            }
        };
        if token.is_empty() {
            bail!("the bearer token is empty");
        }
        let http = Client::builder()
            .connect_timeout(args.timeout.min(Duration::from_secs(5)))
            .timeout(args.timeout)
            .user_agent(concat!("prescrypt-prescriber/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            server: args.server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// POSTs `body` as JSON to `route`; the typed answer and its text, or the service's problem
    /// as an error (`what` names the step).
    fn post<T: DeserializeOwned>(
        &self,
        route: &str,
        body: &impl Serialize,
        what: &str,
    ) -> anyhow::Result<(T, String)> {
        let url = format!("{}{route}", self.server);
        let request = self.http.post(&url).bearer_auth(&self.token).json(body);
        let (status, text) = answer(request).with_context(|| format!("{what}: {url}"))?;
        if !status.is_success() {
            bail!("{what} refused: {}", describe_problem(status, &text));
        }
        let typed = serde_json::from_str(&text)
            .with_context(|| format!("{what}: an answer that is not the contract's"))?;
        Ok((typed, text))
    }
}

/// The answer's status and body (at most [`MAX_ANSWER`] bytes).
fn answer(request: RequestBuilder) -> anyhow::Result<(reqwest::StatusCode, String)> {
    let response = request.send().map_err(|e| {
        if e.is_timeout() {
            anyhow::anyhow!("no answer within the timeout")
        } else if e.is_connect() {
            anyhow::anyhow!("cannot connect")
        } else {
            anyhow::anyhow!(e)
        }
    })?;
    let status = response.status();
    let mut body = Vec::new();
    response.take(MAX_ANSWER).read_to_end(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A refusal in one line: the problem's title, detail, field, status and code; a body that is
/// no problem+json is shown by its status line and start.
fn describe_problem(status: reqwest::StatusCode, body: &str) -> String {
    match serde_json::from_str::<Problem>(body) {
        Ok(problem) => {
            let mut line = problem.title;
            if !problem.detail.is_empty() {
                line = format!("{line}: {}", problem.detail);
            }
            if let Some(field) = problem.field {
                line = format!("{line} [field {field}]");
            }
            if problem.code.is_empty() {
                format!("{line} (HTTP {})", status.as_u16())
            } else {
                format!("{line} (HTTP {}, {})", status.as_u16(), problem.code)
            }
        }
        Err(_) => format!(
            "HTTP {}: {}",
            status,
            body.trim().chars().take(200).collect::<String>()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

    fn asked() -> NewPrescription {
        serde_json::from_value(json!({
            "patient": {"nhs_number": "943 476 5919", "name": " Jane Smith ", "birth_date": "1970-01-31"},
            "items": [{"code": "39720311000001101", "display": "Paracetamol 500mg tablets",
                       "quantity": "32.0", "unit": "tablet", "dosage": "2 four times a day"}]
        }))
        .expect("a create body")
    }

    /// What an honest service prepares for [`asked`].
    fn content() -> SignedPrescription {
        serde_json::from_value(json!({
            "id": "D7AC09-A99968-4BA59C", "uuid": "8f0e7a52-4a4e-4a5e-9d4f-3c0b1f2e9a10",
            "prescriber": {"id": "G1234567", "org": "A83008"},
            "patient": {"nhs_number": "9434765919", "name": "Jane Smith", "birth_date": "1970-01-31"},
            "items": [{"line": 1, "uuid": "0b6f1d9e-3a57-4a8e-b0c4-5d2f7e8a9c01",
                       "code": "39720311000001101", "display": "Paracetamol 500mg tablets",
                       "quantity": 32, "unit": "tablet", "dosage": "2 four times a day"}],
            "treatment_type": "0001", "issue_number": 1, "issue_count": 1,
            "nominated_pharmacy": null, "controlled_drug_schedule": null,
            "created_at": "2026-11-25T21:00:00.000000Z", "expires_at": "2027-05-25T21:00:00.000000Z"
        }))
        .expect("signed content")
    }

    fn prepared(header: &Value, payload: &str, prescription: SignedPrescription) -> Prepared {
        let header = canonical_json(header).expect("header");
        Prepared {
            prepared_id: "p1".to_owned(),
            signing_input: format!(
                "{}.{}",
                BASE64URL_NOPAD.encode(header.as_bytes()),
                BASE64URL_NOPAD.encode(payload.as_bytes())
            ),
            prescription,
            expires_at: chrono::Utc::now(),
        }
    }

    fn header(kid: &str) -> Value {
        json!({"alg": "EdDSA", "kid": kid, "typ": PRESCRIBER_JWS_TYP})
    }

    fn honest(prescription: SignedPrescription) -> Prepared {
        let payload = canonical_json(&prescription).expect("payload");
        prepared(&header(KID), &payload, prescription)
    }

    fn refusal(prepared: &Prepared) -> String {
        format!(
            "{:#}",
            check_prepared(prepared, KID, &asked()).expect_err("refused")
        )
    }

    #[test]
    fn what_was_asked_for_in_its_stored_form_is_signed() {
        check_prepared(&honest(content()), KID, &asked()).expect("accepted");
    }

    #[test]
    fn other_content_is_refused_naming_what_differs() {
        let mut other_patient = content();
        other_patient.patient.name = "John Smith".to_owned();
        assert!(refusal(&honest(other_patient)).contains("patient"));

        let mut more = content();
        more.items[0].quantity = 320.into();
        assert!(refusal(&honest(more)).contains("items[0]"));

        let mut nominated = content();
        nominated.nominated_pharmacy = Some("FA565".to_owned());
        assert!(refusal(&honest(nominated)).contains("nominated_pharmacy"));
    }

    #[test]
    fn a_payload_other_than_the_prescription_shown_is_refused() {
        let mut hidden = content();
        hidden.patient.name = "John Smith".to_owned();
        let payload = canonical_json(&hidden).expect("payload");
        let shown_other = prepared(&header(KID), &payload, content());
        assert!(refusal(&shown_other).contains("payload"));

        // An extra member the typed content would drop is still refused.
        let mut extra = serde_json::to_value(content()).expect("json");
        extra["note"] = json!("also 100 oxycodone");
        let payload = canonical_json(&extra).expect("payload");
        assert!(refusal(&prepared(&header(KID), &payload, content())).contains("payload"));
    }

    #[test]
    fn another_key_or_header_is_refused() {
        let payload = canonical_json(&content()).expect("payload");
        let other_kid = prepared(&header("someone-else"), &payload, content());
        assert!(refusal(&other_kid).contains("header"));
        let mut crit = header(KID);
        crit["crit"] = json!(["exp"]);
        assert!(refusal(&prepared(&crit, &payload, content())).contains("header"));
        let mut broken = honest(content());
        broken.signing_input = broken.signing_input.replace('.', "");
        assert!(refusal(&broken).contains("signing_input"));
    }
}
