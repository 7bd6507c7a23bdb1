//! `natter demo`, the README's first command, runs to the end by itself,
//! shows only the transcripts it wrote, and leaves nothing behind unless
//! asked to keep them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `natter demo` with these arguments and `TMPDIR`; returns stdout.
fn demo(args: &[&str], tmp: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("demo")
        .args(args)
        .env("TMPDIR", tmp)
        .output()
        .expect("run natter demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "zuzu  | [alice #1] hi zuzu",
        "alice | [zuzu #1] how are you",
        "zuzu  | [alice #2] i am fine",
        "alice | [zuzu #2] thank you very much",
        "alice | ✓ delivered #2",
        "zuzu  | ✓ delivered #2",
        "zuzu  | chat with alice ended: alice left",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    stdout
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The transcript files a demo's output shows (the lines naming a `.log`).
fn shown(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.ends_with(".log")).collect()
}

#[test]
fn demo_with_a_transcripts_dir_keeps_both_transcripts_and_shows_only_this_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kept = ["--transcripts", dir.path().to_str().unwrap()];
    let first = demo(&kept, tmp.path());
    let second = demo(&kept, tmp.path());

    for (who, other) in [("alice", "zuzu"), ("zuzu", "alice")] {
        let files = files_in(&dir.path().join(who));
        assert_eq!(files.len(), 2, "{who}: one file per run: {files:?}");
        for (file, stdout) in files.iter().zip([&first, &second]) {
            let name = file.file_name().unwrap().to_string_lossy();
            assert!(name.ends_with(&format!("_{who}_{other}.log")), "{name}");
            let text = std::fs::read_to_string(file).unwrap();
            assert_eq!(text.lines().count(), 8, "{text}");
            assert!(
                shown(stdout).contains(&file.display().to_string().as_str()),
                "the run that wrote {} shows where it is:\n{stdout}",
                file.display()
            );
        }
    }
    assert_eq!(shown(&second).len(), 2, "only this run's:\n{second}");
}

#[test]
fn demo_without_a_transcripts_dir_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let stdout = demo(&[], tmp.path());
    assert_eq!(files_in(tmp.path()), Vec::<PathBuf>::new(), "left behind");
    let shown = shown(&stdout);
    assert_eq!(shown.len(), 2, "both transcripts shown:\n{stdout}");
    for file in shown {
        assert!(
            !file.contains(&*tmp.path().to_string_lossy()),
            "no path to a directory that is gone: {file}"
        );
    }
    assert!(stdout.contains("--transcripts DIR keeps them"), "{stdout}");
}
