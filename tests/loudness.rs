//! `norm=<LUFS>` on the publish URI and signed links, and `desired_loudness` at upload, through
//! HTTP; loudness and true peak of what is served are measured by ffmpeg's EBU R128 meter.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use serde_json::Value;

/// Every format `f=` takes, and `None`: normalised in the stored format.
const TARGETS: [Option<&str>; 9] = [
    None,
    Some("wav"),
    Some("flac"),
    Some("mp3"),
    Some("ogg"),
    Some("mp4"),
    Some("al"),
    Some("ul"),
    Some("g722"),
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/media/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Five seconds of a near-silent recording: hiss around -60 LUFS with a faint hum.
fn near_silent() -> Vec<u8> {
    let rate = 16_000;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let samples: Vec<i16> = (0..rate * 5)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = ((x >> 40) as f64 / f64::from(1u32 << 24) - 0.5) * 60.0;
            let hum = (i as f64 * 120.0 * std::f64::consts::TAU / f64::from(rate)).sin() * 20.0;
            (noise + hum) as i16
        })
        .collect();
    common::mono_wav(rate, &samples)
}

async fn published(s: &Server, token: &str, name: &str, bytes: Vec<u8>) -> String {
    let (st, f) = s
        .upload_raw(token, &[("name", name), ("publish", "file_sid")], bytes)
        .await;
    assert_eq!(st, 201, "{f}");
    f["publish_uri"].as_str().unwrap().to_string()
}

async fn get(s: &Server, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = s.client.get(url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

/// Integrated loudness (LUFS) and true peak (dBTP) of `bytes` in format `fmt`, by ffmpeg.
fn r128(bytes: &[u8], fmt: &str) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("audio.{fmt}"));
    std::fs::write(&path, bytes).unwrap();
    let input = common::ffmpeg_input(fmt);
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats"])
        .args(&input)
        .arg("-i")
        .arg(&path)
        .args([
            "-af",
            "ebur128=peak=true:framelog=verbose",
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{fmt}: {log}");
    let value = |key: &str| -> f64 {
        let line = log
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("{fmt}: no {key} in {log}"));
        let v = line.trim_start()[key.len()..]
            .split_whitespace()
            .next()
            .unwrap();
        if v == "-inf" {
            f64::NEG_INFINITY
        } else {
            v.parse().unwrap()
        }
    };
    (value("I:"), value("Peak:"))
}

/// The extension ffmpeg reads `f`'s output by (the stored format's when `f` is absent).
fn ext(f: Option<&str>, stored: &str) -> String {
    match f {
        Some("mp4") => "m4a".into(),
        Some(f) => f.into(),
        None => stored.into(),
    }
}

fn url(uri: &str, f: Option<&str>, norm: &str) -> String {
    match f {
        Some(f) => format!("{uri}?f={f}&norm={norm}"),
        None => format!("{uri}?norm={norm}"),
    }
}

fn measured_count(s: &Server) -> usize {
    s.log().matches("loudness measured").count()
}

on_both_backends! {
async fn speech_and_music_meet_the_target_in_every_format(backend: Backend) {
    if !common::have_tool("ffmpeg") {
        return;
    }
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    for (name, stored, target) in [
        ("speech16k.wav", "wav", -16.0),
        ("music44k.wav", "wav", -16.0),
        ("music.mp3", "mp3", -23.0),
    ] {
        let uri = published(&s, &c.token, name, fixture(name)).await;
        for f in TARGETS {
            let r = get(&s, &url(&uri, f, &target.to_string()), &[]).await;
            assert_eq!(r.status(), 200, "{name} {f:?}");
            let body = r.bytes().await.unwrap();
            let (i, tp) = r128(&body, &ext(f, stored));
            assert!(
                (i - target).abs() <= 1.0,
                "{name} as {f:?}: {i} LUFS, wanted {target}"
            );
            assert!(tp <= -1.0, "{name} as {f:?}: true peak {tp} dBTP");
        }
    }
    // One measurement per stored recording, whatever the formats.
    assert_eq!(measured_count(&s), 3, "{}", s.log());
}
}

on_both_backends! {
async fn a_second_format_or_target_does_not_measure_again(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let uri = published(&s, &c.token, "speech.wav", fixture("speech16k.wav")).await;
    assert_eq!(get(&s, &url(&uri, Some("mp3"), "-16"), &[]).await.status(), 200);
    assert_eq!(measured_count(&s), 1);
    assert_eq!(get(&s, &url(&uri, Some("flac"), "-16"), &[]).await.status(), 200);
    assert_eq!(measured_count(&s), 1);
    // After a restart the measurement comes from the metadata store.
    let before = measured_count(&s);
    let data = s.stop();
    let s = Server::restart(data, &backend).await;
    // The node listens on a new port: the same file's path there.
    let path = &uri[uri.find("/f/").unwrap()..];
    let r = get(&s, &url(&s.url(path), Some("ogg"), "-20"), &[]).await;
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    assert_eq!(measured_count(&s), before, "{}", s.log());
}
}

#[tokio::test]
async fn a_near_silent_recording_gains_at_most_20_db_and_silence_stays_silent() {
    if !common::have_tool("ffmpeg") {
        return;
    }
    let s = Server::start().await;
    let c = s.acme().await;
    let quiet = near_silent();
    let (before, _) = r128(&quiet, "wav");
    assert!(before < -50.0, "fixture too loud: {before}");
    let uri = published(&s, &c.token, "hiss.wav", quiet).await;
    for f in [Some("wav"), Some("mp3"), None] {
        let body = get(&s, &url(&uri, f, "-16"), &[])
            .await
            .bytes()
            .await
            .unwrap();
        let (after, _) = r128(&body, &ext(f, "wav"));
        assert!(
            after - before <= 20.5 && after - before >= 18.0,
            "{f:?}: {before} → {after} LUFS"
        );
    }

    let silence = common::mono_wav(8000, &vec![0i16; 8000 * 3]);
    let uri = published(&s, &c.token, "silence.wav", silence.clone()).await;
    let body = get(&s, &url(&uri, Some("wav"), "-16"), &[])
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), silence.len());
    assert!(body[44..].iter().all(|&b| b == 0), "silence was amplified");
}

