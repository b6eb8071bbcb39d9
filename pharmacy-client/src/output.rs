//! How a command's results reach the user: human text by default, one JSON object per result
//! with `--json`; errors on stderr (human) or as a JSON object on stdout.
//! Outside text goes through [`crate::terminal::safe`] before it is printed.

use std::io::Write as _;

use serde_json::{Value, json};

use crate::error::Error;
use crate::terminal::safe_lines;

/// Prints results in the chosen format.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub json: bool,
}

impl Out {
    pub fn emit(&self, human: impl FnOnce() -> String, machine: impl FnOnce() -> Value) {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            let _ = writeln!(stdout, "{}", machine());
        } else {
            let text = human();
            let text = safe_lines(&text);
            let _ = write!(stdout, "{text}");
            if !text.ends_with('\n') {
                let _ = writeln!(stdout);
            }
        }
        let _ = stdout.flush();
    }

    pub fn error(&self, error: &Error) {
        if self.json {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(
                stdout,
                "{}",
                json!({"ok": false, "error": {"code": error.code(), "message": error.to_string(),
                       "exit_code": error.exit_code(),
                       "problem": match error { Error::Refused(p) => serde_json::to_value(p).ok(), _ => None }}})
            );
            let _ = stdout.flush();
        } else {
            eprintln!("error: {}", safe_lines(&error.to_string()));
        }
    }
}
