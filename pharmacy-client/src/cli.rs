//! The `pharmacy` command line (clap derive). Every setting is also an environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use prescrypt_contract::quantity;
use prescrypt_contract::{ChargeExemption, DispenserEndorsement, NotDispensedReason};
use serde_json::{Value, json};

use crate::config::Overrides;

#[derive(Debug, Parser)]
#[command(
    name = "pharmacy",
    version,
    about = "Prescrypt pharmacy client: scan, verify, release and dispense prescriptions",
    after_help = "Exit codes: 0 ok, 1 failure, 2 usage, 3 scanned code rejected, 4 refused by the centre, \
                  5 centre unreachable (release must wait / request queued), 6 local problem, \
                  7 prescription signature invalid (the centre's or the prescriber's).\n\
                  With the centre down, `pharmacy show ID --offline` verifies this pharmacy's last \
                  copy of a prescription again from the cached key sets"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Directory holding config.toml and the stored token [default: the platform config dir]
    #[arg(long, global = true, env = "PHARMACY_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// The centre's base URL, e.g. https://prescrypt.example
    #[arg(long, global = true, env = "PHARMACY_SERVER")]
    pub server: Option<String>,
    /// Bearer token (JWT) for the centre
    #[arg(long, global = true, env = "PHARMACY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the bearer token
    #[arg(long, global = true, env = "PHARMACY_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// This pharmacy's ODS code
    #[arg(long, global = true, env = "PHARMACY_ODS")]
    pub ods: Option<String>,
    /// Local data directory (outbox database, key cache, prescription cache)
    #[arg(long, global = true, env = "PHARMACY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Scanner for the counter screen: `stdin` or `serial:/dev/ttyACM0`
    #[arg(long, global = true, env = "PHARMACY_SCANNER")]
    pub scanner: Option<String>,
    /// Network timeout in seconds
    #[arg(long, global = true, env = "PHARMACY_TIMEOUT")]
    pub timeout: Option<u64>,
    /// Machine-readable output: one JSON object per result on stdout
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_dir: self.config_dir.clone(),
            server: self.server.clone(),
            token: self.token.clone(),
            token_file: self.token_file.clone(),
            ods: self.ods.clone(),
            data_dir: self.data_dir.clone(),
            scanner: self.scanner.clone(),
            timeout_secs: self.timeout,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store the bearer token from --token-file (and any --server/--ods/--data-dir/--scanner given)
    /// in the config dir
    Login,
    /// Scan a code, verify it offline, release the prescription and show it
    Scan {
        #[command(flatten)]
        source: ScanArgs,
        /// With --serial: how many scans to process before exiting (0 = until interrupted)
        #[arg(long, default_value_t = 1, requires = "serial")]
        count: u32,
    },
    /// Download every prescription nominated to this pharmacy, 25 at a time
    Nominated,
    /// Record a dispense (queued in the outbox, then sent)
    Dispense {
        id: String,
        /// LINE=complete | LINE=partial:QTY | LINE=owing | LINE=not-dispensed:REASON (repeatable)
        #[arg(long = "item", value_name = "N=OUTCOME", value_parser = parse_item)]
        items: Vec<Value>,
        /// Every item not yet settled is dispensed in full
        #[arg(long, conflicts_with = "items")]
        all_complete: bool,
        /// LINE=CODE: the scanned medicine pack handed over for that line (GS1 DataMatrix text as
        /// the scanner sends it, or `(01)…(17)…(10)…(21)…`): records GTIN, batch, expiry and
        /// serial; an expired pack is refused (repeatable)
        #[arg(long = "pack", value_name = "N=GS1")]
        packs: Vec<String>,
        /// LINE=DMD_CODE:NAME: another product was handed over instead of the prescribed one
        /// (repeatable)
        #[arg(long = "substitute", value_name = "N=CODE:NAME")]
        substitutes: Vec<String>,
    },
    /// Return a prescription to the centre (reason 0001–0008)
    Return {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw the last dispense notification
    Withdraw { id: String },
    /// Claim reimbursement for a completed prescription (again within the claim window: amend it)
    Claim {
        id: String,
        /// The patient's prescription-charge exemption, 0001–0015 (0001: the patient paid)
        #[arg(long, value_parser = parse_exemption)]
        exemption: String,
        /// Evidence of the exemption was seen
        #[arg(long)]
        evidence_seen: bool,
        /// With --exemption 0001: how many prescription charges the patient paid
        #[arg(long)]
        charges_paid: Option<u32>,
        /// LINE=CODE[:TEXT]: a dispenser endorsement (BB, ED, IP, MF, NCSO, XP, PC, PNC, RC,
        /// SSP, SP, ZD) with its supporting text on a supplied line (repeatable); supplied lines
        /// without one are claimed as NDEC (no endorsement)
        #[arg(long = "endorse", value_name = "N=CODE[:TEXT]", value_parser = parse_endorsement)]
        endorsements: Vec<(u32, Value)>,
    },
    /// Fetch and show a prescription, with its signatures verified (the prescriber's and the
    /// centre's)
    Show {
        id: String,
        /// Do not contact the centre: verify this pharmacy's last copy of the prescription (kept
        /// when it was released or shown here) again, from the cached key sets only. Its status is
        /// as last seen
        #[arg(long)]
        offline: bool,
    },
    /// Show a prescription's event history
    History { id: String },
    /// Fetch the centre's signed receipt of what was handed over and claimed, verify it, keep it
    /// and show it (or print it for the patient as a PDF)
    Receipt {
        id: String,
        /// Also write the receipt as a PDF here
        #[arg(long, value_name = "FILE")]
        pdf: Option<std::path::PathBuf>,
    },
    /// Find the prescriptions of a patient this pharmacy holds or held, newest first
    Find {
        /// The patient's NHS number (10 digits, spaces allowed)
        #[arg(long)]
        nhs_number: String,
        /// Only prescriptions in this status (a code such as 0002)
        #[arg(long)]
        status: Option<String>,
    },
    /// Interactive counter screen
    Counter,
    /// Inspect or flush the local outbox
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
    /// The centre's signing keys pinned by this pharmacy (fingerprints), or trust its current ones
    Keys {
        #[command(subcommand)]
        action: Option<KeysAction>,
    },
}

