//! `scanner-sim`: the counter scanner's firmware core running against simulated hardware,
//! speaking the host link on a pty (or stdin/stdout) so that the pharmacy client can be tested
//! against "a scanner". See scanner-firmware/README.md.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use prescrypt_scanner_firmware::scanner::{Config, TriggerMode};
use prescrypt_scanner_firmware::sim::optics::Optics;
use prescrypt_scanner_firmware::sim::runner::{FdLink, Plan, Pty, Symbol, run};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// The simulator pulls the trigger for each symbol.
    Trigger,
    /// The host starts each read with the Trigger command.
    Host,
    /// Hands-free: each symbol is held in front of the window.
    Presentation,
}

/// Simulated counter scanner: presents symbols to the firmware core and speaks the host link.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A prescription ID to present as its printed Code 128 (repeatable; order kept with --token).
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<String>,
    /// A dispensing token to present as a Data Matrix to the 2-D engine (repeatable).
    #[arg(long = "token", value_name = "TOKEN")]
    tokens: Vec<String>,
    /// Any Code 128 text to present (repeatable); U+00F1 (ñ) stands for FNC1.
    #[arg(long = "code128", value_name = "TEXT")]
    code128: Vec<String>,
    /// GS1 element strings in the bracketed form, e.g. `(01)09501101530003(17)270131(10)AB12`,
    /// to present as a GS1-128 (a medicine pack or its label; repeatable).
    #[arg(long = "gs1", value_name = "ELEMENTS")]
    gs1: Vec<String>,
    /// GS1 element strings in the bracketed form to present as a GS1 DataMatrix to the 2-D
    /// engine (a medicine pack; the host receives `]d2`; repeatable).
    #[arg(long = "gs1-datamatrix", value_name = "ELEMENTS")]
    gs1_datamatrix: Vec<String>,
    /// Speak the host link on a new pty; its path is printed as `pty: <path>` on the first line.
    #[arg(long, conflicts_with = "stdout")]
    pty: bool,
    /// Speak the host link on stdin (host → scanner) and stdout (scanner → host), binary.
    #[arg(long)]
    stdout: bool,
    /// How reads are started.
    #[arg(long, value_enum, default_value = "trigger")]
    mode: Mode,
    /// Samples per module on the linear sensor (1.5–8).
    #[arg(long, default_value_t = 3.0)]
    module_samples: f64,
    /// Optical blur (Gaussian σ), in samples.
    #[arg(long, default_value_t = 0.7)]
    blur: f64,
    /// Sensor noise (σ), in grey levels.
    #[arg(long, default_value_t = 2.0)]
    noise: f64,
    /// Illumination × reflectance gain at nominal exposure (the firmware adjusts its exposure).
    #[arg(long, default_value_t = 1.0)]
    gain: f64,
    /// Offset added to every sample, in grey levels.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    offset: f64,
    /// Sensor length in samples (a TCD1304 has 3694).
    #[arg(long, default_value_t = 3694)]
    samples: usize,
    /// The label is held upside down (scanned right to left).
    #[arg(long)]
    reversed: bool,
    /// Pause between symbols, in ms (longer than the re-read timeout lets a symbol repeat).
    #[arg(long, default_value_t = 700)]
    interval_ms: u64,
    /// Give up on a symbol not delivered within this time, in ms.
    #[arg(long, default_value_t = 30_000)]
    symbol_timeout_ms: u64,
    /// After the last symbol, keep answering the host for this long (ms) unless it hangs up.
    #[arg(long, default_value_t = 1_000)]
    linger_ms: u64,
    /// Wait this long (ms) for the host to open the pty.
    #[arg(long, default_value_t = 60_000)]
    connect_timeout_ms: u64,
    /// The scanner's wait for the host's ACK before retransmitting, in ms.
    #[arg(long, default_value_t = 500)]
    ack_timeout_ms: u32,
    /// Retransmissions before the scanner gives up on a scan frame (0–10).
    #[arg(long, default_value_t = 10)]
    retries: u8,
    /// Same-symbol re-read timeout, in ms.
    #[arg(long, default_value_t = 500)]
    reread_timeout_ms: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut symbols: Vec<Symbol> = Vec::new();
    // Keep the command line's order across --id, --token, --code128, --gs1 and --gs1-datamatrix.
    let mut ids = args.ids.iter();
    let mut tokens = args.tokens.iter();
    let mut texts = args.code128.iter();
    let mut gs1 = args.gs1.iter();
    let mut gs1_datamatrix = args.gs1_datamatrix.iter();
    for arg in std::env::args() {
        let next = match arg.split('=').next().unwrap_or_default() {
            "--id" => ids.next().cloned().map(Symbol::Id),
            "--token" => tokens.next().cloned().map(Symbol::Token),
            "--code128" => texts.next().cloned().map(Symbol::Code128),
            "--gs1" => gs1.next().cloned().map(Symbol::Gs1),
            "--gs1-datamatrix" => gs1_datamatrix.next().cloned().map(Symbol::Gs1DataMatrix),
            _ => None,
        };
        symbols.extend(next);
    }
    let plan = Plan {
        symbols,
        config: Config {
            mode: match args.mode {
                Mode::Trigger => TriggerMode::Manual,
                Mode::Host => TriggerMode::Host,
                Mode::Presentation => TriggerMode::Presentation,
            },
            ack_timeout_ms: args.ack_timeout_ms,
            max_retries: args.retries.min(10),
            reread_timeout_ms: args.reread_timeout_ms,
            ..Config::default()
        },
        optics: Optics {
            module_samples: args.module_samples,
            blur: args.blur,
            noise: args.noise,
            gain: args.gain,
            offset: args.offset,
            samples: args.samples.clamp(64, 4096),
            reversed: args.reversed,
            ..Optics::default()
        },
        interval_ms: args.interval_ms,
        symbol_timeout_ms: args.symbol_timeout_ms,
        linger_ms: args.linger_ms,
        connect_timeout_ms: args.connect_timeout_ms,
        engine_chunk: 60,
    };
    match start(&args, &plan) {
        Ok(report) if report.failed == 0 => {
            eprintln!("scanner-sim: {} symbol(s) delivered", report.delivered);
            ExitCode::SUCCESS
        }
        Ok(report) => {
            eprintln!(
                "scanner-sim: {} delivered, {} not delivered",
                report.delivered, report.failed
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("scanner-sim: {e}");
            ExitCode::from(2)
        }
    }
}

fn start(
    args: &Args,
    plan: &Plan,
) -> Result<prescrypt_scanner_firmware::sim::runner::Report, String> {
    let mut log = std::io::stderr();
    if args.stdout {
        let stdin = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| e.to_string())?;
        let stdout = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| e.to_string())?;
        let link = FdLink::stdio(File::from(stdin), File::from(stdout));
        return run(plan, link, &mut log);
    }
    if !args.pty {
        return Err("choose --pty or --stdout".to_owned());
    }
    let pty = Pty::open().map_err(|e| format!("cannot open a pty: {e}"))?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "pty: {}", pty.path.display()).map_err(|e| e.to_string())?;
        stdout.flush().map_err(|e| e.to_string())?;
    }
    eprintln!(
        "scanner-sim: waiting for the host to open {}",
        pty.path.display()
    );
    if !pty.wait_for_host(Duration::from_millis(plan.connect_timeout_ms)) {
        return Err("the host did not open the pty in time".to_owned());
    }
    let link = pty.link().map_err(|e| e.to_string())?;
    run(plan, link, &mut log)
}
