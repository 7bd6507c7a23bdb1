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

/// One parsed input line. A name given to a command picks one of the
/// several chats a peer may have at once; without it, the command picks
/// as documented on each variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    List,
    Connect(Target),
    /// `/accept [NAME]`: NAME's request, or else the oldest one.
    Accept(Option<String>),
    /// `/reject [NAME]`: NAME's request, or else the oldest one.
    Reject(Option<String>),
    /// `/cancel [NAME]`: stop our own ringing call to NAME, or else the
    /// call placed last.
    Cancel(Option<String>),
    /// `/leave [NAME]` or `exit()`: end the chat with NAME, or else the
    /// focused chat (or, with none, cancel our ringing call).
    Leave(Option<String>),
    /// `/msg NAME TEXT`: a message to NAME's chat, whichever is focused.
    Msg {
        to: String,
        text: String,
    },
    /// `/switch NAME`: plain lines go to NAME's chat from now on.
    Switch(String),
    /// `/chats`: every chat and call, with its state.
    Chats,
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
        matches!(self, Command::Say(_) | Command::Msg { .. })
    }
}

/// The commands, as `/help` lists them (the syntax only: what each does
/// is worded by the user interface).
pub const HELP: &[&str] = &[
    "/list",
    "/connect NAME|IP:PORT",
    "/accept [NAME]",
    "/reject [NAME]",
    "/cancel [NAME]",
    "/leave [NAME]",
    "exit()",
    "/msg NAME TEXT",
    "/switch NAME",
    "/chats",
    "/quit",
    "/verify [NAME]",
    "/trust NAME",
    "/help",
    "//text",
];

/// Parses one line typed by the user. A line starting with `/` is always a
/// command; anything else is a message.
pub fn parse(line: &str) -> Result<Command, Problem> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim() == "exit()" {
        return Ok(Command::Leave(None));
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
    let usage = |usage: &str| {
        Err(Problem::new(
            ErrorCode::BadInput,
            ErrorDetail::Usage {
                usage: usage.to_string(),
            },
        ))
    };
    // `/accept`, `/reject`, `/cancel`, `/leave`: no name, or one.
    let maybe_name = |c: fn(Option<String>) -> Command| match args.as_slice() {
        [] => Ok(c(None)),
        [name] if is_valid_name(name) => Ok(c(Some(name.to_string()))),
        _ => usage(&format!("/{verb} [NAME]")),
    };
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
        "accept" => maybe_name(Command::Accept),
        "reject" => maybe_name(Command::Reject),
        "cancel" => maybe_name(Command::Cancel),
        "leave" => maybe_name(Command::Leave),
        "chats" => no_args(Command::Chats),
        "switch" => match args.as_slice() {
            [name] if is_valid_name(name) => Ok(Command::Switch(name.to_string())),
            _ => usage("/switch NAME"),
        },
        "msg" => parse_msg(command).map_or_else(|| usage("/msg NAME TEXT"), Ok),
        "quit" => no_args(Command::Quit),
        "help" => no_args(Command::Help),
        "verify" => match args.as_slice() {
            [] => Ok(Command::Verify(None)),
            [name] if is_valid_name(name) => Ok(Command::Verify(Some(name.to_string()))),
            _ => usage("/verify [NAME]"),
        },
        "trust" => match args.as_slice() {
            [name] if is_valid_name(name) => Ok(Command::Trust(name.to_string())),
            _ => usage("/trust NAME"),
        },
        "connect" => match args.as_slice() {
            [target] => parse_target(target).map(Command::Connect),
            _ => usage("/connect NAME|IP:PORT"),
        },
        _ => Err(Problem::new(
            ErrorCode::UnknownCommand,
            ErrorDetail::UnknownCommand {
                command: crate::text::sanitize(&format!("/{verb}"), 40),
            },
        )),
    }
}

/// `msg NAME TEXT` (the line without its `/`): the text is everything
/// after the name and the blanks that follow it, kept as typed.
fn parse_msg(command: &str) -> Option<Command> {
    let rest = command.trim_start().strip_prefix("msg")?.trim_start();
    let (name, text) = rest.split_once(char::is_whitespace)?;
    let text = text.trim_start();
    (is_valid_name(name) && !text.is_empty()).then(|| Command::Msg {
        to: name.to_string(),
        text: text.to_string(),
    })
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
        assert_eq!(parse("exit()"), Ok(Command::Leave(None)));
        assert_eq!(parse("/leave\r\n"), Ok(Command::Leave(None)));
        assert_eq!(parse("/cancel"), Ok(Command::Cancel(None)));
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
        assert_eq!(code("/accept bob carol"), ErrorCode::BadInput);
        assert_eq!(code("/leave bad!name"), ErrorCode::BadInput);
        assert_eq!(code("/switch"), ErrorCode::BadInput);
        assert_eq!(code("/msg bob"), ErrorCode::BadInput);
        assert_eq!(code("/msg bob   "), ErrorCode::BadInput);
        assert_eq!(code("/msg bad!name hi"), ErrorCode::BadInput);
        assert_eq!(code("/chats all"), ErrorCode::BadInput);
    }

    #[test]
    fn commands_of_several_chats_take_a_name() {
        let bob = || Some("bob".to_string());
        assert_eq!(parse("/accept bob"), Ok(Command::Accept(bob())));
        assert_eq!(parse("/accept"), Ok(Command::Accept(None)));
        assert_eq!(parse("/reject bob"), Ok(Command::Reject(bob())));
        assert_eq!(parse("/cancel bob"), Ok(Command::Cancel(bob())));
        assert_eq!(parse("/leave bob"), Ok(Command::Leave(bob())));
        assert_eq!(parse("/switch bob"), Ok(Command::Switch("bob".into())));
        assert_eq!(parse("/chats"), Ok(Command::Chats));
        // The text keeps its own spacing, and may itself start with `/`.
        assert_eq!(
            parse("/msg  bob  hi   there /x"),
            Ok(Command::Msg {
                to: "bob".into(),
                text: "hi   there /x".into()
            })
        );
        assert!(parse("/msg bob hi").unwrap().is_message());
    }
}
