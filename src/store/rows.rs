//! What the SQL stores share: reading rows into the domain's structs, the stored form of a few
//! fields, and recognising a unique-index violation. Each driver only says how to read one
//! column ([`Cols`]); what a row means is written once.

use sqlx::Row;

use super::meta::{ContainerUpdate, CustomerDump, FileQuery, MetaError, Secret, TokenRecord};
use crate::domain::external::{ContainerType, External};
use crate::domain::model::{
    Classification, Container, Customer, FileRecord, Publish, ThresholdAction, UniqueKeys,
};
use crate::domain::{threshold, DomainError, Timestamp};

/// Reading one column of a row, whatever the driver.
pub(super) trait Cols {
    fn int(&self, col: &str) -> Result<i64, MetaError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, MetaError>;
    fn opt_real(&self, col: &str) -> Result<Option<f64>, MetaError>;
    fn text(&self, col: &str) -> Result<String, MetaError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, MetaError>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>, MetaError>;
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, MetaError>;
    /// A yes/no column: INTEGER 0/1 on SQLite, BOOLEAN on PostgreSQL.
    fn flag(&self, col: &str) -> Result<bool, MetaError>;
}

/// Implements [`Cols`] for a driver's row; `$flag` reads a yes/no column.
macro_rules! impl_cols {
    ($row:ty, $flag:expr) => {
        impl Cols for $row {
            fn int(&self, col: &str) -> Result<i64, MetaError> {
                Ok(self.try_get(col)?)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, MetaError> {
                Ok(self.try_get(col)?)
            }
            fn opt_real(&self, col: &str) -> Result<Option<f64>, MetaError> {
                Ok(self.try_get(col)?)
            }
            fn text(&self, col: &str) -> Result<String, MetaError> {
                Ok(self.try_get(col)?)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, MetaError> {
                Ok(self.try_get(col)?)
            }
            fn bytes(&self, col: &str) -> Result<Vec<u8>, MetaError> {
                Ok(self.try_get(col)?)
            }
            fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, MetaError> {
                Ok(self.try_get(col)?)
            }
            fn flag(&self, col: &str) -> Result<bool, MetaError> {
                let read: fn(&$row, &str) -> Result<bool, sqlx::Error> = $flag;
                Ok(read(self, col)?)
            }
        }
    };
}

impl_cols!(sqlx::sqlite::SqliteRow, |r, c| Ok(r
    .try_get::<i64, _>(c)?
    != 0));
impl_cols!(sqlx::postgres::PgRow, |r, c| r.try_get::<bool, _>(c));

/// The customer columns, in the order [`customer_row`] and the inserts use.
pub(super) const CUSTOMER_COLS: &str = "id, name, quota_bytes, max_containers, total_bytes, total_files, container_count, date_created, date_modified";

pub(super) fn customer_row(r: &impl Cols) -> Result<Customer, MetaError> {
    Ok(Customer {
        id: r.text("id")?,
        name: r.text("name")?,
        quota_bytes: r.int("quota_bytes")?,
        max_containers: r.int("max_containers")?,
        total_bytes: r.int("total_bytes")?,
        total_files: r.int("total_files")?,
        container_count: r.int("container_count")?,
        date_created: Timestamp(r.int("date_created")?),
        date_modified: Timestamp(r.int("date_modified")?),
    })
}

fn parse_classes(s: Option<String>) -> Result<Option<Vec<Classification>>, MetaError> {
    let Some(s) = s else { return Ok(None) };
    let names: Vec<String> =
        serde_json::from_str(&s).map_err(|e| MetaError::Corrupt(e.to_string()))?;
    names
        .iter()
        .map(|n| {
            Classification::parse(n)
                .ok_or_else(|| MetaError::Corrupt(format!("classification {n}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The stored form of a classification list: a JSON array of names.
pub(super) fn classes_json(c: &Option<Vec<Classification>>) -> Option<String> {
    c.as_ref().map(|list| {
        serde_json::Value::from(list.iter().map(|c| c.as_str()).collect::<Vec<_>>()).to_string()
    })
}

/// The stored form of a JSON column (a file's media facts, its measured loudness).
pub(super) fn json_col<T: serde::Serialize>(v: Option<&T>) -> Result<Option<String>, MetaError> {
    v.map(|v| serde_json::to_string(v).map_err(|e| MetaError::Corrupt(e.to_string())))
        .transpose()
}

/// A JSON column read back.
fn json_opt<T: serde::de::DeserializeOwned>(
    r: &impl Cols,
    col: &str,
) -> Result<Option<T>, MetaError> {
    r.opt_text(col)?
        .map(|v| serde_json::from_str(&v).map_err(|e| MetaError::Corrupt(e.to_string())))
        .transpose()
}

fn keys_row(r: &impl Cols) -> Result<UniqueKeys, MetaError> {
    Ok(UniqueKeys {
        integer_key_1: r.opt_int("integer_key_1")?,
        integer_key_2: r.opt_int("integer_key_2")?,
        string_key_1: r.opt_text("string_key_1")?,
        string_key_2: r.opt_text("string_key_2")?,
        string_key_3: r.opt_text("string_key_3")?,
        string_key_4: r.opt_text("string_key_4")?,
    })
}

/// The stored form of an external container's location: a JSON object (a struct of strings
/// always serialises; were it ever not to, the row would read back as corrupt, not wrong).
pub(super) fn location_json(e: &Option<External>) -> Option<String> {
    e.as_ref()
        .and_then(|e| serde_json::to_string(&e.location).ok())
}

/// An external container's settings from its `type`, `external` and `external_secret` columns.
fn external_row(r: &impl Cols, kind: ContainerType) -> Result<Option<External>, MetaError> {
    if !kind.is_external() {
        return Ok(None);
    }
    let location = r
        .opt_text("external")?
        .ok_or_else(|| MetaError::Corrupt("external container without settings".into()))?;
    Ok(Some(External {
        kind,
        location: serde_json::from_str(&location).map_err(|e| MetaError::Corrupt(e.to_string()))?,
        sealed_secret: r
            .opt_bytes("external_secret")?
            .ok_or_else(|| MetaError::Corrupt("external container without its secret".into()))?,
    }))
}

pub(super) fn container_row(r: &impl Cols) -> Result<Container, MetaError> {
    let action = r.text("threshold_action")?;
    let kind_name = r.text("type")?;
    let kind = ContainerType::parse(&kind_name)
        .ok_or_else(|| MetaError::Corrupt(format!("container type {kind_name}")))?;
    let mut c = Container {
        container_sid: r.text("sid")?,
        customer_id: r.text("customer_id")?,
        is_default: r.flag("is_default")?,
        kind,
        external: external_row(r, kind)?,
        quota_bytes: r.int("quota_bytes")?,
        quota_files: r.opt_int("quota_files")?,
        total_bytes: r.int("total_bytes")?,
        total_files: r.int("total_files")?,
        max_file_size: r.opt_int("max_file_size")?,
        allowed_classifications: parse_classes(r.opt_text("allowed_classifications")?)?,
        blocked_classifications: parse_classes(r.opt_text("blocked_classifications")?)?,
        threshold_action: ThresholdAction::parse(&action)
            .ok_or_else(|| MetaError::Corrupt(format!("threshold_action {action}")))?,
        threshold_bytes: r.opt_int("threshold_bytes")?,
        threshold_files: r.opt_int("threshold_files")?,
        threshold_grace_period: r.opt_int("threshold_grace_period")?,
        threshold_bytes_target: r.opt_int("threshold_bytes_target")?,
        threshold_files_target: r.opt_int("threshold_files_target")?,
        threshold_total_bytes: r.int("threshold_total_bytes")?,
        threshold_total_files: r.int("threshold_total_files")?,
        threshold_available_bytes_percent: None,
        threshold_available_files_percent: None,
        threshold_reached_at: r.opt_int("threshold_reached_at")?.map(Timestamp),
        unique: r.flag("is_unique")?,
        keys: keys_row(r)?,
        date_created: Timestamp(r.int("date_created")?),
        date_modified: Timestamp(r.int("date_modified")?),
    };
    threshold::refresh(&mut c);
    Ok(c)
}

pub(super) fn file_row(r: &impl Cols) -> Result<FileRecord, MetaError> {
    let class = r.text("content_classification")?;
    let publish = r.text("publish")?;
    Ok(FileRecord {
        file_sid: r.text("sid")?,
        container_sid: r.text("container_sid")?,
        customer_id: r.text("customer_id")?,
        blob_key: r.text("blob_key")?,
        owner_id: r.opt_text("owner_id")?,
        reference_type: r.text("reference_type")?,
        reference_id: r.opt_text("reference_id")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        tag: r.opt_text("tag")?,
        size: r.int("size")?,
        mime_type: r.text("mime_type")?,
        content_format: r.text("content_format")?,
        content_classification: Classification::parse(&class)
            .ok_or_else(|| MetaError::Corrupt(format!("classification {class}")))?,
        media: json_opt(r, "media")?,
        checksum_sha256: r.text("checksum_sha256")?,
        publish: Publish::parse(&publish)
            .ok_or_else(|| MetaError::Corrupt(format!("publish {publish}")))?,
        file_access_name: r.text("file_access_name")?,
        expires_at: r.opt_int("expires_at")?.map(Timestamp),
        threshold_include: r.flag("threshold_include")?,
        unique: r.flag("is_unique")?,
        keys: keys_row(r)?,
        kind: r.opt_text("type")?,
        desired_format: r.opt_text("desired_format")?,
        desired_bitrate: r.opt_int("desired_bitrate")?,
        desired_loudness: r.opt_real("desired_loudness")?,
        loudness: json_opt(r, "loudness")?,
        date_last_accessed: r.opt_int("date_last_accessed")?.map(Timestamp),
        date_created: Timestamp(r.int("date_created")?),
        date_modified: Timestamp(r.int("date_modified")?),
    })
}

/// The stored unique key of a container or file: the canonical keys when `unique`, else NULL
/// (which the partial unique index ignores).
pub(super) fn unique_key(unique: bool, keys: &UniqueKeys) -> Option<String> {
    unique.then(|| keys.canonical())
}

/// Which unique index a failed write ran into, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Violation {
    /// The (customer, unique_key) index of containers or files.
    UniqueKeys,
    /// A file's `file_access_name`.
    AccessName,
}

/// Recognises a unique-index violation by the index or column its message names: SQLite says
/// `UNIQUE constraint failed: files.customer_id, files.unique_key`, PostgreSQL names the index
/// (`files_unique_keys`, `files_file_access_name_key`); both contain the same words.
pub(super) fn violation(e: &sqlx::Error) -> Option<Violation> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    if !db.is_unique_violation() {
        return None;
    }
    let m = db.message();
    if m.contains("unique_key") {
        Some(Violation::UniqueKeys)
    } else if m.contains("file_access_name") {
        Some(Violation::AccessName)
    } else {
        None
    }
}

/// The contract's answer to a unique-keys clash of a `what` ("container" or "file"), naming the
/// holder of the keys.
pub(super) fn keys_taken(what: &str, existing: Option<String>) -> MetaError {
    DomainError::Validation {
        field: "unique".into(),
        message: format!("{what} with the same set of keys already exists"),
        reference_sid: existing,
    }
    .into()
}

/// The contract's answer to a taken `file_access_name`.
pub(super) fn access_name_taken() -> MetaError {
    DomainError::Conflict {
        field: "file_access_name".into(),
        message: "this file_access_name is taken".into(),
    }
    .into()
}

/// The answer when the customer's container limit is reached.
pub(super) fn container_limit() -> MetaError {
    DomainError::validation(
        "max_containers",
        "the customer's container limit is reached",
    )
    .into()
}

/// The answer when a container to delete still holds files.
pub(super) fn container_not_empty() -> MetaError {
    DomainError::Conflict {
        field: "container_sid".into(),
        message: "the container still holds files".into(),
    }
    .into()
}

/// Customers with their tokens, from the rows of [`select::ALL_CUSTOMERS`] and
/// [`select::ALL_TOKENS`] (tokens sorted by customer).
pub(super) fn customer_dumps<R: Cols>(
    customers: &[R],
    tokens: &[R],
) -> Result<Vec<CustomerDump>, MetaError> {
    let tokens = tokens
        .iter()
        .map(|t| {
            Ok(TokenRecord {
                token_hash: t.text("token_hash")?,
                customer_id: t.text("customer_id")?,
                date_created: Timestamp(t.int("date_created")?),
            })
        })
        .collect::<Result<Vec<_>, MetaError>>()?;
    customers
        .iter()
        .map(|r| {
            let customer = customer_row(r)?;
            let own = tokens
                .iter()
                .filter(|t| t.customer_id == customer.id)
                .cloned()
                .collect();
            Ok(CustomerDump {
                customer,
                tokens: own,
            })
        })
        .collect()
}

pub(super) fn secret_row(r: &impl Cols) -> Result<Secret, MetaError> {
    Ok(Secret {
        name: r.text("name")?,
        value: r.bytes("value")?,
    })
}

/// A container changed through `update`, its "reached" episode following the new threshold.
pub(super) fn changed_container(
    current: Container,
    owner: &Customer,
    update: ContainerUpdate,
) -> Result<Container, MetaError> {
    let mut next = update(current, owner)?;
    // A changed threshold may start or end a "reached" episode.
    next.threshold_reached_at = threshold::reached_at_after(
        &next,
        next.threshold_total_bytes,
        next.threshold_total_files,
        next.date_modified,
    );
    Ok(next)
}

/// `$1, $2, … $n` (both SQLite and PostgreSQL read numbered parameters).
fn params(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns of a file, in the order [`bind_file!`] binds them.
const FILE_COLS: &str = "sid, container_sid, customer_id, blob_key, owner_id, reference_type, reference_id, name,
    description, tag, size, mime_type, content_format, content_classification, media, checksum_sha256,
    publish, file_access_name, expires_at, threshold_include, is_unique, unique_key, integer_key_1,
    integer_key_2, string_key_1, string_key_2, string_key_3, string_key_4, type, desired_format,
    desired_bitrate, desired_loudness, loudness, date_last_accessed, date_created, date_modified";

/// Inserts a file row ([`bind_file!`]).
pub(super) static INSERT_FILE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("INSERT INTO files ({FILE_COLS}) VALUES ({})", params(36)));

/// Inserts a file row unless its sid (or another unique key) is there ([`bind_file!`]).
pub(super) static IMPORT_FILE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{} ON CONFLICT DO NOTHING", INSERT_FILE.as_str()));

/// Binds every column of file `$f` in [`FILE_COLS`] order; `$media` and `$loudness` are those
/// columns' [`json_col`].
macro_rules! bind_file {
    ($q:expr, $f:expr, $media:expr, $loudness:expr) => {
        $q.bind(&$f.file_sid)
            .bind(&$f.container_sid)
            .bind(&$f.customer_id)
            .bind(&$f.blob_key)
            .bind(&$f.owner_id)
            .bind(&$f.reference_type)
            .bind(&$f.reference_id)
            .bind(&$f.name)
            .bind(&$f.description)
            .bind(&$f.tag)
            .bind($f.size)
            .bind(&$f.mime_type)
            .bind(&$f.content_format)
            .bind($f.content_classification.as_str())
            .bind($media)
            .bind(&$f.checksum_sha256)
            .bind($f.publish.as_str())
            .bind(&$f.file_access_name)
            .bind($f.expires_at.map(|t| t.0))
            .bind($f.threshold_include)
            .bind($f.unique)
            .bind($crate::store::rows::unique_key($f.unique, &$f.keys))
            .bind($f.keys.integer_key_1)
            .bind($f.keys.integer_key_2)
            .bind(&$f.keys.string_key_1)
            .bind(&$f.keys.string_key_2)
            .bind(&$f.keys.string_key_3)
            .bind(&$f.keys.string_key_4)
            .bind(&$f.kind)
            .bind(&$f.desired_format)
            .bind($f.desired_bitrate)
            .bind($f.desired_loudness)
            .bind($loudness)
            .bind($f.date_last_accessed.map(|t| t.0))
            .bind($f.date_created.0)
            .bind($f.date_modified.0)
    };
}
pub(super) use bind_file;

/// Writes what a PATCH may change of a file ([`bind_file_changes!`]).
pub(super) const UPDATE_FILE: &str = "UPDATE files SET owner_id = $1, reference_type = $2, reference_id = $3, name = $4,
    description = $5, tag = $6, mime_type = $7, publish = $8, file_access_name = $9, expires_at = $10,
    threshold_include = $11, is_unique = $12, unique_key = $13, integer_key_1 = $14, integer_key_2 = $15,
    string_key_1 = $16, string_key_2 = $17, string_key_3 = $18, string_key_4 = $19, date_modified = $20
 WHERE sid = $21";

/// Binds [`UPDATE_FILE`]'s parameters from file `$f`.
macro_rules! bind_file_changes {
    ($q:expr, $f:expr) => {
        $q.bind(&$f.owner_id)
            .bind(&$f.reference_type)
            .bind(&$f.reference_id)
            .bind(&$f.name)
            .bind(&$f.description)
            .bind(&$f.tag)
            .bind(&$f.mime_type)
            .bind($f.publish.as_str())
            .bind(&$f.file_access_name)
            .bind($f.expires_at.map(|t| t.0))
            .bind($f.threshold_include)
            .bind($f.unique)
            .bind($crate::store::rows::unique_key($f.unique, &$f.keys))
            .bind($f.keys.integer_key_1)
            .bind($f.keys.integer_key_2)
            .bind(&$f.keys.string_key_1)
            .bind(&$f.keys.string_key_2)
            .bind(&$f.keys.string_key_3)
            .bind(&$f.keys.string_key_4)
            .bind($f.date_modified.0)
            .bind(&$f.file_sid)
    };
}
pub(super) use bind_file_changes;

/// The columns of a container that its settings and threshold state decide: written by both
/// the insert and the update, bound by [`bind_settings!`] in this order.
const SETTINGS_COLS: [&str; 23] = [
    "quota_bytes",
    "quota_files",
    "max_file_size",
    "allowed_classifications",
    "blocked_classifications",
    "threshold_action",
    "threshold_bytes",
    "threshold_files",
    "threshold_grace_period",
    "threshold_bytes_target",
    "threshold_files_target",
    "threshold_reached_at",
    "is_unique",
    "unique_key",
    "integer_key_1",
    "integer_key_2",
    "string_key_1",
    "string_key_2",
    "string_key_3",
    "string_key_4",
    "date_modified",
    "external",
    "external_secret",
];

/// Binds [`SETTINGS_COLS`] of container `$c`, in order.
macro_rules! bind_settings {
    ($q:expr, $c:expr) => {
        $q.bind($c.quota_bytes)
            .bind($c.quota_files)
            .bind($c.max_file_size)
            .bind($crate::store::rows::classes_json(
                &$c.allowed_classifications,
            ))
            .bind($crate::store::rows::classes_json(
                &$c.blocked_classifications,
            ))
            .bind($c.threshold_action.as_str())
            .bind($c.threshold_bytes)
            .bind($c.threshold_files)
            .bind($c.threshold_grace_period)
            .bind($c.threshold_bytes_target)
            .bind($c.threshold_files_target)
            .bind($c.threshold_reached_at.map(|t| t.0))
            .bind($c.unique)
            .bind($crate::store::rows::unique_key($c.unique, &$c.keys))
            .bind($c.keys.integer_key_1)
            .bind($c.keys.integer_key_2)
            .bind(&$c.keys.string_key_1)
            .bind(&$c.keys.string_key_2)
            .bind(&$c.keys.string_key_3)
            .bind(&$c.keys.string_key_4)
            .bind($c.date_modified.0)
            .bind($crate::store::rows::location_json(&$c.external))
            .bind($c.external.as_ref().map(|e| e.sealed_secret.clone()))
    };
}
pub(super) use bind_settings;

/// Binds every column of container `$c` for [`INSERT_CONTAINER`].
macro_rules! bind_container {
    ($q:expr, $c:expr) => {
        $crate::store::rows::bind_settings!(
            $q.bind(&$c.container_sid)
                .bind(&$c.customer_id)
                .bind($c.is_default)
                .bind($c.total_bytes)
                .bind($c.total_files)
                .bind($c.threshold_total_bytes)
                .bind($c.threshold_total_files)
                .bind($c.date_created.0)
                .bind($c.kind.as_str()),
            $c
        )
    };
}
pub(super) use bind_container;

/// Inserts a container row ([`bind_container!`]).
pub(super) static INSERT_CONTAINER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO containers (sid, customer_id, is_default, total_bytes, total_files,
            threshold_total_bytes, threshold_total_files, date_created, type, {})
         VALUES ({})",
        SETTINGS_COLS.join(", "),
        params(9 + SETTINGS_COLS.len())
    )
});

/// Inserts a container row unless its sid (or its unique keys) is there ([`bind_container!`]).
pub(super) static IMPORT_CONTAINER: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{} ON CONFLICT DO NOTHING", INSERT_CONTAINER.as_str()));

/// Writes a container's settings and threshold state ([`bind_settings!`], then the sid).
pub(super) static UPDATE_CONTAINER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let set: Vec<String> = SETTINGS_COLS
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect();
    format!(
        "UPDATE containers SET {} WHERE sid = ${}",
        set.join(", "),
        SETTINGS_COLS.len() + 1
    )
});

/// Inserts a customer row (`CUSTOMER_COLS` order), doing nothing if its id is there.
pub(super) static INSERT_CUSTOMER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO customers ({CUSTOMER_COLS}) VALUES ({}) ON CONFLICT DO NOTHING",
        params(9)
    )
});

