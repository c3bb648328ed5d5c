//! The terminal: raw mode and the alternate screen while the console runs, and restored on
//! every way out — normal quit, error, or panic (the hook restores it, logs the panic to the
//! log file and exits, so no half-drawn screen or stack trace is left behind).

use std::io::{self, Stdout};
use std::path::PathBuf;

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Restores the terminal when dropped.
pub struct Session {
    pub terminal: Term,
}

impl Session {
    /// Switches to raw mode and the alternate screen.
    pub fn enter() -> io::Result<Self> {
        enable_raw_mode()?;
        let mut out = io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen, Hide) {
            let _ = leave();
            return Err(e);
        }
        let terminal = Terminal::new(CrosstermBackend::new(out)).inspect_err(|_| {
            let _ = leave();
        })?;
        Ok(Self { terminal })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(e) = leave() {
            tracing::warn!(error = %e, "could not restore the terminal");
        }
    }
}

/// Leaves raw mode and the alternate screen; harmless when not in them.
pub fn leave() -> io::Result<()> {
    disable_raw_mode()?;
    execute!(io::stdout(), LeaveAlternateScreen, Show)
}

/// On panic, in any thread: restore the terminal, log the panic with a backtrace to the log
/// file, print one line saying where it is, and exit with status 101.
pub fn install_panic_hook(log_file: PathBuf) {
    std::panic::set_hook(Box::new(move |info| {
        let _ = leave();
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(panic = %info, backtrace = %backtrace, "tui-console panicked");
        eprintln!(
            "tui-console stopped after an internal error: {}. Details are in {}",
            panic_message(info),
            log_file.display()
        );
        std::process::exit(101);
    }));
}

fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
