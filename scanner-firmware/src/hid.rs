//! USB HID output: Point-of-Sale Scanned Data Reports (usage page 0x8C) and keyboard-wedge
//! boot reports.

use crate::aim::AimId;

/// Report ID of the Scanned Data Report.
pub const POS_REPORT_ID: u8 = 0x02;
/// Size of a Scanned Data Report including its ID.
pub const POS_REPORT_LEN: usize = 64;
/// Decoded data bytes per report.
pub const POS_CHUNK: usize = 56;
/// Byte 63 bit 0: more reports of this label follow.
pub const POS_CONTINUED: u8 = 0x01;

/// Size of a boot keyboard input report.
pub const KEY_REPORT_LEN: usize = 8;
/// Left Shift in the modifier byte.
pub const LEFT_SHIFT: u8 = 0x02;
/// Usage of the Enter key.
pub const KEY_ENTER: u8 = 0x28;

/// The Scanned Data Reports of one label: each repeats the AIM id and carries up to 56 bytes.
#[derive(Debug, Clone)]
pub struct PosReports<'a> {
    aim: AimId,
    data: &'a [u8],
    offset: usize,
    done: bool,
}

/// Splits a label into Scanned Data Reports.
pub fn pos_reports(aim: AimId, data: &[u8]) -> PosReports<'_> {
    PosReports {
        aim,
        data,
        offset: 0,
        done: false,
    }
}

impl Iterator for PosReports<'_> {
    type Item = [u8; POS_REPORT_LEN];

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let chunk = &self.data[self.offset..(self.offset + POS_CHUNK).min(self.data.len())];
        let mut report = [0u8; POS_REPORT_LEN];
        report[0] = POS_REPORT_ID;
        report[1] = chunk.len() as u8;
        report[2..5].copy_from_slice(self.aim.as_bytes());
        report[5..5 + chunk.len()].copy_from_slice(chunk);
        self.offset += chunk.len();
        self.done = self.offset >= self.data.len();
        if !self.done {
            report[63] = POS_CONTINUED;
        }
        Some(report)
    }
}

/// Reassembles a label from Scanned Data Reports (the host's view; used by tests and the
/// simulator). Returns the AIM id and data once the last report arrived.
#[derive(Debug, Clone, Default)]
pub struct PosAssembler {
    aim: Option<AimId>,
    data: heapless::Vec<u8, 512>,
}

impl PosAssembler {
    /// Takes one report; `Err` for a malformed report or a label too long to keep.
    pub fn push(
        &mut self,
        report: &[u8],
    ) -> Result<Option<(AimId, heapless::Vec<u8, 512>)>, crate::Error> {
        if report.len() != POS_REPORT_LEN || report[0] != POS_REPORT_ID {
            return Err(crate::Error::Malformed);
        }
        let count = usize::from(report[1]);
        let aim = AimId::parse(&report[2..5]).ok_or(crate::Error::Malformed)?;
        if count > POS_CHUNK || self.aim.is_some_and(|a| a != aim) {
            *self = Self::default();
            return Err(crate::Error::Malformed);
        }
        self.aim = Some(aim);
        if self.data.extend_from_slice(&report[5..5 + count]).is_err() {
            *self = Self::default();
            return Err(crate::Error::MessageTooLong);
        }
        if report[63] & POS_CONTINUED != 0 {
            return Ok(None);
        }
        let data = core::mem::take(&mut self.data);
        self.aim = None;
        Ok(Some((aim, data)))
    }
}

/// Why a label cannot go out over a keyboard wedge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotLayoutSafe {
    /// Position of the first byte outside `[0-9A-Z]`.
    pub position: usize,
}

/// The modifier and usage for a layout-safe character (`0-9`, `A-Z`).
pub fn key_for(byte: u8) -> Option<(u8, u8)> {
    match byte {
        b'A'..=b'Z' => Some((LEFT_SHIFT, 4 + (byte - b'A'))),
        b'1'..=b'9' => Some((0, 30 + (byte - b'1'))),
        b'0' => Some((0, 39)),
        _ => None,
    }
}

/// Boot keyboard reports for a label: key-down and all-keys-up per character, then Enter.
#[derive(Debug, Clone)]
pub struct WedgeReports<'a> {
    data: &'a [u8],
    step: usize,
}

/// The wedge reports for `data`, which must be `[0-9A-Z]` only.
pub fn wedge_reports(data: &[u8]) -> Result<WedgeReports<'_>, NotLayoutSafe> {
    if let Some(position) = data.iter().position(|&b| key_for(b).is_none()) {
        return Err(NotLayoutSafe { position });
    }
    Ok(WedgeReports { data, step: 0 })
}

impl Iterator for WedgeReports<'_> {
    type Item = [u8; KEY_REPORT_LEN];

    fn next(&mut self) -> Option<Self::Item> {
        let character = self.step / 2;
        if character > self.data.len() {
            return None;
        }
        let mut report = [0u8; KEY_REPORT_LEN];
        if self.step % 2 == 0 {
            let (modifier, key) = match self.data.get(character) {
                Some(&byte) => key_for(byte).unwrap_or((0, 0)),
                None => (0, KEY_ENTER),
            };
            report[0] = modifier;
            report[2] = key;
        }
        self.step += 1;
        Some(report)
    }
}

/// Which HID reports a label becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HidKind {
    Pos,
    Wedge,
}

/// The `index`-th report of a label in the given HID mode, written into `out` (returns its
/// length), or `None` past the last one. Lets a poll loop resume a label report by report.
pub fn nth_report(
    kind: HidKind,
    aim: AimId,
    data: &[u8],
    index: usize,
    out: &mut [u8; 64],
) -> Option<usize> {
    match kind {
        HidKind::Pos => {
            let report = pos_reports(aim, data).nth(index)?;
            out.copy_from_slice(&report);
            Some(POS_REPORT_LEN)
        }
        HidKind::Wedge => {
            let report = wedge_reports(data).ok()?.nth(index)?;
            out[..KEY_REPORT_LEN].copy_from_slice(&report);
            Some(KEY_REPORT_LEN)
        }
    }
}
