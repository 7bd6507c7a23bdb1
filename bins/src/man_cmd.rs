//! `natter man [COMMAND]`: manual pages in roff, generated from the
//! command-line definitions (src/cli.rs): natter(1), whose SUBCOMMANDS
//! section lists the commands, and one page per command (natter-peer(1),
//! …) with all its flags. `--dir DIR` writes every page as a file, for
//! packagers and for `man natter-peer` (DIR on the MANPATH).

use crate::cli::ManArgs;
use std::io::Write;
use std::path::Path;

/// Prints the page, or writes them all; returns the exit code.
pub fn run(args: &ManArgs) -> i32 {
    let mut natter = crate::cli::command().disable_help_subcommand(true);
    // Gives each command its page title: natter-peer, not peer.
    natter.build();
    if let Some(dir) = &args.dir {
        return match write_all(natter, dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!(
                    "natter: cannot write the man pages in {}: {e}",
                    dir.display()
                );
                1
            }
        };
    }
    let page = match &args.command {
        None => natter,
        Some(name) => natter
            .find_subcommand(name)
            .expect("clap lets only a command's name through")
            .clone(),
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(&render(page)).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("natter: cannot print the man page: {e}");
            1
        }
    }
}

/// `DIR/natter.1` and `DIR/natter-COMMAND.1` for each visible command;
/// DIR is created if need be.
fn write_all(natter: clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let commands: Vec<clap::Command> = natter
        .get_subcommands()
        .filter(|command| !command.is_hide_set())
        .cloned()
        .collect();
    for page in std::iter::once(natter).chain(commands) {
        let name = page.get_display_name().unwrap_or(page.get_name());
        std::fs::write(dir.join(format!("{name}.1")), render(page.clone()))?;
    }
    Ok(())
}

/// One page. clap_mangen puts the text after the options (where the
/// defaults come from: src/cli.rs) under the heading EXTRA; here it is
/// CONFIGURATION, which says what it is about.
fn render(page: clap::Command) -> Vec<u8> {
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        // The footer of every page, natter-peer(1) included.
        .source(concat!("natter ", env!("CARGO_PKG_VERSION")))
        .render(&mut roff)
        .expect("writing to memory cannot fail");
    String::from_utf8(roff)
        .expect("the pages are made of UTF-8 text")
        .replacen("\n.SH EXTRA\n", "\n.SH CONFIGURATION\n", 1)
        .into_bytes()
}
