//! The signed dispensing token carried by the printed Data Matrix (format: `TOKEN.md`).
//!
//! `RX1` + the 17 data characters of the prescription ID + an 8-character key id + the Ed25519
//! signature in unpadded RFC 4648 base32: 131 characters of `[0-9A-Z]`, so a keyboard-wedge scanner
//! types it the same on every layout, and C40 packs it into a 40×40 Data Matrix. The check
//! character is left out because it may be `+`; it is recomputed on parsing.

use core::fmt;

use data_encoding::BASE32_NOPAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::id::{DATA_LEN, PrescriptionId};

/// The token's leading characters: magic `RX` and format version `1`.
pub const PREFIX: &[u8; 3] = b"RX1";
/// Length of a key id.
pub const KEY_ID_LEN: usize = 8;
/// Length of the base32 signature (64 bytes, unpadded).
pub const SIGNATURE_TEXT_LEN: usize = 103;
/// The signed part: prefix, ID data characters and key id.
pub const SIGNED_LEN: usize = PREFIX.len() + DATA_LEN + KEY_ID_LEN;
/// Exact length of every version-1 token.
pub const TOKEN_LEN: usize = SIGNED_LEN + SIGNATURE_TEXT_LEN;
/// Domain separation: a token signature can never be mistaken for a signature over anything else.
pub const SIGNATURE_CONTEXT: &[u8] = b"prescrypt-token\n";

/// Why a text is not a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not exactly [`TOKEN_LEN`] characters.
    Length { found: usize },
    /// A character outside `[0-9A-Z]`.
    Character { position: usize },
    /// Does not start with `RX`.
    Magic,
    /// Starts with `RX` but a version this software does not know.
    Version,
    /// The prescription ID part is not valid.
    PrescriptionId,
    /// The signature part is not valid base32 for 64 bytes.
    SignatureEncoding,
    /// The token's key id is not the key it was checked against.
    KeyMismatch,
    /// The signature does not verify.
    Signature,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { found } => {
                write!(
                    f,
                    "a token has exactly {TOKEN_LEN} characters, this has {found}"
                )
            }
            Self::Character { position } => {
                write!(
                    f,
                    "character {} of the token is not 0-9 or A-Z",
                    position + 1
                )
            }
            Self::Magic => f.write_str("not a Prescrypt token (it must start with RX)"),
            Self::Version => f.write_str("unknown token version"),
            Self::PrescriptionId => f.write_str("the token's prescription ID is malformed"),
            Self::SignatureEncoding => f.write_str("the token's signature is not valid base32"),
            Self::KeyMismatch => f.write_str("the token was signed with a different key"),
            Self::Signature => f.write_str("the token's signature does not verify"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TokenError {}

/// A signing key's short id: 8 characters of `[A-Z2-7]`, the start of the base32 SHA-256 of the
/// public key. It names the key in the token and, as `kid`, in the published JWKS.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// The key id of an Ed25519 public key.
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let mut encoded = [0u8; 56];
        BASE32_NOPAD.encode_mut(&digest[..], &mut encoded[..BASE32_NOPAD.encode_len(32)]);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&encoded[..KEY_ID_LEN]);
        Self(id)
    }

    /// Parses a key id (exactly 8 characters of `[0-9A-Z]`).
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; KEY_ID_LEN] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| is_token_char(*b))
            .then_some(Self(bytes))
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.as_str())
    }
}

fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_digit() || byte.is_ascii_uppercase()
}

/// A parsed token. Parsing checks the format only; [`Token::verify`] checks the signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Token {
    prescription_id: PrescriptionId,
    key_id: KeyId,
    signature: Signature,
}

/// The printable text of a token: always [`TOKEN_LEN`] characters of `[0-9A-Z]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenText([u8; TOKEN_LEN]);

impl TokenText {
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8; TOKEN_LEN] {
        &self.0
    }
}

impl fmt::Display for TokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenText({})", self.as_str())
    }
}

/// The bytes a token signature covers: the context, then the token's first [`SIGNED_LEN`] characters.
fn signed_message(header: &[u8; SIGNED_LEN]) -> [u8; SIGNATURE_CONTEXT.len() + SIGNED_LEN] {
    let mut message = [0u8; SIGNATURE_CONTEXT.len() + SIGNED_LEN];
    message[..SIGNATURE_CONTEXT.len()].copy_from_slice(SIGNATURE_CONTEXT);
    message[SIGNATURE_CONTEXT.len()..].copy_from_slice(header);
    message
}

impl Token {
    /// Issues a token for `prescription_id`, signed with `key`.
    pub fn sign(prescription_id: PrescriptionId, key: &SigningKey) -> Self {
        let key_id = KeyId::of(&key.verifying_key());
        let header = Self::header(&prescription_id, &key_id);
        let signature = key.sign(&signed_message(&header));
        Self {
            prescription_id,
            key_id,
            signature,
        }
    }

    fn header(prescription_id: &PrescriptionId, key_id: &KeyId) -> [u8; SIGNED_LEN] {
        let mut header = [0u8; SIGNED_LEN];
        header[..PREFIX.len()].copy_from_slice(PREFIX);
        header[PREFIX.len()..PREFIX.len() + DATA_LEN].copy_from_slice(prescription_id.data());
        header[PREFIX.len() + DATA_LEN..].copy_from_slice(&key_id.0);
        header
    }

