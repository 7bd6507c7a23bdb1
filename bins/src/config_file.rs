//! Defaults from a config file, so that `natter peer` needs no flags at all
//! once `name` and `server` are written down.
//!
//! The file is `config.toml` in the platform config directory
//! (`~/.config/natter/config.toml` on Linux, or under `$XDG_CONFIG_HOME`),
//! or the one `--config FILE` or `NATTER_CONFIG` names. Each line
//! `key = value` sets the default of the flag `--key` (`data_dir` may be
//! spelt for `data-dir`) in every one of [`COMMANDS`] that has that flag:
//!
//! ```toml
//! name = "alice"
//! server = "chat.example.org:4201"
//! data-dir = "~/natter"
//! ```
//!
//! A flag that may be given several times (`server`) takes several values
//! as a TOML array (`server = ["a.example", "b.example"]`) or separated as
//! on its command line (`server = "a.example,b.example"`).
//!
//! The values become clap's defaults before the command line is parsed, so
//! the order of precedence is clap's own (a flag, then its environment
//! variable, then the default) and `--help` shows the values in use. Each
//! value goes through the flag's own parser first, so a value a flag would
//! refuse is refused here too, with the file and line.
//!
//! Only flags that take a value can be set: a switch (`--json`, `--plain`)
//! set in the file could not be turned off on the command line.

use clap::builder::ValueHint;
use clap::{Arg, Command};
use std::ffi::OsString;
use std::path::PathBuf;

/// The commands whose flags the file gives defaults to. `demo` and
/// `bench` set up their own throwaway servers and peers, and the output of
/// `completions` and `man` must not depend on who runs them.
pub const COMMANDS: [&str; 3] = ["peer", "server", "id"];

/// The flag that names another file, and its environment variable.
const FLAG: &str = "config";
pub const ENV: &str = "NATTER_CONFIG";
/// The file's name in the platform config directory.
const FILE_NAME: &str = "config.toml";

/// `--config FILE`, added to each of [`COMMANDS`] by `cli::command`. Only
/// [`locate`] reads it (and `NATTER_CONFIG`, which is not clap's `env`
/// here: clap would take an empty variable for an empty path, where an
/// empty variable means none, as for any variable that names a file).
pub fn flag() -> Arg {
    Arg::new(FLAG)
        .long(FLAG)
        .value_name("FILE")
        .value_hint(ValueHint::FilePath)
        .value_parser(clap::value_parser!(PathBuf))
        // Among the command's own options, not under the last heading.
        .help_heading(None)
        .help(format!("The config file to take defaults from, instead of the one {ENV} names or else config.toml in the platform config directory (e.g. ~/.config/natter/config.toml)"))
}

/// Which file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    /// Named by `--config` or `NATTER_CONFIG`: then it must exist. The
    /// platform's file is optional.
    pub named: bool,
}

/// The file for this command line (`args` as the process got them, the
/// program's name first): the one `--config FILE` (or `--config=FILE`)
/// names, else `NATTER_CONFIG` (`env`, ignored when empty), else the
/// platform's; `None` when the command reads no config file or
/// there is no platform config directory.
///
/// This looks at the arguments before clap does, because the file's
/// values must be clap's defaults when it parses them. That is sound for
/// natter's command line: the command is the first argument (natter itself
/// takes no option with a value), and no flag's value starts with `--`;
/// clap then parses `--config` again, and reports a malformed one.
pub fn locate(args: &[OsString], env: Option<OsString>) -> Option<Source> {
    let command = args.get(1)?.to_str()?;
    if !COMMANDS.contains(&command) {
        return None;
    }
    let mut rest = args[2..].iter().take_while(|arg| *arg != "--");
    while let Some(arg) = rest.next() {
        let Some(arg) = arg.to_str() else { continue };
        let named = match arg.strip_prefix("--config") {
            Some("") => rest.next().map(PathBuf::from),
            Some(value) => value.strip_prefix('=').map(PathBuf::from),
            None => None,
        };
        if let Some(path) = named {
            return Some(Source { path, named: true });
        }
    }
    if let Some(path) = env.filter(|path| !path.is_empty()) {
        return Some(Source {
            path: path.into(),
            named: true,
        });
    }
    let dirs = directories::ProjectDirs::from("", "", "natter")?;
    Some(Source {
        path: dirs.config_dir().join(FILE_NAME),
        named: false,
    })
}

