//! Tab completion: the command at the start of the line, a name after it
//! (or anywhere in a message, to address someone).

/// What Tab does to the word before the cursor.
#[derive(Debug, PartialEq, Eq)]
pub struct Completion {
    /// Characters to insert at the cursor: what every choice shares past
    /// the word typed, and a space when there is one choice only.
    pub insert: String,
    /// Every choice, when there are several (shown to pick from).
    pub choices: Vec<String>,
}

/// The commands as typed, without their arguments: `/connect`, `/accept`….
pub fn commands() -> Vec<String> {
    natter_core::command::HELP
        .iter()
        .filter_map(|usage| usage.split_whitespace().next())
        .filter(|verb| verb.starts_with('/') && *verb != "//text")
        .map(str::to_string)
        .collect()
}

/// Completes the last word of `before` (the draft up to the cursor): a
/// command if it is the first word and starts with `/`, else one of
/// `names`. Names match regardless of case, as natter's names do.
pub fn complete(before: &str, names: &[String]) -> Completion {
    let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &before[start..];
    let pool = if start == 0 && word.starts_with('/') {
        commands()
    } else {
        names.to_vec()
    };
    let choices: Vec<String> = pool
        .into_iter()
        .filter(|c| c.to_lowercase().starts_with(&word.to_lowercase()) && c.len() > word.len())
        .collect();
    match choices.as_slice() {
        [] => Completion {
            insert: String::new(),
            choices,
        },
        [only] => Completion {
            insert: format!("{} ", &only[word.len()..]),
            choices: Vec::new(),
        },
        [first, rest @ ..] => {
            let shared = rest.iter().fold(first.len(), |len, c| {
                first
                    .char_indices()
                    .zip(c.chars())
                    .take_while(|((i, a), b)| *i < len && a.eq_ignore_ascii_case(b))
                    .count()
            });
            Completion {
                insert: first[word.len().min(shared)..shared].to_string(),
                choices,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["bob", "bobby", "carol"].map(String::from).to_vec()
    }

    #[test]
    fn a_unique_command_is_completed_with_a_space() {
        let c = complete("/con", &names());
        assert_eq!((c.insert.as_str(), c.choices.len()), ("nect ", 0));
    }

    #[test]
    fn a_name_after_a_command_is_completed() {
        assert_eq!(complete("/connect ca", &names()).insert, "rol ");
        assert_eq!(complete("hi ca", &names()).insert, "rol ");
    }

    #[test]
    fn several_choices_complete_what_they_share_and_are_listed() {
        let c = complete("/connect b", &names());
        assert_eq!(c.insert, "ob");
        assert_eq!(c.choices, ["bob", "bobby"]);
        let c = complete("/c", &names());
        assert_eq!(c.insert, "");
        assert!(
            c.choices.contains(&"/connect".to_string()),
            "{:?}",
            c.choices
        );
        assert!(c.choices.contains(&"/chats".to_string()), "{:?}", c.choices);
    }

    #[test]
    fn nothing_to_complete_changes_nothing() {
        let c = complete("/connect zed", &names());
        assert_eq!(
            c,
            Completion {
                insert: String::new(),
                choices: vec![]
            }
        );
    }
}
