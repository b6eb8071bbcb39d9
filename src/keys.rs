//! Key files in the keys directory: the service's Ed25519 signing keys (rotatable; every key ever
//! used keeps verifying and stays in the JWKS) and the local development issuer key that
//! `prescrypt token` mints bearer tokens with. Private keys are PKCS#8 DER files of mode 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use prescrypt_barcode::KeyId;

const SIGNING_DIR: &str = "signing";
const ISSUER_FILE: &str = "dev-issuer.pk8";

/// One Ed25519 key with what the JWT library needs.
pub struct NamedKey {
    pub kid: KeyId,
    pub signing: SigningKey,
    pub encoding: EncodingKey,
}

impl std::fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl NamedKey {
    fn from_pkcs8(der: &[u8]) -> anyhow::Result<Self> {
        let signing = SigningKey::from_pkcs8_der(der)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {e}"))?;
        Ok(Self {
            kid: KeyId::of(&signing.verifying_key()),
            // jsonwebtoken wants the 48-byte PKCS#8 v1 form (no embedded public key).
            encoding: EncodingKey::from_ed_der(pkcs8_v1(&signing)?.as_bytes()),
            signing,
        })
    }

    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_ed_der(self.signing.verifying_key().as_bytes())
    }

    pub fn jwk(&self) -> anyhow::Result<Jwk> {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, Algorithm::EdDSA)?;
        jwk.common.key_id = Some(self.kid.as_str().to_owned());
        Ok(jwk)
    }
}

/// The service's signing keys, oldest first; the last one signs.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<NamedKey>,
}

impl KeyRing {
    /// Loads the signing keys, creating the first one if there is none.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let mut keys = load_signing_keys(dir)?;
        if keys.is_empty() {
            rotate(dir)?;
            keys = load_signing_keys(dir)?;
        }
        Ok(Self { keys })
    }

    /// Loads the signing keys without creating one (verifying tools).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let keys = load_signing_keys(dir)?;
        if keys.is_empty() {
            anyhow::bail!("{}: no signing keys", dir.join(SIGNING_DIR).display());
        }
        Ok(Self { keys })
    }

    pub fn active(&self) -> &NamedKey {
        // load_or_create guarantees at least one key.
        &self.keys[self.keys.len() - 1]
    }

    pub fn find(&self, kid: &str) -> Option<&NamedKey> {
        self.keys.iter().find(|k| k.kid.as_str() == kid)
    }

    pub fn jwks(&self) -> anyhow::Result<JwkSet> {
        Ok(JwkSet {
            keys: self
                .keys
                .iter()
                .map(NamedKey::jwk)
                .collect::<Result<_, _>>()?,
        })
    }
}

fn load_signing_keys(dir: &Path) -> anyhow::Result<Vec<NamedKey>> {
    let signing_dir = dir.join(SIGNING_DIR);
    if !signing_dir.exists() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = fs::read_dir(&signing_dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "pk8"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            NamedKey::from_pkcs8(&read_private_key(path)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        })
        .collect()
}

/// Adds a new active signing key; the old ones stay for verification. Returns the new key id.
pub fn rotate(dir: &Path) -> anyhow::Result<KeyId> {
    let signing_dir = dir.join(SIGNING_DIR);
    create_private_dir(&signing_dir)?;
    let next = load_signing_keys(dir)?.len() + 1;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let kid = KeyId::of(&key.verifying_key());
    write_private_key(&signing_dir.join(format!("{next:06}-{kid}.pk8")), &key)?;
    Ok(kid)
}

/// The development issuer key, created on first use.
pub fn dev_issuer(dir: &Path) -> anyhow::Result<NamedKey> {
    let path = dir.join(ISSUER_FILE);
    if !path.exists() {
        create_private_dir(dir)?;
        write_private_key(&path, &SigningKey::generate(&mut rand::rngs::OsRng))?;
    }
    NamedKey::from_pkcs8(&read_private_key(&path)?)
}

/// Reads a private key file, refusing one that anybody but its owner may read or write: a key
/// that was exposed must be replaced, not silently used (SECURITY.md).
pub(crate) fn read_private_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "{}: private key file has mode {mode:o}, open to group or others; \
             `chmod 600` it (and rotate the key if it may have been read)",
            path.display()
        );
    }
    if let Some(dir) = path.parent()
        && let Ok(meta) = fs::metadata(dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "keys directory is open to group or others; `chmod 700` it"
        );
    }
    Ok(fs::read(path)?)
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    Ok(())
}

fn pkcs8_v1(key: &SigningKey) -> anyhow::Result<ed25519_dalek::pkcs8::spki::der::SecretDocument> {
    KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_der()
    .map_err(|e| anyhow::anyhow!("encoding PKCS#8: {e}"))
}

/// Writes `key` as PKCS#8 to a new file, private (0600) from its creation; refuses an existing
/// file.
pub(crate) fn write_private_key(path: &Path, key: &SigningKey) -> anyhow::Result<()> {
    let der = pkcs8_v1(key)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(der.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_old_keys_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyRing::load_or_create(dir.path()).unwrap();
        let first_kid = first.active().kid;
        let second_kid = rotate(dir.path()).unwrap();
        let ring = KeyRing::load_or_create(dir.path()).unwrap();
        assert_eq!(ring.active().kid, second_kid);
        assert!(ring.find(first_kid.as_str()).is_some());
        assert_eq!(ring.jwks().unwrap().keys.len(), 2);
        for entry in fs::read_dir(dir.path().join(SIGNING_DIR)).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let issuer = dev_issuer(dir.path()).unwrap();
        assert_eq!(dev_issuer(dir.path()).unwrap().kid, issuer.kid);
    }
}
