//! A minimal stderr logger behind the `log` facade, set by `USTACK_LOG`.
//!
//! Owns only formatting and the level. Each record is formatted into one
//! buffer and written with a single `write(2)` on fd 2, so lines from
//! several threads never interleave and no lock is held while writing.

use std::io::Write;
use std::sync::OnceLock;

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = Vec::with_capacity(128);
        // Writing into a Vec cannot fail.
        let _ = writeln!(
            line,
            "ustack[{}]: {}: {}",
            std::process::id(),
            record.level().as_str().to_ascii_lowercase(),
            record.args()
        );
        // A failed log write has nowhere to be reported; dropping it is right.
        let _ = std::io::stderr().lock().write_all(&line);
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Installs the stderr logger at `level`, unless the program already has a
/// logger of its own (then only the level is left to that logger).
pub fn init(level: LevelFilter) {
    let ours = *INSTALLED.get_or_init(|| log::set_logger(&LOGGER).is_ok());
    if ours {
        log::set_max_level(level);
    }
}
