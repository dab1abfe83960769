//! The fields a customer sets on a file, at upload and by PATCH.

use super::container::KeyChanges;
use super::error::DomainError;
use super::input::{Fields, Patch};
use super::model::{Classification, FileRecord, Publish, REFERENCE_TYPES};
use super::rules::{
    check_access_name, check_bitrate, check_description, check_identifier, check_loudness,
    check_mime_type, check_name, check_tag, check_target_format, parse_expires_at,
};
use super::time::Timestamp;

/// Whether fields come with an upload or a later PATCH (some are only for uploads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    Upload,
    Patch,
}

/// A customer's file fields, validated.
#[derive(Debug, Default)]
pub struct FileChanges {
    pub container_sid: Option<String>,
    pub owner_id: Patch<String>,
    pub reference_type: Patch<String>,
    pub reference_id: Patch<String>,
    pub name: Patch<String>,
    pub description: Patch<String>,
    pub tag: Patch<String>,
    pub mime_type: Patch<String>,
    pub content_format: Option<String>,
    pub content_classification: Option<Classification>,
    pub publish: Patch<Publish>,
    pub file_access_name: Patch<String>,
    pub expires_at: Patch<Timestamp>,
    pub threshold_include: Patch<bool>,
    pub unique: Patch<bool>,
    pub keys: KeyChanges,
    pub kind: Option<String>,
    pub desired_format: Option<String>,
    pub desired_bitrate: Option<i64>,
    /// Target loudness, tenths of a LUFS.
    pub desired_loudness: Option<i16>,
}

impl FileChanges {
    /// Reads and checks file fields; unknown and read-only fields are refused.
    pub fn parse(mut f: Fields, mode: FileMode, now: Timestamp) -> Result<Self, DomainError> {
        let upload_only = |f: &mut Fields, name: &str| -> Result<Patch<String>, DomainError> {
            let v = f.string(name)?;
            if mode == FileMode::Patch && v.is_present() {
                return Err(DomainError::invalid(name, "can only be set at upload"));
            }
            Ok(v)
        };
        let container_sid = upload_only(&mut f, "container_sid")?.value();
        let content_format = upload_only(&mut f, "content_format")?.value();
        if let Some(cf) = &content_format {
            if cf.is_empty() || cf.len() > 16 || !cf.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(DomainError::invalid(
                    "content_format",
                    "must be a format name such as wav",
                ));
            }
        }
        let content_classification = match upload_only(&mut f, "content_classification")?.value() {
            Some(s) => Some(Classification::parse(&s).ok_or_else(|| {
                DomainError::invalid(
                    "content_classification",
                    "must be archive, document, executable, media or unknown",
                )
            })?),
            None => None,
        };
        let kind = upload_only(&mut f, "type")?.value();
        if let Some(k) = &kind {
            if k != "audio" && k != "file" {
                return Err(DomainError::invalid("type", "must be audio or file"));
            }
        }
        let desired_format = upload_only(&mut f, "desired_format")?.value();
        if let Some(df) = &desired_format {
            check_target_format("desired_format", df)?;
        }
        let desired_bitrate = f.int("desired_bitrate", i64::MIN, i64::MAX)?;
        if mode == FileMode::Patch && desired_bitrate.is_present() {
            return Err(DomainError::invalid(
                "desired_bitrate",
                "can only be set at upload",
            ));
        }
        let desired_bitrate = desired_bitrate.value();
        let desired_loudness = f.number("desired_loudness")?;
        if mode == FileMode::Patch && desired_loudness.is_present() {
            return Err(DomainError::invalid(
                "desired_loudness",
                "can only be set at upload",
            ));
        }
        let desired_loudness = desired_loudness
            .value()
            .map(|l| check_loudness("desired_loudness", l))
            .transpose()?;
        if let Some(br) = desired_bitrate {
            check_bitrate("desired_bitrate", br)?;
        }

