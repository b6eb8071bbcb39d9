//! The counter scanner over serial (a device path or a pty), speaking the firmware's host link
//! through its own codec and client (`prescrypt_scanner_firmware::host_client`): frames are
//! ACKed, damaged ones NAKed for a resend, retransmitted duplicates dropped.

use std::time::Duration;

use prescrypt_scanner_firmware::host_client::{HostClient, HostError};
use serialport::SerialPort;

use crate::error::{Error, Result};
use crate::scan::{ScannedCode, Source};

/// Line speed for real USB-CDC/RS-232 scanners; a pty ignores it.
pub const BAUD_RATE: u32 = 115_200;
/// Read timeout of one poll of the port (the client treats a timeout as "no bytes yet").
const POLL: Duration = Duration::from_millis(20);

pub struct Scanner {
    device: String,
    client: HostClient<Box<dyn SerialPort>>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

fn link_error(device: &str, error: &HostError) -> Error {
    Error::Other(format!("scanner on {device}: {error}"))
}

impl Scanner {
    pub fn open(device: &str) -> Result<Self> {
        let port = serialport::new(device, BAUD_RATE)
            .timeout(POLL)
            .open()
            .map_err(|e| Error::Other(format!("cannot open scanner {device}: {e}")))?;
        Ok(Self {
            device: device.to_owned(),
            client: HostClient::new(port),
        })
    }

    /// Waits up to `timeout` for the next symbol.
    pub fn next_code(&mut self, timeout: Duration) -> Result<Option<ScannedCode>> {
        let Some(record) = self
            .client
            .next_scan(timeout)
            .map_err(|e| link_error(&self.device, &e))?
        else {
            return Ok(None);
        };
        let text = record
            .text()
            .map(str::to_owned)
            .ok_or_else(|| Error::Rejected("the scanner sent data that is not text".to_owned()))?;
        Ok(Some(ScannedCode {
            source: Source::Serial(self.device.clone()),
            aim: Some(record.aim.to_string()),
            text,
        }))
    }

    /// The firmware's version text (a link check).
    pub fn version(&mut self) -> Result<String> {
        self.client
            .version()
            .map_err(|e| link_error(&self.device, &e))
    }

    /// Every scan from now on; ends after the first link error (reported as the last item).
    pub fn into_codes(mut self) -> impl Iterator<Item = Result<ScannedCode>> {
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed {
                return None;
            }
            loop {
                match self.next_code(Duration::from_secs(3600)) {
                    Ok(Some(code)) => return Some(Ok(code)),
                    Ok(None) => continue,
                    Err(error) => {
                        failed = true;
                        return Some(Err(error));
                    }
                }
            }
        })
    }
}
