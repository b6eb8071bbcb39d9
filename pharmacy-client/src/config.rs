//! Settings: command-line flags and environment (via clap) over `config.toml` in the platform config
//! directory, over defaults. `pharmacy login` writes the config directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::private;

pub const CONFIG_FILE: &str = "config.toml";
pub const TOKEN_FILE: &str = "token";
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// What `config.toml` may hold; every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub server: Option<String>,
    pub token_file: Option<PathBuf>,
    pub ods: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// The counter screen's scanner: `stdin` (keyboard wedge) or `serial:/dev/ttyACM0`.
    pub scanner: Option<String>,
    pub timeout_secs: Option<u64>,
}

impl ConfigFile {
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        private::create_dir(dir)?;
        let path = dir.join(CONFIG_FILE);
        let text = toml::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        private::write(&path, text.as_bytes())?;
        Ok(path)
    }
}

/// Values given on the command line or in the environment (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_dir: Option<PathBuf>,
    pub server: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub ods: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub scanner: Option<String>,
    pub timeout_secs: Option<u64>,
}

/// Where the counter screen reads scans from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerSource {
    Wedge,
    Serial(String),
}

impl ScannerSource {
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim() {
            "stdin" | "wedge" | "keyboard" => Ok(Self::Wedge),
            other => other
                .strip_prefix("serial:")
                .filter(|path| !path.is_empty())
                .map(|path| Self::Serial(path.to_owned()))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "scanner `{other}`: expected `stdin` or `serial:/dev/…`"
                    ))
                }),
        }
    }
}

/// The resolved settings every command runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_dir: PathBuf,
    pub server: String,
    pub token: Option<String>,
    pub ods: Option<String>,
    pub data_dir: PathBuf,
    pub scanner: ScannerSource,
    pub timeout: Duration,
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("org", "Prescrypt", "prescrypt-pharmacy")
}

impl Settings {
    pub fn resolve(overrides: Overrides) -> Result<Self> {
        let config_dir = match overrides.config_dir {
            Some(dir) => dir,
            None => project_dirs()
                .map(|dirs| dirs.config_dir().to_path_buf())
                .ok_or_else(|| Error::Config("no home directory: pass --config-dir".to_owned()))?,
        };
        // The stored token and settings left readable by others (an older client) are tightened.
        if config_dir.is_dir() {
            private::tighten(&config_dir, private::DIR_MODE)?;
            for name in [CONFIG_FILE, TOKEN_FILE] {
                private::tighten(&config_dir.join(name), private::FILE_MODE)?;
            }
        }
        let file = ConfigFile::load(&config_dir)?;
        let data_dir = match overrides.data_dir.or(file.data_dir) {
            Some(dir) => dir,
            None => project_dirs()
                .map(|dirs| dirs.data_dir().to_path_buf())
                .ok_or_else(|| Error::Config("no home directory: pass --data-dir".to_owned()))?,
        };
        let token = match overrides.token {
            Some(token) => Some(token),
            None => {
                let token_file = overrides.token_file.or(file.token_file).or_else(|| {
                    let stored = config_dir.join(TOKEN_FILE);
                    stored.exists().then_some(stored)
                });
                token_file.map(|path| read_token(&path)).transpose()?
            }
        };
        let scanner = overrides
            .scanner
            .or(file.scanner)
            .map(|text| ScannerSource::parse(&text))
            .transpose()?
            .unwrap_or(ScannerSource::Wedge);
        let server = overrides
            .server
            .or(file.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        Ok(Self {
            config_dir,
            server: server.trim_end_matches('/').to_owned(),
            token,
            ods: overrides
                .ods
                .or(file.ods)
                .map(|ods| ods.to_ascii_uppercase()),
            data_dir,
            scanner,
            timeout: Duration::from_secs(
                overrides
                    .timeout_secs
                    .or(file.timeout_secs)
                    .unwrap_or(DEFAULT_TIMEOUT_SECS),
            ),
        })
    }

    pub fn outbox_path(&self) -> PathBuf {
        self.data_dir.join("outbox.sqlite")
    }

    pub fn jwks_path(&self) -> PathBuf {
        self.data_dir.join("jwks.json")
    }

    pub fn prescriber_keys_path(&self) -> PathBuf {
        self.data_dir.join("prescriber-keys.json")
    }

    /// The centre's signed dispense receipts (`ID.jws`), kept owner-only.
    pub fn receipts_dir(&self) -> PathBuf {
        self.data_dir.join("receipts")
    }

    pub fn prescription_cache_dir(&self) -> PathBuf {
        self.data_dir.join("prescriptions")
    }

    /// Creates the data directory and the prescription cache owner-only, and tightens anything an
    /// older client left readable by others in them.
    pub fn ensure_data_dir(&self) -> Result<()> {
        let cache = self.prescription_cache_dir();
        private::create_dir(&self.data_dir)?;
        private::create_dir(&cache)?;
        private::tighten_contents(&self.data_dir)?;
        private::tighten_contents(&cache)
    }
}

/// A warning when `server` is plain `http://` to a host other than loopback: the bearer token and
/// every prescription would cross the network unencrypted.
pub fn cleartext_warning(server: &str) -> Option<String> {
    let url = reqwest::Url::parse(server).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let host = url.host_str()?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| {
        format!(
            "the centre {server} is reached over plain http: the token and patient data are not \
             encrypted on the way. Use https:// (http is only for the centre on this machine)"
        )
    })
}

