//! `natter completions SHELL`: a completion script for bash, zsh, fish,
//! elvish or PowerShell, generated from the command-line definitions
//! (src/cli.rs), so it never lags behind them.

use crate::cli::CompletionsArgs;

/// Prints the script on standard output; returns the exit code.
pub fn run(args: &CompletionsArgs) -> i32 {
    let mut command = crate::cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "natter",
        &mut std::io::stdout().lock(),
    );
    0
}
