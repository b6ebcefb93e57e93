//! Writing to the agent's and the CLI's stdout/stderr without panicking. `println!`/`eprintln!`
//! panic ("failed printing to stdout: Broken pipe", exit 101) when the reader is gone: a CLI piped
//! into `head`, or the agent after Docker's log pipe went away. These write and report the error
//! instead; callers that have nothing better to do ignore it (output to a closed pipe is lost,
//! the exit code still tells what happened).

use std::fmt;
use std::io::{self, Write};

/// Writes `args` to stdout (no newline added) and flushes.
pub fn out(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_fmt(args)?;
    stdout.flush()
}

/// Writes `args` and a newline to stdout.
pub fn out_line(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_fmt(args)?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

/// Writes `args` and a newline to stderr (unbuffered).
pub fn err_line(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut stderr = io::stderr().lock();
    stderr.write_fmt(args)?;
    stderr.write_all(b"\n")
}

/// `println!` that never panics: a failed write is ignored (see the module docs).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        let _ = $crate::output::out_line(format_args!($($arg)*));
    }};
}

/// `print!` that never panics.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = $crate::output::out(format_args!($($arg)*));
    }};
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        let _ = $crate::output::err_line(format_args!($($arg)*));
    }};
}
