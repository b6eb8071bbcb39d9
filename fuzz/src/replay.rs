//! Replays committed fuzz inputs through a check on stable `cargo test`: every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` (crash reproducers, kept forever).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// The committed inputs of one fuzz target, sorted by path.
pub fn inputs(fuzz_dir: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir.join(kind).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            if path.is_file() {
                let data = std::fs::read(&path).expect("a readable corpus file");
                files.push((path, data));
            }
        }
    }
    files.sort();
    files
}

/// Runs `check` on every input of `target`; fails naming each input that panics. Also fails
/// when the target has no committed corpus at all (it was lost, not passed).
pub fn replay(fuzz_dir: &Path, target: &str, check: impl Fn(&[u8])) {
    let inputs = inputs(fuzz_dir, target);
    assert!(
        !inputs.is_empty(),
        "no committed corpus for {target} under {}",
        fuzz_dir.display()
    );
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(_, data)| catch_unwind(AssertUnwindSafe(|| check(data))).is_err())
        .map(|(path, data)| format!("{} ({} bytes)", path.display(), data.len()))
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs panic: {failed:#?}",
        failed.len(),
        inputs.len()
    );
}
