//! Runs a parsed command line: human output by default, one JSON object per result with `--json`.

use prescrypt_contract::views::PrescriptionView;
use serde_json::{Value, json};

use crate::cli::{Cli, Command, KeysAction, OutboxAction, ScanArgs};
use crate::config::{ConfigFile, Settings, cleartext_warning, read_token, store_token};
use crate::error::{Error, Result};
use crate::jwks;
use crate::outbox::{Due, Entry, Filter, Kind, State, SyncReport};
use crate::output::Out;
use crate::render;
use crate::scan::{ScanKind, ScannedCode, wedge_codes};
use crate::session::{Released, Session, Verified, parse_id};
use crate::terminal::safe;

pub fn run(cli: Cli) -> Result<()> {
    let out = Out {
        json: cli.global.json,
    };
    let settings = Settings::resolve(cli.global.overrides())?;
    if let Some(warning) = cleartext_warning(&settings.server) {
        eprintln!("warning: {}", crate::terminal::safe(&warning));
    }
    match cli.command {
        Command::Login => {
            let token_file = cli.global.token_file.clone().ok_or_else(|| {
                Error::Config("pharmacy login needs --token-file FILE".to_owned())
            })?;
            login(out, &cli.global, &settings, &token_file)
        }
        Command::Scan { source, count } => scan(out, Session::new(settings)?, &source, count),
        Command::Nominated => crate::nominated::run(out, &mut Session::new(settings)?),
        Command::Dispense {
            id,
            items,
            all_complete,
            packs,
            substitutes,
        } => {
            let mut session = Session::new(settings)?;
            let id = parse_id(&id)?;
            let mut items = if all_complete {
                session.all_complete_items(&id)?
            } else if items.is_empty() {
                return Err(Error::Other(
                    "give --item LINE=OUTCOME at least once, or --all-complete".to_owned(),
                ));
            } else {
                items
            };
            attach_products(&mut items, &packs, &substitutes)?;
            submitted(
                out,
                &mut session,
                Kind::Dispense,
                &id,
                &json!({ "items": items }),
            )
        }
        Command::Return { id, reason } => {
            let mut session = Session::new(settings)?;
            submitted(
                out,
                &mut session,
                Kind::Return,
                &parse_id(&id)?,
                &json!({ "reason": reason }),
            )
        }
        Command::Withdraw { id } => {
            let mut session = Session::new(settings)?;
            submitted(
                out,
                &mut session,
                Kind::Withdraw,
                &parse_id(&id)?,
                &json!({}),
            )
        }
        Command::Claim {
            id,
            exemption,
            evidence_seen,
            charges_paid,
            endorsements,
        } => {
            let mut session = Session::new(settings)?;
            let id = parse_id(&id)?;
            let supplied = session.supplied_lines(&id)?;
            let items: Vec<Value> = supplied
                .iter()
                .map(|&line| {
                    let given: Vec<&Value> = endorsements
                        .iter()
                        .filter(|(endorsed, _)| i64::from(*endorsed) == i64::from(line))
                        .map(|(_, endorsement)| endorsement)
                        .collect();
                    let endorsements = if given.is_empty() {
                        json!([{"code": "NDEC"}])
                    } else {
                        json!(given)
                    };
                    json!({"line": line, "endorsements": endorsements})
                })
                .collect();
            if let Some((line, _)) = endorsements
                .iter()
                .find(|(line, _)| !supplied.iter().any(|s| i64::from(*s) == i64::from(*line)))
            {
                return Err(Error::Other(format!(
                    "line {line} was not supplied: nothing to endorse"
                )));
            }
            let mut body = json!({"exemption": exemption, "evidence_seen": evidence_seen,
                                  "items": items});
            if let Some(paid) = charges_paid {
                body["charges_paid"] = json!(paid);
            }
            submitted(out, &mut session, Kind::Claim, &id, &body)
        }
        Command::Show { id, offline } => {
            let mut session = Session::new(settings)?;
            let id = parse_id(&id)?;
            let verified = if offline {
                session.verify_cached(&id)?
            } else {
                session.show(&id)?
            };
            show_verified(out, &verified, offline);
            Ok(())
        }
        Command::Find { nhs_number, status } => {
            let found = Session::new(settings)?.find(&nhs_number, status.as_deref())?;
            out.emit(
                || {
                    let mut text = format!("{} prescription(s)\n", found.len());
                    for p in &found {
                        text.push_str(&format!(
                            "  {}  {} {}  issue {} of {}  {}  {}\n",
                            safe(&p.id),
                            safe(&p.status.code),
                            safe(&p.status.display),
                            p.issue_number,
                            p.issue_count,
                            render::time(&p.created_at),
                            safe(p.dispenser.as_deref().unwrap_or("-")),
                        ));
                    }
                    text
                },
                || json!({"ok": true, "prescriptions": found}),
            );
            Ok(())
        }
        Command::Receipt { id, pdf } => {
            let id = parse_id(&id)?;
            let (receipt, kept) = Session::new(settings)?.receipt(&id)?;
            let lines = render::receipt_lines(&receipt);
            if let Some(path) = &pdf {
                use prescrypt_barcode::render::document::{Line, document_pdf};
                let document: Vec<Line> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, line)| match i {
                        0 => Line::heading(line.as_str()),
                        _ if line.starts_with(char::is_numeric) => Line::strong(line.as_str()),
                        _ => Line::body(line.as_str()),
                    })
                    .collect();
                let bytes = document_pdf(&format!("Dispense receipt {id}"), &document)
                    .map_err(|e| Error::Other(format!("the receipt PDF: {e}")))?;
                crate::private::write(path, &bytes)?;
            }
            out.emit(
                || {
                    let mut text = lines.join("\n");
                    text.push_str(&format!(
                        "\n\nsignature verified; kept in {}\n",
                        kept.display()
                    ));
                    text
                },
                || json!({"receipt": receipt, "kept": kept, "pdf": pdf}),
            );
            Ok(())
        }
        Command::History { id } => {
            let id = parse_id(&id)?;
            let events = Session::new(settings)?.history(&id)?;
            out.emit(
                || {
                    let mut text = format!("History of {id}\n");
                    for e in &events.events {
                        text.push_str(&format!(
                            "  {}  {:<12} {} ({}) {}\n",
                            render::time(&e.at),
                            safe(&e.action),
                            safe(&e.actor),
                            safe(&e.org),
                            if e.detail.is_null() {
                                String::new()
                            } else {
                                safe(&e.detail.to_string()).into_owned()
                            }
                        ));
                    }
                    text
                },
                || json!({"ok": true, "prescription_id": id.to_string(), "events": events.events}),
            );
            Ok(())
        }
        Command::Counter => crate::counter::run(Session::new(settings)?),
        Command::Keys { action } => keys(out, &mut Session::new(settings)?, action),
        Command::Outbox { action } => {
            let mut session = Session::new(settings)?;
            match action.unwrap_or(OutboxAction::List) {
                OutboxAction::List => {
                    let entries = session.outbox()?.list(Filter::All)?;
                    out.emit(
                        || render_entries(&entries),
                        || json!({"ok": true, "entries": entries}),
                    );
                    Ok(())
                }
                OutboxAction::Sync => {
                    let report = session.sync(Due::All)?;
                    out.emit(
                        || render_report(&report),
                        || json!({"ok": report.offline.is_none(), "report": report}),
                    );
                    match report.offline {
                        Some(reason) => Err(Error::Queued(reason)),
                        None if !report.failed.is_empty() => Err(Error::Other(format!(
                            "{} request(s) refused by the centre (see above)",
                            report.failed.len()
                        ))),
                        None => Ok(()),
                    }
                }
            }
        }
    }
}

