//! Sealing secrets kept at rest (an external container's credentials): AES-256-GCM with a
//! random nonce per seal, bound to the object it belongs to (associated data), so a sealed
//! value copied onto another container does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

/// Layout version of a sealed value: `[VERSION, nonce (12), ciphertext + tag]`.
const VERSION: u8 = 1;
const NONCE: usize = 12;

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key is not 32 bytes.
    #[error("the sealing key must be 32 bytes")]
    BadKey,
    /// The value was not sealed by this key for this object, or was altered.
    #[error("a sealed secret does not open with this deployment's key")]
    Unreadable,
}

/// Seals and opens secrets with the deployment's key (kept in the metadata store's secrets).
#[derive(Clone)]
pub struct Sealer {
    cipher: std::sync::Arc<Aes256Gcm>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// A sealer with a 32-byte key.
    pub fn new(key: &[u8]) -> Result<Self, SealError> {
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| SealError::BadKey)?;
        Ok(Sealer {
            cipher: std::sync::Arc::new(cipher),
        })
    }

    /// `plaintext` sealed for the object `owner` (e.g. a container sid).
    pub fn seal(&self, owner: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SealError::Unreadable)?;
        let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plaintext of a value sealed for `owner`.
    pub fn open(&self, owner: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + NONCE || sealed[0] != VERSION {
            return Err(SealError::Unreadable);
        }
        let (nonce, body) = sealed[1..].split_at(NONCE);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SealError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_hide_the_secret_and_open_only_for_their_owner_and_key() -> Result<(), SealError> {
        let sealer = Sealer::new(&[7u8; 32])?;
        let a = sealer.seal("container-1", b"wJalrXUtnFEMI/K7MDENG")?;
        let b = sealer.seal("container-1", b"wJalrXUtnFEMI/K7MDENG")?;
        assert_ne!(a, b, "a fresh nonce per seal");
        assert!(!a.windows(5).any(|w| w == b"wJalr"), "no plaintext at rest");
        assert_eq!(sealer.open("container-1", &a)?, b"wJalrXUtnFEMI/K7MDENG");
        assert_eq!(sealer.open("container-2", &a), Err(SealError::Unreadable));
        let other = Sealer::new(&[8u8; 32])?;
        assert_eq!(other.open("container-1", &a), Err(SealError::Unreadable));
        let mut altered = a.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(
            sealer.open("container-1", &altered),
            Err(SealError::Unreadable)
        );
        assert_eq!(sealer.open("container-1", b""), Err(SealError::Unreadable));
        assert!(Sealer::new(&[0u8; 16]).is_err());
        Ok(())
    }
}
