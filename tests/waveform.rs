//! `waveform=json|dat` on the publish URI and signed links, through HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/media/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn published(s: &Server, token: &str, name: &str, bytes: Vec<u8>) -> (String, Value) {
    let (st, f) = s
        .upload_raw(token, &[("name", name), ("publish", "file_sid")], bytes)
        .await;
    assert_eq!(st, 201, "{f}");
    (f["publish_uri"].as_str().unwrap().to_string(), f)
}

async fn get(s: &Server, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = s.client.get(url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

/// Min and max per pixel per series of interleaved 16-bit samples, computed here
/// independently of the server: the channels' mean (rounded half away from zero) unless
/// `split`, a last partial pixel kept, 8-bit values truncated from 16-bit ones.
fn expected_peaks(samples: &[i16], channels: usize, spp: usize, split: bool, bits: u8) -> Vec<i32> {
    let mut out = Vec::new();
    let frames: Vec<&[i16]> = samples.chunks_exact(channels).collect();
    for pixel in frames.chunks(spp) {
        let series: Vec<Vec<i32>> = if split {
            (0..channels)
                .map(|c| pixel.iter().map(|f| i32::from(f[c])).collect())
                .collect()
        } else {
            vec![pixel
                .iter()
                .map(|f| {
                    let sum: i32 = f.iter().map(|&s| i32::from(s)).sum();
                    (f64::from(sum) / channels as f64).round() as i32
                })
                .collect()]
        };
        for s in series {
            let (lo, hi) = (*s.iter().min().unwrap(), *s.iter().max().unwrap());
            if bits == 8 {
                out.extend([lo / 256, hi / 256]);
            } else {
                out.extend([lo, hi]);
            }
        }
    }
    out
}

/// The 16-bit samples of a canonical 44-byte-header PCM WAV.
fn wav_samples(wav: &[u8]) -> Vec<i16> {
    wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Header fields and values of a version-2 `.dat`.
fn parse_dat(b: &[u8]) -> (Vec<i64>, Vec<i32>) {
    let word = |i: usize| i32::from_le_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]]);
    let head: Vec<i64> = (0..6).map(|i| i64::from(word(i))).collect();
    let eight = head[1] & 1 == 1;
    let data = if eight {
        b[24..].iter().map(|&v| i32::from(v as i8)).collect()
    } else {
        b[24..]
            .chunks_exact(2)
            .map(|v| i32::from(i16::from_le_bytes([v[0], v[1]])))
            .collect()
    };
    (head, data)
}

fn json_data(v: &Value) -> Vec<i32> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap() as i32)
        .collect()
}