on_both_backends! {
async fn each_target_is_its_own_representation(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let uri = published(&s, &c.token, "speech.wav", fixture("speech16k.wav")).await;
    let plain = get(&s, &format!("{uri}?f=wav"), &[]).await;
    let plain_tag = plain.headers()["etag"].to_str().unwrap().to_string();
    let mut tags = vec![plain_tag];
    for norm in ["-16", "-23", "-23.5"] {
        let r = get(&s, &url(&uri, Some("wav"), norm), &[]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let tag = r.headers()["etag"].to_str().unwrap().to_string();
        assert!(tag.starts_with('"') && !tag.starts_with("W/"), "{tag}");
        let whole = r.bytes().await.unwrap();
        assert!(!tags.contains(&tag), "{tag} in {tags:?}");
        tags.push(tag.clone());

        // Cached now: Range, conditionals, HEAD and overrides as for any copy.
        let r = get(&s, &url(&uri, Some("wav"), norm), &[("range", "bytes=100-199")]).await;
        assert_eq!(r.status(), 206);
        assert_eq!(r.headers()["etag"].to_str().unwrap(), tag);
        assert_eq!(r.bytes().await.unwrap(), whole[100..200]);
        let r = get(&s, &url(&uri, Some("wav"), norm), &[("if-none-match", &tag)]).await;
        assert_eq!(r.status(), 304);
        let r = s
            .client
            .head(format!(
                "{}&disposition=attachment&content_type=audio/wav",
                url(&uri, Some("wav"), norm)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-length"], whole.len().to_string().as_str());
        assert_eq!(r.headers()["content-type"], "audio/wav");
        assert!(r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"));
    }
    // norm=-23 and norm=-23.0 are one representation.
    let r = get(&s, &url(&uri, Some("wav"), "-23.0"), &[]).await;
    assert_eq!(r.headers()["etag"].to_str().unwrap(), tags[2]);
}
}

#[tokio::test]
async fn a_range_of_a_first_request_is_exact() {
    let s = Server::start().await;
    let c = s.acme().await;
    let uri = published(&s, &c.token, "speech.wav", fixture("speech16k.wav")).await;
    // The first request asks a range of an mp3: the one shared conversion answers it.
    let r = get(
        &s,
        &url(&uri, Some("mp3"), "-18"),
        &[("range", "bytes=1000-1999")],
    )
    .await;
    assert_eq!(r.status(), 206);
    let part = r.bytes().await.unwrap();
    let whole = get(&s, &url(&uri, Some("mp3"), "-18"), &[])
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(part, whole[1000..2000]);
}

#[tokio::test]
async fn bad_norm_is_400_and_a_file_that_is_not_audio_415() {
    let s = Server::start().await;
    let c = s.acme().await;
    let uri = published(&s, &c.token, "speech.wav", fixture("speech16k.wav")).await;
    for bad in ["-41", "-4", "0", "loud", "", "NaN", "-inf", "16"] {
        let r = get(&s, &format!("{uri}?norm={bad}"), &[]).await;
        assert_eq!(r.status(), 400, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["errors"][0]["field"], "norm", "{bad}: {e}");
    }
    let r = get(&s, &format!("{uri}?waveform=json&norm=-16"), &[]).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["errors"][0]["field"], "norm");

    let doc = published(&s, &c.token, "notes.txt", b"hello, not audio".repeat(100)).await;
    let r = get(&s, &format!("{doc}?norm=-16"), &[]).await;
    assert_eq!(r.status(), 415);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["errors"][0]["field"], "norm");
}

on_both_backends! {
async fn desired_loudness_stores_the_normalised_audio(backend: Backend) {
    if !common::have_tool("ffmpeg") {
        return;
    }
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    for (desired_format, ext) in [(None, "wav"), (Some("mp3"), "mp3")] {
        let mut q = vec![
            ("name", "greeting.wav"),
            ("type", "audio"),
            ("desired_loudness", "-18"),
            ("publish", "file_sid"),
        ];
        if let Some(f) = desired_format {
            q.push(("desired_format", f));
        }
        let (st, f) = s.upload_raw(&c.token, &q, fixture("speech16k.wav")).await;
        assert_eq!(st, 201, "{f}");
        assert_eq!(f["desired_loudness"], -18.0);
        assert_eq!(f["content_format"], ext);
        let body = get(&s, f["publish_uri"].as_str().unwrap(), &[])
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.len() as i64, f["size"].as_i64().unwrap());
        let (i, tp) = r128(&body, ext);
        assert!((i - -18.0).abs() <= 1.0, "{ext}: {i} LUFS");
        assert!(tp <= -1.0, "{ext}: {tp} dBTP");
    }
    // Multipart with a JSON number, too.
    let (st, f) = s
        .upload_multipart(
            &c.token,
            serde_json::json!({"type": "audio", "desired_loudness": -23.5}),
            "prompt.wav",
            fixture("speech8k.wav"),
        )
        .await;
    assert_eq!(st, 201, "{f}");
    assert_eq!(f["desired_loudness"], -23.5);

    for bad in ["-50", "-1", "loud"] {
        let (st, e) = s
            .upload_raw(
                &c.token,
                &[("type", "audio"), ("desired_loudness", bad)],
                fixture("speech8k.wav"),
            )
            .await;
        assert_eq!(st, 400, "{bad}: {e}");
        assert_eq!(e["errors"][0]["field"], "desired_loudness");
    }
}
}