/// A config file, read and parsed; not yet checked against the flags.
#[derive(Debug)]
pub struct Settings {
    path: PathBuf,
    /// In the file's order.
    entries: Vec<Entry>,
}

/// One `key = value` line.
#[derive(Debug)]
struct Entry {
    /// As written, for messages.
    key: String,
    /// The flag's long name: `key` with `_` read as `-`.
    flag: String,
    value: Value,
    line: usize,
}

/// The values a flag's default can come from.
#[derive(Debug)]
enum Value {
    Text(String),
    /// A TOML array of strings and integers: several values, for a flag
    /// that takes several.
    List(Vec<String>),
    /// Anything else, by its TOML type (refused when applied, so that the
    /// message can name the flag).
    Other(&'static str),
}

/// A config file natter cannot use: shown as `config file PATH, line N:
/// PROBLEM`, and handled like a wrong command line (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "config file {}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// Reads and parses the file; `Ok(None)` when the platform's file does not
/// exist (the usual case: natter needs none).
pub fn read(source: &Source) -> Result<Option<Settings>, ConfigError> {
    let path = source.path.clone();
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !source.named => Ok(None),
        Err(e) => Err(ConfigError {
            path,
            line: None,
            problem: format!("cannot read it: {e}"),
        }),
    }
}

fn parse(path: PathBuf, text: &str) -> Result<Settings, ConfigError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table = toml::de::DeTable::parse(text).map_err(|e| ConfigError {
        path: path.clone(),
        line: e.span().map(|span| line_of(span.start)),
        problem: format!("not TOML: {}", e.message()),
    })?;
    let mut entries: Vec<(usize, Entry)> = Vec::new();
    for (key, value) in table.get_ref() {
        let value = match value.get_ref() {
            toml::de::DeValue::Array(items) => {
                let texts: Option<Vec<String>> =
                    items.iter().map(|item| scalar(item.get_ref())).collect();
                match texts {
                    Some(texts) => Value::List(texts),
                    None => Value::Other("array of something else"),
                }
            }
            other => scalar(other).map_or(Value::Other(other.type_str()), Value::Text),
        };
        let start = key.span().start;
        let entry = Entry {
            key: key.get_ref().to_string(),
            flag: key.get_ref().replace('_', "-"),
            value,
            line: line_of(start),
        };
        entries.push((start, entry));
    }
    entries.sort_by_key(|(start, _)| *start);
    let entries: Vec<Entry> = entries.into_iter().map(|(_, entry)| entry).collect();
    // TOML refuses a key given twice; `data_dir` and `data-dir` are
    // different keys to it, and one flag here.
    for (index, entry) in entries.iter().enumerate() {
        if let Some(first) = entries[..index].iter().find(|e| e.flag == entry.flag) {
            return Err(ConfigError {
                path,
                line: Some(entry.line),
                problem: format!("`{}` is given twice (line {})", entry.key, first.line),
            });
        }
    }
    Ok(Settings { path, entries })
}

/// A string, or an integer in decimal as a flag takes it (TOML also has
/// 0x…, 1_000; one too large for any flag is left for the flag to
/// refuse); `None` for any other TOML value.
fn scalar(value: &toml::de::DeValue<'_>) -> Option<String> {
    match value {
        toml::de::DeValue::String(text) => Some(text.to_string()),
        toml::de::DeValue::Integer(number) => Some(
            i128::from_str_radix(number.as_str(), number.radix())
                .map_or_else(|_| number.as_str().to_string(), |n| n.to_string()),
        ),
        _ => None,
    }
}

