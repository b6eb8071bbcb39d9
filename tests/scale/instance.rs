//! `prescrypt serve` as the scale tests run it: the kit's [`Service`] on a given database and
//! keys directory (its log next to the keys), the expiry sweep out of the way.

use std::path::Path;

use prescrypt_testkit::{Service, prescrypt_bin};

/// Starts `prescrypt serve` on port 0 with `extra` flags; its log is `NAME.log` beside `keys_dir`.
pub fn start(name: &str, database_url: &str, keys_dir: &Path, extra: &[&str]) -> Service {
    Service::builder(prescrypt_bin!())
        .dir(keys_dir.parent().unwrap_or(keys_dir))
        .name(name)
        .database_url(database_url)
        .keys_dir(keys_dir)
        .flags(["--sweep-interval", "1h"])
        .flags(extra)
        .start()
}
