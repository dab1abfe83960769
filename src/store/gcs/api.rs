//! The requests of GCS's JSON API we make, authorised, with their answers mapped to
//! [`BlobError`]: a refused token is [`BlobError::Denied`], a missing bucket
//! [`BlobError::NoBucket`], a missing object [`BlobError::NotFound`].

use std::ops::Range;

use async_trait::async_trait;
use futures_util::StreamExt;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use super::auth::Tokens;
use crate::store::blob::{BlobError, ByteStream};
use crate::store::remote::RangedGet;

/// Characters kept as they are in an object name in a URL path (GCS wants every other one,
/// `/` included, percent-encoded).
const NAME: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One bucket's objects, under a prefix, as GCS's JSON API serves them.
pub struct Bucket {
    client: reqwest::Client,
    tokens: Tokens,
    /// The API's base URL, without a trailing `/`.
    base: Url,
    bucket: String,
    /// `prefix/`, or empty.
    prefix: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("base", &self.base.as_str())
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// An object as a listing shows it.
#[derive(Debug, serde::Deserialize)]
pub struct Listed {
    pub name: String,
    #[serde(default)]
    pub updated: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListPage {
    #[serde(default)]
    items: Vec<Listed>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ObjectMeta {
    /// A decimal string, as the JSON API sends 64-bit numbers.
    size: String,
}

/// A transport failure (no answer at all).
pub fn unreachable(e: reqwest::Error) -> BlobError {
    BlobError::Remote(format!("google cloud storage: {e}"))
}

impl Bucket {
    /// The objects of `bucket` under `prefix` at `base` (e.g. `https://storage.googleapis.com`).
    pub fn new(
        client: reqwest::Client,
        tokens: Tokens,
        base: Url,
        bucket: &str,
        prefix: &str,
    ) -> Self {
        let prefix = prefix.trim_matches('/');
        Bucket {
            client,
            tokens,
            base,
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    /// The object name of blob `key`.
    pub fn object(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The URL of `path` (segments joined as they are) under the API's base.
    fn url(&self, path: &str) -> Result<Url, BlobError> {
        let base = self.base.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}"))
            .map_err(|e| BlobError::Config(format!("endpoint: {e}")))
    }

    /// `/storage/v1/b/{bucket}/o/{object}`.
    fn object_url(&self, key: &str) -> Result<Url, BlobError> {
        let bucket = percent_encoding::utf8_percent_encode(&self.bucket, NAME);
        let name = self.object(key);
        let object = percent_encoding::utf8_percent_encode(&name, NAME);
        self.url(&format!("/storage/v1/b/{bucket}/o/{object}"))
    }

    /// `/upload/storage/v1/b/{bucket}/o` with `uploadType` and the object's name.
    pub fn upload_url(&self, key: &str, upload_type: &str) -> Result<Url, BlobError> {
        let bucket = percent_encoding::utf8_percent_encode(&self.bucket, NAME);
        let mut url = self.url(&format!("/upload/storage/v1/b/{bucket}/o"))?;
        url.query_pairs_mut()
            .append_pair("uploadType", upload_type)
            .append_pair("name", &self.object(key));
        Ok(url)
    }

    /// Whether `url` (a resumable session GCS handed us) is on the API's own host: a session
    /// anywhere else is refused, so a store's answer cannot send our bytes elsewhere.
    pub fn is_ours(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    /// A request with the current token.
    pub async fn request(&self, method: Method, url: Url) -> Result<RequestBuilder, BlobError> {
        let bearer = self.tokens.bearer().await?;
        Ok(self.client.request(method, url).bearer_auth(bearer))
    }

    /// Sends `request`; a refused token is forgotten (the next request fetches another) and
    /// answered [`BlobError::Denied`].
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, BlobError> {
        let answer = request.send().await.map_err(unreachable)?;
        if matches!(
            answer.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            self.tokens.forget().await;
            return Err(BlobError::Denied(format!(
                "google cloud storage refused the service account {} on bucket {} ({})",
                self.tokens.account().email(),
                self.bucket,
                answer.status()
            )));
        }
        Ok(answer)
    }

    /// The error of an unexpected answer to a request about the bucket as a whole (a 404 means
    /// the bucket is missing).
    pub fn bucket_error(&self, answer: &Response, what: &str) -> BlobError {
        if answer.status() == StatusCode::NOT_FOUND {
            return BlobError::NoBucket(self.bucket.clone());
        }
        BlobError::Remote(format!(
            "google cloud storage answered {what} with {}",
            answer.status()
        ))
    }

    /// The error of an unexpected answer to a request about `key`: a 404 is the object missing,
    /// or the bucket when that is what is missing.
    async fn object_error(&self, answer: &Response, key: &str, what: &str) -> BlobError {
        if answer.status() != StatusCode::NOT_FOUND {
            return BlobError::Remote(format!(
                "google cloud storage answered {what} of {key} with {}",
                answer.status()
            ));
        }
        match self.exists().await {
            Ok(()) => BlobError::NotFound(key.to_string()),
            Err(e) => e,
        }
    }

    /// Ok when the bucket is there and ours to list (one listing of at most one object: it
    /// needs no more than the permissions the store uses anyway).
    pub async fn exists(&self) -> Result<(), BlobError> {
        self.page(None, 1).await.map(|_| ())
    }

    /// One page of the objects directly under the prefix, from `token`.
    async fn page(
        &self,
        token: Option<&str>,
        max: u32,
    ) -> Result<(Vec<Listed>, Option<String>), BlobError> {
        let bucket = percent_encoding::utf8_percent_encode(&self.bucket, NAME);
        let mut url = self.url(&format!("/storage/v1/b/{bucket}/o"))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("prefix", &self.prefix)
                .append_pair("delimiter", "/")
                .append_pair("maxResults", &max.to_string())
                .append_pair("fields", "items(name,updated),nextPageToken");
            if let Some(t) = token {
                q.append_pair("pageToken", t);
            }
        }
        let answer = self.send(self.request(Method::GET, url).await?).await?;
        if !answer.status().is_success() {
            return Err(self.bucket_error(&answer, "a listing"));
        }
        let bytes = answer.bytes().await.map_err(unreachable)?;
        let page: ListPage = serde_json::from_slice(&bytes)
            .map_err(|e| BlobError::Remote(format!("google cloud storage listing: {e}")))?;
        Ok((page.items, page.next_page_token))
    }

    /// Every object directly under the prefix, with the prefix taken off its name.
    pub async fn list(&self) -> Result<Vec<Listed>, BlobError> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (items, next) = self.page(token.as_deref(), 1000).await?;
            all.extend(items.into_iter().filter_map(|mut o| {
                o.name = o.name.strip_prefix(&self.prefix)?.to_string();
                Some(o)
            }));
            match next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(all),
            }
        }
    }

    /// Removes `key`; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let url = self.object_url(key)?;
        let answer = self.send(self.request(Method::DELETE, url).await?).await?;
        match answer.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.object_error(&answer, key, "a delete").await),
        }
    }

    /// A GET of `key`'s bytes (`alt=media`), of `range` when given.
    async fn media(&self, key: &str, range: Option<&Range<u64>>) -> Result<Response, BlobError> {
        let mut url = self.object_url(key)?;
        url.query_pairs_mut().append_pair("alt", "media");
        let mut request = self.request(Method::GET, url).await?;
        if let Some(r) = range {
            request = request.header(
                reqwest::header::RANGE,
                format!("bytes={}-{}", r.start, r.end - 1),
            );
        }
        let answer = self.send(request).await?;
        if !answer.status().is_success() {
            return Err(self.object_error(&answer, key, "a read").await);
        }
        Ok(answer)
    }
}

