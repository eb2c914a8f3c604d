//! The projector plugin's `projector_config.pbtxt` (projector_config.proto in protobuf text
//! format): the tensors TensorBoard's projector offers, each a TSV of vectors with a TSV of
//! metadata. TensorBoard looks for the file in the log folder (and in each run's folder) and
//! resolves the paths from the file's own folder, refusing any that lead outside it.

/// The name TensorBoard looks for.
pub const CONFIG_FILE: &str = "projector_config.pbtxt";

/// One `embeddings { ... }` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectorTensor {
    /// The name the projector's menu shows.
    pub name: String,
    /// Relative to the config's folder, with `/` between folders.
    pub tensor_path: String,
    pub metadata_path: String,
}

/// A text-format string literal.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The config's text.
pub fn config_text(tensors: &[ProjectorTensor]) -> String {
    tensors
        .iter()
        .map(|t| {
            format!(
                "embeddings {{\n  tensor_name: {}\n  tensor_path: {}\n  metadata_path: {}\n}}\n",
                quoted(&t.name),
                quoted(&t.tensor_path),
                quoted(&t.metadata_path)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_tensor_with_escaped_strings() {
        let text = config_text(&[ProjectorTensor {
            name: "best/layer_2".into(),
            tensor_path: "a \"b\"\\c.tsv".into(),
            metadata_path: "metadata.tsv".into(),
        }]);
        assert_eq!(
            text,
            "embeddings {\n  tensor_name: \"best/layer_2\"\n  tensor_path: \"a \\\"b\\\"\\\\c.tsv\"\n  metadata_path: \"metadata.tsv\"\n}\n"
        );
    }
}
