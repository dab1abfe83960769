//! External containers: the customer's own bucket (AWS S3 or any S3-compatible service, Google
//! Cloud Storage, Azure Blob Storage). Which fields each type takes, how they are checked, and how
//! answers show them: the secret never, neither in an answer nor in a log (`Debug` masks it).

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::error::DomainError;

/// How answers show a secret.
pub const MASK: &str = "********";

/// Where a container's bytes are kept: our blob store, or the customer's own bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContainerType {
    Internal,
    Aws,
    Gcp,
    Azure,
}

impl ContainerType {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerType::Internal => "internal",
            ContainerType::Aws => "aws",
            ContainerType::Gcp => "gcp",
            ContainerType::Azure => "azure",
        }
    }

    /// Parses the contract's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Internal, Self::Aws, Self::Gcp, Self::Azure]
            .into_iter()
            .find(|t| t.as_str() == s)
    }

    /// True for the customer's own buckets.
    pub fn is_external(self) -> bool {
        self != ContainerType::Internal
    }

    /// The write-only field of this type's settings.
    pub fn secret_field(self) -> &'static str {
        match self {
            ContainerType::Aws => "secret_access_key",
            ContainerType::Gcp => "service_account_json",
            ContainerType::Azure | ContainerType::Internal => "access_key",
        }
    }

    /// The field naming the credential's identity: where a refused credential is reported.
    pub fn credential_field(self) -> &'static str {
        match self {
            ContainerType::Aws => "access_key_id",
            other => other.secret_field(),
        }
    }

    /// The field naming the bucket: where a missing bucket is reported.
    pub fn bucket_field(self) -> &'static str {
        match self {
            ContainerType::Azure => "container",
            _ => "bucket",
        }
    }

    /// The required and optional fields of `external`, the secret excluded.
    fn fields(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            ContainerType::Aws => (
                &["bucket", "region", "access_key_id"],
                &["prefix", "endpoint"],
            ),
            ContainerType::Gcp => (&["bucket"], &["prefix", "endpoint"]),
            ContainerType::Azure => (&["account", "container"], &["prefix", "endpoint"]),
            ContainerType::Internal => (&[], &[]),
        }
    }
}

/// The field name of an `external` setting in errors: `external.<name>`.
pub fn field(name: &str) -> String {
    format!("external.{name}")
}

/// Where an external container's bytes are, without the secret: stored as it is (JSON) and
/// shown as it is. Which fields are set depends on the type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Keys go under this prefix (no leading or trailing `/`; empty for none).
    #[serde(default)]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
}

impl Location {
    /// Whether `other` names the same objects (bucket, account, container and prefix): the
    /// files already stored are only found where they were written.
    pub fn same_place(&self, other: &Location) -> bool {
        self.bucket == other.bucket
            && self.account == other.account
            && self.container == other.container
            && self.prefix == other.prefix
    }
}

/// A secret as the client sent it: only ever sealed, given to a client library, or masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    /// The secret itself, for sealing it or handing it to the bucket's client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

/// `external` as a request gives it: the location and the plaintext secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalInput {
    pub kind: ContainerType,
    pub location: Location,
    pub secret: Secret,
}

/// Longest value of a setting (a service-account JSON may be a few kilobytes).
const MAX_VALUE: usize = 255;
const MAX_SECRET: usize = 16 * 1024;

fn text(name: &str, v: Value, max: usize) -> Result<String, DomainError> {
    let s = match v {
        Value::String(s) => s,
        _ => return Err(DomainError::invalid(field(name), "must be a string")),
    };
    if s.trim().is_empty() {
        return Err(DomainError::invalid(field(name), "must not be empty"));
    }
    if s.len() > max {
        return Err(DomainError::invalid(
            field(name),
            format!("must be at most {max} bytes"),
        ));
    }
    if s.chars().any(char::is_control) && name != "service_account_json" {
        return Err(DomainError::invalid(
            field(name),
            "must not contain control characters",
        ));
    }
    Ok(s)
}