fn keys(out: Out, session: &mut Session, action: Option<KeysAction>) -> Result<()> {
    let change = match action.unwrap_or(KeysAction::List) {
        KeysAction::List => None,
        KeysAction::Trust => Some(session.keys.trust(&session.api)?),
    };
    let keys = &session.keys;
    let described = |keys: &[jsonwebtoken::jwk::Jwk]| -> Vec<Value> {
        keys.iter()
            .map(|jwk| json!({"kid": jwk.common.key_id, "sha256": jwks::fingerprint(jwk)}))
            .collect()
    };
    out.emit(
        || {
            let mut text = String::new();
            if let Some(change) = &change {
                text.push_str(&format!(
                    "Trusted the centre's current signing keys (added {}, removed {}, changed {}).\n",
                    change.added.len(),
                    change.removed.len(),
                    change.changed.len()
                ));
            }
            text.push_str("Pinned signing keys of the centre:\n");
            if keys.pinned().is_empty() {
                text.push_str("  (none yet: pinned on first contact with the centre)\n");
            }
            for jwk in keys.pinned() {
                text.push_str(&format!("  {}\n", jwks::describe(jwk)));
            }
            if let Some((offered, change)) = keys.offered() {
                text.push_str(&format!(
                    "The centre offers a different key set, NOT trusted \
                     ({} removed, {} changed, {} added):\n",
                    change.removed.len(),
                    change.changed.len(),
                    change.added.len()
                ));
                for jwk in &offered.keys {
                    text.push_str(&format!("  {}\n", jwks::describe(jwk)));
                }
                text.push_str(
                    "Confirm these fingerprints with the centre, then run `pharmacy keys trust`.\n",
                );
            }
            text
        },
        || {
            json!({"ok": true, "pinned": described(keys.pinned()),
                   "offered": keys.offered().map(|(set, _)| described(&set.keys)),
                   "trusted": change.as_ref().map(|c| json!({"added": c.added, "removed": c.removed, "changed": c.changed}))})
        },
    );
    Ok(())
}