    /// Parses a token's text strictly: exact length, alphabet, magic and version, a well-formed ID
    /// and signature encoding. Surrounding whitespace is the caller's to strip.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        Self::parse_bytes(text.as_bytes())
    }

    /// Like [`parse`](Self::parse), for raw scanner bytes.
    pub fn parse_bytes(text: &[u8]) -> Result<Self, TokenError> {
        if text.len() != TOKEN_LEN {
            return Err(TokenError::Length { found: text.len() });
        }
        if let Some(position) = text.iter().position(|b| !is_token_char(*b)) {
            return Err(TokenError::Character { position });
        }
        if &text[..2] != b"RX" {
            return Err(TokenError::Magic);
        }
        if text[2] != PREFIX[2] {
            return Err(TokenError::Version);
        }
        let data: &[u8; DATA_LEN] = text[PREFIX.len()..PREFIX.len() + DATA_LEN]
            .try_into()
            .map_err(|_| TokenError::PrescriptionId)?;
        let prescription_id = PrescriptionId::from_data(data);
        let key_id = KeyId(
            text[PREFIX.len() + DATA_LEN..SIGNED_LEN]
                .try_into()
                .map_err(|_| TokenError::Length { found: text.len() })?,
        );
        let mut signature = [0u8; 64];
        let written = BASE32_NOPAD
            .decode_mut(&text[SIGNED_LEN..], &mut signature)
            .map_err(|_| TokenError::SignatureEncoding)?;
        if written != signature.len() {
            return Err(TokenError::SignatureEncoding);
        }
        // Non-canonical base32 (stray bits in the last character) would give two texts per token.
        let mut canonical = [0u8; SIGNATURE_TEXT_LEN];
        BASE32_NOPAD.encode_mut(&signature, &mut canonical);
        if canonical[..] != text[SIGNED_LEN..] {
            return Err(TokenError::SignatureEncoding);
        }
        Ok(Self {
            prescription_id,
            key_id,
            signature: Signature::from_bytes(&signature),
        })
    }

    /// Checks the signature against `key`, which must be the key named by [`key_id`](Self::key_id).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), TokenError> {
        if KeyId::of(key) != self.key_id {
            return Err(TokenError::KeyMismatch);
        }
        let header = Self::header(&self.prescription_id, &self.key_id);
        key.verify_strict(&signed_message(&header), &self.signature)
            .map_err(|_| TokenError::Signature)
    }

    pub fn prescription_id(&self) -> PrescriptionId {
        self.prescription_id
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The printable text.
    pub fn text(&self) -> TokenText {
        let mut out = [0u8; TOKEN_LEN];
        out[..SIGNED_LEN].copy_from_slice(&Self::header(&self.prescription_id, &self.key_id));
        BASE32_NOPAD.encode_mut(&self.signature.to_bytes(), &mut out[SIGNED_LEN..]);
        TokenText(out)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("prescription_id", &self.prescription_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn id() -> PrescriptionId {
        PrescriptionId::parse("E7ZG38-ZBACYU-V38SR+").unwrap()
    }

    #[test]
    fn sign_parse_verify_round_trip() {
        let token = Token::sign(id(), &key(1));
        let text = token.text();
        assert_eq!(text.as_str().len(), TOKEN_LEN);
        assert!(text.as_str().bytes().all(is_token_char));
        let parsed = Token::parse(text.as_str()).unwrap();
        assert_eq!(parsed, token);
        assert_eq!(parsed.prescription_id(), id());
        parsed.verify(&key(1).verifying_key()).unwrap();
    }

    #[test]
    fn wrong_key_is_a_key_mismatch_and_forged_key_id_fails_signature() {
        let token = Token::sign(id(), &key(1));
        assert_eq!(
            token.verify(&key(2).verifying_key()),
            Err(TokenError::KeyMismatch)
        );
        // Re-label the token with key 2's id: the signature no longer covers it.
        let mut text = *token.text().as_bytes();
        text[PREFIX.len() + DATA_LEN..SIGNED_LEN]
            .copy_from_slice(&KeyId::of(&key(2).verifying_key()).0);
        let relabelled = Token::parse_bytes(&text).unwrap();
        assert_eq!(
            relabelled.verify(&key(2).verifying_key()),
            Err(TokenError::Signature)
        );
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let token = Token::sign(id(), &key(7));
        let text = *token.text().as_bytes();
        let verifying = key(7).verifying_key();
        for position in 0..TOKEN_LEN {
            for replacement in [b'0', b'A', b'Z', b'7'] {
                if text[position] == replacement {
                    continue;
                }
                let mut changed = text;
                changed[position] = replacement;
                let outcome = Token::parse_bytes(&changed).and_then(|t| t.verify(&verifying));
                assert!(
                    outcome.is_err(),
                    "position {position} → {}",
                    replacement as char
                );
            }
        }
    }

    #[test]
    fn strict_parser_errors() {
        let good = *Token::sign(id(), &key(3)).text().as_bytes();
        assert_eq!(Token::parse(""), Err(TokenError::Length { found: 0 }));
        assert_eq!(
            Token::parse_bytes(&good[..TOKEN_LEN - 1]),
            Err(TokenError::Length { found: 130 })
        );
        let mut lower = good;
        lower[5] = lower[5].to_ascii_lowercase();
        if lower[5] != good[5] {
            assert_eq!(
                Token::parse_bytes(&lower),
                Err(TokenError::Character { position: 5 })
            );
        }
        let mut magic = good;
        magic[0] = b'Q';
        assert_eq!(Token::parse_bytes(&magic), Err(TokenError::Magic));
        let mut version = good;
        version[2] = b'2';
        assert_eq!(Token::parse_bytes(&version), Err(TokenError::Version));
        let mut sig = good;
        sig[SIGNED_LEN] = b'1'; // '1' is not in the base32 alphabet
        assert_eq!(Token::parse_bytes(&sig), Err(TokenError::SignatureEncoding));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Token::parse_bytes(&bytes);
        }

        #[test]
        fn arbitrary_alphabet_text_of_right_length_never_panics(text in "[0-9A-Z]{131}") {
            let _ = Token::parse(&text);
        }
    }
}
