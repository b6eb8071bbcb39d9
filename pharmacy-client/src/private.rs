//! The client's files hold patient data and credentials, so every directory it creates is 0700 and
//! every file 0600 from the first byte (created with that mode, never chmod-ed afterwards).
//!
//! A directory or file found with group or other permissions (left by an older client or a copy)
//! is tightened to owner-only when the client next touches it, rather than refused: the pharmacist
//! can do nothing better with it, and refusing would stop the counter.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

/// Mode of every directory the client creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the client creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and any missing parents) owner-only; tightens it if it already exists.
pub fn create_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    tighten(dir, DIR_MODE)
}

/// Removes group and other permissions from an existing file or directory (not through a symlink).
pub fn tighten(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = match fs::symlink_metadata(path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(path, e)),
        };
        if metadata.file_type().is_symlink() || metadata.permissions().mode() & 0o077 == 0 {
            return Ok(());
        }
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Tightens every entry directly inside `dir` (files 0600, directories 0700).
pub fn tighten_contents(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if kind.is_dir() {
            tighten(&entry.path(), DIR_MODE)?;
        } else if kind.is_file() {
            tighten(&entry.path(), FILE_MODE)?;
        }
    }
    Ok(())
}

/// Creates an empty file owner-only if it does not exist (tightens it if it does); for files
/// another library then opens, such as the outbox database.
pub fn create_file(path: &Path) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options.open(path).map_err(|e| Error::io(path, e))?;
    tighten(path, FILE_MODE)
}

/// Writes `bytes` to `path` through a fresh owner-only temporary file in the same directory and a
/// rename, so readers never see half a file and nobody else ever can read a byte of it.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // `tempfile` creates the file with mode 0600 (O_EXCL, unpredictable name).
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| Error::io(file.path(), e))?;
    file.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
