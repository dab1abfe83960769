//! Transcoding on the publish URI and at upload, through HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Server, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};

const FORMATS: [(&str, &str); 10] = [
    ("al", "audio/basic"),
    ("alaw", "audio/basic"),
    ("flac", "audio/flac"),
    ("g722", "audio/G722"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
    ("ogg", "audio/ogg"),
    ("ul", "audio/basic"),
    ("ulaw", "audio/basic"),
    ("wav", "audio/x-wav"),
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/media/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Probes bytes with the media pipeline (the hint names raw formats).
fn probe(bytes: &[u8], ext: &str) -> mediastore_media::MediaInfo {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("x.{ext}"));
    std::fs::write(&path, bytes).unwrap();
    mediastore_media::probe(&path, Some(ext)).unwrap_or_else(|e| panic!("{ext}: {e}"))
}

async fn published(s: &Server, token: &str, name: &str, bytes: Vec<u8>) -> (String, Value) {
    let (st, f) = s
        .upload_raw(token, &[("name", name), ("publish", "file_sid")], bytes)
        .await;
    assert_eq!(st, 201, "{f}");
    (f["publish_uri"].as_str().unwrap().to_string(), f)
}

async fn get(s: &Server, url: &str, range: Option<&str>) -> reqwest::Response {
    let mut r = s.client.get(url);
    if let Some(range) = range {
        r = r.header("range", range);
    }
    r.send().await.unwrap()
}

on_both_backends! {
async fn every_format_answers_its_content_type_and_decodes_back(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (uri, f) = published(&s, &c.token, "speech.wav", fixture("speech16k.wav")).await;
    let source_ms = f["media"]["duration_ms"].as_f64().unwrap();
    for (fmt, ct) in FORMATS {
        let r = get(&s, &format!("{uri}?f={fmt}"), None).await;
        assert_eq!(r.status(), 200, "{fmt}: {:?}", r.headers());
        assert_eq!(r.headers()["content-type"], ct, "{fmt}");
        let source_etag = format!("\"{}\"", &f["checksum_sha256"].as_str().unwrap()[..32]);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        if fmt != "wav" {
            assert_ne!(
                etag, source_etag,
                "{fmt}: a converted copy has its own ETag"
            );
        }
        let body = r.bytes().await.unwrap();
        let ext = match fmt {
            "al" => "alaw",
            "ul" => "ulaw",
            "mp4" => "m4a",
            other => other,
        };
        let info = probe(&body, ext);
        let ms = info.duration_ms as f64;
        assert!(
            (ms - source_ms).abs() <= source_ms * 0.02 + 30.0,
            "{fmt}: {ms} ms vs {source_ms} ms"
        );
    }
}
}

on_both_backends! {
async fn br_lowers_the_bitrate_and_is_ignored_when_not_lower(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (uri, f) = published(&s, &c.token, "music.mp3", fixture("music.mp3")).await;
    let source_bps = f["media"]["bitrate"].as_f64().unwrap();
    let r = get(&s, &format!("{uri}?br=64"), None).await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    let info = probe(&body, "mp3");
    let bps = body.len() as f64 * 8.0 / (info.duration_ms as f64 / 1000.0);
    assert!((bps - 64_000.0).abs() < 6_400.0, "{bps} bit/s");
    // Not lower than the stored bitrate: the stored file as it is.
    let high = if source_bps < 320_000.0 { 320 } else { 8 };
    let r = get(&s, &format!("{uri}?br={high}"), None).await;
    if high == 320 {
        assert_eq!(
            r.headers()["etag"].to_str().unwrap(),
            f["checksum_sha256"]
                .as_str()
                .map(|c| format!("\"{}\"", &c[..32]))
                .unwrap()
        );
        assert_eq!(r.bytes().await.unwrap(), fixture("music.mp3"));
    }
}
}

on_both_backends! {
async fn ranges_on_converted_copies_equal_the_slice_of_the_whole_copy_first_request_included(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (uri, _) = published(&s, &c.token, "music.wav", fixture("music44k.wav")).await;
    for (fmt, _) in FORMATS {
        let url = format!("{uri}?f={fmt}");
        // First request: nothing converted yet.
        let first = get(&s, &url, Some("bytes=100-2099")).await;
        assert_eq!(first.status(), 206, "{fmt}");
        let cr = first.headers()["content-range"]
            .to_str()
            .unwrap()
            .to_string();
        let first = first.bytes().await.unwrap();
        let head = s.client.head(&url).send().await.unwrap();
        let head_len: u64 = head.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let whole = get(&s, &url, None).await.bytes().await.unwrap();
        assert_eq!(
            head_len,
            whole.len() as u64,
            "{fmt}: HEAD length equals GET length"
        );
        assert_eq!(cr, format!("bytes 100-2099/{}", whole.len()), "{fmt}");
        assert_eq!(&first[..], &whole[100..2100], "{fmt}: first-request range");
        // Cached now.
        let again = get(&s, &url, Some("bytes=-500")).await;
        assert_eq!(again.status(), 206);
        assert_eq!(
            &again.bytes().await.unwrap()[..],
            &whole[whole.len() - 500..],
            "{fmt}: cached range"
        );
        let mid = get(&s, &url, Some("bytes=4000-4999,7000-7099")).await;
        assert_eq!(mid.status(), 206);
        assert!(mid.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("multipart/byteranges"));
    }
}
}

on_both_backends! {
async fn converted_copies_have_their_own_etag_and_answer_304(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (uri, f) = published(&s, &c.token, "speech.wav", fixture("speech8k.wav")).await;
    let r = get(&s, &format!("{uri}?f=mp3"), None).await;
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(
        etag,
        format!("\"{}\"", &f["checksum_sha256"].as_str().unwrap()[..32])
    );
    let r = s
        .client
        .get(format!("{uri}?f=mp3"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = s
        .client
        .get(format!("{uri}?f=mp3&br=16"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "another bitrate is another copy");
    let r = get(
        &s,
        &format!("{uri}?f=mp3&disposition=attachment&cache_headers=60"),
        None,
    )
    .await;
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("speech.mp3"));
    assert_eq!(r.headers()["cache-control"], "public, max-age=60");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = get(
        &s,
        &format!("{uri}?f=g722&content_type=application/octet-stream"),
        None,
    )
    .await;
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
}
}

on_both_backends! {
async fn bad_f_or_br_is_400_and_a_file_that_is_not_audio_is_415(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (uri, _) = published(&s, &c.token, "speech.wav", fixture("speech8k.wav")).await;
    for (q, field) in [
        ("f=exe", "f"),
        ("f=MP3", "f"),
        ("br=33", "br"),
        ("br=fast", "br"),
        ("f=mp3&br=1000", "br"),
    ] {
        let r = get(&s, &format!("{uri}?{q}"), None).await;
        assert_eq!(r.status(), 400, "{q}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["errors"][0]["field"], field, "{q}");
    }
    let (doc, _) = published(&s, &c.token, "notes.txt", b"just text".to_vec()).await;
    let r = get(&s, &format!("{doc}?f=mp3"), None).await;
    assert_eq!(r.status(), 415);
    // The signed link converts too.
    let (_, f) = published(&s, &c.token, "speech2.wav", fixture("speech8k.wav")).await;
    let link = f["uri_download"].as_str().unwrap();
    let r = get(&s, &format!("{link}&f=ulaw"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/basic");
}
}

on_both_backends! {
async fn upload_with_type_audio_stores_the_converted_file(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (st, f) = s
        .upload_multipart(
            &c.token,
            json!({"type": "audio", "desired_format": "g722"}),
            "greeting.mp3",
            fixture("speech.mp3"),
        )
        .await;
    assert_eq!(st, 201, "{f}");
    assert_eq!(f["content_format"], "g722");
    assert_eq!(f["mime_type"], "audio/G722");
    assert_eq!(f["name"], "greeting.g722");
    assert_eq!(f["media"]["sample_rate"], 16000);
    let size = f["size"].as_i64().unwrap();
    let sid = f["file_sid"].as_str().unwrap();
    let data = s
        .client
        .get(s.url(&format!("/v1/files/{sid}/data")))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(data.len() as i64, size);
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(
        acct["total_file_size"].as_i64(),
        Some(size),
        "quotas count the stored bytes"
    );
    // desired_bitrate alone lowers an mp3's bitrate.
    let (st, f) = s
        .upload_raw(
            &c.token,
            &[
                ("type", "audio"),
                ("desired_bitrate", "32"),
                ("name", "music.mp3"),
            ],
            fixture("music.mp3"),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(f["content_format"], "mp3");
    assert!(f["media"]["bitrate"].as_i64().unwrap() <= 35_000, "{f}");
    // Without "type": "audio" the file is stored as sent.
    let (_, f) = s
        .upload_raw(
            &c.token,
            &[("desired_format", "g722"), ("name", "as-sent.mp3")],
            fixture("speech.mp3"),
        )
        .await;
    assert_eq!(f["content_format"], "mp3");
    assert_eq!(f["size"].as_u64(), Some(fixture("speech.mp3").len() as u64));
}
}

on_both_backends! {
async fn undecodable_audio_at_upload_is_422_and_stores_nothing(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let mut junk = b"RIFF\x24\0\0\0WAVEfmt ".to_vec();
    junk.extend_from_slice(&[0xff; 200]);
    let (st, v) = s
        .upload_raw(
            &c.token,
            &[
                ("type", "audio"),
                ("desired_format", "mp3"),
                ("name", "bad.wav"),
            ],
            junk,
        )
        .await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "desired_format");
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(acct["total_file_count"], 0);
}
}

on_both_backends! {
async fn a_deleted_or_replaced_file_never_serves_a_stale_copy(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (st, a) = s
        .upload_raw(
            &c.token,
            &[
                ("publish", "file_access_name"),
                ("file_access_name", "greeting"),
            ],
            fixture("speech8k.wav"),
        )
        .await;
    assert_eq!(st, 201);
    let url = s.url("/f/greeting?f=mp3");
    let first = get(&s, &url, None).await.bytes().await.unwrap();
    assert_eq!(
        get(&s, &url, None).await.bytes().await.unwrap(),
        first,
        "served from the cache"
    );
    s.call(
        Method::DELETE,
        &format!("/v1/files/{}", a["file_sid"].as_str().unwrap()),
        &c.token,
        None,
    )
    .await;
    assert_eq!(get(&s, &url, None).await.status(), 404);
    // Another recording under the same name: its own copy, not the old one.
    s.upload_raw(
        &c.token,
        &[
            ("publish", "file_access_name"),
            ("file_access_name", "greeting"),
        ],
        common::tone_wav(3),
    )
    .await;
    let second = get(&s, &url, None).await.bytes().await.unwrap();
    assert_ne!(second, first);
    let info = probe(&second, "mp3");
    // An MP3 written as a stream carries the encoder's delay and padding (a few frames).
    assert!(
        (info.duration_ms as i64 - 3000).abs() < 250,
        "{}",
        info.duration_ms
    );
}
}

#[tokio::test]
async fn a_client_that_disconnects_frees_its_worker_and_a_full_pool_answers_503() {
    let s = Server::start_in(
        tempfile::tempdir().unwrap(),
        &["--admin-token", ADMIN, "--transcode-workers", "1"],
    )
    .await;
    let c = s.acme().await;
    let (uri, _) = published(&s, &c.token, "long.wav", common::tone_wav(1200)).await;
    // A long conversion holds the only worker while its client reads.
    let mut busy = get(&s, &format!("{uri}?f=mp3"), None).await;
    assert_eq!(busy.status(), 200);
    assert!(
        !busy.chunk().await.unwrap().unwrap().is_empty(),
        "bytes leave before the conversion ends"
    );
    let r = get(&s, &format!("{uri}?f=ogg"), None).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], 503);
    // The client goes away: the conversion stops and the worker is free at once.
    drop(busy);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = get(&s, &format!("{uri}?f=wav"), Some("bytes=0-99")).await;
    assert_eq!(r.status(), 206);
    assert!(s.log().contains("conversion cancelled"), "{}", s.log());
}

on_both_backends! {
async fn converted_copies_play_in_ffmpeg(backend: Backend) {
    if !common::have_tool("ffmpeg") {
        return;
    }
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (uri, _) = published(&s, &c.token, "music.wav", fixture("music44k.wav")).await;
    let dir = tempfile::tempdir().unwrap();
    for (fmt, _) in FORMATS {
        let body = get(&s, &format!("{uri}?f={fmt}"), None)
            .await
            .bytes()
            .await
            .unwrap();
        let path = dir.path().join(format!("copy.{fmt}"));
        std::fs::write(&path, &body).unwrap();
        let input = common::ffmpeg_input(fmt);
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-xerror"])
            .args(&input)
            .arg("-i")
            .arg(&path)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{fmt}: ffmpeg says {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
}

/// A WAV of `secs` seconds of a two-tone chord, 44.1 kHz stereo 16-bit.
fn stereo_wav(secs: u32) -> Vec<u8> {
    let rate = 44_100u32;
    let n = rate * secs;
    let mut v = Vec::with_capacity(44 + n as usize * 4);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + n * 4).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 4).to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(n * 4).to_le_bytes());
    for i in 0..n {
        let t = f64::from(i) / f64::from(rate);
        for f in [440.0, 660.0] {
            let s = ((t * f * std::f64::consts::TAU).sin() * 6000.0) as i16;
            v.extend_from_slice(&s.to_le_bytes());
        }
    }
    v
}

/// ffprobe's duration of `path` from its header (an estimate from the bitrate, what
/// ffmpeg does when no header states the length, fails the test).
fn ffprobe_duration(path: &std::path::Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "warning",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {err}", path.display());
    assert!(
        !err.contains("Estimating duration"),
        "{}: {err}",
        path.display()
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Total samples in a FLAC file's STREAMINFO (the first metadata block).
fn flac_total_samples(bytes: &[u8]) -> u64 {
    assert_eq!(&bytes[..4], b"fLaC");
    assert_eq!(bytes[4] & 0x7F, 0, "STREAMINFO comes first");
    u64::from_be_bytes(bytes[18..26].try_into().unwrap()) & 0xF_FFFF_FFFF
}

on_both_backends! {
async fn converted_copies_state_their_length_streamed_and_cached(backend: Backend) {
    let ffprobe = common::have_tool("ffprobe");
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let dir = tempfile::tempdir().unwrap();
    // Telephony speech (8 kHz mono: low-rate defaults, compact MP3 tag) and music
    // (44.1 kHz stereo): long enough that MP3's encoder delay and padding, which
    // ffprobe counts in the duration, stay under 1%.
    for (name, bytes, rate, frames) in [
        ("speech.wav", common::tone_wav(30), 8_000u32, 240_000u64),
        ("music.wav", stereo_wav(20), 44_100, 882_000),
    ] {
        let (uri, f) = published(&s, &c.token, name, bytes).await;
        let source_secs = frames as f64 / f64::from(rate);
        assert_eq!(f["media"]["duration_ms"].as_f64().unwrap(), source_secs * 1000.0);
        for fmt in ["wav", "flac", "mp3", "ogg", "mp4"] {
            // First request: streamed while the conversion runs. Second: the cached copy.
            let mut copies = Vec::new();
            for _ in 0..2 {
                let r = get(&s, &format!("{uri}?f={fmt}"), None).await;
                assert_eq!(r.status(), 200, "{name} -> {fmt}");
                let etag = r.headers()["etag"].to_str().unwrap().to_string();
                let len = r.headers().get("content-length").map(|v| v.to_str().unwrap().to_string());
                let body = r.bytes().await.unwrap();
                if let Some(len) = len {
                    assert_eq!(len, body.len().to_string(), "{name} -> {fmt}");
                }
                copies.push((etag, body));
            }
            let (streamed, cached) = (&copies[0], &copies[1]);
            assert_eq!(streamed.0, cached.0, "{name} -> {fmt}: one strong ETag");
            assert!(streamed.0.starts_with('"'), "{name} -> {fmt}: strong ETag");
            assert!(streamed.1 == cached.1, "{name} -> {fmt}: streamed bytes differ from the cached copy");
            match fmt {
                "flac" => assert_eq!(flac_total_samples(&streamed.1), frames, "{name}: STREAMINFO"),
                "wav" => {
                    let data = u32::from_le_bytes(streamed.1[40..44].try_into().unwrap());
                    assert_eq!(data as usize, streamed.1.len() - 44, "{name}: WAV data size");
                }
                _ => {}
            }
            if !ffprobe {
                continue;
            }
            for (which, copy) in [("streamed", streamed), ("cached", cached)] {
                let path = dir.path().join(format!("{which}.{fmt}"));
                std::fs::write(&path, &copy.1).unwrap();
                let secs = ffprobe_duration(&path);
                assert!(
                    (secs - source_secs).abs() <= source_secs * 0.01,
                    "{name} -> {fmt} ({which}): ffprobe says {secs} s, source {source_secs} s"
                );
            }
        }
    }
}
}