/// Reads a bearer token from a file: the first non-empty line, trimmed.
pub fn read_token(path: &Path) -> Result<String> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::Config(format!("{}: no token in the file", path.display())))
}

/// Stores a token in the config directory (owner-only from the first byte) and records it in
/// `config.toml`.
pub fn store_token(config_dir: &Path, token: &str, mut file: ConfigFile) -> Result<PathBuf> {
    private::create_dir(config_dir)?;
    let path = config_dir.join(TOKEN_FILE);
    private::write(&path, format!("{token}\n").as_bytes())?;
    file.token_file = Some(path.clone());
    file.save(config_dir)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        ConfigFile {
            server: Some("http://file:1/".into()),
            ods: Some("fa565".into()),
            data_dir: Some(dir.path().join("data")),
            scanner: Some("serial:/dev/ttyS9".into()),
            ..ConfigFile::default()
        }
        .save(dir.path())
        .unwrap();
        let from_file = Settings::resolve(Overrides {
            config_dir: Some(dir.path().into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(from_file.server, "http://file:1");
        assert_eq!(from_file.ods.as_deref(), Some("FA565"));
        assert_eq!(
            from_file.scanner,
            ScannerSource::Serial("/dev/ttyS9".into())
        );
        assert_eq!(from_file.timeout, Duration::from_secs(DEFAULT_TIMEOUT_SECS));
        assert!(from_file.token.is_none());

        let flagged = Settings::resolve(Overrides {
            config_dir: Some(dir.path().into()),
            server: Some("http://flag:2".into()),
            token: Some("T".into()),
            scanner: Some("stdin".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(flagged.server, "http://flag:2");
        assert_eq!(flagged.token.as_deref(), Some("T"));
        assert_eq!(flagged.scanner, ScannerSource::Wedge);
    }

    #[test]
    fn login_stores_the_token_and_later_runs_find_it() {
        let dir = tempfile::tempdir().unwrap();
        store_token(dir.path(), "abc.def.ghi", ConfigFile::default()).unwrap();
        let settings = Settings::resolve(Overrides {
            config_dir: Some(dir.path().into()),
            data_dir: Some(dir.path().join("d")),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(settings.token.as_deref(), Some("abc.def.ghi"));
    }

    #[test]
    fn bad_scanner_setting_is_a_config_error() {
        assert!(ScannerSource::parse("serial:").is_err());
        assert!(ScannerSource::parse("usb").is_err());
    }
}
