//! Copying metadata between stores (`mediastore migrate`'s metadata side): a populated store's
//! dump, imported into an empty one, dumps again the same; importing twice changes nothing.
#![allow(clippy::unwrap_used)]

mod common;

use mediastore::domain::container::new_container;
use mediastore::domain::model::{Classification, Customer, FileRecord, MediaInfo, Publish};
use mediastore::domain::Timestamp;
use mediastore::store::meta::MetaDump;
use mediastore::store::{open_meta, MetaStore};

fn customer(id: &str) -> Customer {
    Customer {
        id: id.into(),
        name: format!("customer {id}"),
        quota_bytes: 1_000_000,
        max_containers: 5,
        total_bytes: 0,
        total_files: 0,
        container_count: 0,
        date_created: Timestamp(1_700_000_000_123),
        date_modified: Timestamp(1_700_000_000_456),
    }
}

fn file(sid: &str, owner: &Customer, container_sid: &str, size: i64, include: bool) -> FileRecord {
    FileRecord {
        file_sid: sid.into(),
        container_sid: container_sid.into(),
        customer_id: owner.id.clone(),
        blob_key: format!("blob-{sid}"),
        owner_id: Some("owner".into()),
        reference_type: "call".into(),
        reference_id: Some("ref".into()),
        name: format!("{sid}.wav"),
        description: None,
        tag: Some("t".into()),
        size,
        mime_type: "audio/wav".into(),
        content_format: "wav".into(),
        content_classification: Classification::Media,
        media: Some(MediaInfo {
            codec: "pcm_s16le".into(),
            sample_rate: 8000,
            channels: 1,
            duration_ms: 1000,
            bitrate: 128,
        }),
        checksum_sha256: "00".repeat(32),
        publish: Publish::FileSid,
        file_access_name: format!("name-{sid}"),
        expires_at: Some(Timestamp(1_800_000_000_000)),
        threshold_include: include,
        unique: false,
        keys: Default::default(),
        kind: Some("audio".into()),
        desired_format: None,
        desired_bitrate: None,
        desired_loudness: None,
        loudness: None,
        date_last_accessed: Some(Timestamp(1_700_000_001_000)),
        date_created: Timestamp(1_700_000_000_999),
        date_modified: Timestamp(1_700_000_000_999),
    }
}

/// A store with two customers (one with two tokens), three containers, files, and secrets.
async fn populate(meta: &dyn MetaStore) {
    let now = Timestamp(1_700_000_002_000);
    let a = customer("cust-a");
    let b = customer("cust-b");
    meta.create_customer(&a, "hash-a1").await.unwrap();
    meta.add_token(&a.id, "hash-a2", now).await.unwrap();
    meta.create_customer(&b, "hash-b1").await.unwrap();
    let mut ca = new_container("cont-a".into(), &a, now);
    ca.threshold_bytes = Some(150);
    meta.create_container(&ca).await.unwrap();
    let cb = meta
        .default_container(&b.id, new_container("cont-b".into(), &b, now))
        .await
        .unwrap();
    meta.create_container(&new_container("cont-c".into(), &a, now))
        .await
        .unwrap();
    // More files than one export page would need, if it were small; sids out of insert order.
    for i in 0..7 {
        let f = file(&format!("f{}", 7 - i), &a, "cont-a", 10 + i, i % 2 == 0);
        meta.insert_file(&f, now).await.unwrap();
    }
    meta.insert_file(&file("g1", &b, &cb.container_sid, 99, true), now)
        .await
        .unwrap();
    meta.secret_or_insert("link_signing_key", &[7; 32])
        .await
        .unwrap();
    meta.secret_or_insert("admin_token_sha256", &[8; 32])
        .await
        .unwrap();
}

async fn round_trip(target: &dyn MetaStore) {
    let dir = tempfile::tempdir().unwrap();
    let source = open_meta(&format!("sqlite://{}/src.db", dir.path().display()))
        .await
        .unwrap();
    populate(source.as_ref()).await;
    let dump: MetaDump = source.export().await.unwrap();
    assert_eq!(dump.customers.len(), 2);
    assert_eq!(dump.customers[0].tokens.len(), 2);
    assert_eq!(dump.containers.len(), 3);
    assert_eq!(dump.files.len(), 8);
    assert_eq!(dump.secrets.len(), 2);
    assert_eq!(
        dump.customers[0].customer.total_bytes,
        10 + 11 + 12 + 13 + 14 + 15 + 16
    );
    target.import(&dump).await.unwrap();
    assert_eq!(target.export().await.unwrap(), dump);
    // Resuming an interrupted copy: everything is there already, nothing changes.
    assert!(!target.import_file(&dump.files[0]).await.unwrap());
    assert!(!target.import_customer(&dump.customers[0]).await.unwrap());
    target.import(&dump).await.unwrap();
    assert_eq!(target.export().await.unwrap(), dump);
    // Paging by sid sees every file once, in order.
    let first = target.export_files_after(None, 3).await.unwrap();
    let next = target
        .export_files_after(Some(&first[2].file_sid), 3)
        .await
        .unwrap();
    assert_eq!(first.len() + next.len(), 6);
    assert_eq!(next[0].file_sid, dump.files[3].file_sid);
}

#[tokio::test]
async fn a_sqlite_dump_imports_into_a_fresh_sqlite_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let target = open_meta(&format!("sqlite://{}/dst.db", dir.path().display()))
        .await
        .unwrap();
    round_trip(target.as_ref()).await;
}

#[tokio::test]
async fn a_sqlite_dump_imports_into_postgres_unchanged() {
    let Some(url) = common::postgres::fresh_database() else {
        return;
    };
    let target = open_meta(&url).await.unwrap();
    round_trip(target.as_ref()).await;
}

#[tokio::test]
async fn the_first_secret_written_wins() {
    let dir = tempfile::tempdir().unwrap();
    let meta = open_meta(&format!("sqlite://{}/s.db", dir.path().display()))
        .await
        .unwrap();
    assert_eq!(
        meta.secret_or_insert("k", b"one").await.unwrap(),
        (b"one".to_vec(), true)
    );
    assert_eq!(
        meta.secret_or_insert("k", b"two").await.unwrap(),
        (b"one".to_vec(), false)
    );
    if let Some(url) = common::postgres::fresh_database() {
        let pg = open_meta(&url).await.unwrap();
        let (a, b) = tokio::join!(
            pg.secret_or_insert("k", b"a"),
            pg.secret_or_insert("k", b"b")
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.0, b.0, "both see the same value");
        assert!(a.1 ^ b.1, "exactly one inserted");
    }
}