/// Makes each value in `settings` the default of the flag it names, in
/// every one of [`COMMANDS`] that has it (a default also satisfies a
/// required flag such as `--name`). A key that names no flag, a switch,
/// or a value the flag refuses is an error at its line; all of the file is
/// checked, whichever command runs.
pub fn apply(mut cli: Command, settings: &Settings) -> Result<Command, ConfigError> {
    for entry in &settings.entries {
        let error = |problem: String| ConfigError {
            path: settings.path.clone(),
            line: Some(entry.line),
            problem,
        };
        let mut targets = Vec::new();
        for name in COMMANDS {
            let command = cli
                .find_subcommand(name)
                .expect("the config file's commands are natter's");
            let Some(arg) = settable(command).find(|arg| arg.get_long() == Some(&entry.flag))
            else {
                continue;
            };
            if !arg.get_action().takes_values() {
                return Err(error(format!(
                    "`{}` is a switch: give --{} on the command line",
                    entry.key, entry.flag
                )));
            }
            let value = match &entry.value {
                Value::Text(text) => expand_home(arg, text),
                // Joined as on the command line, split again by clap.
                Value::List(texts) => match arg.get_value_delimiter() {
                    Some(separator) => texts
                        .iter()
                        .map(|text| expand_home(arg, text))
                        .collect::<Vec<_>>()
                        .join(&separator.to_string()),
                    None => {
                        return Err(error(format!(
                            "`{}` takes one value, not an array",
                            entry.key
                        )))
                    }
                },
                Value::Other(kind) => {
                    return Err(error(format!(
                        "`{}` must be a string or an integer; this is a TOML {kind}",
                        entry.key
                    )))
                }
            };
            check(arg, &value).map_err(|e| error(clap_problem(&e)))?;
            targets.push((name, arg.get_id().clone(), value));
        }
        if targets.is_empty() {
            return Err(error(format!(
                "unknown key `{}`; a key is the long name of a flag of natter peer, server or id: {}",
                entry.key,
                known_keys(&cli).join(", ")
            )));
        }
        for (name, id, value) in targets {
            cli = cli.mut_subcommands(|command| {
                if command.get_name() != name {
                    return command;
                }
                command.mut_arg(&id, |arg| arg.default_value(value.clone()).required(false))
            });
        }
    }
    Ok(cli)
}

/// Runs `value` through the parser of `arg` (the flag's own checks and
/// messages), as `--flag=VALUE` on a command line of that flag alone.
fn check(arg: &Arg, value: &str) -> Result<(), clap::Error> {
    let long = arg.get_long().expect("settable flags have a long name");
    let mut alone = Arg::new(arg.get_id().clone())
        .long(long.to_string())
        .action(arg.get_action().clone())
        .value_delimiter(arg.get_value_delimiter())
        .value_parser(arg.get_value_parser().clone());
    if let Some(names) = arg.get_value_names() {
        alone = alone.value_names(names.to_vec());
    }
    Command::new("natter")
        .no_binary_name(true)
        .arg(alone)
        .try_get_matches_from([format!("--{long}={value}")])
        .map(drop)
}

/// The flags of `command` a config file may name: all but `--config`
/// itself and the hidden ones.
fn settable(command: &Command) -> impl Iterator<Item = &Arg> {
    command
        .get_arguments()
        .filter(|arg| arg.get_id() != FLAG && !arg.is_hide_set() && arg.get_long().is_some())
}

