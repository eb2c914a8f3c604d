//! Types whose serialised form is their command-line text.

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
