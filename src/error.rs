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

/// `bail_user!("{}: ...", path)` returns early with a [`UserError`].
#[macro_export]
macro_rules! bail_user {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::error::UserError(format!($($arg)*))))
    };
}

/// Builds a [`UserError`] wrapped in `anyhow::Error`, for `ok_or_else` and `map_err`.
pub fn user(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(msg.into()))
}

/// The user-facing message of an error chain, if any link is a [`UserError`].
pub fn find_user_error(err: &anyhow::Error) -> Option<&UserError> {
    err.chain().find_map(|e| e.downcast_ref::<UserError>())
}

/// Serialises a type through its `Display` and reads it back through its `parse(&str)`, so that
/// run.json and TOML files hold the same text the command line takes (`bottom:25%`,
/// `noise:0.5`). Use with `#[serde(into = "String", try_from = "String")]`.
#[macro_export]
macro_rules! string_serde {
    ($ty:ty) => {
        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.to_string()
            }
        }

        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(text: String) -> Result<Self, String> {
                <$ty>::parse(&text).map_err(|e| e.to_string())
            }
        }
    };
}
