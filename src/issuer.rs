//! Where the identity provider's token-signing keys come from, and how they stay current.
//!
//! A JWKS file (`--jwks-file`) or an HTTPS URL (`--jwks-url`) is read at start and again every
//! `--jwks-refresh`; each read replaces the trusted set whole ([`Authenticator::replace_issuer_keys`]),
//! so a key the provider rotates in is trusted and a key it withdraws stops verifying on every
//! instance without a restart. A read that fails or yields an unusable document keeps the last
//! good set. The last good document from a URL is cached in the keys directory so that a
//! restart while the provider is unreachable still starts with its keys.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;

use crate::auth::Authenticator;
use crate::config::ServeConfig;

/// The largest JWKS document read (file or response body): a few keys take a few KiB.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// How long one fetch of the JWKS URL may take, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The cached copy of the last good document from `--jwks-url`, in the keys directory.
pub const CACHE_FILE: &str = "idp-jwks-cache.json";

/// Where the identity provider publishes its keys.
#[derive(Debug, Clone)]
pub enum JwksSource {
    File(PathBuf),
    Url {
        url: reqwest::Url,
        /// Extra roots (`--jwks-ca`) beside the public web PKI.
        roots: Vec<reqwest::Certificate>,
        cache: PathBuf,
    },
}

impl JwksSource {
    /// The source `serve` was configured with, if any; `http://` URLs are refused (the keys
    /// that decide who may do anything must not travel unauthenticated).
    pub fn from_config(config: &ServeConfig) -> anyhow::Result<Option<Self>> {
        if let Some(path) = &config.jwks_file {
            return Ok(Some(Self::File(path.clone())));
        }
        let Some(url) = &config.jwks_url else {
            return Ok(None);
        };
        let url = reqwest::Url::parse(url)
            .map_err(|e| anyhow::anyhow!("--jwks-url {url:?} is not a URL: {e}"))?;
        if url.scheme() != "https" {
            anyhow::bail!("--jwks-url must be an https:// URL, not {}", url.scheme());
        }
        let roots = match &config.jwks_ca {
            None => Vec::new(),
            Some(ca) => {
                let pem = std::fs::read(ca)
                    .map_err(|e| anyhow::anyhow!("--jwks-ca {}: {e}", ca.display()))?;
                reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| anyhow::anyhow!("--jwks-ca {}: {e}", ca.display()))?
            }
        };
        Ok(Some(Self::Url {
            url,
            roots,
            cache: config.keys.keys_dir.join(CACHE_FILE),
        }))
    }

    /// Reads the current document.
    pub async fn read(&self) -> anyhow::Result<JwkSet> {
        let bytes = match self {
            Self::File(path) => read_file_bounded(path)?,
            Self::Url { url, roots, .. } => fetch_bounded(url, roots).await?,
        };
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Reads the document and trusts exactly its keys; on a URL, caches the document.
    pub async fn refresh(&self, auth: &Authenticator, issuer: &str) -> anyhow::Result<usize> {
        let jwks = self.read().await?;
        let count = auth.replace_issuer_keys(&jwks, issuer)?;
        if let Self::Url { cache, .. } = self
            && let Err(error) = write_cache(cache, &jwks)
        {
            tracing::warn!(%error, path = %cache.display(), "could not cache the JWKS");
        }
        Ok(count)
    }

    /// The first read, at start: a URL that cannot be reached falls back to the cached copy.
    pub async fn load_at_start(&self, auth: &Authenticator, issuer: &str) -> anyhow::Result<()> {
        match (self.refresh(auth, issuer).await, self) {
            (Ok(count), _) => {
                tracing::info!(count, source = %self, "trusting the identity provider's keys");
                Ok(())
            }
            (Err(error), Self::Url { cache, .. }) if cache.exists() => {
                let jwks: JwkSet = serde_json::from_slice(&read_file_bounded(cache)?)?;
                let count = auth.replace_issuer_keys(&jwks, issuer)?;
                tracing::warn!(
                    %error, count, cache = %cache.display(),
                    "the identity provider's JWKS is unreachable; trusting its cached keys"
                );
                Ok(())
            }
            (Err(error), _) => Err(error.context(format!("reading the JWKS from {self}"))),
        }
    }

    /// Re-reads the document every `interval` until the task is aborted.
    pub async fn refresh_periodically(
        self,
        auth: actix_web::web::Data<Authenticator>,
        issuer: String,
        interval: Duration,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut trusted = auth.issuer_kids();
        loop {
            ticker.tick().await;
            match self.refresh(&auth, &issuer).await {
                Ok(_) => {
                    metrics::counter!("prescrypt_jwks_refreshes_total").increment(1);
                    let now = auth.issuer_kids();
                    if now != trusted {
                        tracing::info!(kids = ?now, was = ?trusted, "the identity provider's keys changed");
                        trusted = now;
                    }
                }
                Err(error) => {
                    metrics::counter!("prescrypt_jwks_refresh_failures_total").increment(1);
                    tracing::warn!(%error, source = %self, "JWKS refresh failed; keeping the last good keys");
                }
            }
        }
    }
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Url { url, .. } => write!(f, "{url}"),
        }
    }
}

fn read_file_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_JWKS_BYTES {
        anyhow::bail!("{} is larger than {MAX_JWKS_BYTES} bytes", path.display());
    }
    Ok(bytes)
}

async fn fetch_bounded(
    url: &reqwest::Url,
    roots: &[reqwest::Certificate],
) -> anyhow::Result<Vec<u8>> {
    // A client per fetch (once a refresh interval): no pooled connection outlives the runtime
    // that opened it (the first read runs on its own runtime, before the server's starts).
    let client = roots
        .iter()
        .fold(
            reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .https_only(true),
            |builder, root| builder.add_root_certificate(root.clone()),
        )
        .build()?;
    let mut response = client.get(url.clone()).send().await?.error_for_status()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > MAX_JWKS_BYTES {
            anyhow::bail!("the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes");
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn write_cache(path: &Path, jwks: &JwkSet) -> anyhow::Result<()> {
    // Written beside and renamed over, so a crash never leaves half a document to start from.
    let partial = path.with_extension("json.partial");
    let mut file = std::fs::File::create(&partial)?;
    serde_json::to_writer(&mut file, jwks)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)?;
    Ok(())
}