on_both_backends! {
async fn json_and_dat_of_a_tone_match_the_samples(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let wav = common::tone_wav(2);
    let samples = wav_samples(&wav);
    let (uri, f) = published(&s, &c.token, "tone.wav", wav).await;

    let r = get(&s, &format!("{uri}?waveform=json"), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["version"], 2);
    assert_eq!(v["channels"], 1);
    assert_eq!(v["sample_rate"], 8000);
    assert_eq!(v["samples_per_pixel"], 256);
    assert_eq!(v["bits"], 8);
    assert_eq!(v["length"], 16000u64.div_ceil(256));
    assert_eq!(json_data(&v), expected_peaks(&samples, 1, 256, false, 8));

    let r = get(&s, &format!("{uri}?waveform=dat&bits=16&samples_per_pixel=100"), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let body = r.bytes().await.unwrap();
    let (head, data) = parse_dat(&body);
    assert_eq!(head, vec![2, 0, 8000, 100, 160, 1]);
    assert_eq!(data, expected_peaks(&samples, 1, 100, false, 16));

    let r = get(&s, &format!("{uri}?waveform=dat"), &[]).await;
    let body = r.bytes().await.unwrap();
    let (head, data) = parse_dat(&body);
    assert_eq!(head, vec![2, 1, 8000, 256, 63, 1]);
    assert_eq!(data, expected_peaks(&samples, 1, 256, false, 8));

    // The signed link serves it too.
    let link = f["uri_download"].as_str().unwrap();
    let r = get(&s, &format!("{link}&waveform=json&split_channels=true"), &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(json_data(&v), expected_peaks(&samples, 1, 256, true, 8));
}
}

on_both_backends! {
async fn waveforms_have_their_own_etag_304_range_and_head(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (uri, f) = published(&s, &c.token, "tone.wav", common::tone_wav(3)).await;
    let file_etag = format!("\"{}\"", &f["checksum_sha256"].as_str().unwrap()[..32]);
    let mut etags = vec![file_etag];
    for q in [
        "waveform=json",
        "waveform=dat",
        "waveform=dat&bits=16",
        "waveform=dat&samples_per_pixel=512",
        "waveform=dat&split_channels=true",
    ] {
        let r = get(&s, &format!("{uri}?{q}"), &[]).await;
        assert_eq!(r.status(), 200, "{q}");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"'), "{q}: strong ETag {etag}");
        assert!(!etags.contains(&etag), "{q}: {etag} among {etags:?}");
        etags.push(etag);
    }
    let url = format!("{uri}?waveform=dat&bits=16");
    let whole = get(&s, &url, &[]).await;
    let etag = whole.headers()["etag"].to_str().unwrap().to_string();
    let whole = whole.bytes().await.unwrap();
    assert_eq!(whole.len(), 24 + 94 * 4);
    let r = get(&s, &url, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), 304);
    let r = get(&s, &url, &[("range", "bytes=20-31")]).await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 20-31/{}", whole.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), whole.slice(20..32));
    let r = s.client.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], whole.len().to_string().as_str());
    assert_eq!(r.headers()["etag"], etag.as_str());
    // A Range on a waveform nobody asked for yet: computed once, then sliced.
    let r = get(&s, &format!("{uri}?waveform=dat&samples_per_pixel=64"), &[("range", "bytes=0-23")]).await;
    assert_eq!(r.status(), 206);
    let (head, _) = parse_dat(&r.bytes().await.unwrap());
    assert_eq!(head, vec![2, 1, 8000, 64, 24000u64.div_ceil(64) as i64, 1]);
    // Overrides apply.
    let r = get(&s, &format!("{uri}?waveform=json&disposition=attachment&cache_headers=60"), &[]).await;
    let cd = r.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(cd.starts_with("attachment") && cd.contains("tone.json"), "{cd}");
    assert_eq!(r.headers()["cache-control"], "public, max-age=60");
}
}

on_both_backends! {
async fn bad_waveform_parameters_are_400_and_a_file_that_is_not_audio_is_415(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (uri, f) = published(&s, &c.token, "tone.wav", common::tone_wav(1)).await;
    for (q, field) in [
        ("waveform=png", "waveform"),
        ("waveform=json&samples_per_pixel=31", "samples_per_pixel"),
        ("waveform=json&samples_per_pixel=65537", "samples_per_pixel"),
        ("waveform=json&samples_per_pixel=x", "samples_per_pixel"),
        ("waveform=dat&bits=12", "bits"),
        ("waveform=dat&split_channels=yes", "split_channels"),
        ("waveform=json&f=mp3", "f"),
        ("waveform=json&br=32", "br"),
    ] {
        let r = get(&s, &format!("{uri}?{q}"), &[]).await;
        assert_eq!(r.status(), 400, "{q}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["errors"][0]["field"], field, "{q}");
    }
    let link = f["uri_download"].as_str().unwrap();
    let r = get(&s, &format!("{link}&waveform=json&bits=7"), &[]).await;
    assert_eq!(r.status(), 400);
    let (doc, _) = published(&s, &c.token, "notes.txt", b"just text".to_vec()).await;
    let r = get(&s, &format!("{doc}?waveform=json"), &[]).await;
    assert_eq!(r.status(), 415);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["field"], "waveform");
}
}

