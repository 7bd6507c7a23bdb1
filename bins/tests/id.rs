//! `natter id` as a user runs it: the fingerprint of a name's identity,
//! created on first use and the same ever after.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const NATTER: &str = env!("CARGO_BIN_EXE_natter");

fn natter_id(args: &[&str]) -> Output {
    Command::new(NATTER)
        .arg("id")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run natter id")
}

/// Runs `natter id --json` and returns its one JSON line.
fn identity(data_dir: &Path, name: &str) -> Value {
    let dir = data_dir.to_str().unwrap();
    let output = natter_id(&["--name", name, "--data-dir", dir, "--json"]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stdout}");
    serde_json::from_str(lines[0]).unwrap()
}

#[test]
fn a_name_keeps_its_fingerprint_across_runs_and_another_name_has_another() {
    let data = tempfile::tempdir().unwrap();
    let first = identity(data.path(), "alice");
    assert_eq!(first["event"], "identity");
    assert_eq!(first["name"], "alice");
    let fingerprint = first["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fingerprint.len(), 19, "{fingerprint}");
    let mut fields: Vec<&String> = first.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["event", "fingerprint", "name"],
        "exactly these fields"
    );

    assert_eq!(
        identity(data.path(), "alice")["fingerprint"],
        fingerprint.as_str()
    );
    assert_eq!(
        identity(data.path(), "Alice")["fingerprint"],
        fingerprint.as_str(),
        "names ignore case"
    );
    assert_ne!(
        identity(data.path(), "bob")["fingerprint"],
        fingerprint.as_str()
    );
}

#[test]
fn the_text_answer_names_the_fingerprint() {
    let data = tempfile::tempdir().unwrap();
    let fingerprint = identity(data.path(), "alice")["fingerprint"].clone();
    let output = natter_id(&[
        "--name",
        "alice",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout,
        format!("alice: {}\n", fingerprint.as_str().unwrap())
    );
}

#[cfg(unix)]
#[test]
fn the_key_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    identity(data.path(), "alice");
    let key = data.path().join("peers/alice/identity");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", key.display());
}

#[test]
fn identity_flag_picks_the_key_file() {
    let data = tempfile::tempdir().unwrap();
    let key = data.path().join("elsewhere/my.key");
    let key = key.to_str().unwrap();
    let run = |name: &str| {
        let output = natter_id(&["--name", name, "--identity", key, "--json"]);
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice::<Value>(&output.stdout).unwrap()["fingerprint"].clone()
    };
    assert_eq!(run("alice"), run("bob"), "one key file, one identity");
    assert!(Path::new(key).is_file());
    assert!(!data.path().join("peers").exists());
}

#[test]
fn a_corrupt_key_file_is_an_error_and_is_kept() {
    let data = tempfile::tempdir().unwrap();
    let key = data.path().join("peers/alice/identity");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    let output = natter_id(&[
        "--name",
        "alice",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("is not a natter key file"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "not a key\n");
}

#[test]
fn an_invalid_name_is_refused_before_it_becomes_a_path() {
    let data = tempfile::tempdir().unwrap();
    let output = natter_id(&[
        "--name",
        "../x",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let event: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(event["code"], "invalid_name");
    assert_eq!(
        std::fs::read_dir(data.path()).unwrap().count(),
        0,
        "nothing created"
    );
}
