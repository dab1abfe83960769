//! `transcode IN OUT [--format F] [--bitrate KBPS] [--stream] [--norm LUFS]`: the pipeline as a
//! small binary, for benches and manual checks. `--norm` measures IN, then converts it
//! normalised (as the server's `norm=`), to a stream.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pos = Vec::new();
    let mut format = None;
    let mut bitrate = None;
    let mut stream = false;
    let mut norm = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--format" | "-f" => format = it.next().cloned(),
            "--bitrate" | "-b" => bitrate = it.next().and_then(|b| b.parse::<u32>().ok()),
            // As the server converts: to a plain stream, headers written once up front.
            "--stream" => stream = true,
            "--norm" => {
                norm = it.next().and_then(|n| n.parse::<f64>().ok());
                stream = true;
            }
            "--probe" => {
                for p in it.by_ref() {
                    match mediastore_media::probe(
                        std::path::Path::new(p),
                        std::path::Path::new(p).extension().and_then(|e| e.to_str()),
                    ) {
                        Ok(i) => println!("{p}: {i:?}"),
                        Err(e) => println!("{p}: error: {e}"),
                    }
                }
                return ExitCode::SUCCESS;
            }
            _ => pos.push(a.clone()),
        }
    }
    let [input, output] = pos.as_slice() else {
        eprintln!("usage: transcode IN OUT [--format F] [--bitrate KBPS] [--stream] [--norm LUFS]");
        return ExitCode::from(2);
    };
    if stream {
        return match stream_to(
            input.as_ref(),
            output.as_ref(),
            format.as_deref(),
            bitrate,
            norm,
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match mediastore_media::transcode_file(
        input.as_ref(),
        output.as_ref(),
        format.as_deref(),
        bitrate,
    ) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `transcode` to a plain (unseekable) writer, as the server's conversions run.
fn stream_to(
    input: &std::path::Path,
    output: &std::path::Path,
    format: Option<&str>,
    bitrate_kbps: Option<u32>,
    norm: Option<f64>,
) -> Result<(), String> {
    use std::io::Write;
    let name = format
        .or_else(|| output.extension().and_then(|e| e.to_str()))
        .ok_or("no output format")?;
    let format = mediastore_media::AudioFormat::from_param(name).ok_or("unknown output format")?;
    let opts = mediastore_media::TranscodeOptions {
        format,
        bitrate_kbps,
    };
    let file = std::fs::File::create(output).map_err(|e| e.to_string())?;
    let mut w = std::io::BufWriter::with_capacity(256 * 1024, file);
    let hint = input.extension().and_then(|e| e.to_str());
    let cancel = std::sync::atomic::AtomicBool::new(false);
    match norm {
        Some(target_lufs) => {
            let measured = mediastore_media::loudness::measure(input, hint, &cancel)
                .map_err(|e| e.to_string())?;
            let n = mediastore_media::Normalization {
                target_lufs,
                measured,
            };
            mediastore_media::transcode_normalized(input, hint, &opts, &n, &mut w, &cancel)
        }
        None => mediastore_media::transcode(input, hint, &opts, &mut w, &cancel),
    }
    .map_err(|e| e.to_string())?;
    w.flush().map_err(|e| e.to_string())
}
