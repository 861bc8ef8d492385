//! The `rivulet` binary: the desktop app (no subcommand), or the headless CLI.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use rivulet::cli::{BadInput, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if std::io::stderr().is_terminal() {
        "rivulet=warn"
    } else {
        "rivulet=info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Some(command) = cli.command else {
        return desktop_app(cli.torrents, cli.minimized);
    };
    if matches!(
        command,
        rivulet::cli::CliCommand::Info { .. } | rivulet::cli::CliCommand::Scrape { .. }
    ) {
        // Commands that only print end quietly when their reader goes away (`| head`), as
        // Unix tools do, instead of failing on a write to a closed pipe.
        #[cfg(unix)]
        // SAFETY: restoring the default action of SIGPIPE before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match rivulet::cli::run(command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rivulet: {e:#}");
            ExitCode::from(if e.is::<BadInput>() { 2 } else { 1 })
        }
    }
}

#[cfg(feature = "gui")]
fn desktop_app(torrents: Vec<String>, minimized: bool) -> ExitCode {
    match rivulet::gui::run(torrents, minimized) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rivulet: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(not(feature = "gui"))]
fn desktop_app(_torrents: Vec<String>, _minimized: bool) -> ExitCode {
    eprintln!("rivulet: built without the desktop app (feature `gui`); see `rivulet --help`");
    ExitCode::from(2)
}
