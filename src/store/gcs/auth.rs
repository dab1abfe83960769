//! OAuth2 access tokens for a Google service account: a JWT signed RS256 with the account's key
//! is exchanged at the key's `token_uri` (RFC 7523 JWT-bearer grant), and the token is kept
//! until shortly before it expires.

use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use tokio::sync::Mutex;

use crate::store::blob::BlobError;

/// Google's token endpoint, for keys that do not name one.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Objects read, written, listed and deleted: nothing more is asked for.
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
/// How long an assertion is valid (Google's maximum).
const ASSERTION_LIFETIME: u64 = 3600;
/// A token is renewed this long before it expires, so no request carries a stale one.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// The fields of a service-account key file we use.
#[derive(serde::Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// A Google service account: who it is, where its tokens come from, and its signing key.
pub struct ServiceAccount {
    email: String,
    key_id: Option<String>,
    token_uri: String,
    key: RsaKeyPair,
}

impl std::fmt::Debug for ServiceAccount {
    // The key stays out of every log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("email", &self.email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

/// A malformed key: a settings error naming the field (never quoting the key).
fn bad_key(why: &str) -> BlobError {
    BlobError::Config(format!("service_account_json: {why}"))
}

impl ServiceAccount {
    /// Parses a service-account key file (JSON, as Google issues it).
    pub fn from_json(json: &str) -> Result<Self, BlobError> {
        let file: KeyFile = serde_json::from_str(json).map_err(|e| {
            // serde's message names the missing field or the position, not the content.
            bad_key(&format!("not a service account key ({e})"))
        })?;
        if file.client_email.trim().is_empty() {
            return Err(bad_key("client_email is empty"));
        }
        let token_uri = file
            .token_uri
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_string());
        let parsed =
            reqwest::Url::parse(&token_uri).map_err(|_| bad_key("token_uri is not a URL"))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(bad_key("token_uri is not an http(s) URL"));
        }
        Ok(ServiceAccount {
            email: file.client_email,
            key_id: file.private_key_id.filter(|k| !k.is_empty()),
            token_uri,
            key: rsa_key(&file.private_key)?,
        })
    }

    /// Where this account's tokens come from (a host the caller may have to vet).
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// The account's e-mail address (its name in Google's IAM).
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The signed JWT that asks `token_uri` for a token, issued at `now` (Unix seconds).
    fn assertion(&self, now: u64) -> Result<String, BlobError> {
        let header = JwtHeader {
            alg: "RS256",
            typ: "JWT",
            kid: self.key_id.as_deref(),
        };
        let claims = Claims::new(&self.email, &self.token_uri, now);
        let signed = format!("{}.{}", b64_json(&header)?, b64_json(&claims)?);
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .map_err(|_| bad_key("the private key cannot sign"))?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The RSA key of a PEM block: PKCS#8 (`BEGIN PRIVATE KEY`, as Google issues) or PKCS#1.
fn rsa_key(pem: &str) -> Result<RsaKeyPair, BlobError> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| bad_key("private_key is not a PEM private key"))?;
    let parsed = match &der {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => return Err(bad_key("private_key is not an RSA key")),
    };
    parsed.map_err(|e| bad_key(&format!("private_key is not a usable RSA key ({e})")))
}

#[derive(serde::Serialize)]
struct JwtHeader<'a> {
    alg: &'a str,
    typ: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// The claims of the JWT-bearer grant (Google's "OAuth 2.0 for server to server").
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Claims {
    iss: String,
    scope: String,
    aud: String,
    iat: u64,
    exp: u64,
}

impl Claims {
    fn new(email: &str, token_uri: &str, now: u64) -> Self {
        Claims {
            iss: email.to_string(),
            scope: SCOPE.to_string(),
            aud: token_uri.to_string(),
            iat: now,
            exp: now + ASSERTION_LIFETIME,
        }
    }
}

