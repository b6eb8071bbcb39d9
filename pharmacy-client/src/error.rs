//! The client's error contract: every failure a command can end with, and its exit code.

use std::path::PathBuf;

use crate::api::{ApiError, Problem, Shown};

/// Documented exit codes (also in the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Any other failure (bad input, unexpected response).
    pub const FAILURE: u8 = 1;
    /// Command-line usage error (clap).
    pub const USAGE: u8 = 2;
    /// A scanned code was rejected at the counter (forged, damaged or unknown-key token, not a code).
    pub const REJECTED: u8 = 3;
    /// The service refused the request (a final 4xx answer).
    pub const REFUSED: u8 = 4;
    /// The centre is unreachable: a release must wait; a state change is queued in the outbox.
    pub const OFFLINE: u8 = 5;
    /// Local problem: configuration, data directory, database.
    pub const LOCAL: u8 = 6;
    /// The released prescription's signature (JWS) did not verify, or what the centre returned is
    /// not the prescription that was scanned: not shown.
    pub const BAD_SIGNATURE: u8 = 7;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("local database: {0}")]
    Database(String),
    #[error("scanned code rejected: {0}")]
    Rejected(String),
    #[error("{}", Shown(.0))]
    Refused(Box<Problem>),
    #[error("the centre is unreachable ({0})")]
    Offline(String),
    #[error(
        "queued in the outbox (the centre is unreachable: {0}); it will be sent when the centre is back"
    )]
    Queued(String),
    #[error("the prescription's signature does not verify: {0} — not shown, do not dispense")]
    BadSignature(String),
    #[error("{0} — not shown, do not dispense")]
    NotScanned(String),
    #[error("{0}")]
    Other(String),
    /// Already shown to the user; only the exit code remains to be returned.
    #[error("(reported above)")]
    Reported(u8),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Io { .. } | Self::Database(_) => exit::LOCAL,
            Self::Rejected(_) => exit::REJECTED,
            Self::Refused(_) => exit::REFUSED,
            Self::Offline(_) | Self::Queued(_) => exit::OFFLINE,
            Self::BadSignature(_) | Self::NotScanned(_) => exit::BAD_SIGNATURE,
            Self::Other(_) => exit::FAILURE,
            Self::Reported(code) => *code,
        }
    }

    /// A short stable code for `--json` output.
    pub fn code(&self) -> &str {
        match self {
            Self::Config(_) => "config",
            Self::Io { .. } => "io",
            Self::Database(_) => "database",
            Self::Rejected(_) => "rejected",
            Self::Refused(problem) if problem.code.is_empty() => "refused",
            Self::Refused(problem) => &problem.code,
            Self::Offline(_) => "offline",
            Self::Queued(_) => "queued",
            Self::BadSignature(_) => "bad-signature",
            Self::NotScanned(_) => "not-scanned",
            Self::Other(_) => "failure",
            Self::Reported(_) => "reported",
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<ApiError> for Error {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Unreachable(reason) => Self::Offline(reason),
            ApiError::Transient { problem, .. } if problem.status == 401 => Self::Config(format!(
                "the centre does not accept the credentials ({}); run `pharmacy login`",
                Shown(&problem)
            )),
            ApiError::Transient { problem, .. } => Self::Offline(Shown(&problem).to_string()),
            ApiError::Refused(problem) => Self::Refused(problem),
            ApiError::Unexpected(reason) => Self::Other(reason),
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(error.to_string())
    }
}

impl From<diesel::ConnectionError> for Error {
    fn from(error: diesel::ConnectionError) -> Self {
        Self::Database(error.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
