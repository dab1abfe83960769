//! Creating and changing containers: which fields a customer may set, and their consistency.

use super::error::DomainError;
use super::external::{ContainerType, External};
use super::input::{Fields, Patch};
use super::model::{
    Classification, Container, Customer, ThresholdAction, UniqueKeys, DEFAULT_CONTAINER_QUOTA_BYTES,
};
use super::rules::check_identifier;
use super::threshold;
use super::time::Timestamp;

/// A customer's requested changes to a container (create or PATCH).
#[derive(Debug, Default)]
pub struct ContainerChanges {
    pub quota_bytes: Patch<i64>,
    pub quota_files: Patch<i64>,
    pub max_file_size: Patch<i64>,
    pub allowed_classifications: Patch<Vec<Classification>>,
    pub blocked_classifications: Patch<Vec<Classification>>,
    pub threshold_action: Patch<ThresholdAction>,
    pub threshold_bytes: Patch<i64>,
    pub threshold_files: Patch<i64>,
    pub threshold_grace_period: Patch<i64>,
    pub threshold_bytes_target: Patch<i64>,
    pub threshold_files_target: Patch<i64>,
    pub unique: Patch<bool>,
    pub keys: KeyChanges,
    /// `type`: where the bytes are kept, set at creation only.
    pub kind: Option<ContainerType>,
    /// `external` as sent; read against the container's type by the service
    /// ([`ExternalInput::parse`](super::external::ExternalInput::parse)), which checks it
    /// against the bucket and seals its secret into [`sealed`](Self::sealed).
    pub external: Option<serde_json::Value>,
    /// The checked external settings to store.
    pub sealed: Option<External>,
}

/// Changes to the six unique-key fields.
#[derive(Debug, Default)]
pub struct KeyChanges {
    pub integer_key_1: Patch<i64>,
    pub integer_key_2: Patch<i64>,
    pub string_key_1: Patch<String>,
    pub string_key_2: Patch<String>,
    pub string_key_3: Patch<String>,
    pub string_key_4: Patch<String>,
}

impl KeyChanges {
    /// Reads the six key fields.
    pub fn parse(f: &mut Fields) -> Result<Self, DomainError> {
        let mut s = |name: &str| -> Result<Patch<String>, DomainError> {
            let v = f.string(name)?;
            if let Patch::Set(ref s) = v {
                check_identifier(name, s)?;
            }
            Ok(v)
        };
        let string_key_1 = s("string_key_1")?;
        let string_key_2 = s("string_key_2")?;
        let string_key_3 = s("string_key_3")?;
        let string_key_4 = s("string_key_4")?;
        Ok(KeyChanges {
            integer_key_1: f.int("integer_key_1", i64::MIN, i64::MAX)?,
            integer_key_2: f.int("integer_key_2", i64::MIN, i64::MAX)?,
            string_key_1,
            string_key_2,
            string_key_3,
            string_key_4,
        })
    }

    /// Applies the changes to `keys`.
    pub fn apply(self, keys: &mut UniqueKeys) {
        set(&mut keys.integer_key_1, self.integer_key_1);
        set(&mut keys.integer_key_2, self.integer_key_2);
        set(&mut keys.string_key_1, self.string_key_1);
        set(&mut keys.string_key_2, self.string_key_2);
        set(&mut keys.string_key_3, self.string_key_3);
        set(&mut keys.string_key_4, self.string_key_4);
    }
}

fn set<T>(slot: &mut Option<T>, patch: Patch<T>) {
    if let Some(v) = patch.change() {
        *slot = v;
    }
}

