//! `rx-barcode`: decode prescription barcodes from image files, or render a printable token.
//!
//! `rx-barcode decode FILE...` prints exactly one JSON object per input, one per line:
//! `{"file": "<as given>", "codes": [{"format": "code128", "text": "...", "aim": "]C0"}], "ms": 1.23}`
//! with `"error": "..."` added when the file cannot be read. It exits 0 even when nothing is found.
//! A GS1 symbol (`]C1` GS1-128, `]d2` GS1 Data Matrix, `]Q3` GS1 QR; its text keeps every FNC1
//! after the first as GS, 0x1D) also carries its element strings,
//! `"gs1": {"01": "09501101530003", "17": "270131", "10": "AB12", "21": "SN1"}`, or, when they do
//! not parse, `"gs1_error": "..."` instead.
//! `--want token|id|any|all` says what to look for: decoding a file stops as soon as it is found.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use prescrypt_barcode::decode::{DecodeOptions, DecodedCode, Decoder, Want};
use prescrypt_barcode::render::{Dpi, TokenFormat, TokenSheet, render_token};
use prescrypt_barcode::{PrescriptionId, Token};
use serde::Serialize;

#[derive(Debug, Parser)]
#[command(
    name = "rx-barcode",
    version,
    about = "Prescription barcodes: decode images, render tokens"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode every file; one JSON line per file on standard output.
    Decode {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Images with more pixels are rejected.
        #[arg(long, default_value_t = DecodeOptions::default().max_pixels)]
        max_pixels: u64,
        /// Time budget per image for the escalation, in milliseconds.
        #[arg(long, default_value_t = 1500)]
        budget_ms: u64,
        /// What to look for; decoding stops once found: `token` (the 2-D token), `id` (the
        /// Code 128 ID), `any` (the first of either), `all` (one code of each kind).
        #[arg(long, default_value = "all", value_parser = parse_want)]
        want: Want,
        /// Also print every pipeline step (stage, format, milliseconds, found) to standard error.
        #[arg(long)]
        trace: bool,
    },
    /// Render a token as PDF (A5 sheet), PNG (both codes) or SVG, chosen by the output extension.
    Render {
        /// The prescription ID (with or without hyphens).
        #[arg(long)]
        id: String,
        /// The token text (131 characters), which must carry the same ID.
        #[arg(long)]
        token: String,
        /// Printer resolution (203, 300, 600 ...).
        #[arg(long, default_value_t = 600)]
        dpi: u32,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Serialize)]
struct FileReport<'a> {
    file: &'a str,
    codes: Vec<CodeReport>,
    ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct CodeReport {
    format: &'static str,
    text: String,
    aim: String,
    /// A GS1 symbol's element strings, AI → value.
    #[serde(skip_serializing_if = "Option::is_none")]
    gs1: Option<BTreeMap<String, String>>,
    /// Why a GS1 symbol's element strings do not parse (then there is no `gs1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    gs1_error: Option<String>,
}

impl From<DecodedCode> for CodeReport {
    fn from(code: DecodedCode) -> Self {
        let (gs1, gs1_error) = match code.gs1() {
            None => (None, None),
            Some(Ok(elements)) => (
                Some(
                    elements
                        .elements()
                        .map(|element| (element.ai.to_string(), element.value.to_owned()))
                        .collect(),
                ),
                None,
            ),
            Some(Err(error)) => (None, Some(error.to_string())),
        };
        Self {
            format: code.format.name(),
            text: code.text,
            aim: code.aim,
            gs1,
            gs1_error,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Decode {
            files,
            max_pixels,
            budget_ms,
            want,
            trace,
        } => decode(&files, max_pixels, budget_ms, want, trace),
        Command::Render {
            id,
            token,
            dpi,
            out,
        } => render(&id, &token, dpi, &out),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rx-barcode: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_want(name: &str) -> Result<Want, String> {
    Want::from_name(name).ok_or_else(|| format!("{name:?}: expected token, id, any or all"))
}

fn decode(
    files: &[PathBuf],
    max_pixels: u64,
    budget_ms: u64,
    want: Want,
    trace: bool,
) -> Result<(), String> {
    let decoder = Decoder::new(DecodeOptions {
        max_pixels,
        time_budget: Duration::from_millis(budget_ms),
        want,
        ..DecodeOptions::default()
    });
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for file in files {
        let started = Instant::now();
        let result = decoder.decode_file_traced(file);
        let ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        let name = file.to_string_lossy();
        let result = result.map(|(codes, steps)| {
            if trace {
                let steps: Vec<String> = steps
                    .iter()
                    .map(|s| {
                        let found = match (s.found, s.skipped) {
                            (true, _) => " found",
                            (false, true) => " skipped (no structure)",
                            (false, false) => "",
                        };
                        format!("{} {} {:.1} ms{found}", s.stage.name(), s.format, s.ms)
                    })
                    .collect();
                eprintln!("{name}: {}", steps.join(", "));
            }
            codes
        });
        let report = match result {
            Ok(codes) => FileReport {
                file: &name,
                codes: codes.into_iter().map(CodeReport::from).collect(),
                ms,
                error: None,
            },
            Err(error) => FileReport {
                file: &name,
                codes: Vec::new(),
                ms,
                error: Some(error.to_string()),
            },
        };
        let line = serde_json::to_string(&report).map_err(|e| e.to_string())?;
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

fn render(id: &str, token: &str, dpi: u32, out: &std::path::Path) -> Result<(), String> {
    let id = PrescriptionId::parse(id).map_err(|e| format!("--id: {e}"))?;
    let token = Token::parse(token.trim()).map_err(|e| format!("--token: {e}"))?;
    if token.prescription_id() != id {
        return Err(format!(
            "--token is for prescription {}, not {id}",
            token.prescription_id()
        ));
    }
    let extension = out
        .extension()
        .and_then(|e| e.to_str())
        .ok_or("--out needs a .pdf, .png or .svg extension")?;
    let format = TokenFormat::from_extension(extension).map_err(|e| e.to_string())?;
    let dpi = Dpi::new(dpi).map_err(|e| e.to_string())?;
    let bytes = render_token(&TokenSheet::new(&token, dpi), format).map_err(|e| e.to_string())?;
    std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display()))
}
