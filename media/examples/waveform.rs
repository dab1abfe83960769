//! `waveform IN OUT [--spp N] [--bits 8|16] [--split]`: the waveform computation as a small
//! binary (JSON or `.dat` from OUT's extension), for benches and memory checks.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use mediastore_media::{WaveformFormat, WaveformOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pos = Vec::new();
    let mut opts = WaveformOptions::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spp" => {
                opts.samples_per_pixel = it.next().and_then(|v| v.parse().ok()).unwrap_or(256)
            }
            "--bits" => opts.bits = it.next().and_then(|v| v.parse().ok()).unwrap_or(8),
            "--split" => opts.split_channels = true,
            _ => pos.push(a.clone()),
        }
    }
    let [input, output] = pos.as_slice() else {
        eprintln!("usage: waveform IN OUT.json|OUT.dat [--spp N] [--bits 8|16] [--split]");
        return ExitCode::from(2);
    };
    opts.format = if output.ends_with(".dat") {
        WaveformFormat::Dat
    } else {
        WaveformFormat::Json
    };
    let input = std::path::Path::new(input);
    let hint = input.extension().and_then(|e| e.to_str());
    let run = || -> Result<mediastore_media::WaveformStats, Box<dyn std::error::Error>> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(output)?);
        let stats =
            mediastore_media::waveform(input, hint, &opts, &mut out, &AtomicBool::new(false))?;
        out.flush()?;
        Ok(stats)
    };
    match run() {
        Ok(s) => {
            println!("{s:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("waveform: {e}");
            ExitCode::FAILURE
        }
    }
}