fn b64_json<T: serde::Serialize>(value: &T) -> Result<String, BlobError> {
    let json = serde_json::to_vec(value).map_err(|e| BlobError::Config(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The token endpoint's answer.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

/// A token and when to stop using it.
struct Token {
    bearer: String,
    renew_at: Instant,
}

/// The access tokens of one account, fetched when needed and reused until shortly before they
/// expire.
pub struct Tokens {
    account: ServiceAccount,
    client: reqwest::Client,
    /// Held across a fetch, so concurrent requests wait for one fetch instead of each making
    /// their own.
    current: Mutex<Option<Token>>,
}

impl Tokens {
    /// Tokens for `account`, fetched with `client`.
    pub fn new(account: ServiceAccount, client: reqwest::Client) -> Self {
        Tokens {
            account,
            client,
            current: Mutex::new(None),
        }
    }

    /// The account the tokens are for.
    pub fn account(&self) -> &ServiceAccount {
        &self.account
    }

    /// A valid access token.
    pub async fn bearer(&self) -> Result<String, BlobError> {
        let mut current = self.current.lock().await;
        if let Some(t) = current.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.bearer.clone());
        }
        let token = self.fetch().await?;
        let bearer = token.bearer.clone();
        *current = Some(token);
        Ok(bearer)
    }

    /// Forgets the token (the store refused it: the next request fetches a new one).
    pub async fn forget(&self) {
        *self.current.lock().await = None;
    }

    async fn fetch(&self) -> Result<Token, BlobError> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let assertion = self.account.assertion(now)?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let asked = Instant::now();
        let answer = self
            .client
            .post(&self.account.token_uri)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| BlobError::Remote(format!("token endpoint: {e}")))?;
        let status = answer.status();
        // Google answers a deleted or disabled key with 400 invalid_grant, a bad client with 401.
        if matches!(status.as_u16(), 400 | 401 | 403) {
            return Err(BlobError::Denied(format!(
                "token endpoint refused the service account {} ({status})",
                self.account.email
            )));
        }
        if !status.is_success() {
            return Err(BlobError::Remote(format!(
                "token endpoint answered {status}"
            )));
        }
        let bytes = answer
            .bytes()
            .await
            .map_err(|e| BlobError::Remote(format!("token endpoint: {e}")))?;
        let got: TokenAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| BlobError::Remote(format!("token endpoint sent no token: {e}")))?;
        Ok(Token {
            bearer: got.access_token,
            renew_at: asked + renew_after(got.expires_in),
        })
    }
}

/// How long a token valid for `expires_in` seconds is used: until [`RENEW_BEFORE`] its end, or
/// half its life when that is short.
fn renew_after(expires_in: u64) -> Duration {
    let life = Duration::from_secs(expires_in);
    life.checked_sub(RENEW_BEFORE)
        .filter(|d| *d >= life / 2)
        .unwrap_or(life / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Signing is shown end to end in tests/gcs_store.rs, whose token endpoint checks each
    // assertion's signature with the account's public key.

    #[test]
    fn claims_name_the_account_the_scope_and_the_token_endpoint_for_an_hour() {
        let c = Claims::new("a@b.iam", "https://oauth2.example/token", 1000);
        assert_eq!(
            c,
            Claims {
                iss: "a@b.iam".into(),
                scope: SCOPE.into(),
                aud: "https://oauth2.example/token".into(),
                iat: 1000,
                exp: 4600,
            }
        );
        let header = b64_json(&JwtHeader {
            alg: "RS256",
            typ: "JWT",
            kid: Some("k1"),
        })
        .expect("json");
        let decoded = URL_SAFE_NO_PAD.decode(header).expect("base64url");
        assert_eq!(decoded, br#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
    }

    #[test]
    fn a_malformed_key_is_a_settings_error_naming_the_field_and_not_the_secret() {
        let pem = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n";
        for bad in [
            "not json".to_string(),
            r#"{"client_email":"a@b"}"#.to_string(),
            serde_json::json!({"client_email": "a@b", "private_key": pem}).to_string(),
            serde_json::json!({"client_email": "a@b", "private_key": "c2VjcmV0"}).to_string(),
            serde_json::json!({"client_email": "", "private_key": pem}).to_string(),
            serde_json::json!({"client_email": "a@b", "private_key": pem, "token_uri": "file:///x"})
                .to_string(),
        ] {
            match ServiceAccount::from_json(&bad) {
                Err(BlobError::Config(m)) => {
                    assert!(m.starts_with("service_account_json: "), "{m}");
                    assert!(!m.contains("c2VjcmV0"), "{m}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(renew_after(3600), Duration::from_secs(3300));
        assert_eq!(renew_after(60), Duration::from_secs(30));
        assert_eq!(renew_after(0), Duration::ZERO);
    }
}
