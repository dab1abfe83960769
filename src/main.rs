//! `mediastore serve`, `mediastore transcode` and `mediastore migrate`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: per-thread free lists; glibc's allocator was ~8% of the CPU of a 4 KiB Range
/// (malloc, free, consolidation) with the HTTP threads allocating concurrently. Built without
/// transparent huge pages (Cargo.toml), which cost far more memory than they saved time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use mediastore::config::{Config, ServeArgs};

#[derive(Parser)]
#[command(
    name = "mediastore",
    version,
    about = "Storage and transcoding server for voice and media platforms"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log line format: `text`, or `json` (one object per line, for log shippers).
    #[arg(
        long,
        global = true,
        env = "MEDIASTORE_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: mediastore::logline::LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Convert a local file with the server's pipeline.
    Transcode {
        /// Input file.
        input: PathBuf,
        /// Output file.
        output: PathBuf,
        /// Target format (al alaw flac g722 mp3 mp4 ogg ul ulaw wav) [default: from OUT's extension].
        #[arg(long)]
        format: Option<String>,
        /// Bitrate of lossy targets, kbit/s.
        #[arg(long)]
        bitrate: Option<u32>,
    },
    /// Copy everything to new stores (e.g. to PostgreSQL + S3); resumes where it stopped.
    Migrate(mediastore::migrate::MigrateArgs),
}

/// A runtime for the command's async work: start-up, cleanup and signals for `serve` (HTTP has
/// its own threads), the whole copy for `migrate`.
fn runtime(name: &str, workers: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("mediastore: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // HTTP threads buffer their log lines and write them when idle (logbuf); the text format
    // is our own cheaper copy of tracing's default one (logline).
    mediastore::logline::init(
        cli.log_format,
        tracing_subscriber::EnvFilter::try_from_env("MEDIASTORE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
    );
    match cli.command {
        Command::Serve(args) => {
            let config = match Config::from_args(args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("mediastore: {e}");
                    return ExitCode::from(2);
                }
            };
            let rt = match runtime("mediastore-control", 1) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match rt.block_on(mediastore::app::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mediastore: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate(args) => {
            let rt = match runtime("mediastore-migrate", 2) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match rt.block_on(mediastore::migrate::run(args)) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mediastore migrate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Transcode {
            input,
            output,
            format,
            bitrate,
        } => match mediastore_media::transcode_file(&input, &output, format.as_deref(), bitrate) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mediastore: {}: {e}", input.display());
                ExitCode::FAILURE
            }
        },
    }
}
