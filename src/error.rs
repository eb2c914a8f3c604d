//! Errors that are the user's to fix (bad flags, files, data) versus everything else.
//!
//! A `UserError` ends the program with one line on stderr and exit code 2; the message names
//! the file, field or line and says what to do. Anything else is a bug or an environment
//! failure and exits with 1 and its full context chain.

use std::fmt;

/// A problem with the user's input. Its message is printed as is, on one line.
#[derive(Debug)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Builds a [`UserError`] wrapped in `anyhow::Error`, for `ok_or_else` and `map_err`.
/// Messages quote the user's own text (labels, field values, paths), which may hold line
/// breaks or other control characters: those are written escaped (`\n`), so that the message
/// stays one line whatever it quotes.
pub fn user(msg: impl Into<String>) -> anyhow::Error {
    let msg: String = msg.into();
    let mut line = String::with_capacity(msg.len());
    for c in msg.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    anyhow::Error::new(UserError(line))
}

/// The user-facing message of an error chain, if any link is a [`UserError`].
pub fn find_user_error(err: &anyhow::Error) -> Option<&UserError> {
    err.chain().find_map(|e| e.downcast_ref::<UserError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_errors_quoting_line_breaks_stay_one_line() {
        let e = user("labels.json: label \"\neg\" and \"a\tb\"\r");
        assert_eq!(
            e.to_string(),
            "labels.json: label \"\\neg\" and \"a\\tb\"\\r"
        );
        assert_eq!(user("é 日本 ok").to_string(), "é 日本 ok");
    }
}
