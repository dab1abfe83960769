//! The OpenAPI 3.1 document (`/openapi.json`, rendered at `/docs`).
//!
//! Paths come from the handlers' `#[utoipa::path]` attributes, collected by the same
//! `utoipa_axum` list that builds the router (`routes`), so a route cannot exist without its
//! entry. Response schemas are derived from the types the handlers serialize. What the handlers
//! parse by hand (JSON fields checked one by one, the publish URI's query) is described here by
//! doc-only types, next to the parsers' field lists they mirror.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, ObjectBuilder, Type};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::server::X_REQUEST_ID;

/// Paths that are deliberately not in the document: the document itself and the pages that
/// render things for people.
pub const UNDOCUMENTED: &[&str] = &[
    "/openapi.json",
    "/docs",
    "/docs/",
    "/docs/{*rest}",
    "/console",
    "/console/",
    "/console/{asset}",
];

/// The document's fixed parts; `routes` adds the paths, then [`Conventions`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mediastore",
        description = "Storage and transcoding server for voice and media platforms. \
            Every answer carries `X-Request-Id` (the request's, when sane, else a new one). \
            Errors have one form (`ErrorBody`).",
    ),
    components(schemas(super::error::ErrorBody, super::error::FieldError)),
    tags(
        (name = "customers", description = "Customers and their tokens (admin token)"),
        (name = "account", description = "The calling customer"),
        (name = "containers", description = "Containers and their policies"),
        (name = "files", description = "Upload, list, change, delete, read"),
        (name = "public", description = "Publish URI and signed links (no token)"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

/// What applies to every operation: bearer auth as a scheme, operation ids qualified by their tag,
/// and the request id header on every request and answer. Applied once the paths are in.
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let id_param: Parameter = ParameterBuilder::new()
            .name("X-Request-Id")
            .parameter_in(ParameterIn::Header)
            .description(Some(
                "The request's id, echoed in the answer and in every log line of the request; \
                 1-64 characters of A-Z a-z 0-9 - _ . : + / =, else one is made",
            ))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build();
        let id_header = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some("The request's id"))
            .build();
        for item in api.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.head,
                &mut item.options,
                &mut item.put,
            ]
            .into_iter()
            .flatten()
            {
                // Handlers are named for what they do within their resource (`get`, `list`):
                // the tag makes the operation id unique across the document.
                if let (Some(tag), Some(id)) = (
                    op.tags.as_ref().and_then(|t| t.first()),
                    op.operation_id.as_mut(),
                ) {
                    *id = format!("{tag}_{id}");
                }
                op.parameters
                    .get_or_insert_with(Vec::new)
                    .push(id_param.clone());
                for resp in op.responses.responses.values_mut() {
                    if let utoipa::openapi::RefOr::T(r) = resp {
                        r.headers
                            .insert(X_REQUEST_ID.to_string(), id_header.clone());
                    }
                }
            }
        }
    }
}

/// `POST /v1/customers` and `PATCH /v1/customers/{customer_id}` (unknown fields: 400).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CustomerInput {
    /// Required at creation.
    name: Option<String>,
    /// Default 10 GiB.
    quota_bytes: Option<i64>,
    /// Default 2.
    max_containers: Option<i64>,
}

/// `POST /v1/containers` (an empty object takes every default) and
/// `PATCH /v1/containers/{container_sid}`.
// These input types are never serialized: `Serialize` lets serde's `flatten` and `rename` shape
// their schemas as they shape the answers'.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ContainerInput {
    /// `internal` (default), `aws`, `gcp` or `azure`; fixed at creation.
    #[serde(rename = "type")]
    kind: Option<crate::domain::external::ContainerType>,
    /// The customer's bucket (types `aws`, `gcp`, `azure`); checked by writing and removing a
    /// probe object (422 naming the field on failure).
    external: Option<ExternalInput>,
    /// Default 1 GiB.
    quota_bytes: Option<i64>,
    quota_files: Option<i64>,
    max_file_size: Option<i64>,
    allowed_classifications: Option<Vec<crate::domain::model::Classification>>,
    blocked_classifications: Option<Vec<crate::domain::model::Classification>>,
    threshold_action: Option<crate::domain::model::ThresholdAction>,
    threshold_bytes: Option<i64>,
    threshold_files: Option<i64>,
    /// Seconds.
    threshold_grace_period: Option<i64>,
    threshold_bytes_target: Option<i64>,
    threshold_files_target: Option<i64>,
    unique: Option<bool>,
    /// The six key fields (`unique` sets must differ in them).
    #[serde(flatten)]
    keys: crate::domain::model::UniqueKeys,
}

/// An external container's bucket. `aws`: `bucket`, `prefix`?, `region`, `endpoint`?,
/// `access_key_id`, `secret_access_key`; `gcp`: `bucket`, `prefix`?, `service_account_json`,
/// `endpoint`?; `azure`: `account`, `container`, `prefix`?, `access_key`, `endpoint`?. Secrets
/// are write-only (`"********"` in answers). `endpoint` only to hosts the operator lists
/// (`--external-endpoints`), else the provider's public HTTPS endpoint.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ExternalInput {
    bucket: Option<String>,
    prefix: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    /// The service-account key file, as a JSON object or string.
    service_account_json: Option<serde_json::Value>,
    account: Option<String>,
    container: Option<String>,
    access_key: Option<String>,
}