on_both_backends! {
async fn peaks_equal_those_of_ffmpeg_decoded_pcm(backend: Backend) {
    if !common::have_tool("ffmpeg") {
        return;
    }
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let flac = fixture("music.flac");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("music.flac");
    std::fs::write(&path, &flac).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "s16le", "-acodec", "pcm_s16le", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pcm: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let (uri, f) = published(&s, &c.token, "music.flac", flac).await;
    let channels = f["media"]["channels"].as_u64().unwrap() as usize;
    for (split, bits) in [(false, 16u8), (true, 16), (false, 8)] {
        let r = get(
            &s,
            &format!("{uri}?waveform=json&samples_per_pixel=512&bits={bits}&split_channels={split}"),
            &[],
        )
        .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let ours = json_data(&v);
        let theirs = expected_peaks(&pcm, channels, 512, split, bits);
        assert_eq!(ours.len(), theirs.len(), "split={split}");
        // Lossless source: the same samples, at most a rounding step apart.
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .max()
            .unwrap();
        assert!(worst <= 1, "split={split} bits={bits}: off by {worst}");
    }
}
}

/// The served JSON and `.dat` load in waveform-data.js (`WaveformData.create`) with the
/// header we state. Runs when `MEDIASTORE_WAVEFORM_DATA` names a `node_modules` directory
/// holding the npm package `waveform-data` and `node` is installed; skipped otherwise.
#[tokio::test]
async fn waveform_data_js_reads_json_and_dat() {
    let Ok(modules) = std::env::var("MEDIASTORE_WAVEFORM_DATA") else {
        assert!(
            !common::require_tools(),
            "MEDIASTORE_WAVEFORM_DATA (npm waveform-data) is required under MEDIASTORE_REQUIRE_TOOLS=1"
        );
        eprintln!("skipping: MEDIASTORE_WAVEFORM_DATA is not set");
        return;
    };
    if !common::have_tool("node") {
        return;
    }
    let s = Server::start_on(&common::Backend::Embedded).await;
    let c = s.acme().await;
    let (uri, _) = published(&s, &c.token, "music.flac", fixture("music.flac")).await;
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
const fs = require('fs');
const WaveformData = require('waveform-data');
const f = process.argv[2];
const raw = fs.readFileSync(f);
const input = f.endsWith('.json') ? JSON.parse(raw)
  : raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
const w = WaveformData.create(input);
const ch = w.channel(w.channels - 1);
console.log([w.channels, w.sample_rate, w.scale, w.bits, w.length, ch.max_sample(0)].join(' '));
"#;
    let js = dir.path().join("check.js");
    std::fs::write(&js, script).unwrap();
    for q in [
        "waveform=json",
        "waveform=dat",
        "waveform=dat&bits=16&split_channels=true&samples_per_pixel=1024",
    ] {
        let body = get(&s, &format!("{uri}?{q}"), &[])
            .await
            .bytes()
            .await
            .unwrap();
        let ext = if q.contains("json") { "json" } else { "dat" };
        let path = dir.path().join(format!("w.{ext}"));
        std::fs::write(&path, &body).unwrap();
        let (head, data) = if ext == "json" {
            let v: Value = serde_json::from_slice(&body).unwrap();
            let h = [
                "channels",
                "sample_rate",
                "samples_per_pixel",
                "bits",
                "length",
            ]
            .map(|k| v[k].as_i64().unwrap());
            (h.to_vec(), json_data(&v))
        } else {
            let (h, d) = parse_dat(&body);
            (
                vec![h[5], h[2], h[3], if h[1] & 1 == 1 { 8 } else { 16 }, h[4]],
                d,
            )
        };
        let out = std::process::Command::new("node")
            .arg(&js)
            .arg(&path)
            .env("NODE_PATH", &modules)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{q}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut want: Vec<String> = head.iter().map(i64::to_string).collect();
        // The last series' first max.
        want.push(data[(head[0] as usize - 1) * 2 + 1].to_string());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            want.join(" "),
            "{q}"
        );
    }
}
