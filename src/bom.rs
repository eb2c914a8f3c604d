//! The UTF-8 byte order mark: Windows editors (Notepad, Excel's "CSV UTF-8") put one at the
//! start of a text file; every reader of a user's text file accepts it by dropping it.

use std::io::{BufRead, BufReader, Read};

const BOM: &str = "\u{feff}";

/// `text` without a leading byte order mark.
pub fn strip(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// A reader of `inner` that skips a leading byte order mark.
pub fn skip<R: Read>(inner: R) -> std::io::Result<BufReader<R>> {
    let mut reader = BufReader::new(inner);
    let head = reader.fill_buf()?;
    if head.starts_with(BOM.as_bytes()) {
        reader.consume(BOM.len());
    }
    Ok(reader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_a_leading_mark() {
        assert_eq!(strip("\u{feff}{\"a\": 1}"), "{\"a\": 1}");
        assert_eq!(strip("{\"a\": 1}\u{feff}"), "{\"a\": 1}\u{feff}");
        assert_eq!(strip(""), "");
    }

    #[test]
    fn skips_the_mark_in_a_stream() {
        let bytes = [BOM.as_bytes(), b"text,label\n"].concat();
        let mut out = String::new();
        skip(&bytes[..]).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "text,label\n");
        let mut plain = String::new();
        skip(&b"ab"[..])
            .unwrap()
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, "ab");
    }
}