impl ExternalInput {
    /// Reads `external` for a container of type `kind` (400 naming the field otherwise). Every
    /// required field, the secret included, must be given: a PATCH replaces the whole setting.
    pub fn parse(kind: ContainerType, value: Value) -> Result<Self, DomainError> {
        if !kind.is_external() {
            return Err(DomainError::invalid(
                "external",
                "only containers of type aws, gcp or azure have external settings",
            ));
        }
        let Value::Object(mut map) = value else {
            return Err(DomainError::invalid("external", "must be a JSON object"));
        };
        let (required, optional) = kind.fields();
        let mut location = Location::default();
        for &name in required.iter().chain(optional) {
            let v = match map.remove(name) {
                None | Some(Value::Null) if required.contains(&name) => {
                    return Err(DomainError::invalid(field(name), "is required"))
                }
                None | Some(Value::Null) => continue,
                Some(v) => text(name, v, MAX_VALUE)?,
            };
            let slot = match name {
                "bucket" => &mut location.bucket,
                "account" => &mut location.account,
                "container" => &mut location.container,
                "region" => &mut location.region,
                "endpoint" => &mut location.endpoint,
                "access_key_id" => &mut location.access_key_id,
                _ => {
                    location.prefix = check_prefix(&v)?;
                    continue;
                }
            };
            *slot = Some(v);
        }
        check_names(&location)?;
        let secret_name = kind.secret_field();
        let secret = match map.remove(secret_name) {
            None | Some(Value::Null) => {
                return Err(DomainError::invalid(field(secret_name), "is required"))
            }
            // A service account's key file may be given as the JSON object itself.
            Some(v @ Value::Object(_)) if kind == ContainerType::Gcp => v.to_string(),
            Some(v) => text(secret_name, v, MAX_SECRET)?,
        };
        if kind == ContainerType::Gcp
            && serde_json::from_str::<serde_json::Map<String, Value>>(&secret).is_err()
        {
            return Err(DomainError::invalid(
                field(secret_name),
                "must be a service account's JSON key",
            ));
        }
        if let Some(k) = map.keys().next() {
            return Err(DomainError::invalid(
                field(k),
                format!("is not a setting of a {} container", kind.as_str()),
            ));
        }
        Ok(ExternalInput {
            kind,
            location,
            secret: Secret::new(secret),
        })
    }
}

/// A prefix without surrounding slashes, made of path segments a bucket accepts.
fn check_prefix(p: &str) -> Result<String, DomainError> {
    let p = p.trim_matches('/');
    if p.split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(DomainError::invalid(
            field("prefix"),
            "must be path segments separated by single slashes, without . or ..",
        ));
    }
    Ok(p.to_string())
}

/// Bucket, container and account names as the providers allow them (roughly: their own
/// checks are stricter; this keeps URLs and paths well-formed).
fn check_names(l: &Location) -> Result<(), DomainError> {
    for (name, v) in [
        ("bucket", &l.bucket),
        ("account", &l.account),
        ("container", &l.container),
        ("region", &l.region),
    ] {
        if let Some(v) = v {
            let ok = v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                return Err(DomainError::invalid(
                    field(name),
                    "may only hold letters, digits, '-', '_' and '.'",
                ));
            }
        }
    }
    Ok(())
}

/// An external container's settings as kept: the location in the clear, the secret sealed
/// (see [`super::sealing`]).
#[derive(Clone, PartialEq)]
pub struct External {
    pub kind: ContainerType,
    pub location: Location,
    pub sealed_secret: Vec<u8>,
}

impl std::fmt::Debug for External {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("External")
            .field("kind", &self.kind)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Answers show the location and the secret's field as [`MASK`].
impl Serialize for External {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(fields) =
            serde_json::to_value(&self.location).map_err(serde::ser::Error::custom)?
        else {
            return Err(serde::ser::Error::custom("location is not an object"));
        };
        let mut map = s.serialize_map(Some(fields.len() + 1))?;
        for (k, v) in &fields {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry(self.kind.secret_field(), MASK)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aws_settings_need_their_fields_and_refuse_others() {
        let ok = ExternalInput::parse(
            ContainerType::Aws,
            json!({"bucket": "b", "region": "r", "access_key_id": "AK", "secret_access_key": "SK", "prefix": "/a/b/"}),
        );
        let ok = ok.map_err(|e| e.to_string());
        assert_eq!(ok.as_ref().map(|i| i.location.prefix.as_str()), Ok("a/b"));
        let missing = ExternalInput::parse(
            ContainerType::Aws,
            json!({"bucket": "b", "region": "r", "access_key_id": "AK"}),
        );
        assert_eq!(
            missing.err(),
            Some(DomainError::invalid(
                "external.secret_access_key",
                "is required"
            ))
        );
        let other = ExternalInput::parse(
            ContainerType::Azure,
            json!({"account": "a", "container": "c", "access_key": "k", "bucket": "b"}),
        );
        assert!(
            matches!(other, Err(DomainError::InvalidInput { field, .. }) if field == "external.bucket")
        );
    }

    #[test]
    fn secrets_are_masked_in_answers_and_in_debug() {
        let input = ExternalInput::parse(
            ContainerType::Gcp,
            json!({"bucket": "b", "service_account_json": {"private_key": "TOPSECRET"}}),
        );
        let input = input.map_err(|e| e.to_string());
        assert!(!format!("{input:?}").contains("TOPSECRET"));
        let ext = External {
            kind: ContainerType::Gcp,
            location: input.map(|i| i.location).unwrap_or_default(),
            sealed_secret: b"TOPSECRET".to_vec(),
        };
        let shown = serde_json::to_value(&ext).unwrap_or_default();
        assert_eq!(shown["service_account_json"], MASK);
        assert_eq!(shown["bucket"], "b");
        assert!(!shown.to_string().contains("TOPSECRET"));
        assert!(!format!("{ext:?}").contains("TOPSECRET"));
    }
}