fn login(
    out: Out,
    global: &crate::cli::Global,
    settings: &Settings,
    token_file: &std::path::Path,
) -> Result<()> {
    let token = read_token(token_file)?;
    let claims = unverified_claims(&token)
        .ok_or_else(|| Error::Config(format!("{}: not a JWT", token_file.display())))?;
    let mut file = ConfigFile::load(&settings.config_dir)?;
    if global.server.is_some() {
        file.server = global.server.clone();
    }
    if global.data_dir.is_some() {
        file.data_dir = global.data_dir.clone();
    }
    if global.scanner.is_some() {
        file.scanner = global.scanner.clone();
    }
    let org = claims.get("org").and_then(Value::as_str).map(str::to_owned);
    file.ods = global.ods.clone().or(file.ods).or(org.clone());
    if let (Some(ods), Some(org)) = (&file.ods, &org)
        && !ods.eq_ignore_ascii_case(org)
    {
        return Err(Error::Config(format!(
            "the token is for organisation {}, this pharmacy is configured as {}",
            safe(org),
            safe(ods)
        )));
    }
    let stored = store_token(&settings.config_dir, &token, file)?;
    out.emit(
        || {
            format!(
                "Logged in as {} ({}) for {} — token stored in {}",
                safe(claims.get("sub").and_then(Value::as_str).unwrap_or("?")),
                safe(claims.get("role").and_then(Value::as_str).unwrap_or("?")),
                safe(org.as_deref().unwrap_or("?")),
                stored.display()
            )
        },
        || json!({"ok": true, "claims": claims, "token_file": stored}),
    );
    Ok(())
}

/// The claims of a JWT without verifying it (the centre verifies; this only shows who logged in).
fn unverified_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.trim_end_matches('=').as_bytes())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn scan(out: Out, mut session: Session, args: &ScanArgs, count: u32) -> Result<()> {
    if let Some(path) = &args.image {
        let codes = crate::image::decode_file(path)?;
        return process_all(out, &mut session, codes.into_iter().map(Ok));
    }
    if args.stdin {
        let stdin = std::io::stdin();
        return process_all(out, &mut session, wedge_codes(stdin.lock()));
    }
    if let Some(device) = &args.serial {
        let scanner = crate::serial::Scanner::open(device)?;
        let limit = (count > 0).then_some(count as usize);
        let codes = scanner.into_codes();
        return match limit {
            Some(n) => process_all(out, &mut session, codes.take(n)),
            None => process_all(out, &mut session, codes),
        };
    }
    Err(Error::Other(
        "choose --image, --stdin or --serial".to_owned(),
    ))
}

/// Processes every scan; reports each; the exit status is the last failure's (or success).
fn process_all(
    out: Out,
    session: &mut Session,
    codes: impl Iterator<Item = Result<ScannedCode>>,
) -> Result<()> {
    let mut last_error = None;
    let mut any = false;
    for code in codes {
        any = true;
        match code.and_then(|code| session.release_scanned(code)) {
            Ok(released) => show_released(out, &released),
            Err(error) => {
                out.error(&error);
                last_error = Some(error);
            }
        }
    }
    if !any {
        return Err(Error::Rejected("no barcode found".to_owned()));
    }
    match last_error {
        // Already reported: hand back only the exit status.
        Some(error) => Err(Error::Reported(error.exit_code())),
        None => Ok(()),
    }
}

fn show_released(out: Out, released: &Released) {
    out.emit(
        || {
            let how = match released.scanned {
                ScanKind::Token => "token signature verified offline",
                ScanKind::Id => "bare prescription ID (nominated release)",
            };
            format!(
                "Scanned from {}: {how}\nReleased to this pharmacy.\n{}",
                released.scan.source,
                signatures(&released.released)
            )
        },
        || json!({"ok": true, "result": released}),
    );
}