/// Binds every column of customer `$c` for [`INSERT_CUSTOMER`].
macro_rules! bind_customer {
    ($q:expr, $c:expr) => {
        $q.bind(&$c.id)
            .bind(&$c.name)
            .bind($c.quota_bytes)
            .bind($c.max_containers)
            .bind($c.total_bytes)
            .bind($c.total_files)
            .bind($c.container_count)
            .bind($c.date_created.0)
            .bind($c.date_modified.0)
    };
}
pub(super) use bind_customer;

/// Inserts a token unless its hash is there: `$1` hash, `$2` customer, `$3` date.
pub(super) const INSERT_TOKEN: &str =
    "INSERT INTO tokens (token_hash, customer_id, date_created) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

/// Stores secret `$1` = `$2` unless one of that name exists.
pub(super) const INSERT_SECRET: &str =
    "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Applies a threshold state: `$1` bytes, `$2` files, `$3` reached at, `$4` sid.
pub(super) const SET_THRESHOLD_STATE: &str = "UPDATE containers SET threshold_total_bytes = $1, threshold_total_files = $2, threshold_reached_at = $3 WHERE sid = $4";

/// The WHERE clause of `GET /v1/files` and its parameters in order: the customer, then each
/// filter given.
pub(super) fn file_filter(q: &FileQuery) -> (String, Vec<&str>) {
    let mut filter = String::from(" FROM files WHERE customer_id = $1");
    let mut args: Vec<&str> = vec![&q.customer_id];
    for (col, v) in [
        ("container_sid", &q.container_sid),
        ("tag", &q.tag),
        ("reference_type", &q.reference_type),
        ("reference_id", &q.reference_id),
        ("owner_id", &q.owner_id),
        ("name", &q.name),
    ] {
        if let Some(v) = v {
            args.push(v);
            filter.push_str(&format!(" AND {col} = ${}", args.len()));
        }
    }
    (filter, args)
}