/// A response's body as our stream (a transport error mid-way is an `Err` item).
fn body(answer: Response) -> ByteStream {
    Box::pin(
        answer
            .bytes_stream()
            .map(|r| r.map_err(std::io::Error::other)),
    )
}

#[async_trait]
impl RangedGet for Bucket {
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<ByteStream, BlobError> {
        let answer = self.media(key, Some(&range)).await?;
        let whole_answer = answer.status() == StatusCode::OK;
        // A store that ignores Range sends the whole object: only good when that is the range.
        if whole_answer && !(range.start == 0 && answer.content_length() == Some(range.end)) {
            return Err(BlobError::Remote(format!(
                "google cloud storage ignored the range {}-{} of {key}",
                range.start,
                range.end - 1
            )));
        }
        Ok(body(answer))
    }

    async fn get_whole(&self, key: &str) -> Result<(u64, ByteStream), BlobError> {
        let answer = self.media(key, None).await?;
        let len = answer.content_length().ok_or_else(|| {
            BlobError::Remote(format!("google cloud storage sent {key} without a length"))
        })?;
        Ok((len, body(answer)))
    }

    async fn size(&self, key: &str) -> Result<u64, BlobError> {
        let url = self.object_url(key)?;
        let answer = self.send(self.request(Method::GET, url).await?).await?;
        if !answer.status().is_success() {
            return Err(self.object_error(&answer, key, "a metadata read").await);
        }
        let bytes = answer.bytes().await.map_err(unreachable)?;
        let meta: ObjectMeta = serde_json::from_slice(&bytes)
            .map_err(|e| BlobError::Remote(format!("google cloud storage metadata: {e}")))?;
        meta.size
            .parse()
            .map_err(|_| BlobError::Remote(format!("google cloud storage size {:?}", meta.size)))
    }
}
