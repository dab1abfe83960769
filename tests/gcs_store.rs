//! The Google Cloud Storage blob store against fake-gcs-server (GCS's JSON API), at the store
//! level: what an external `gcp` container relies on — uploads byte-exact whatever their size,
//! ranged reads, nothing left by a failed or abandoned upload, deletes, and a refused key or a
//! missing bucket told apart from other failures.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use mediastore::store::blob::{BlobError, BlobStore, ByteStream};
use mediastore::store::blob_cache::BlobCache;
use mediastore::store::gcs::{GcsBlobs, GcsSettings, CHUNK_QUANTUM};

use common::fake_gcs::{fake_gcs, FakeGcs, TokenEndpoint};

/// A store on a fresh bucket of the emulator, with its own token endpoint.
struct Fixture {
    gcs: FakeGcs,
    bucket: String,
    tokens: TokenEndpoint,
    _cache_dir: tempfile::TempDir,
    cache: Arc<BlobCache>,
}

impl Fixture {
    async fn new() -> Option<Fixture> {
        let gcs = fake_gcs()?;
        let bucket = gcs.bucket().await;
        let tokens = TokenEndpoint::start().await;
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(BlobCache::new(&cache_dir.path().join("cache"), 64 << 20, 0).unwrap());
        Some(Fixture {
            gcs,
            bucket,
            tokens,
            _cache_dir: cache_dir,
            cache,
        })
    }

    fn settings(&self, bucket: &str, prefix: &str) -> GcsSettings {
        GcsSettings {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            service_account_json: self.tokens.service_account_json.clone(),
            endpoint: Some(self.gcs.endpoint.clone()),
            // Small chunks: a few MiB make a many-chunk resumable upload.
            chunk_size: CHUNK_QUANTUM,
        }
    }

    async fn store(&self) -> GcsBlobs {
        self.store_on(&self.bucket.clone(), "media").await
    }

    async fn store_on(&self, bucket: &str, prefix: &str) -> GcsBlobs {
        GcsBlobs::connect(self.settings(bucket, prefix), Arc::clone(&self.cache))
            .await
            .unwrap()
    }

    async fn objects(&self) -> Vec<String> {
        self.gcs.objects(&self.bucket).await
    }
}

/// Deterministic, non-repeating bytes.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

/// Writes `body` under `key` in uneven pieces and commits.
async fn put(store: &GcsBlobs, key: &str, body: &[u8]) -> Result<(), BlobError> {
    let mut w = store.begin(key).await?;
    for piece in body.chunks(100_003) {
        w.write(Bytes::copy_from_slice(piece)).await?;
    }
    w.commit().await
}

async fn collect(mut s: ByteStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

fn key(n: u32) -> String {
    format!("{n:032x}")
}

#[tokio::test]
async fn uploads_of_every_size_read_back_byte_exact() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let store = f.store().await;
    let cases = [
        (key(1), data(3 * 1024 * 1024 + 1000, 1)), // many chunks, a short last one
        (key(2), data(4 * CHUNK_QUANTUM, 2)),      // whole chunks: the last one is empty
        (key(3), data(10_000, 3)),                 // under one chunk: a single request
        (key(4), Vec::new()),                      // empty
    ];
    for (k, body) in &cases {
        put(&store, k, body).await.unwrap();
    }
    let mut listed = f.objects().await;
    listed.sort();
    assert_eq!(
        listed,
        cases
            .iter()
            .map(|(k, _)| format!("media/{k}"))
            .collect::<Vec<_>>()
    );
    for (k, body) in &cases {
        let blob = store.open(k).await.unwrap();
        assert_eq!(blob.len(), body.len() as u64, "{k}");
        let whole = collect(Arc::clone(&blob).stream(0, blob.len()))
            .await
            .unwrap();
        assert!(whole == *body, "{k}: stream differs");
        let streamed = collect(store.read_range(k, 0, body.len() as u64).await.unwrap())
            .await
            .unwrap();
        assert!(streamed == *body, "{k}: read_range differs");
        let copy = store.local_copy(k).await.unwrap();
        assert!(std::fs::read(copy.path()).unwrap() == *body, "{k}: copy");
    }
    let mut keys: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        cases.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        f.tokens.issued.load(Ordering::SeqCst),
        1,
        "one token serves every request until it is near expiry"
    );
}