/// A file's writable fields: the `file_object` part or the query of an upload, and the body of
/// `PATCH /v1/files/{file_sid}`.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct FileInput {
    /// The container; the customer's default container when absent.
    container_sid: Option<String>,
    /// 1-255 characters, no `/`, `\`, NUL or control characters.
    name: Option<String>,
    description: Option<String>,
    tag: Option<String>,
    owner_id: Option<String>,
    /// `none`, `recording`, `voicemail`, `greeting` or `conference`.
    reference_type: Option<String>,
    reference_id: Option<String>,
    mime_type: Option<String>,
    content_format: Option<String>,
    content_classification: Option<crate::domain::model::Classification>,
    publish: Option<crate::domain::model::Publish>,
    file_access_name: Option<String>,
    /// RFC 3339, at least one hour ahead.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    threshold_include: Option<bool>,
    unique: Option<bool>,
    /// The six key fields (`unique` sets must differ in them).
    #[serde(flatten)]
    keys: crate::domain::model::UniqueKeys,
    /// `audio` enables `desired_format` / `desired_bitrate`.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Upload-time conversion target (`al alaw flac g722 mp3 mp4 ogg ul ulaw wav`).
    desired_format: Option<String>,
    /// kbit/s: 8 16 24 32 40 48 64 80 96 112 128 160 192 224 256 320.
    desired_bitrate: Option<i64>,
    /// LUFS, -40 to -5: the audio is stored normalised to this integrated loudness.
    desired_loudness: Option<f64>,
}

/// A multipart upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// JSON of the file's fields.
    file_object: Option<FileInput>,
    /// The bytes; the part's filename is the `name` when none is given.
    #[schema(value_type = String, format = Binary)]
    data: Vec<u8>,
}

/// `POST /v1/admin/clock` (only with the hidden `--test-clock`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClockInput {
    advance_seconds: i64,
}

/// `GET /v1/containers` paging.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageQuery {
    /// From 1 (default 1).
    page: Option<i64>,
    /// 1-100 (default 20).
    limit: Option<i64>,
}

/// `GET /v1/files` filters and paging (any other parameter: 400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FileListQuery {
    container_sid: Option<String>,
    tag: Option<String>,
    reference_type: Option<String>,
    reference_id: Option<String>,
    owner_id: Option<String>,
    name: Option<String>,
    /// From 1 (default 1).
    page: Option<i64>,
    /// 1-100 (default 20).
    limit: Option<i64>,
}

/// What the publish URI and signed links take in their query (`serve::overrides`,
/// `transcode::variant`, `transcode::waveform`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ServeQuery {
    /// `inline` (default) or `attachment`.
    disposition: Option<String>,
    /// File name for `Content-Disposition`.
    disposition_name: Option<String>,
    /// Overrides `Content-Type`.
    content_type: Option<String>,
    /// `no` (`Cache-Control: no-cache`) or seconds (`public, max-age=`); wins over
    /// `cache_control`.
    cache_headers: Option<String>,
    /// A `Cache-Control` directive passed through.
    cache_control: Option<String>,
    /// Convert on the fly: `al alaw flac g722 mp3 mp4 ogg ul ulaw wav`.
    f: Option<String>,
    /// Lower bitrate, kbit/s (ignored when not lower than the stored file's).
    br: Option<i64>,
    /// `json` or `dat`: the audio's peaks (audiowaveform version 2); not with `f`/`br`.
    waveform: Option<String>,
    /// 32-65536 (default 256).
    samples_per_pixel: Option<i64>,
    /// 8 (default) or 16.
    bits: Option<i64>,
    /// One series per channel.
    split_channels: Option<bool>,
    /// LUFS, -40 to -5: the audio normalised to this integrated loudness (true peak at most
    /// -1 dBTP, gain at most +20 dB); with `f`/`br` or alone; not with `waveform`.
    norm: Option<f64>,
}

/// A signed link's query: `uri_download` as the API gave it.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LinkQuery {
    /// Unix time the link expires at.
    expires: i64,
    /// HMAC of the file sid and `expires`.
    signature: String,
}

/// The request headers of a read (RFC 9110 conditionals and ranges).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct ReadHeaders {
    /// `bytes=a-b`, `a-`, `-n`, or several (206 `multipart/byteranges`).
    #[param(rename = "Range")]
    range: Option<String>,
    /// An ETag or HTTP date: the range applies only when it matches.
    #[param(rename = "If-Range")]
    if_range: Option<String>,
    #[param(rename = "If-None-Match")]
    if_none_match: Option<String>,
    #[param(rename = "If-Modified-Since")]
    if_modified_since: Option<String>,
    #[param(rename = "If-Match")]
    if_match: Option<String>,
    #[param(rename = "If-Unmodified-Since")]
    if_unmodified_since: Option<String>,
}
