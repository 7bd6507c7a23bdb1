//! What a name and a message may contain, and how untrusted text is made
//! safe to show.

/// Longest peer name, in characters.
pub const MAX_NAME: usize = 32;

/// Whether `name` is 1–32 characters of `A-Z a-z 0-9 _ -`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether two names are the same name: names are unique regardless of
/// case, so `Alice` and `alice` are one person.
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A typed message as it is sent: each tab becomes four spaces (a tab is
/// a control character, which a message may not carry, but users type
/// them and expect them kept), and a message of only spaces is no message.
pub fn prepare_message(text: &str) -> Option<String> {
    let text = text.replace('\t', "    ");
    (!text.trim().is_empty()).then_some(text)
}

/// Why a line typed by the user cannot be sent as a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageProblem {
    Empty,
    TooLong { chars: usize, max: usize },
    ControlCharacter,
}

/// Checks a message the local user typed: at most `max_chars` characters,
/// none of them control characters or bidi overrides.
pub fn check_message(text: &str, max_chars: usize) -> Result<(), MessageProblem> {
    if text.is_empty() {
        return Err(MessageProblem::Empty);
    }
    if is_printable_ascii(text) {
        // The common case, checked a byte at a time: as many characters
        // as bytes, none of them unsafe.
        return match text.len() {
            chars if chars > max_chars => Err(MessageProblem::TooLong {
                chars,
                max: max_chars,
            }),
            _ => Ok(()),
        };
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(MessageProblem::TooLong {
            chars,
            max: max_chars,
        });
    }
    if text.chars().any(is_unsafe_char) {
        return Err(MessageProblem::ControlCharacter);
    }
    Ok(())
}

/// Makes text from the network safe for a terminal and a transcript: every
/// control character (escape sequences, NUL, newlines) and every bidi
/// override is replaced by a visible `\u{…}` escape, and the whole is cut to
/// `max_chars` characters.
pub fn sanitize(text: &str, max_chars: usize) -> String {
    if is_printable_ascii(text) && text.len() <= max_chars {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        if is_unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// [`sanitize`] for text already owned: text that needs no change (the
/// common case: printable ASCII within the limit, every received message
/// of a chat in plain English) is given back as it is, without a copy.
pub fn sanitize_owned(text: String, max_chars: usize) -> String {
    if is_printable_ascii(&text) && text.len() <= max_chars {
        return text;
    }
    sanitize(&text, max_chars)
}

/// Whether every byte of `text` is printable ASCII (space to `~`): such
/// text has one character per byte and none that [`sanitize`] escapes. A
/// test a byte at a time, which the compiler vectorises, where decoding
/// and classifying each character took most of a received message's
/// instructions (`natter bench --only throughput`, under callgrind).
fn is_printable_ascii(text: &str) -> bool {
    // No early exit, so that the loop vectorises: messages are short.
    text.bytes()
        .fold(true, |printable, b| printable & (b' '..=b'~').contains(&b))
}

/// Control characters and the Unicode bidi controls that can make a line
/// display differently from what it contains.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_1_to_32_of_the_allowed_characters() {
        assert!(is_valid_name("alice"));
        assert!(is_valid_name("Bob_2-x"));
        assert!(is_valid_name(&"a".repeat(32)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"a".repeat(33)));
        assert!(!is_valid_name("al ice"));
        assert!(!is_valid_name("zoë"));
        assert!(!is_valid_name("a\u{1b}[31m"));
    }

    #[test]
    fn tabs_are_kept_as_spaces_and_blank_messages_are_none() {
        assert_eq!(prepare_message("a\tb").as_deref(), Some("a    b"));
        assert_eq!(prepare_message("  \t "), None);
        assert_eq!(prepare_message(""), None);
        assert!(same_name("Alice", "alice"));
        assert!(!same_name("alice", "alicia"));
    }

    #[test]
    fn messages_are_limited_in_characters_not_bytes() {
        assert_eq!(check_message(&"é".repeat(256), 256), Ok(()));
        assert_eq!(
            check_message(&"é".repeat(257), 256),
            Err(MessageProblem::TooLong {
                chars: 257,
                max: 256
            })
        );
        assert_eq!(check_message("", 256), Err(MessageProblem::Empty));
        assert_eq!(check_message("a#b 👋", 256), Ok(()));
    }

    #[test]
    fn control_characters_and_bidi_overrides_are_refused_when_typed() {
        assert_eq!(
            check_message("a\u{7}b", 256),
            Err(MessageProblem::ControlCharacter)
        );
        assert_eq!(
            check_message("a\u{202e}b", 256),
            Err(MessageProblem::ControlCharacter)
        );
    }

    #[test]
    fn text_from_the_network_is_shown_escaped_never_raw() {
        assert_eq!(
            sanitize("hi\u{1b}[2Jthere\0", 256),
            "hi\\u{1b}[2Jthere\\u{0}"
        );
        assert_eq!(sanitize("abc\u{202e}def", 256), "abc\\u{202e}def");
        assert_eq!(sanitize("abcdef", 3), "abc…");
        assert_eq!(sanitize_owned("abc\u{7f}".into(), 256), "abc\\u{7f}");
        assert_eq!(sanitize_owned("abc~ def".into(), 256), "abc~ def");
        assert_eq!(sanitize_owned("abcdef".into(), 3), "abc…");
        assert_eq!(sanitize_owned("zoë\u{1b}".into(), 256), "zoë\\u{1b}");
        assert_eq!(sanitize_owned("zoë et lé".into(), 4), "zoë …");
    }

    #[test]
    fn safe_text_from_the_network_is_kept_as_it_is_without_a_copy() {
        for text in ["hi zuzu, how are you?", "zoë", ""] {
            let owned = text.to_string();
            let buffer = owned.as_ptr();
            let kept = sanitize_owned(owned, 256);
            assert_eq!(kept, text);
            if text.is_ascii() && !text.is_empty() {
                assert_eq!(kept.as_ptr(), buffer, "{text:?} was copied");
            }
        }
    }

    #[test]
    fn typed_ascii_is_checked_like_any_text() {
        assert_eq!(check_message(&"a".repeat(256), 256), Ok(()));
        assert_eq!(
            check_message(&"a".repeat(257), 256),
            Err(MessageProblem::TooLong {
                chars: 257,
                max: 256
            })
        );
        assert_eq!(
            check_message("a\u{7f}", 256),
            Err(MessageProblem::ControlCharacter)
        );
        assert_eq!(
            check_message("a\u{1f}b", 256),
            Err(MessageProblem::ControlCharacter)
        );
    }
}