#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum KeysAction {
    /// Show the pinned keys and any key set the centre offers that is not trusted (default)
    List,
    /// Pin the centre's current key set even though it removes or changes pinned keys (confirm
    /// the fingerprints shown with the centre first)
    Trust,
}

#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct ScanArgs {
    /// Decode barcodes from an image file (scanner image or phone photo)
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// Keyboard-wedge scanner: one code per line on stdin until end of input
    #[arg(long)]
    pub stdin: bool,
    /// Counter scanner on a serial device or pty (host link protocol)
    #[arg(long, value_name = "DEVICE")]
    pub serial: Option<String>,
}

#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum OutboxAction {
    /// List every entry (default)
    List,
    /// Send everything queued now
    Sync,
}

/// Parses `N=complete`, `N=partial:QTY`, `N=not-dispensed:REASON` into the API's item object.
pub fn parse_item(text: &str) -> Result<Value, String> {
    let (line, outcome) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected LINE=OUTCOME"))?;
    let line: u32 = line
        .trim()
        .parse()
        .map_err(|_| format!("`{line}` is not an item line number"))?;
    let outcome = outcome.trim();
    if outcome == "complete" {
        return Ok(json!({"line": line, "outcome": "complete"}));
    }
    if outcome == "owing" {
        return Ok(json!({"line": line, "outcome": "owing"}));
    }
    if let Some(quantity) = outcome.strip_prefix("partial:") {
        let quantity = quantity::parse(quantity).map_err(|e| format!("`{quantity}`: {e}"))?;
        let quantity = crate::render::quantity_json(quantity);
        return Ok(json!({"line": line, "outcome": "partial", "quantity": quantity}));
    }
    if let Some(reason) = outcome.strip_prefix("not-dispensed:") {
        let Some(reason) = NotDispensedReason::parse(reason) else {
            return Err(format!(
                "`{reason}`: a not-dispensed reason is a 4-digit EPS code, 0001–0011"
            ));
        };
        return Ok(json!({"line": line, "outcome": "not_dispensed", "reason": reason.code()}));
    }
    Err(format!(
        "`{outcome}`: expected complete, partial:QTY, owing or not-dispensed:REASON"
    ))
}

/// A prescription-charge exemption code from the EPS list.
pub fn parse_exemption(text: &str) -> Result<String, String> {
    ChargeExemption::parse(text.trim())
        .map(|exemption| exemption.code().to_owned())
        .ok_or_else(|| format!("`{text}`: an exemption is an EPS code 0001–0015"))
}

/// Parses `N=CODE[:TEXT]` into the line and the API's endorsement object.
pub fn parse_endorsement(text: &str) -> Result<(u32, Value), String> {
    let (line, rest) = line_and(text, "CODE[:TEXT]")?;
    let (code, supporting) = match rest.split_once(':') {
        Some((code, supporting)) => (code, Some(supporting.trim())),
        None => (rest.as_str(), None),
    };
    let code = DispenserEndorsement::parse(code.trim().to_ascii_uppercase().as_str())
        .ok_or_else(|| format!("`{code}`: not an EPS dispenser endorsement code"))?;
    let mut endorsement = json!({"code": code.code()});
    if let Some(supporting) = supporting.filter(|text| !text.is_empty()) {
        endorsement["text"] = json!(supporting);
    }
    Ok((line, endorsement))
}

/// Splits `N=REST` into the line number and the rest.
pub fn line_and(text: &str, what: &str) -> Result<(u32, String), String> {
    let (line, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected LINE={what}"))?;
    let line = line
        .trim()
        .parse()
        .map_err(|_| format!("`{line}` is not an item line number"))?;
    Ok((line, rest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn item_outcomes() {
        assert_eq!(
            parse_item("1=complete").unwrap(),
            json!({"line": 1, "outcome": "complete"})
        );
        assert_eq!(
            parse_item("2=partial:14").unwrap(),
            json!({"line": 2, "outcome": "partial", "quantity": 14})
        );
        assert_eq!(
            parse_item("2=partial:2.5").unwrap(),
            json!({"line": 2, "outcome": "partial", "quantity": 2.5})
        );
        assert_eq!(
            parse_item("3=not-dispensed:0002").unwrap(),
            json!({"line": 3, "outcome": "not_dispensed", "reason": "0002"})
        );
        for bad in [
            "x=complete",
            "1=partial:0",
            "1=partial:-1",
            "1=not-dispensed:2",
            "1=not-dispensed:0099",
            "1=gone",
            "1",
        ] {
            assert!(parse_item(bad).is_err(), "{bad}");
        }
    }
}