/// The prescription, then what verified it: the centre's signature, and who signed it.
fn signatures(verified: &Verified) -> String {
    format!(
        "{}Prescription signature verified (key {}).\n{}\n",
        render::prescription(&verified.prescription),
        safe(&verified.signed_by),
        render::prescriber_signature(verified.prescriber_signature.as_ref())
    )
}

fn show_verified(out: Out, verified: &Verified, offline: bool) {
    out.emit(
        || {
            let source = if offline {
                "This pharmacy's last copy, verified offline (its status may have changed since).\n"
            } else {
                ""
            };
            format!("{source}{}", signatures(verified))
        },
        || {
            json!({"ok": true, "prescription": verified.prescription,
                   "signed_by": verified.signed_by,
                   "prescriber_signature": verified.prescriber_signature,
                   "offline": offline})
        },
    );
}

fn submitted(
    out: Out,
    session: &mut Session,
    kind: Kind,
    id: &prescrypt_barcode::PrescriptionId,
    body: &Value,
) -> Result<()> {
    let entry = session.submit(kind, id, body)?;
    // The prescription as it now stands is shown only from its verified signed content.
    let shown = entry
        .response
        .clone()
        .and_then(|v| serde_json::from_value::<PrescriptionView>(v).ok())
        .map(|p| session.verify_for(p, id));
    out.emit(
        || {
            let mut text = format!(
                "{} of {id} accepted by the centre.\n",
                capitalised(kind.as_str())
            );
            if let Some(Ok(verified)) = &shown {
                text.push_str(&render::prescription(&verified.prescription));
                text.push_str(&render::prescriber_signature(
                    verified.prescriber_signature.as_ref(),
                ));
                text.push('\n');
            }
            text
        },
        || json!({"ok": true, "entry": entry}),
    );
    match shown {
        Some(Err(error)) => Err(error),
        _ => Ok(()),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

pub fn render_entries(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "The outbox is empty.\n".to_owned();
    }
    let mut text = String::from("  #  state   kind      prescription          tries  note\n");
    for e in entries {
        text.push_str(&format!(
            "{:>3}  {:<7} {:<9} {:<20} {:>5}  {}\n",
            e.id,
            e.state.as_str(),
            e.kind.as_str(),
            e.prescription_id,
            e.attempts,
            match e.state {
                State::Queued => e
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not sent yet".to_owned()),
                State::Failed => e.last_error.clone().unwrap_or_default(),
                State::Sent => String::new(),
            }
        ));
    }
    text
}

fn render_report(report: &SyncReport) -> String {
    let mut text = format!(
        "Sent {}, refused {}, still queued {}.\n",
        report.sent.len(),
        report.failed.len(),
        report.still_queued.len()
    );
    for e in &report.failed {
        text.push_str(&format!(
            "  refused: #{} {} {}: {}\n",
            e.id,
            e.kind.as_str(),
            e.prescription_id,
            e.last_error.as_deref().unwrap_or("")
        ));
    }
    if let Some(reason) = &report.offline {
        text.push_str(&format!(
            "The centre is unreachable ({reason}); queued requests stay safe and will be sent later.\n"
        ));
    }
    text
}

/// Adds what was handed over (`--pack`, `--substitute`) to the dispense lines they name.
fn attach_products(items: &mut [Value], packs: &[String], substitutes: &[String]) -> Result<()> {
    let today = chrono::Utc::now().date_naive();
    fn line_of(items: &mut [Value], line: u32) -> Result<&mut Value> {
        items
            .iter_mut()
            .find(|item| item["line"] == line)
            .ok_or_else(|| {
                Error::Other(format!("line {line} is not dispensed in this notification"))
            })
    }
    for pack in packs {
        let (line, text) = crate::cli::line_and(pack, "GS1").map_err(Error::Other)?;
        let scanned = crate::pack::usable(&text, today).map_err(Error::Rejected)?;
        let item = line_of(items, line)?;
        let supplied = item["supplied"].as_object().cloned().unwrap_or_default();
        let mut merged = scanned.supplied();
        for (key, value) in supplied {
            merged[key] = value;
        }
        item["supplied"] = merged;
    }
    for substitute in substitutes {
        let (line, product) =
            crate::cli::line_and(substitute, "CODE:NAME").map_err(Error::Other)?;
        let (code, display) = product
            .split_once(':')
            .ok_or_else(|| Error::Other(format!("`{product}`: expected DMD_CODE:NAME")))?;
        let item = line_of(items, line)?;
        if !item["supplied"].is_object() {
            item["supplied"] = json!({});
        }
        item["supplied"]["code"] = json!(code.trim());
        item["supplied"]["display"] = json!(display.trim());
    }
    Ok(())
}
