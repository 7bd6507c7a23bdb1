//! The lines a user types: slash commands or chat messages.
//!
//! A user interface parses each line once, with [`parse`], and hands the
//! typed [`Command`] to the peer; a line that is not a valid command is
//! refused right there, with a typed [`Problem`].

use crate::event::{ErrorDetail, Problem};
use crate::protocol::ErrorCode;
use crate::text::is_valid_name;
use std::net::SocketAddr;

/// Whom `/connect` dials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A registered name, looked up at the server when dialled.
    Name(String),
    /// A listening address, dialled directly.
    Addr(SocketAddr),
}

/// One parsed input line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    List,
    Connect(Target),
    Accept,
    Reject,
    /// `/cancel`: stop our own ringing call.
    Cancel,
    /// `/leave` or `exit()`: end the chat, or cancel our ringing call.
    Leave,
    /// `/quit`, or the end of standard input.
    Quit,
    Help,
    /// `/verify [NAME]`: the safety number of the chat (with NAME, or the
    /// one going on), to compare with the partner out of band.
    Verify(Option<String>),
    /// `/trust NAME`: pin the key the directory lists for NAME now,
    /// replacing an older pin (after checking with NAME that its key
    /// really changed).
    Trust(String),
    /// Any other line: a chat message (`//x` sends `/x`).
    Say(String),
}

impl Command {
    /// Whether this is a chat message rather than a command. Only
    /// messages wait for the window of unacknowledged messages.
    pub fn is_message(&self) -> bool {
        matches!(self, Command::Say(_))
    }
}

/// The commands, as `/help` lists them (the syntax only: what each does
/// is worded by the user interface).
pub const HELP: &[&str] = &[
    "/list",
    "/connect NAME|IP:PORT",
    "/accept",
    "/reject",
    "/cancel",
    "/leave",
    "exit()",
    "/quit",
    "/verify",
    "/trust NAME",
    "/help",
    "//text",
];

/// Parses one line typed by the user. A line starting with `/` is always a
/// command; anything else is a message.
pub fn parse(line: &str) -> Result<Command, Problem> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim() == "exit()" {
        return Ok(Command::Leave);
    }
    if let Some(escaped) = line.strip_prefix("//") {
        return Ok(Command::Say(format!("/{escaped}")));
    }
    let Some(command) = line.strip_prefix('/') else {
        return Ok(Command::Say(line.to_string()));
    };
    let mut words = command.split_whitespace();
    let verb = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    let no_args = |c: Command| {
        if args.is_empty() {
            Ok(c)
        } else {
            Err(Problem::new(
                ErrorCode::BadInput,
                ErrorDetail::TakesNoArguments {
                    command: format!("/{verb}"),
                },
            ))
        }
    };
    match verb {
        "list" => no_args(Command::List),
        "accept" => no_args(Command::Accept),
        "reject" => no_args(Command::Reject),
        "cancel" => no_args(Command::Cancel),
        "leave" => no_args(Command::Leave),
        "quit" => no_args(Command::Quit),
        "help" => no_args(Command::Help),
        "verify" => match args.as_slice() {
            [] => Ok(Command::Verify(None)),
            [name] if is_valid_name(name) => Ok(Command::Verify(Some(name.to_string()))),
            _ => Err(Problem::new(
                ErrorCode::BadInput,
                ErrorDetail::Usage {
                    usage: "/verify [NAME]".to_string(),
                },
            )),
        },
        "trust" => match args.as_slice() {
            [name] if is_valid_name(name) => Ok(Command::Trust(name.to_string())),
            _ => Err(Problem::new(
                ErrorCode::BadInput,
                ErrorDetail::Usage {
                    usage: "/trust NAME".to_string(),
                },
            )),
        },
        "connect" => match args.as_slice() {
            [target] => parse_target(target).map(Command::Connect),
            _ => Err(Problem::new(
                ErrorCode::BadInput,
                ErrorDetail::Usage {
                    usage: "/connect NAME|IP:PORT".to_string(),
                },
            )),
        },
        _ => Err(Problem::new(
            ErrorCode::UnknownCommand,
            ErrorDetail::UnknownCommand {
                command: crate::text::sanitize(&format!("/{verb}"), 40),
            },
        )),
    }
}

fn parse_target(word: &str) -> Result<Target, Problem> {
    if let Ok(addr) = word.parse::<SocketAddr>() {
        return Ok(Target::Addr(addr));
    }
    if is_valid_name(word) {
        return Ok(Target::Name(word.to_string()));
    }
    Err(Problem::new(
        ErrorCode::BadInput,
        ErrorDetail::BadTarget {
            word: crate::text::sanitize(word, 64),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> ErrorCode {
        parse(line).unwrap_err().code
    }

    #[test]
    fn slash_lines_are_commands_and_other_lines_messages() {
        assert_eq!(parse("/list"), Ok(Command::List));
        assert_eq!(parse("hi zuzu"), Ok(Command::Say("hi zuzu".into())));
        assert_eq!(parse("exit()"), Ok(Command::Leave));
        assert_eq!(parse("/leave\r\n"), Ok(Command::Leave));
        assert_eq!(parse("/cancel"), Ok(Command::Cancel));
        assert_eq!(parse("/trust bob"), Ok(Command::Trust("bob".into())));
        assert_eq!(parse("//etc/hosts"), Ok(Command::Say("/etc/hosts".into())));
        assert_eq!(
            parse("/connect bob"),
            Ok(Command::Connect(Target::Name("bob".into())))
        );
        assert_eq!(
            parse("/connect [::1]:4000"),
            Ok(Command::Connect(Target::Addr(
                "[::1]:4000".parse().unwrap()
            )))
        );
    }

    #[test]
    fn unknown_or_malformed_commands_are_errors() {
        assert_eq!(code("/dance"), ErrorCode::UnknownCommand);
        assert_eq!(code("/"), ErrorCode::UnknownCommand);
        assert_eq!(code("/connect"), ErrorCode::BadInput);
        assert_eq!(code("/connect b o"), ErrorCode::BadInput);
        assert_eq!(code("/connect bad!name"), ErrorCode::BadInput);
        assert_eq!(code("/list now"), ErrorCode::BadInput);
        assert_eq!(code("/trust"), ErrorCode::BadInput);
        assert_eq!(code("/trust bad!name"), ErrorCode::BadInput);
    }
}
