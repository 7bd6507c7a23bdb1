//! `natter id --name NAME`: prints the fingerprint of NAME's identity, the
//! string others see beside NAME and compare with what NAME tells them.
//!
//! The key is the one `natter peer --name NAME` uses, with the same
//! `--data-dir` and `--identity` (layout in src/data_dir.rs); it is
//! created on first use, so running `natter id` first is also how to make
//! an identity before going online. With `--json` the answer is one line,
//! `{"event":"identity","name":…,"fingerprint":…}`.

use crate::cli::IdArgs;
use crate::data_dir::{identity_path, NoDataDir, Owner};
use crate::render;
use natter_core::{ErrorCode, ErrorDetail, Event, Fingerprint};
use natter_net_real::keyfile;

/// Runs the command; returns the exit code.
pub fn run(args: &IdArgs) -> i32 {
    if !natter_core::text::is_valid_name(&args.name) {
        let detail = ErrorDetail::OwnNameInvalid {
            name: args.name.clone(),
        };
        let event = Event::error(ErrorCode::InvalidName, detail);
        if args.json {
            println!("{}", render::json(&event));
        }
        eprintln!("natter: {}", render::human(&event));
        return 1;
    }
    let path = match identity_path(&args.identity, Owner::Peer(&args.name)) {
        Ok(path) => path,
        Err(NoDataDir) => {
            eprintln!(
                "natter: cannot find the platform data directory (is HOME set?); give --data-dir DIR or --identity FILE"
            );
            return 1;
        }
    };
    let loaded = match keyfile::load_or_create(&path) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("natter: {error}");
            return 1;
        }
    };
    let fingerprint = loaded.identity.public().fingerprint();
    if loaded.created {
        eprintln!(
            "natter: a new identity for {}, its key saved in {}",
            args.name,
            path.display()
        );
    }
    if args.json {
        let line = IdentityLine {
            event: "identity",
            name: &args.name,
            fingerprint: &fingerprint,
        };
        println!("{}", serde_json::to_string(&line).expect("plain strings"));
    } else {
        println!("{}: {fingerprint}", args.name);
    }
    0
}

/// The `--json` answer, fields in the order SPEC.md shows them.
#[derive(serde::Serialize)]
struct IdentityLine<'a> {
    event: &'static str,
    name: &'a str,
    fingerprint: &'a Fingerprint,
}
