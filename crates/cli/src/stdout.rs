//! Everything the CLI prints goes through here, so that a reader that has gone away (`ratelab
//! tiers --json | true`, `ratelab run ... | head -1`) ends the output quietly instead of
//! panicking as `print!` does.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails with `ErrorKind::BrokenPipe`. Like
//! ripgrep, ratelab treats that as "nobody is listening": no message, no backtrace. Unlike
//! ripgrep it does not exit at once: stdout only summarises work whose product is files (run
//! directories, JUnit reports), and a reader that stopped early should not cost those files.
//! Later writes are skipped and the command ends with its usual exit code.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write found stdout closed; later writes are skipped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `arguments` to stdout through its lock and flushes. A closed stdout is not an error;
/// any other failure (a full disk behind a redirect) is, naming stdout.
pub fn write(arguments: fmt::Arguments<'_>) -> anyhow::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    let written = stdout.write_fmt(arguments).and_then(|()| stdout.flush());
    match written {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(error) => Err(anyhow::Error::new(error).context("cannot write to stdout")),
    }
}

/// `print!` that ends quietly on a closed stdout; evaluates to `anyhow::Result<()>`.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}

/// `println!` that ends quietly on a closed stdout; evaluates to `anyhow::Result<()>`.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}