#[tokio::test]
async fn ranges_read_the_bytes_asked_and_a_short_body_is_an_error() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let store = f.store().await;
    let body = data(1_000_000, 7);
    put(&store, &key(1), &body).await.unwrap();

    let small = store.read_small(&key(1), 12_345, 1000).await.unwrap();
    assert_eq!(&small[..], &body[12_345..13_345]);
    let ranged = collect(store.read_range(&key(1), 500_000, 300_000).await.unwrap())
        .await
        .unwrap();
    assert!(ranged == body[500_000..800_000]);
    let blob = store.open(&key(1)).await.unwrap();
    let at = blob.read_at(999_990, 10).await.unwrap();
    assert_eq!(&at[..], &body[999_990..]);
    let part = collect(Arc::clone(&blob).stream(10, 20)).await.unwrap();
    assert_eq!(part, body[10..30]);

    // The store sends fewer bytes than asked (the object ends first): an error, never a clean
    // short end.
    let short = collect(store.read_range(&key(1), 999_000, 2000).await.unwrap()).await;
    assert_eq!(
        short.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::UnexpectedEof)
    );
    assert!(store.read_small(&key(1), 999_000, 2000).await.is_err());

    assert!(matches!(
        store.open(&key(9)).await,
        Err(BlobError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_aborted_or_dropped_upload_leaves_nothing() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let store = f.store().await;
    // Several chunks sent before the abort: a resumable session is under way.
    let mut w = store.begin(&key(1)).await.unwrap();
    w.write(Bytes::from(data(5 * CHUNK_QUANTUM, 1)))
        .await
        .unwrap();
    w.abort().await;

    let mut w = store.begin(&key(2)).await.unwrap();
    w.write(Bytes::from(data(3 * CHUNK_QUANTUM, 2)))
        .await
        .unwrap();
    drop(w);

    let mut w = store.begin(&key(3)).await.unwrap();
    w.write(Bytes::from_static(b"small")).await.unwrap();
    w.abort().await;

    // The dropped writer cancels its session in the background.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(f.objects().await, Vec::<String>::new());
    assert!(store.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_removes_the_object_and_deleting_again_is_fine() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let store = f.store().await;
    put(&store, &key(1), &data(2 * CHUNK_QUANTUM + 5, 1))
        .await
        .unwrap();
    put(&store, &key(2), b"kept").await.unwrap();
    // Read once so the node's cache holds a copy: a delete must drop it too.
    store.local_copy(&key(1)).await.unwrap();

    store.delete(&key(1)).await.unwrap();
    assert_eq!(f.objects().await, vec![format!("media/{}", key(2))]);
    store.delete(&key(1)).await.unwrap();
    assert!(matches!(
        store.open(&key(1)).await,
        Err(BlobError::NotFound(_))
    ));
    assert!(matches!(
        store.local_copy(&key(1)).await,
        Err(BlobError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_store_sees_only_its_prefix() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let a = f.store_on(&f.bucket, "a").await;
    let b = f.store_on(&f.bucket, "b/deeper").await;
    put(&a, &key(1), b"one").await.unwrap();
    put(&b, &key(2), b"two").await.unwrap();
    let keys = |v: Vec<mediastore::store::blob::BlobEntry>| -> Vec<String> {
        v.into_iter().map(|e| e.key).collect()
    };
    assert_eq!(keys(a.list().await.unwrap()), vec![key(1)]);
    assert_eq!(keys(b.list().await.unwrap()), vec![key(2)]);
    let mut all = f.objects().await;
    all.sort();
    assert_eq!(
        all,
        vec![format!("a/{}", key(1)), format!("b/deeper/{}", key(2))]
    );
}

#[tokio::test]
async fn a_refused_key_is_denied_and_a_missing_bucket_is_told_apart() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    // A revoked key: the token endpoint refuses every grant.
    f.tokens.refuse.store(true, Ordering::SeqCst);
    let store = f.store().await;
    assert!(matches!(
        put(&store, &key(1), b"x").await,
        Err(BlobError::Denied(_))
    ));
    assert!(matches!(
        put(&store, &key(1), &data(3 * CHUNK_QUANTUM, 1)).await,
        Err(BlobError::Denied(_))
    ));
    assert!(matches!(store.list().await, Err(BlobError::Denied(_))));
    assert!(matches!(
        store.open(&key(1)).await,
        Err(BlobError::Denied(_))
    ));
    assert!(matches!(store.check().await, Err(BlobError::Denied(_))));
    f.tokens.refuse.store(false, Ordering::SeqCst);
    store.check().await.unwrap();

    let gone = f.store_on("no-such-bucket", "media").await;
    assert!(matches!(gone.check().await, Err(BlobError::NoBucket(b)) if b == "no-such-bucket"));
    assert!(matches!(
        put(&gone, &key(1), b"x").await,
        Err(BlobError::NoBucket(_))
    ));
    assert!(matches!(
        put(&gone, &key(1), &data(3 * CHUNK_QUANTUM, 1)).await,
        Err(BlobError::NoBucket(_))
    ));
    assert!(matches!(gone.list().await, Err(BlobError::NoBucket(_))));
    assert!(matches!(
        gone.open(&key(1)).await,
        Err(BlobError::NoBucket(_))
    ));
    assert!(matches!(
        gone.read_small(&key(1), 0, 1).await,
        Err(BlobError::NoBucket(_))
    ));
}

#[tokio::test]
async fn a_malformed_key_is_refused_naming_the_field() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let mut settings = f.settings(&f.bucket, "media");
    settings.service_account_json = r#"{"client_email":"a@b","private_key":"nope"}"#.into();
    match GcsBlobs::connect(settings, Arc::clone(&f.cache)).await {
        Err(BlobError::Config(m)) => assert!(m.starts_with("service_account_json"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a malformed key was accepted"),
    }
}
