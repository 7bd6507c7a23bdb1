//! `natter demo`, the README's first command, runs to the end by itself.

use std::process::Command;

#[test]
fn demo_plays_the_conversation_and_writes_both_transcripts() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["demo", "--transcripts"])
        .arg(dir.path())
        .output()
        .expect("run natter demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
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
    for (who, other) in [("alice", "zuzu"), ("zuzu", "alice")] {
        let files: Vec<_> = std::fs::read_dir(dir.path().join(who))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{who}: {files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().to_string();
        assert!(name.ends_with(&format!("_{who}_{other}.log")), "{name}");
        assert!(stdout.contains(&files[0].display().to_string()));
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert_eq!(text.lines().count(), 8, "{text}");
    }
}