        let name = f.string("name")?;
        match &name {
            Patch::Set(n) => check_name("name", n)?,
            Patch::Null if mode == FileMode::Patch => {
                return Err(DomainError::invalid("name", "cannot be null"))
            }
            _ => {}
        }
        let description = f.string("description")?;
        if let Patch::Set(d) = &description {
            check_description(d)?;
        }
        let tag = f.string("tag")?;
        if let Patch::Set(t) = &tag {
            check_tag(t)?;
        }
        let mime_type = f.string("mime_type")?;
        if let Patch::Set(m) = &mime_type {
            check_mime_type("mime_type", m)?;
        }
        let owner_id = f.string("owner_id")?;
        if let Patch::Set(o) = &owner_id {
            check_identifier("owner_id", o)?;
        }
        let reference_id = f.string("reference_id")?;
        if let Patch::Set(r) = &reference_id {
            check_identifier("reference_id", r)?;
        }
        let reference_type = f.string("reference_type")?;
        if let Patch::Set(r) = &reference_type {
            if !REFERENCE_TYPES.contains(&r.as_str()) {
                return Err(DomainError::invalid(
                    "reference_type",
                    "must be none, recording, voicemail, greeting or conference",
                ));
            }
        }
        let publish = match f.string("publish")? {
            Patch::Set(p) => Patch::Set(Publish::parse(&p).ok_or_else(|| {
                DomainError::invalid("publish", "must be no, file_sid or file_access_name")
            })?),
            Patch::Null => Patch::Set(Publish::No),
            Patch::Absent => Patch::Absent,
        };
        let file_access_name = f.string("file_access_name")?;
        match &file_access_name {
            Patch::Set(n) => check_access_name(n)?,
            Patch::Null => return Err(DomainError::invalid("file_access_name", "cannot be null")),
            Patch::Absent => {}
        }
        let expires_at = match f.string("expires_at")? {
            Patch::Set(s) if s.is_empty() => Patch::Null,
            Patch::Set(s) => Patch::Set(parse_expires_at(&s, now)?),
            Patch::Null => Patch::Null,
            Patch::Absent => Patch::Absent,
        };
        let changes = FileChanges {
            container_sid,
            owner_id,
            reference_type,
            reference_id,
            name,
            description,
            tag,
            mime_type,
            content_format,
            content_classification,
            publish,
            file_access_name,
            expires_at,
            threshold_include: f.bool("threshold_include")?,
            unique: f.bool("unique")?,
            keys: KeyChanges::parse(&mut f)?,
            kind,
            desired_format,
            desired_bitrate,
            desired_loudness,
        };
        f.finish()?;
        Ok(changes)
    }

    /// Applies PATCH changes to `file`.
    pub fn apply(self, mut file: FileRecord, now: Timestamp) -> FileRecord {
        fn set<T>(slot: &mut Option<T>, p: Patch<T>) {
            if let Some(v) = p.change() {
                *slot = v;
            }
        }
        set(&mut file.owner_id, self.owner_id);
        if let Some(v) = self.reference_type.change() {
            file.reference_type = v.unwrap_or_else(|| "none".into());
        }
        set(&mut file.reference_id, self.reference_id);
        if let Patch::Set(n) = self.name {
            file.name = n;
        }
        set(&mut file.description, self.description);
        set(&mut file.tag, self.tag);
        if let Some(m) = self.mime_type.change() {
            file.mime_type = m.unwrap_or_else(|| "application/octet-stream".into());
        }
        if let Patch::Set(p) = self.publish {
            file.publish = p;
        }
        if let Patch::Set(n) = self.file_access_name {
            file.file_access_name = n;
        }
        set(&mut file.expires_at, self.expires_at);
        if let Some(v) = self.threshold_include.change() {
            file.threshold_include = v.unwrap_or(true);
        }
        if let Some(v) = self.unique.change() {
            file.unique = v.unwrap_or(false);
        }
        self.keys.apply(&mut file.keys);
        file.date_modified = now;
        file
    }
}
