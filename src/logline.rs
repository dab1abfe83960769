//! The shape of a log line: `2026-11-25T03:45:00.123456Z  INFO target: message key=value ...`,
//! the same as `tracing_subscriber`'s default format without colours, written more cheaply.
//!
//! Every request writes a line, so formatting is on the hottest path: the default format
//! rebuilt the calendar date and padded every number through `core::fmt` for each line (about
//! a tenth of the CPU of a 4 KiB Range). Here the date and time up to the second are formatted
//! once per second per thread, and integers are written digit by digit.
//!
//! The per-request access line ([`access_line`]) goes further and skips `tracing`'s dispatch
//! (field sets, visitors, the subscriber's own buffer): it is written straight into the log
//! buffer, in the same shape, when the filter lets `mediastore::http::log` INFO through.
//!
//! With `--log-format json` every line is one JSON object instead, in the shape of
//! `tracing_subscriber`'s JSON format (which writes the events): `timestamp`, `level`, `fields`,
//! `target`, plus `request_id`. A line written while a request is being worked on carries that
//! request's id ([`crate::request_id::current`]) in both formats.

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The [`FormatEvent`] of the server's log.
pub struct LineFormat;

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `timestamp LEVEL target: message key=value ...`
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Set once at start-up: access lines are JSON.
static JSON: AtomicBool = AtomicBool::new(false);

/// Installs the process's log subscriber: `filter` (an `EnvFilter` directive), in `format`.
pub fn init(format: LogFormat, filter: tracing_subscriber::EnvFilter) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::logbuf::LogWriter);
    match format {
        LogFormat::Text => builder.event_format(LineFormat).init(),
        LogFormat::Json => builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(JsonFormat(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(false),
            ))
            .init(),
    }
}

thread_local! {
    /// `(unix second, "YYYY-MM-DDTHH:MM:SS")` of the last line this thread wrote.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

fn write_timestamp(w: &mut impl Write) -> fmt::Result {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let text = i64::try_from(secs)
                .ok()
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_else(|| "????-??-??T??:??:??".to_string());
            *cached = (secs, text);
        }
        w.write_str(&cached.1)
    })?;
    w.write_char('.')?;
    write_padded(w, u64::from(now.subsec_micros()), 6)?;
    w.write_char('Z')
}

/// Writes `v` in decimal, left-padded with zeros to `width` digits.
fn write_padded(w: &mut (impl Write + ?Sized), v: u64, width: usize) -> fmt::Result {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v);
    for _ in digits.len()..width {
        w.write_char('0')?;
    }
    w.write_str(digits)
}

/// Target of the access lines, as if they were `tracing` events of `src/http/log.rs`.
pub const ACCESS_TARGET: &str = "mediastore::http::log";

/// One request's access line, in the shape of a `tracing` event
/// `info!(method, path, status, bytes, duration_us, complete, "request")`.
pub struct AccessLine<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub bytes: u64,
    pub duration_us: u64,
    pub complete: bool,
    pub request_id: &'a str,
}

/// Writes `line` to the log (the caller checks the filter; see `http::log`).
pub fn access_line(line: &AccessLine<'_>) {
    thread_local! {
        static LINE: RefCell<String> = const { RefCell::new(String::new()) };
    }
    LINE.with(|cell| {
        let mut s = cell.borrow_mut();
        s.clear();
        // Writing to a String cannot fail.
        let _ = if JSON.load(Ordering::Relaxed) {
            format_access_json(&mut s, line)
        } else {
            format_access(&mut s, line)
        };
        crate::logbuf::write_line(s.as_bytes());
    });
}

/// A field of the access line.
enum AccessValue<'a> {
    Str(&'a str),
    Num(u64),
    Bool(bool),
}

/// The access line's fields after its message, in order.
fn access_fields<'a>(l: &AccessLine<'a>) -> [(&'static str, AccessValue<'a>); 7] {
    [
        ("method", AccessValue::Str(l.method)),
        ("path", AccessValue::Str(l.path)),
        ("status", AccessValue::Num(u64::from(l.status))),
        ("bytes", AccessValue::Num(l.bytes)),
        ("duration_us", AccessValue::Num(l.duration_us)),
        ("complete", AccessValue::Bool(l.complete)),
        ("request_id", AccessValue::Str(l.request_id)),
    ]
}

/// `timestamp  INFO target: request name=value ...`; strings as they are (the path is a URI's,
/// the id a sane one: neither holds a space or a line break).
fn format_access(s: &mut String, l: &AccessLine<'_>) -> fmt::Result {
    write_timestamp(s)?;
    s.push(' ');
    s.push_str(level_label(&Level::INFO));
    s.push(' ');
    s.push_str(ACCESS_TARGET);
    s.push_str(": request");
    for (name, value) in access_fields(l) {
        s.push(' ');
        s.push_str(name);
        s.push('=');
        write_field(s, value, false)?;
    }
    s.push('\n');
    Ok(())
}

/// The access line as tracing's JSON format would write the same event, plus `request_id`.
fn format_access_json(s: &mut String, l: &AccessLine<'_>) -> fmt::Result {
    s.push_str("{\"timestamp\":\"");
    write_timestamp(s)?;
    s.push_str("\",\"level\":\"INFO\",\"fields\":{\"message\":\"request\"");
    let [fields @ .., (id_name, id)] = access_fields(l);
    for (name, value) in fields {
        write!(s, ",\"{name}\":")?;
        write_field(s, value, true)?;
    }
    write!(s, "}},\"target\":\"{ACCESS_TARGET}\",\"{id_name}\":")?;
    write_field(s, id, true)?;
    s.push_str("}\n");
    Ok(())
}

