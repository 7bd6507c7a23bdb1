//! docs/DEPLOY.md's configuration files are checked by the tools that
//! read them, so that a reader who copies them gets files that work: the
//! systemd unit by `systemd-analyze verify` (and rated by `systemd-analyze
//! security`), the NATS node configuration by `nats-server -t`. Skipped,
//! with a `skipped:` line, where the tool is not installed.

use std::io::Write;
use std::path::Path;
use std::process::Command;

fn deploy_md() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/DEPLOY.md");
    std::fs::read_to_string(path).expect("docs/DEPLOY.md")
}

/// The body of the first fenced block opened by the line `opening` whose
/// body contains `containing`.
fn block(doc: &str, opening: &str, containing: &str) -> String {
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            let body = body.join("\n") + "\n";
            if line == opening && body.contains(containing) {
                return body;
            }
        }
    }
    panic!("no {opening} block with {containing:?} in docs/DEPLOY.md");
}

fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        let _ = writeln!(std::io::stderr(), "skipped: {tool} is not installed");
    }
    found
}

#[test]
fn the_systemd_unit_verifies_and_rates_ok() {
    if !have("systemd-analyze") {
        return;
    }
    let unit = block(&deploy_md(), "```ini", "[Service]")
        // The real binary; the man page is not installed here.
        .replace("/usr/local/bin/natter", env!("CARGO_BIN_EXE_natter"))
        .lines()
        .filter(|l| !l.starts_with("Documentation="))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter-server.service");
    std::fs::write(&path, unit).unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split("exposure level for natter-server.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {text}"));
    assert!(
        exposure <= 2.0,
        "exposure {exposure} (OK is below 2): {text}"
    );
}

#[test]
fn the_nats_node_configuration_is_accepted_by_nats_server() {
    if !have("nats-server") {
        return;
    }
    let conf = block(&deploy_md(), "```", "jetstream {");
    let dir = tempfile::tempdir().unwrap();
    let conf = conf.replace("/var/lib/nats", dir.path().to_str().unwrap());
    let path = dir.path().join("nats.conf");
    std::fs::write(&path, conf).unwrap();
    let test = Command::new("nats-server")
        .arg("-c")
        .arg(&path)
        .arg("-t")
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&test.stderr).to_string() + &String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "nats-server -t: {said}");
}
