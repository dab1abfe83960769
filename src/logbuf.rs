//! Log output without a writer thread: each HTTP thread collects its log lines in a
//! thread-local buffer and writes it to stderr in one call when the buffer fills or when the
//! thread's event loop goes idle (tokio's `on_thread_park`), as nginx's buffered access log
//! does. Other threads (start-up, cleanup, blocking pool) write each line straight away.

use std::cell::RefCell;
use std::io::Write;

/// Bytes collected before a write is forced.
const CAPACITY: usize = 32 * 1024;

thread_local! {
    static BUFFER: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Makes the calling thread buffer its log lines (call from the thread's start hook).
pub fn buffer_this_thread() {
    BUFFER.with(|b| *b.borrow_mut() = Some(Vec::with_capacity(CAPACITY)));
}

/// Writes what the calling thread has buffered (call when it parks and when it stops).
pub fn flush_this_thread() {
    BUFFER.with(|b| {
        if let Some(buf) = b.borrow_mut().as_mut() {
            if !buf.is_empty() {
                // Nowhere to report a failure to write the log.
                let _ = std::io::stderr().lock().write_all(buf);
                buf.clear();
            }
        }
    });
}

/// Writes one finished log line: into this thread's buffer if it has one, else to stderr.
pub fn write_line(line: &[u8]) {
    let buffered = BUFFER.with(|b| match b.borrow_mut().as_mut() {
        Some(buf) => {
            buf.extend_from_slice(line);
            Some(buf.len() >= CAPACITY)
        }
        None => None,
    });
    match buffered {
        Some(true) => flush_this_thread(),
        Some(false) => {}
        // Nowhere to report a failure to write the log.
        None => {
            let _ = std::io::stderr().lock().write_all(line);
        }
    }
}

/// The `tracing` writer: one formatted event per `write` call.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        write_line(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}
