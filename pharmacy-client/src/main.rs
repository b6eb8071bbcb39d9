//! `pharmacy` — see the crate README for commands and exit codes.

use std::process::ExitCode;

use clap::Parser;
use prescrypt_pharmacy::cli::Cli;
use prescrypt_pharmacy::commands::run;
use prescrypt_pharmacy::error::exit;
use prescrypt_pharmacy::output::Out;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let out = Out {
        json: cli.global.json,
    };
    match run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) => {
            if !matches!(error, prescrypt_pharmacy::Error::Reported(_)) {
                out.error(&error);
            }
            ExitCode::from(error.exit_code())
        }
    }
}
