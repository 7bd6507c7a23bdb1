//! What users of command-line tools expect around natter, tried on the real
//! binary: shell completions and man pages made from the command-line
//! definitions, and defaults from `NATTER_*` variables and a config file,
//! a flag winning over a variable winning over the file.
//!
//! Every run gets a home of its own under cargo's scratch directory
//! (`HOME`, `XDG_CONFIG_HOME`, `XDG_DATA_HOME`) and none of the user's
//! `NATTER_*` variables, so the tests never read or touch the real home.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const NATTER: &str = env!("CARGO_BIN_EXE_natter");

/// A home of its own: `HOME`, with `.config` and `.local/share` in it.
struct Home {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Home {
    fn new() -> Home {
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = tempfile::tempdir_in(scratch).expect("a scratch home");
        let path = dir.path().to_owned();
        Home { _dir: dir, path }
    }

    fn config_dir(&self) -> PathBuf {
        self.path.join(".config")
    }

    /// The platform's config file, as natter finds it on Linux.
    fn config_file(&self) -> PathBuf {
        self.config_dir().join("natter/config.toml")
    }

    fn write_config(&self, text: &str) -> PathBuf {
        let file = self.config_file();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
        file
    }

    /// `natter ARGS` in this home, with `vars` set, standard input empty.
    fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut command = Command::new(NATTER);
        command
            .args(args)
            .env("HOME", &self.path)
            .env("XDG_CONFIG_HOME", self.config_dir())
            .env("XDG_DATA_HOME", self.path.join(".local/share"))
            .env_remove("NATTER_NAME")
            .env_remove("NATTER_SERVER")
            .env_remove("NATTER_CONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        for (name, value) in vars {
            command.env(name, value);
        }
        command.output().expect("natter runs")
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The one JSON line a `--json` run printed.
fn one_event(output: &Output) -> Value {
    let text = stdout(output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one line: {text}; stderr: {}",
        stderr(output)
    );
    serde_json::from_str(lines[0]).expect("a JSON line")
}

/// The name `natter id --json` showed the fingerprint of.
fn id_name(home: &Home, args: &[&str], vars: &[(&str, &str)]) -> String {
    let mut all = vec!["id", "--json"];
    all.extend_from_slice(args);
    let output = home.run(&all, vars);
    assert!(output.status.success(), "{output:?}");
    let event = one_event(&output);
    assert_eq!(event["event"], "identity");
    event["name"].as_str().unwrap().to_string()
}

/// The server a peer tried to register with: nothing listens on these
/// ports, so it gives up at once with `server_unreachable`, naming it.
fn server_tried(home: &Home, args: &[&str], vars: &[(&str, &str)]) -> String {
    let mut all = vec!["peer", "--json", "--name", "alice"];
    all.extend_from_slice(args);
    let output = home.run(&all, vars);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let event = one_event(&output);
    assert_eq!(event["code"], "server_unreachable", "{event}");
    event["server"].as_str().unwrap().to_string()
}

#[test]
fn bash_completions_offer_the_commands_and_their_flags() {
    let home = Home::new();
    let output = home.run(&["completions", "bash"], &[]);
    assert!(output.status.success(), "{output:?}");
    let script = stdout(&output);
    for word in [
        "peer",
        "server",
        "demo",
        "id",
        "completions",
        "man",
        "--name",
        "--server",
        "--config",
        "--data-dir",
        "--listen",
        "--json",
    ] {
        assert!(script.contains(word), "the script lacks {word}");
    }

    // Loaded into bash, it completes `natter pe` and `natter peer --se`.
    let script_file = home.path.join("natter.bash");
    std::fs::write(&script_file, &script).unwrap();
    let session = format!(
        r#"source {file}
complete -p natter
COMP_WORDS=(natter pe); COMP_CWORD=1; _natter natter pe natter; echo "words: ${{COMPREPLY[*]}}"
COMP_WORDS=(natter peer --se); COMP_CWORD=2; _natter natter --se peer; echo "words: ${{COMPREPLY[*]}}""#,
        file = script_file.display()
    );
    let Ok(bash) = Command::new("bash").args(["-c", &session]).output() else {
        eprintln!("no bash here: the script was checked as text only");
        return;
    };
    let said = stdout(&bash);
    assert!(
        said.contains("-F _natter natter"),
        "{said}{}",
        stderr(&bash)
    );
    assert!(said.contains("words: peer\n"), "{said}");
    assert!(said.contains("words: --server\n"), "{said}");
}

#[test]
fn every_shell_gets_a_script_and_an_unknown_shell_is_refused() {
    let home = Home::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = home.run(&["completions", shell], &[]);
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = stdout(&output);
        for word in ["natter", "peer", "server", "name"] {
            assert!(script.contains(word), "{shell} lacks {word}: {script}");
        }
    }
    let output = home.run(&["completions", "tcsh"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("possible values"), "{output:?}");
}

#[test]
fn natter_man_is_a_roff_page_listing_every_command() {
    let home = Home::new();
    let output = home.run(&["man"], &[]);
    assert!(output.status.success(), "{output:?}");
    let page = stdout(&output);
    assert!(page.contains("\n.TH natter 1 "), "{page}");
    assert!(page.contains("\n.SH NAME\n"), "{page}");
    for command in [
        "server",
        "peer",
        "demo",
        "bench",
        "id",
        "completions",
        "man",
    ] {
        assert!(
            page.contains(&format!("natter\\-{command}(1)")),
            "{command}: {page}"
        );
    }
    assert!(!page.contains("bench\\-child"), "{page}");
    assert!(page.contains("\n.SH CONFIGURATION\n"), "{page}");
}

#[test]
fn a_command_has_its_own_page_and_dir_writes_them_all() {
    let home = Home::new();
    let output = home.run(&["man", "peer"], &[]);
    assert!(output.status.success(), "{output:?}");
    let page = stdout(&output);
    assert!(page.contains("\n.TH natter-peer 1 "), "{page}");
    for text in [
        "\\-\\-name",
        "\\-\\-server",
        "NATTER_NAME",
        "NATTER_SERVER",
        "\\-\\-config",
    ] {
        assert!(page.contains(text), "{text}: {page}");
    }

    let dir = home.path.join("man/man1");
    let output = home.run(&["man", "--dir", dir.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{output:?}");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "natter-bench.1",
            "natter-completions.1",
            "natter-demo.1",
            "natter-id.1",
            "natter-man.1",
            "natter-peer.1",
            "natter-server.1",
            "natter.1"
        ]
    );
    let written = std::fs::read_to_string(dir.join("natter-peer.1")).unwrap();
    assert_eq!(
        written, page,
        "the file is the page `natter man peer` prints"
    );
}

#[test]
fn natter_name_gives_the_name_when_no_flag_does() {
    let home = Home::new();
    assert_eq!(id_name(&home, &[], &[("NATTER_NAME", "envy")]), "envy");
}

#[test]
fn the_config_file_gives_the_name_and_the_data_dir() {
    let home = Home::new();
    home.write_config("# mine\nname = \"filly\"\ndata-dir = \"~/natter-data\"\n");
    assert_eq!(id_name(&home, &[], &[]), "filly");
    let key = home.path.join("natter-data/peers/filly/identity");
    assert!(
        key.is_file(),
        "the key is in the configured data dir, ~ being HOME"
    );
}

#[test]
fn transcripts_go_to_the_data_dir_unless_transcripts_says_otherwise() {
    let home = Home::new();
    let data = home.path.join("elsewhere");
    let said = |extra: &[&str]| {
        let mut args = vec![
            "peer",
            "--plain",
            "--name",
            "alice",
            "--server",
            "127.0.0.1:1",
        ];
        args.extend_from_slice(&["--data-dir", data.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let output = home.run(&args, &[]);
        stdout(&output)
            .lines()
            .find_map(|line| line.strip_prefix("natter: transcripts go to "))
            .unwrap_or_else(|| panic!("no transcripts line in {output:?}"))
            .to_string()
    };
    assert_eq!(said(&[]), data.join("transcripts").to_str().unwrap());
    let own = home.path.join("own");
    assert_eq!(
        said(&["--transcripts", own.to_str().unwrap()]),
        own.to_str().unwrap()
    );
}

#[test]
fn a_flag_wins_over_the_variable_which_wins_over_the_file() {
    let home = Home::new();
    home.write_config("name = \"filly\"\nserver = \"127.0.0.1:1\"\n");
    let env = [("NATTER_NAME", "envy"), ("NATTER_SERVER", "127.0.0.1:2")];

    assert_eq!(id_name(&home, &[], &[]), "filly");
    assert_eq!(id_name(&home, &[], &env), "envy");
    assert_eq!(id_name(&home, &["--name", "flag"], &env), "flag");

    assert_eq!(server_tried(&home, &[], &[]), "127.0.0.1:1");
    assert_eq!(server_tried(&home, &[], &env), "127.0.0.1:2");
    assert_eq!(
        server_tried(&home, &["--server", "127.0.0.1:3"], &env),
        "127.0.0.1:3"
    );
}

#[test]
fn config_flag_and_variable_name_another_file_the_flag_first() {
    let home = Home::new();
    home.write_config("name = \"platform\"\n");
    let other = home.path.join("other.toml");
    std::fs::write(&other, "name = \"other\"\n").unwrap();
    let third = home.path.join("third.toml");
    std::fs::write(&third, "name = \"third\"\n").unwrap();
    let env = [("NATTER_CONFIG", third.to_str().unwrap())];

    assert_eq!(id_name(&home, &[], &env), "third");
    let flag = ["--config", other.to_str().unwrap()];
    assert_eq!(id_name(&home, &flag, &env), "other");
}

#[test]
fn a_missing_name_is_still_refused_clearly() {
    let home = Home::new();
    home.write_config("server = \"127.0.0.1:1\"\n");
    let output = home.run(&["peer"], &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("--name <NAME>"),
        "{}",
        stderr(&output)
    );

    let output = home.run(&["peer", "--json"], &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let event = one_event(&output);
    assert_eq!(event["detail"], "bad_arguments");
    let problem = event["problem"].as_str().unwrap();
    assert!(problem.contains("--name <NAME>"), "{problem}");
}

#[test]
fn an_unknown_key_is_refused_with_the_file_and_line_and_exit_2() {
    let home = Home::new();
    let file = home.write_config("name = \"filly\"\nsever = \"127.0.0.1:1\"\n");
    let expected = format!(
        "config file {}, line 2: unknown key `sever`",
        file.display()
    );

    let output = home.run(&["peer"], &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    assert!(
        stdout(&output).is_empty(),
        "nothing on standard output without --json"
    );

    let output = home.run(&["peer", "--json"], &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let event = one_event(&output);
    assert_eq!(event["event"], "error");
    assert_eq!(event["code"], "bad_input");
    assert_eq!(event["detail"], "bad_arguments");
    assert!(
        event["problem"].as_str().unwrap().starts_with(&expected),
        "{event}"
    );
}

#[test]
fn a_file_that_is_no_toml_or_a_bad_value_is_refused_at_its_line() {
    let home = Home::new();
    home.write_config("name = \"filly\"\n\nserver = 127.0.0.1\n");
    let output = home.run(&["id"], &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("line 3: not TOML"),
        "{}",
        stderr(&output)
    );

    home.write_config("max-peers = \"many\"\n");
    let output = home.run(&["server"], &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let expected = "line 1: invalid value 'many' for '--max-peers <N>'";
    assert!(stderr(&output).contains(expected), "{}", stderr(&output));
}

#[test]
fn a_config_file_named_but_missing_is_an_error_and_the_platform_one_is_optional() {
    let home = Home::new();
    let missing = home.path.join("missing.toml");
    let output = home.run(
        &["id", "--name", "a", "--config", missing.to_str().unwrap()],
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let expected = format!("config file {}: cannot read it", missing.display());
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));

    let output = home.run(
        &["id", "--name", "a"],
        &[("NATTER_CONFIG", missing.to_str().unwrap())],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");

    assert_eq!(
        id_name(&home, &["--name", "a"], &[]),
        "a",
        "no file, no problem"
    );
}

#[test]
fn completions_and_man_do_not_read_the_config_file() {
    let home = Home::new();
    home.write_config("this is not toml\n");
    for args in [&["completions", "bash"][..], &["man"], &["--help"]] {
        let output = home.run(args, &[]);
        assert!(output.status.success(), "{args:?}: {output:?}");
    }
}
