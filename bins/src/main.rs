//! The `natter` command: directory server, chat peer and demo.
//!
//! Everything protocol-related lives in `natter-core` and the drivers in
//! `natter-net-real`; this crate only turns command-line flags, a terminal
//! or a pipe into what those expect.

mod bench;
mod cli;
mod completions_cmd;
mod config_file;
mod data_dir;
mod demo;
mod draft;
mod id_cmd;
mod input;
mod man_cmd;
mod peer_cmd;
mod plain;
mod render;
mod server_cmd;
mod terminal;
mod ui;

use clap::FromArgMatches;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let command = with_config_file(cli::command(), &args).unwrap_or_else(|e| refuse_config(&e));
    let cli = command
        .try_get_matches_from(&args)
        .and_then(|matches| cli::Cli::from_arg_matches(&matches))
        .unwrap_or_else(|e| refuse_arguments(e));
    if !matches!(cli.command, cli::Command::Peer(_)) {
        die_quietly_on_closed_output();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("natter: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            cli::Command::Server(args) => on_worker(server_cmd::run(args)).await,
            cli::Command::Peer(args) => on_worker(peer_cmd::run(args)).await,
            cli::Command::Demo(args) => demo::run(args).await,
            cli::Command::Bench(args) => on_worker(bench::run(args)).await,
            cli::Command::BenchChild(args) => on_worker(bench::run_child(args)).await,
            cli::Command::Id(args) => id_cmd::run(&args),
            cli::Command::Completions(args) => completions_cmd::run(&args),
            cli::Command::Man(args) => man_cmd::run(&args),
        }
    });
    // Exit without dropping the runtime: a blocking read of standard input
    // (tokio's stdin, the line editor's thread) would otherwise keep the
    // process alive after the peer has said goodbye.
    std::process::exit(code);
}

/// The command line with the config file's values as its defaults, when
/// the command reads one (src/config_file.rs).
fn with_config_file(
    command: clap::Command,
    args: &[std::ffi::OsString],
) -> Result<clap::Command, config_file::ConfigError> {
    let Some(source) = config_file::locate(args, std::env::var_os(config_file::ENV)) else {
        return Ok(command);
    };
    match config_file::read(&source)? {
        Some(settings) => config_file::apply(command, &settings),
        None => Ok(command),
    }
}

/// Bad arguments: clap's explanation on standard error and exit 2, as any
/// command; with `--json`, first the `error` event a program reading
/// standard output waits for (every error is an event in that mode).
fn refuse_arguments(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let shown = matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    if !shown {
        print_bad_arguments_event(config_file::clap_problem(&error));
    }
    error.exit()
}

/// A config file natter cannot use is a wrong command line written down:
/// the same exit code 2 and, with `--json`, the same `error` event.
fn refuse_config(error: &config_file::ConfigError) -> ! {
    print_bad_arguments_event(error.to_string());
    eprintln!("natter: {error}");
    std::process::exit(2)
}

/// With `--json`, the `error` event (`bad_input`, `bad_arguments`) a
/// program reading standard output waits for.
fn print_bad_arguments_event(problem: String) {
    if std::env::args_os().any(|a| a == "--json") {
        let detail = natter_core::ErrorDetail::BadArguments { problem };
        let event = natter_core::Event::error(natter_core::ErrorCode::BadInput, detail);
        println!("{}", render::json(&event));
    }
}

/// `natter demo | head -1`, `natter server | head -1`: once the reader has
/// gone, the next line written kills the process quietly, as it does any
/// Unix tool, instead of a panic (Rust ignores SIGPIPE, so `println!`
/// panics on the broken pipe) or, for the server's log, an error on every
/// line while it runs on with nobody reading.
///
/// Sockets are not affected: tokio's writes go through `send` with
/// `MSG_NOSIGNAL` on Linux, and mio sets `SO_NOSIGPIPE` on Apple systems,
/// so a partner that resets a connection is an error, not a signal. A
/// peer keeps ignoring SIGPIPE anyway: it writes its output itself, ignores
/// a closed one, and goes on until its input ends.
fn die_quietly_on_closed_output() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default, before any
    // other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Runs a command as a task on a worker thread rather than on the main
/// thread (`block_on`): the driver loop and the per-connection tasks it
/// spawns then wake each other on one worker, not across threads with a
/// futex and an eventfd write per message (found with `natter bench`,
/// latency section).
async fn on_worker(command: impl std::future::Future<Output = i32> + Send + 'static) -> i32 {
    tokio::spawn(command).await.unwrap_or_else(|e| {
        eprintln!("natter: internal error: {e}");
        101
    })
}
