//! Barcodes in image files (scanner images, phone photos), read with the barcode crate's decoder.

use std::path::Path;

use crate::error::{Error, Result};
use crate::scan::ScannedCode;

pub fn decode_file(path: &Path) -> Result<Vec<ScannedCode>> {
    Err(Error::Other(format!(
        "{}: image decoding not wired yet",
        path.display()
    )))
}
