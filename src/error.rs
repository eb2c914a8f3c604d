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
pub fn user(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(msg.into()))
}

/// The user-facing message of an error chain, if any link is a [`UserError`].
pub fn find_user_error(err: &anyhow::Error) -> Option<&UserError> {
    err.chain().find_map(|e| e.downcast_ref::<UserError>())
}
