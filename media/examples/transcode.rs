//! `transcode IN OUT [--format F] [--bitrate KBPS]`: the pipeline as a small
//! binary, for benches and manual checks until the server wires its subcommand.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pos = Vec::new();
    let mut format = None;
    let mut bitrate = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--format" | "-f" => format = it.next().cloned(),
            "--bitrate" | "-b" => bitrate = it.next().and_then(|b| b.parse::<u32>().ok()),
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
        eprintln!("usage: transcode IN OUT [--format F] [--bitrate KBPS]");
        return ExitCode::from(2);
    };
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