/// Every key the file may hold, sorted, for the message about one it may
/// not.
fn known_keys(cli: &Command) -> Vec<&str> {
    let mut keys: Vec<&str> = COMMANDS
        .into_iter()
        .filter_map(|name| cli.find_subcommand(name))
        .flat_map(settable)
        .filter(|arg| arg.get_action().takes_values())
        .filter_map(Arg::get_long)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// `~/…` in a path is the home directory, as a shell would read it on the
/// command line (no shell reads the config file).
fn expand_home(arg: &Arg, value: &str) -> String {
    let is_path = matches!(
        arg.get_value_hint(),
        ValueHint::AnyPath | ValueHint::DirPath | ValueHint::FilePath
    );
    let home = || directories::BaseDirs::new().map(|dirs| dirs.home_dir().to_owned());
    match value.strip_prefix("~/") {
        Some(rest) if is_path => match home() {
            Some(home) => home.join(rest).to_string_lossy().into_owned(),
            None => value.to_string(),
        },
        _ => value.to_string(),
    }
}

/// What a clap error says, on one line and without clap's "error: " and
/// usage: the `problem` of a `bad_arguments` event.
pub fn clap_problem(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let message = rendered.split("\n\n").next().unwrap_or_default();
    let message = message.trim().trim_start_matches("error: ");
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn named(path: &str) -> Option<Source> {
        Some(Source {
            path: path.into(),
            named: true,
        })
    }

    #[test]
    fn the_config_flag_is_found_in_both_spellings_and_wins_over_the_variable() {
        let env = || Some(OsString::from("/env.toml"));
        let spaced = args(&["natter", "peer", "--json", "--config", "/a.toml"]);
        assert_eq!(locate(&spaced, env()), named("/a.toml"));
        let joined = args(&["natter", "server", "--config=/b.toml"]);
        assert_eq!(locate(&joined, env()), named("/b.toml"));
        let none = args(&["natter", "id", "--name", "x"]);
        assert_eq!(locate(&none, env()), named("/env.toml"));
    }

    #[test]
    fn an_empty_variable_and_a_config_after_double_dash_are_not_a_file() {
        let after = args(&["natter", "peer", "--", "--config", "/a.toml"]);
        let source = locate(&after, Some(OsString::new()));
        assert!(
            source.as_ref().is_none_or(|source| !source.named),
            "{source:?}"
        );
    }

    #[test]
    fn commands_that_take_no_defaults_read_no_file() {
        for list in [
            &["natter"][..],
            &["natter", "demo", "--config", "/a.toml"],
            &["natter", "completions", "bash"],
            &["natter", "man"],
            &["natter", "--help"],
        ] {
            assert_eq!(
                locate(&args(list), Some("/env.toml".into())),
                None,
                "{list:?}"
            );
        }
    }

    fn settings(text: &str) -> Result<Settings, ConfigError> {
        parse(PathBuf::from("/c.toml"), text)
    }

    fn applied(text: &str) -> Result<Command, ConfigError> {
        apply(crate::cli::command(), &settings(text)?)
    }

    fn default_of(cli: &Command, command: &str, flag: &str) -> Vec<String> {
        let command = cli.find_subcommand(command).unwrap();
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(flag))
            .unwrap();
        arg.get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_key_sets_the_default_of_its_flag_in_every_command_that_has_it() {
        let text = "name = \"alice\"\ndata_dir = \"/d\"\nmax-message = 100\nmax-peers = 0x10\n";
        let cli = applied(text).unwrap();
        assert_eq!(default_of(&cli, "server", "max-peers"), ["16"]);
        assert_eq!(default_of(&cli, "peer", "name"), ["alice"]);
        assert_eq!(default_of(&cli, "id", "name"), ["alice"]);
        assert_eq!(default_of(&cli, "peer", "data-dir"), ["/d"]);
        assert_eq!(default_of(&cli, "server", "data-dir"), ["/d"]);
        assert_eq!(default_of(&cli, "peer", "max-message"), ["100"]);
    }

    #[test]
    fn a_path_under_the_home_directory_is_expanded_and_other_values_are_not() {
        let cli = applied("data-dir = \"~/natter\"\nname = \"~/x\"\n");
        // `~/x` is no name, but names are checked by the peer, not clap.
        let cli = cli.unwrap();
        let home = directories::BaseDirs::new().unwrap().home_dir().to_owned();
        assert_eq!(
            default_of(&cli, "peer", "data-dir"),
            [home.join("natter").to_string_lossy()]
        );
        assert_eq!(default_of(&cli, "peer", "name"), ["~/x"]);
    }

    #[test]
    fn each_mistake_is_reported_at_its_line() {
        let cases = [
            ("name = \"a\"\nnmae = \"b\"\n", 2, "unknown key `nmae`"),
            ("\n\nserver = \"a b\"\n", 3, "not a server address"),
            ("json = true\n", 1, "`json` is a switch"),
            (
                "name = \"a\"\nport = 1.5\n",
                2,
                "must be a string or an integer; this is a TOML float",
            ),
            (
                "max-peers = 0x10\nport = 99999999999999999999\n",
                2,
                "invalid value '99999999999999999999' for '--port <PORT>'",
            ),
            (
                "name = \"a\"\n[peer]\nname = \"b\"\n",
                2,
                "unknown key `peer`",
            ),
            ("name = \"a\"\nname_x = \n", 2, "not TOML"),
            (
                "data_dir = \"/a\"\ndata-dir = \"/b\"\n",
                2,
                "given twice (line 1)",
            ),
            ("log-format = \"yaml\"\n", 1, "possible values: text, json"),
        ];
        for (text, line, problem) in cases {
            let error = applied(text).expect_err(text);
            assert_eq!(error.line, Some(line), "{text:?}: {error}");
            assert!(error.to_string().contains(problem), "{text:?}: {error}");
            assert!(
                error.to_string().starts_with("config file /c.toml, line"),
                "{error}"
            );
        }
    }

    #[test]
    fn several_servers_are_an_array_or_separated_by_commas_and_a_single_flag_takes_no_array() {
        let servers = |text: &str| {
            let cli = applied(text).unwrap();
            let matches = cli
                .try_get_matches_from(["natter", "peer", "--name", "a"])
                .unwrap();
            let (_, peer) = matches.subcommand().unwrap();
            peer.get_many::<crate::cli::ServerAddr>("server")
                .unwrap()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        let both = ["a.example:4201", "10.0.0.7:4300"];
        assert_eq!(
            servers("server = [\"a.example\", \"10.0.0.7:4300\"]\n"),
            both
        );
        assert_eq!(servers("server = \"a.example, 10.0.0.7:4300\"\n"), both);
        let error = applied("server = [\"a.example\", \"a b\"]\n").unwrap_err();
        assert!(error.problem.contains("not a server address"), "{error}");
        let error = applied("name = [\"a\", \"b\"]\n").unwrap_err();
        assert!(error.problem.contains("takes one value"), "{error}");
    }

    #[test]
    fn an_unknown_key_is_answered_with_the_keys_there_are() {
        let error = applied("colour = \"red\"\n").unwrap_err();
        for key in ["data-dir", "listen", "name", "server", "transcripts"] {
            assert!(error.problem.contains(key), "{error}");
        }
        for not_a_key in ["config", "json", "help"] {
            assert!(
                !error.problem.contains(&format!(" {not_a_key},")),
                "{error}"
            );
        }
    }

    #[test]
    fn a_named_file_must_exist_and_the_platform_one_need_not() {
        let missing = PathBuf::from("/no/such/natter.toml");
        let platform = Source {
            path: missing.clone(),
            named: false,
        };
        assert!(read(&platform).unwrap().is_none());
        let named = Source {
            path: missing,
            named: true,
        };
        let error = read(&named).unwrap_err();
        assert!(
            error.to_string().contains("/no/such/natter.toml"),
            "{error}"
        );
        assert!(error.problem.starts_with("cannot read it"), "{error}");
    }
}