/// One page of `GET /v1/files`, newest first, after [`file_filter`]'s `n` parameters.
pub(super) fn file_page_sql(filter: &str, n: usize) -> String {
    format!(
        "SELECT *{filter} ORDER BY date_created DESC, sid DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    )
}

/// Every total recomputed from the files (`$1` binds `true`, the included flag).
pub(super) const RECOMPUTE_CONTAINERS: &str = "UPDATE containers SET
    total_bytes = (SELECT coalesce(sum(size), 0) FROM files f WHERE f.container_sid = containers.sid),
    total_files = (SELECT count(*) FROM files f WHERE f.container_sid = containers.sid),
    threshold_total_bytes = (SELECT coalesce(sum(size), 0) FROM files f WHERE f.container_sid = containers.sid AND f.threshold_include = $1),
    threshold_total_files = (SELECT count(*) FROM files f WHERE f.container_sid = containers.sid AND f.threshold_include = $1)";

/// The customers' totals recomputed from their files and containers: what is kept in our
/// store (external containers and their files count toward no customer limit).
pub(super) const RECOMPUTE_CUSTOMERS: &str = "UPDATE customers SET
    total_bytes = (SELECT coalesce(sum(f.size), 0) FROM files f JOIN containers c ON c.sid = f.container_sid
                   WHERE f.customer_id = customers.id AND c.type = 'internal'),
    total_files = (SELECT count(*) FROM files f JOIN containers c ON c.sid = f.container_sid
                   WHERE f.customer_id = customers.id AND c.type = 'internal'),
    container_count = (SELECT count(*) FROM containers c WHERE c.customer_id = customers.id AND c.type = 'internal')";

/// Read-only queries both stores run as they are.
pub(super) mod select {
    pub const CUSTOMER: &str = "SELECT id, name, quota_bytes, max_containers, total_bytes, total_files, container_count, date_created, date_modified FROM customers WHERE id = $1";
    pub const CUSTOMER_BY_TOKEN: &str = "SELECT c.id, c.name, c.quota_bytes, c.max_containers, c.total_bytes, c.total_files, c.container_count,
            c.date_created, c.date_modified
     FROM tokens t JOIN customers c ON c.id = t.customer_id WHERE t.token_hash = $1";
    pub const CONTAINER: &str = "SELECT * FROM containers WHERE sid = $1 AND customer_id = $2";
    pub const FIRST_CONTAINER: &str = "SELECT * FROM containers WHERE customer_id = $1 ORDER BY is_default DESC, date_created, sid LIMIT 1";
    pub const CONTAINERS_PAGE: &str = "SELECT * FROM containers WHERE customer_id = $1 ORDER BY date_created, sid LIMIT $2 OFFSET $3";
    pub const CONTAINER_COUNT: &str = "SELECT count(*) FROM containers WHERE customer_id = $1";
    pub const HAS_EXTERNAL_CONTAINER: &str =
        "SELECT EXISTS (SELECT 1 FROM containers WHERE customer_id = $1 AND type <> 'internal')";
    pub const FILE: &str = "SELECT * FROM files WHERE sid = $1 AND customer_id = $2";
    pub const FILE_BY_SID: &str = "SELECT * FROM files WHERE sid = $1";
    pub const PUBLISHED: &str = "SELECT * FROM files WHERE (sid = $1 AND publish = 'file_sid') OR (file_access_name = $1 AND publish = 'file_access_name')
         ORDER BY publish = 'file_sid' DESC LIMIT 1";
    pub const FILES_IN_CONTAINER: &str = "SELECT count(*) FROM files WHERE container_sid = $1";
    /// Files kept in our blob store (an external container's are in the customer's bucket).
    pub const BLOB_KEYS: &str = "SELECT f.sid, f.blob_key FROM files f JOIN containers c ON c.sid = f.container_sid WHERE c.type = 'internal'";
    pub const EXPIRED: &str = "SELECT * FROM files WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at LIMIT $2";
    pub const OVER_THRESHOLD: &str =
        "SELECT * FROM containers WHERE threshold_action = 'delete_lru'
       AND ((threshold_bytes IS NOT NULL AND threshold_total_bytes >= threshold_bytes)
         OR (threshold_files IS NOT NULL AND threshold_total_files >= threshold_files))";
    /// `$2` binds `true` (included files only).
    pub const LRU: &str = "SELECT * FROM files WHERE container_sid = $1 AND threshold_include = $2
         ORDER BY coalesce(date_last_accessed, 0), date_created LIMIT $3";
    pub const SECRET: &str = "SELECT value FROM secrets WHERE name = $1";
    pub const ALL_CUSTOMERS: &str = "SELECT id, name, quota_bytes, max_containers, total_bytes, total_files, container_count, date_created, date_modified FROM customers ORDER BY id";
    pub const ALL_TOKENS: &str =
        "SELECT token_hash, customer_id, date_created FROM tokens ORDER BY customer_id, token_hash";
    pub const ALL_CONTAINERS: &str = "SELECT * FROM containers ORDER BY sid";
    /// `$1` the last sid of the previous page or NULL, `$2` the page size.
    pub const FILES_AFTER: &str =
        "SELECT * FROM files WHERE ($1 IS NULL OR sid > $1) ORDER BY sid LIMIT $2";
    pub const ALL_SECRETS: &str = "SELECT name, value FROM secrets ORDER BY name";
}