fn classifications(f: &mut Fields, name: &str) -> Result<Patch<Vec<Classification>>, DomainError> {
    Ok(match f.string_list(name)? {
        Patch::Set(list) => Patch::Set(
            list.iter()
                .map(|s| {
                    Classification::parse(s).ok_or_else(|| {
                        DomainError::invalid(
                            name,
                            "each must be archive, document, executable, media or unknown",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        Patch::Null => Patch::Null,
        Patch::Absent => Patch::Absent,
    })
}

impl ContainerChanges {
    /// Reads a container body; unknown and read-only fields are refused.
    pub fn parse(mut f: Fields) -> Result<Self, DomainError> {
        let threshold_action = match f.string("threshold_action")? {
            Patch::Set(s) => Patch::Set(ThresholdAction::parse(&s).ok_or_else(|| {
                DomainError::invalid(
                    "threshold_action",
                    "must be no_action, reject or delete_lru",
                )
            })?),
            Patch::Null => Patch::Set(ThresholdAction::NoAction),
            Patch::Absent => Patch::Absent,
        };
        let kind = match f.string("type")? {
            // null is no type at all: refused like an unknown one.
            Patch::Set(s) => Some(ContainerType::parse(&s)),
            Patch::Null => Some(None),
            Patch::Absent => None,
        }
        .map(|k| {
            k.ok_or_else(|| DomainError::invalid("type", "must be internal, aws, gcp or azure"))
        })
        .transpose()?;
        let external = f.take_raw("external").filter(|v| !v.is_null());
        let changes = ContainerChanges {
            kind,
            external,
            sealed: None,
            quota_bytes: f.int("quota_bytes", 0, i64::MAX)?,
            quota_files: f.int("quota_files", 0, i64::MAX)?,
            max_file_size: f.int("max_file_size", 0, i64::MAX)?,
            allowed_classifications: classifications(&mut f, "allowed_classifications")?,
            blocked_classifications: classifications(&mut f, "blocked_classifications")?,
            threshold_action,
            threshold_bytes: f.int("threshold_bytes", 0, i64::MAX)?,
            threshold_files: f.int("threshold_files", 0, i64::MAX)?,
            threshold_grace_period: f.int("threshold_grace_period", 0, i64::MAX / 1000)?,
            threshold_bytes_target: f.int("threshold_bytes_target", 0, i64::MAX)?,
            threshold_files_target: f.int("threshold_files_target", 0, i64::MAX)?,
            unique: f.bool("unique")?,
            keys: KeyChanges::parse(&mut f)?,
        };
        f.finish()?;
        Ok(changes)
    }

    /// The container these changes make from `base`, checked against its owner's quota.
    pub fn apply(
        self,
        mut c: Container,
        owner: &Customer,
        now: Timestamp,
    ) -> Result<Container, DomainError> {
        if self.kind.is_some_and(|k| k != c.kind) {
            return Err(DomainError::invalid("type", "is fixed at creation"));
        }
        if let Some(next) = self.sealed {
            if let Some(current) = &c.external {
                if c.total_files > 0 && !current.location.same_place(&next.location) {
                    return Err(DomainError::Conflict {
                        field: super::external::field(c.kind.bucket_field()),
                        message: "the container's files are in its current bucket and prefix: only credentials and endpoint may change while it holds files".into(),
                    });
                }
            }
            c.external = Some(next);
        }
        if let Some(v) = self.quota_bytes.change() {
            c.quota_bytes = v.unwrap_or(DEFAULT_CONTAINER_QUOTA_BYTES.min(owner.quota_bytes));
        }
        set(&mut c.quota_files, self.quota_files);
        set(&mut c.max_file_size, self.max_file_size);
        set(&mut c.allowed_classifications, self.allowed_classifications);
        set(&mut c.blocked_classifications, self.blocked_classifications);
        if let Patch::Set(a) = self.threshold_action {
            c.threshold_action = a;
        }
        set(&mut c.threshold_bytes, self.threshold_bytes);
        set(&mut c.threshold_files, self.threshold_files);
        set(&mut c.threshold_grace_period, self.threshold_grace_period);
        set(&mut c.threshold_bytes_target, self.threshold_bytes_target);
        set(&mut c.threshold_files_target, self.threshold_files_target);
        if let Some(u) = self.unique.change() {
            c.unique = u.unwrap_or(false);
        }
        self.keys.apply(&mut c.keys);
        c.date_modified = now;
        check(&c, owner)?;
        threshold::refresh(&mut c);
        Ok(c)
    }
}

/// A fresh container with the contract's defaults.
pub fn new_container(sid: String, owner: &Customer, now: Timestamp) -> Container {
    let mut c = Container {
        container_sid: sid,
        customer_id: owner.id.clone(),
        is_default: false,
        kind: ContainerType::Internal,
        external: None,
        quota_bytes: DEFAULT_CONTAINER_QUOTA_BYTES.min(owner.quota_bytes),
        quota_files: None,
        total_bytes: 0,
        total_files: 0,
        max_file_size: None,
        allowed_classifications: None,
        blocked_classifications: None,
        threshold_action: ThresholdAction::NoAction,
        threshold_bytes: None,
        threshold_files: None,
        threshold_grace_period: None,
        threshold_bytes_target: None,
        threshold_files_target: None,
        threshold_total_bytes: 0,
        threshold_total_files: 0,
        threshold_available_bytes_percent: None,
        threshold_available_files_percent: None,
        threshold_reached_at: None,
        unique: false,
        keys: UniqueKeys::default(),
        date_created: now,
        date_modified: now,
    };
    threshold::refresh(&mut c);
    c
}

/// A container's settings must agree with each other and with the owner's quota (422 otherwise).
/// The quotas do not apply to an external container, so neither do the rules that bound its
/// settings by them.
fn check(c: &Container, owner: &Customer) -> Result<(), DomainError> {
    if c.kind.is_external() != c.external.is_some() {
        return Err(DomainError::invalid(
            "external",
            "is required for types aws, gcp and azure, and only for them",
        ));
    }
    if !c.is_external() {
        check_quotas(c, owner)?;
    }
    check_thresholds(c)
}

/// Settings bounded by the quotas of an internal container.
fn check_quotas(c: &Container, owner: &Customer) -> Result<(), DomainError> {
    if c.quota_bytes > owner.quota_bytes {
        return Err(DomainError::validation(
            "quota_bytes",
            "must not exceed the customer's quota_bytes",
        ));
    }
    if let Some(t) = c.threshold_bytes {
        if t > c.quota_bytes {
            return Err(DomainError::validation(
                "threshold_bytes",
                "must not exceed quota_bytes",
            ));
        }
    }
    if let (Some(t), Some(q)) = (c.threshold_files, c.quota_files) {
        if t > q {
            return Err(DomainError::validation(
                "threshold_files",
                "must not exceed quota_files",
            ));
        }
    }
    Ok(())
}

/// Threshold settings must agree with each other.
fn check_thresholds(c: &Container) -> Result<(), DomainError> {
    if let (Some(target), Some(t)) = (c.threshold_bytes_target, c.threshold_bytes) {
        if target > t {
            return Err(DomainError::validation(
                "threshold_bytes_target",
                "must not exceed threshold_bytes",
            ));
        }
    }
    if let (Some(target), Some(t)) = (c.threshold_files_target, c.threshold_files) {
        if target > t {
            return Err(DomainError::validation(
                "threshold_files_target",
                "must not exceed threshold_files",
            ));
        }
    }
    if c.threshold_action == ThresholdAction::DeleteLru
        && c.threshold_bytes_target.is_none()
        && c.threshold_files_target.is_none()
    {
        return Err(DomainError::validation(
            "threshold_bytes_target",
            "delete_lru needs threshold_bytes_target or threshold_files_target",
        ));
    }
    if c.threshold_action != ThresholdAction::NoAction
        && c.threshold_bytes.is_none()
        && c.threshold_files.is_none()
    {
        return Err(DomainError::validation(
            "threshold_bytes",
            "a threshold_action needs threshold_bytes or threshold_files",
        ));
    }
    if let (Some(allowed), Some(blocked)) = (&c.allowed_classifications, &c.blocked_classifications)
    {
        if allowed.iter().any(|a| blocked.contains(a)) {
            return Err(DomainError::validation(
                "blocked_classifications",
                "a classification cannot be both allowed and blocked",
            ));
        }
    }
    Ok(())
}

/// Whether a file of `class` may enter `c` (422 naming `content_classification` otherwise).
pub fn admits_classification(c: &Container, class: Classification) -> Result<(), DomainError> {
    let blocked = c
        .blocked_classifications
        .as_ref()
        .is_some_and(|b| b.contains(&class));
    let not_allowed = c
        .allowed_classifications
        .as_ref()
        .is_some_and(|a| !a.contains(&class));
    if blocked || not_allowed {
        return Err(DomainError::validation(
            "content_classification",
            format!(
                "files classified {} are not accepted by this container",
                class.as_str()
            ),
        ));
    }
    Ok(())
}
