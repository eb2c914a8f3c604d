//! Which of the hub's split folders are written, and under which name.

/// The splits written, in this order; the hub's other splits (e.g. IMDb's `unsupervised`) are
/// skipped.
pub(super) const SPLITS: [&str; 3] = ["train", "validation", "test"];

/// The split a hub folder name stands for: `valid`/`dev`/`val` are validation; the converter's
/// `partial-<split>` folders (a truncated conversion of a very large split) count as the split.
pub(super) fn canonical_split(folder: &str) -> Option<&'static str> {
    let folder = folder.strip_prefix("partial-").unwrap_or(folder);
    match folder.to_ascii_lowercase().as_str() {
        "train" => Some("train"),
        "validation" | "valid" | "val" | "dev" => Some("validation"),
        "test" => Some("test"),
        _ => None,
    }
}

/// The split of a file in the converter's older flat layout, `{config}/{dataset}-{split}.parquet`
/// or `{config}/{dataset}-{split}-00000-of-00002.parquet`: the last dash-separated word that
/// names a split.
pub(super) fn legacy_split(file: &str) -> Option<String> {
    let stem = file.strip_suffix(".parquet")?;
    stem.split('-')
        .rev()
        .find(|w| canonical_split(w).is_some())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names() {
        assert_eq!(canonical_split("train"), Some("train"));
        assert_eq!(canonical_split("valid"), Some("validation"));
        assert_eq!(canonical_split("dev"), Some("validation"));
        assert_eq!(canonical_split("partial-train"), Some("train"));
        assert_eq!(canonical_split("unsupervised"), None);
        assert_eq!(
            legacy_split("ag_news-train.parquet").as_deref(),
            Some("train")
        );
        assert_eq!(
            legacy_split("duorc-validation-00000-of-00002.parquet").as_deref(),
            Some("validation")
        );
        assert_eq!(legacy_split("index.duckdb"), None);
    }
}
