//! Signed download links: HMAC-SHA256 over the path and the expiry, checked in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs and verifies `/download/{file_sid}?expires=<unix>&signature=<hex>` links.
#[derive(Clone)]
pub struct LinkSigner {
    /// Shared: the signer is cloned with the server state on every request.
    key: std::sync::Arc<[u8]>,
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    Expired,
    BadSignature,
}

impl LinkSigner {
    /// A signer with a secret key (kept in the data dir).
    pub fn new(key: Vec<u8>) -> Self {
        LinkSigner { key: key.into() }
    }

    fn mac(&self, file_sid: &str, expires: i64) -> HmacSha256 {
        // new_from_slice accepts keys of any length for HMAC.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(format!("/download/{file_sid}\n{expires}").as_bytes());
        mac
    }

    /// The hex signature of a link to `file_sid` valid until `expires` (Unix seconds).
    pub fn sign(&self, file_sid: &str, expires: i64) -> String {
        hex::encode(self.mac(file_sid, expires).finalize().into_bytes())
    }

    /// Checks a link: signature first (constant time), then expiry against `now` (Unix seconds).
    pub fn verify(
        &self,
        file_sid: &str,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), LinkError> {
        let sig = hex::decode(signature).map_err(|_| LinkError::BadSignature)?;
        self.mac(file_sid, expires)
            .verify_slice(&sig)
            .map_err(|_| LinkError::BadSignature)?;
        if now >= expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_tampered_and_expired() {
        let s = LinkSigner::new(b"secret".to_vec());
        let sig = s.sign("abc", 1000);
        assert_eq!(s.verify("abc", 1000, &sig, 999), Ok(()));
        assert_eq!(s.verify("abc", 1000, &sig, 1000), Err(LinkError::Expired));
        assert_eq!(
            s.verify("abd", 1000, &sig, 999),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            s.verify("abc", 1001, &sig, 999),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            s.verify("abc", 1000, "zz", 999),
            Err(LinkError::BadSignature)
        );
    }
}