fn write_field(s: &mut String, value: AccessValue<'_>, json: bool) -> fmt::Result {
    match value {
        AccessValue::Str(v) if json => json_string(s, v),
        AccessValue::Str(v) => {
            s.push_str(v);
            Ok(())
        }
        AccessValue::Num(n) => write_padded(s, n, 1),
        AccessValue::Bool(b) => {
            s.push_str(if b { "true" } else { "false" });
            Ok(())
        }
    }
}

/// `v` as a JSON string.
fn json_string(s: &mut String, v: &str) -> fmt::Result {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if u32::from(c) < 0x20 => write!(s, "\\u{:04x}", u32::from(c))?,
            c => s.push(c),
        }
    }
    s.push('"');
    Ok(())
}

/// tracing's JSON format with the current request's id added to each line.
pub struct JsonFormat<T>(pub T);

impl<S, N, T> FormatEvent<S, N> for JsonFormat<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(id) = crate::request_id::current() else {
            return self.0.format_event(ctx, w, event);
        };
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with(|cell| {
            let mut line = cell.borrow_mut();
            line.clear();
            self.0.format_event(ctx, Writer::new(&mut *line), event)?;
            // `{...}\n` becomes `{"request_id":"...",...}\n`; ids need no escaping.
            match line.strip_prefix('{') {
                Some(rest) => write!(w, "{{\"request_id\":\"{id}\",{rest}"),
                None => w.write_str(&line),
            }
        })
    }
}

fn level_label(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Records of `log`-crate libraries arrive as events of target `log` with `log.*`
        // fields; show them under their own target, without those fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        write_timestamp(&mut w)?;
        w.write_char(' ')?;
        w.write_str(level_label(meta.level()))?;
        w.write_char(' ')?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                w.write_str(span.name())?;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(w, "{{{fields}}}")?;
                    }
                }
                w.write_char(':')?;
            }
            w.write_char(' ')?;
        }
        w.write_str(meta.target())?;
        w.write_str(":")?;
        let mut fields = Fields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        if let Some(id) = crate::request_id::current() {
            write!(w, " request_id={id}")?;
        }
        w.write_char('\n')
    }
}

/// Writes ` message` and ` name=value` pairs; strings other than the message are quoted and
/// escaped as the default format does, so no value can break a line in two.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.result = (|| {
            self.w.write_char(' ')?;
            if field.name() != "message" {
                self.w.write_str(field.name())?;
                self.w.write_char('=')?;
            }
            value(self.w)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write_padded(w, value, 1));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| {
            if value < 0 {
                w.write_char('-')?;
            }
            write_padded(w, value.unsigned_abs(), 1)
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, |w| w.write_str(value));
        } else {
            self.field(field, |w| write!(w, "{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| write!(w, "{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_lines_have_the_event_shape() {
        let mut s = String::new();
        format_access(
            &mut s,
            &AccessLine {
                method: "GET",
                path: "/f/abc",
                status: 206,
                bytes: 4096,
                duration_us: 35,
                complete: true,
                request_id: "r1",
            },
        )
        .expect("format");
        let (ts, rest) = s.split_once(' ').expect("timestamp");
        assert_eq!(ts.len(), "2026-11-25T03:45:00.123456Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        assert_eq!(
            rest,
            " INFO mediastore::http::log: request method=GET path=/f/abc status=206 bytes=4096 duration_us=35 complete=true request_id=r1\n"
        );
    }

    /// Formats what `emit` logs with [`LineFormat`], as the server's subscriber would.
    fn captured(emit: impl FnOnce()) -> String {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("sink").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(LineFormat)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = sink.0.lock().expect("sink").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn events_keep_tracings_default_shape() {
        let line = captured(|| tracing::warn!(file_sid = "abc", n = 3u64, ok = true, "hello"));
        let (_, rest) = line.split_once(' ').expect("timestamp");
        assert_eq!(
            rest,
            " WARN mediastore::logline::tests: hello file_sid=\"abc\" n=3 ok=true\n"
        );
    }

    #[test]
    fn log_crate_records_show_their_own_target_and_no_log_fields() {
        let line = captured(|| {
            let record = tracing_log::log::Record::builder()
                .level(tracing_log::log::Level::Info)
                .target("symphonia_format_riff::common")
                .module_path(Some("symphonia_format_riff::common"))
                .file(Some("common.rs"))
                .line(Some(48))
                .args(format_args!("Channel mask not set"))
                .build();
            tracing_log::format_trace(&record).expect("dispatch");
        });
        assert!(
            line.ends_with(" INFO symphonia_format_riff::common: Channel mask not set\n"),
            "{line}"
        );
    }

    #[test]
    fn numbers_are_padded_to_width() {
        let mut s = String::new();
        write_padded(&mut s, 42, 6).expect("write");
        assert_eq!(s, "000042");
        s.clear();
        write_padded(&mut s, 1_234_567, 1).expect("write");
        assert_eq!(s, "1234567");
        s.clear();
        write_padded(&mut s, 0, 1).expect("write");
        assert_eq!(s, "0");
        s.clear();
        write_padded(&mut s, u64::MAX, 1).expect("write");
        assert_eq!(s, u64::MAX.to_string());
    }
}
