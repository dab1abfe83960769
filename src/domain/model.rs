//! The objects customers see: customers, containers and files.

use serde::Serialize;

use super::external::{ContainerType, External};
use super::time::Timestamp;

/// 1 GiB, the default quota of a container.
pub const DEFAULT_CONTAINER_QUOTA_BYTES: i64 = 1 << 30;
/// 10 GiB, the default quota of a customer.
pub const DEFAULT_CUSTOMER_QUOTA_BYTES: i64 = 10 << 30;
/// Containers a customer may hold unless the admin says otherwise.
pub const DEFAULT_MAX_CONTAINERS: i64 = 2;

/// A tenant: owns containers and files, bounded by its own quota.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Customer {
    #[serde(rename = "customer_id")]
    pub id: String,
    pub name: String,
    pub quota_bytes: i64,
    pub max_containers: i64,
    #[serde(rename = "total_file_size")]
    pub total_bytes: i64,
    #[serde(rename = "total_file_count")]
    pub total_files: i64,
    pub container_count: i64,
    pub date_created: Timestamp,
    pub date_modified: Timestamp,
}

/// What a container does once its threshold is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdAction {
    NoAction,
    Reject,
    DeleteLru,
}

impl ThresholdAction {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdAction::NoAction => "no_action",
            ThresholdAction::Reject => "reject",
            ThresholdAction::DeleteLru => "delete_lru",
        }
    }

    /// Parses the contract's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "no_action" => Some(ThresholdAction::NoAction),
            "reject" => Some(ThresholdAction::Reject),
            "delete_lru" => Some(ThresholdAction::DeleteLru),
            _ => None,
        }
    }
}

/// A file's kind, for allow/block lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Archive,
    Document,
    Executable,
    Media,
    Unknown,
}

impl Classification {
    /// Every classification, in the contract's order.
    pub const ALL: [Classification; 5] = [
        Classification::Archive,
        Classification::Document,
        Classification::Executable,
        Classification::Media,
        Classification::Unknown,
    ];

    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Archive => "archive",
            Classification::Document => "document",
            Classification::Executable => "executable",
            Classification::Media => "media",
            Classification::Unknown => "unknown",
        }
    }

    /// Parses the contract's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The six fields whose set must be unique among objects marked `unique`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UniqueKeys {
    pub integer_key_1: Option<i64>,
    pub integer_key_2: Option<i64>,
    pub string_key_1: Option<String>,
    pub string_key_2: Option<String>,
    pub string_key_3: Option<String>,
    pub string_key_4: Option<String>,
}

impl UniqueKeys {
    /// A canonical encoding of the set, indexed unique by the metadata store.
    pub fn canonical(&self) -> String {
        serde_json::json!([
            self.integer_key_1,
            self.integer_key_2,
            self.string_key_1,
            self.string_key_2,
            self.string_key_3,
            self.string_key_4
        ])
        .to_string()
    }
}

/// A container: a quota-bounded set of files with its own policies.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Container {
    pub container_sid: String,
    pub customer_id: String,
    #[serde(skip)]
    pub is_default: bool,
    /// Where the bytes are kept; fixed at creation.
    #[serde(rename = "type")]
    pub kind: ContainerType,
    /// The customer's bucket of an external container: its fields as given (see
    /// the `ExternalInput` schema), the secret shown as `"********"`.
    #[schema(value_type = Option<Object>)]
    pub external: Option<External>,
    pub quota_bytes: i64,
    pub quota_files: Option<i64>,
    pub total_bytes: i64,
    pub total_files: i64,
    pub max_file_size: Option<i64>,
    pub allowed_classifications: Option<Vec<Classification>>,
    pub blocked_classifications: Option<Vec<Classification>>,
    pub threshold_action: ThresholdAction,
    pub threshold_bytes: Option<i64>,
    pub threshold_files: Option<i64>,
    pub threshold_grace_period: Option<i64>,
    pub threshold_bytes_target: Option<i64>,
    pub threshold_files_target: Option<i64>,
    pub threshold_total_bytes: i64,
    pub threshold_total_files: i64,
    pub threshold_available_bytes_percent: Option<f64>,
    pub threshold_available_files_percent: Option<f64>,
    #[serde(skip)]
    pub threshold_reached_at: Option<Timestamp>,
    pub unique: bool,
    #[serde(flatten)]
    pub keys: UniqueKeys,
    pub date_created: Timestamp,
    pub date_modified: Timestamp,
}

impl Container {
    /// True when the files' bytes are in the customer's own bucket: the container's and the
    /// customer's quotas and `max_containers` do not apply to it.
    pub fn is_external(&self) -> bool {
        self.kind.is_external()
    }
}

/// Who may read a file through the publish URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Publish {
    No,
    FileSid,
    FileAccessName,
}

impl Publish {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Publish::No => "no",
            Publish::FileSid => "file_sid",
            Publish::FileAccessName => "file_access_name",
        }
    }

    /// Parses the contract's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "no" => Some(Publish::No),
            "file_sid" => Some(Publish::FileSid),
            "file_access_name" => Some(Publish::FileAccessName),
            _ => None,
        }
    }
}

/// What a file refers to in the voice platform.
pub const REFERENCE_TYPES: [&str; 5] = ["none", "recording", "voicemail", "greeting", "conference"];

/// Audio facts read from the stored bytes.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct MediaInfo {
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_ms: u64,
    /// Bits per second.
    pub bitrate: u32,
}

/// A stored file's loudness (ITU-R BS.1770-4), measured once from its audio and kept with it
/// so every normalised copy starts from the same figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct LoudnessInfo {
    /// Integrated loudness, LUFS; `None` when nothing passes the gates (silence).
    pub integrated_lufs: Option<f64>,
    /// Integrated loudness of the channels mixed to mono, LUFS.
    pub mono_lufs: Option<f64>,
    /// Highest true peak, dBTP.
    pub true_peak_dbtp: f64,
}

/// A stored file's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FileRecord {
    pub file_sid: String,
    pub container_sid: String,
    pub customer_id: String,
    #[serde(skip)]
    pub blob_key: String,
    pub owner_id: Option<String>,
    pub reference_type: String,
    pub reference_id: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub tag: Option<String>,
    pub size: i64,
    pub mime_type: String,
    pub content_format: String,
    pub content_classification: Classification,
    pub media: Option<MediaInfo>,
    pub checksum_sha256: String,
    pub publish: Publish,
    pub file_access_name: String,
    pub expires_at: Option<Timestamp>,
    pub threshold_include: bool,
    pub unique: bool,
    #[serde(flatten)]
    pub keys: UniqueKeys,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub desired_format: Option<String>,
    pub desired_bitrate: Option<i64>,
    /// Target loudness (LUFS) the upload was normalised to.
    pub desired_loudness: Option<f64>,
    /// The stored audio's measured loudness, once something asked for it.
    #[serde(skip)]
    pub loudness: Option<LoudnessInfo>,
    pub date_last_accessed: Option<Timestamp>,
    pub date_created: Timestamp,
    pub date_modified: Timestamp,
}

impl FileRecord {
    /// A strong validator: changes whenever the content does.
    pub fn etag(&self) -> String {
        let n = self.checksum_sha256.len().min(32);
        format!("\"{}\"", &self.checksum_sha256[..n])
    }
}
