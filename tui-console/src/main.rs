//! `tui-console`: parse the command line, log to a file, restore the terminal on panic, run.

use std::process::ExitCode;

use clap::Parser;
use tui_console::settings::init_logging;
use tui_console::terminal::install_panic_hook;
use tui_console::{Args, run};

fn main() -> ExitCode {
    let settings = match Args::parse().resolve() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tui-console: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(&settings.log_file) {
        eprintln!("tui-console: {e:#}");
        return ExitCode::from(2);
    }
    install_panic_hook(settings.log_file.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tui-console: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "console failed");
            eprintln!("tui-console: {e:#}");
            ExitCode::FAILURE
        }
    }
}
