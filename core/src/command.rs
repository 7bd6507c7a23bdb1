//! The lines a user types: slash commands or chat messages.

use crate::protocol::ErrorCode;
use crate::text::is_valid_name;
use std::net::SocketAddr;

/// Whom `/connect` dials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A registered name, resolved through the last list or the server.
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
    /// `/leave` or `exit()`.
    Leave,
    /// `/quit`, or the end of standard input.
    Quit,
    Help,
    /// Any other line: a chat message (`//x` sends `/x`).
    Say(String),
}

/// The commands, as `/help` lists them.
pub const HELP: &[&str] = &[
    "/list                 show who is online",
    "/connect NAME|IP:PORT ask a peer to chat",
    "/accept               accept the pending request",
    "/reject               reject the pending request",
    "/leave or exit()      end the chat (or cancel your request)",
    "/quit                 leave, deregister and exit",
    "/help                 this list",
    "//text                send a message that starts with /",
];

/// Parses one line typed by the user. A line starting with `/` is always a
/// command; anything else is a message.
pub fn parse(line: &str) -> Result<Command, (ErrorCode, String)> {
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
            Err((ErrorCode::BadInput, format!("/{verb} takes no arguments")))
        }
    };
    match verb {
        "list" => no_args(Command::List),
        "accept" => no_args(Command::Accept),
        "reject" => no_args(Command::Reject),
        "leave" => no_args(Command::Leave),
        "quit" => no_args(Command::Quit),
        "help" => no_args(Command::Help),
        "connect" => match args.as_slice() {
            [target] => parse_target(target).map(Command::Connect),
            _ => Err((
                ErrorCode::BadInput,
                "usage: /connect NAME or /connect IP:PORT".to_string(),
            )),
        },
        _ => Err((
            ErrorCode::UnknownCommand,
            format!("unknown command /{verb}; /help lists the commands, // sends a message starting with /"),
        )),
    }
}

fn parse_target(word: &str) -> Result<Target, (ErrorCode, String)> {
    if let Ok(addr) = word.parse::<SocketAddr>() {
        return Ok(Target::Addr(addr));
    }
    if is_valid_name(word) {
        return Ok(Target::Name(word.to_string()));
    }
    Err((
        ErrorCode::BadInput,
        format!("{word:?} is neither a name (1-32 of A-Z a-z 0-9 _ -) nor an IP:PORT"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_lines_are_commands_and_other_lines_messages() {
        assert_eq!(parse("/list"), Ok(Command::List));
        assert_eq!(parse("hi zuzu"), Ok(Command::Say("hi zuzu".into())));
        assert_eq!(parse("exit()"), Ok(Command::Leave));
        assert_eq!(parse("/leave\r\n"), Ok(Command::Leave));
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
        assert_eq!(parse("/dance").unwrap_err().0, ErrorCode::UnknownCommand);
        assert_eq!(parse("/").unwrap_err().0, ErrorCode::UnknownCommand);
        assert_eq!(parse("/connect").unwrap_err().0, ErrorCode::BadInput);
        assert_eq!(parse("/connect b o").unwrap_err().0, ErrorCode::BadInput);
        assert_eq!(
            parse("/connect bad!name").unwrap_err().0,
            ErrorCode::BadInput
        );
        assert_eq!(parse("/list now").unwrap_err().0, ErrorCode::BadInput);
    }
}
