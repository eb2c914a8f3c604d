//! Datasets: reading, label mapping, train/eval splits, tokenisation and length-grouped batches.

pub mod batching;
pub mod bbc;
pub mod cache;
pub mod fetch;
pub mod format;
pub mod labels;

use crate::defaults;
use crate::error::user;
use labels::LabelMap;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

/// One labelled example with its class index.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// "file:line" for files, "topic/NNN" for BBC News.
    pub id: String,
    pub text: String,
    pub text_pair: Option<String>,
    pub label: i64,
}

/// Where the evaluation examples come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalSource {
    /// A separate file.
    File(PathBuf),
    /// A seeded, stratified carve-out of this fraction of the training data.
    Carve(f64),
    /// The dataset's own held-out split (embedded datasets, or a folder's validation/test file).
    Builtin,
}

impl EvalSource {
    /// `--eval-data` wins over `--eval-split`; with neither, the dataset's own split.
    pub fn from_options(eval_data: Option<&Path>, eval_split: Option<f64>) -> Self {
        match (eval_data, eval_split) {
            (Some(path), _) => EvalSource::File(path.to_path_buf()),
            (None, Some(f)) => EvalSource::Carve(f),
            (None, None) => EvalSource::Builtin,
        }
    }
}

/// Training and evaluation examples with one label map.
#[derive(Debug, Clone)]
pub struct TaskData {
    pub train: Vec<Example>,
    pub eval: Vec<Example>,
    pub labels: LabelMap,
    /// Human-readable origin of each split, for run.json.
    pub train_source: String,
    pub eval_source: String,
}

/// Resolves `--data` (a name, a file, or a folder with train.* and validation.*/test.*) and the
/// evaluation source into examples. A name `heal data fetch` knows is looked up in the data
/// cache (`data_dir`, see [`cache::DataCache::open`]) and fetched there when missing.
pub fn load_task(
    data: &str,
    data_dir: Option<&Path>,
    eval: &EvalSource,
    seed: u64,
) -> anyhow::Result<TaskData> {
    let (train, builtin_eval, labels, train_source, builtin_source) = if data == defaults::BBC_NEWS
    {
        let dir = defaults::bbc_news_dir()?;
        let (train, test, topics) = bbc::load(&dir)?;
        let source = format!(
            "bbc-news train split ({} articles, seed {})",
            train.len(),
            bbc::SPLIT_SEED
        );
        let eval_source = format!("bbc-news test split ({} articles)", test.len());
        (
            train,
            Some(test),
            LabelMap::from_names(topics, "bbc-news topic folders"),
            source,
            eval_source,
        )
    } else {
        let (train_file, held_out) = files_of(&cache::resolve(data, data_dir)?)?;
        let raw = format::read_examples(&train_file)?;
        let labels = LabelMap::for_training_file(&train_file, &raw)?;
        let train = to_examples(&raw, &labels, &train_file)?;
        let (held_out_examples, held_out_source) = match &held_out {
            Some(f) => (Some(read_file(f, &labels)?), f.display().to_string()),
            None => (None, String::new()),
        };
        (
            train,
            held_out_examples,
            labels,
            train_file.display().to_string(),
            held_out_source,
        )
    };
    let (train, eval, eval_source) = match eval {
        EvalSource::File(path) => {
            let eval = read_file(path, &labels)?;
            (train, eval, path.display().to_string())
        }
        EvalSource::Carve(fraction) => {
            let (rest, carved) = carve(train, *fraction, seed)?;
            let source = format!(
                "{:.0}% stratified carve-out of the training data (seed {seed})",
                fraction * 100.0
            );
            (rest, carved, source)
        }
        EvalSource::Builtin => match builtin_eval {
            Some(eval) => (train, eval, builtin_source),
            None => {
                return Err(user(format!(
                    "{data}: no evaluation data: pass --eval-data FILE or --eval-split 0.1"
                )))
            }
        },
    };
    Ok(TaskData {
        train,
        eval,
        labels,
        train_source,
        eval_source,
    })
}

/// A data file, or a folder holding train.* and optionally validation.* or test.*.
fn files_of(path: &Path) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    if path.is_file() {
        return Ok((path.to_path_buf(), None));
    }
    if !path.is_dir() {
        return Err(user(format!(
            "{}: data not found: give a .jsonl/.csv/.tsv file, a folder with train.jsonl.gz, the name bbc-news, or a name heal data fetch knows ({})",
            path.display(),
            fetch::names().join(", ")
        )));
    }
    let find = |stem: &str| -> Option<PathBuf> {
        ["jsonl.gz", "jsonl", "csv", "tsv", "csv.gz", "tsv.gz"]
            .iter()
            .map(|ext| path.join(format!("{stem}.{ext}")))
            .find(|p| p.is_file())
    };
    let train = find("train").ok_or_else(|| {
        user(format!(
            "{}: the folder has no train.jsonl(.gz), train.csv or train.tsv",
            path.display()
        ))
    })?;
    Ok((train, find("validation").or_else(|| find("test"))))
}

fn read_file(path: &Path, labels: &LabelMap) -> anyhow::Result<Vec<Example>> {
    let raw = format::read_examples(path)?;
    to_examples(&raw, labels, path)
}

fn to_examples(
    raw: &[format::RawExample],
    labels: &LabelMap,
    file: &Path,
) -> anyhow::Result<Vec<Example>> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    raw.iter()
        .map(|r| {
            Ok(Example {
                id: format!("{name}:{}", r.line),
                text: r.text.clone(),
                text_pair: r.text_pair.clone(),
                label: labels.index_of(r, file)?,
            })
        })
        .collect()
}

/// Seeded stratified split: `fraction` of each class (largest-remainder rounding) goes to the
/// second list. Order inside each list follows the input order.
pub fn carve(
    examples: Vec<Example>,
    fraction: f64,
    seed: u64,
) -> anyhow::Result<(Vec<Example>, Vec<Example>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(user(format!(
            "--eval-split {fraction}: give a fraction between 0 and 1, e.g. 0.1"
        )));
    }
    let classes = examples
        .iter()
        .map(|e| e.label)
        .max()
        .map_or(0, |m| m as usize + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, e) in examples.iter().enumerate() {
        members[e.label as usize].push(i);
    }
    let sizes: Vec<usize> = members.iter().map(|m| m.len()).collect();
    let shares = largest_remainder(&sizes, fraction);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = vec![false; examples.len()];
    for (m, share) in members.iter_mut().zip(shares) {
        m.shuffle(&mut rng);
        for &i in m.iter().take(share) {
            chosen[i] = true;
        }
    }
    if chosen.iter().all(|&c| !c) {
        return Err(user(format!(
            "--eval-split {fraction} leaves no evaluation examples: use a larger fraction"
        )));
    }
    let (mut rest, mut carved) = (Vec::new(), Vec::new());
    for (e, c) in examples.into_iter().zip(chosen) {
        if c {
            carved.push(e)
        } else {
            rest.push(e)
        }
    }
    Ok((rest, carved))
}

/// A seeded random subset of `n` examples (all of them if there are fewer), in input order.
pub fn subsample(examples: Vec<Example>, n: usize, seed: u64) -> Vec<Example> {
    if n >= examples.len() {
        return examples;
    }
    let mut idx: Vec<usize> = (0..examples.len()).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5eed);
    idx.shuffle(&mut rng);
    let mut keep = vec![false; examples.len()];
    for &i in &idx[..n] {
        keep[i] = true;
    }
    examples
        .into_iter()
        .zip(keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect()
}

/// Splits `fraction` of each group so the total is round(fraction x sum), giving the leftover
/// units to the groups with the largest fractional parts (ties to the earlier group).
pub fn largest_remainder(sizes: &[usize], fraction: f64) -> Vec<usize> {
    let total = (sizes.iter().sum::<usize>() as f64 * fraction).round() as usize;
    let exact: Vec<f64> = sizes.iter().map(|&n| n as f64 * fraction).collect();
    let mut out: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let missing = total.saturating_sub(out.iter().sum());
    for &i in order.iter().take(missing) {
        out[i] += 1;
    }
    out
}

/// Refuses a training set a classifier cannot learn from, before any work: none left after the
/// carve-outs, a single class, or fewer examples than classes (then some class has none, and
/// a score of 1.0 on what is left says nothing). `origin` names the data and `after` what was
/// taken from it (" after --eval-split 0.5"), for the message.
pub fn check_training_set(
    train: &[Example],
    labels: &LabelMap,
    origin: &str,
    after: &str,
) -> anyhow::Result<()> {
    if train.is_empty() {
        return Err(user(format!(
            "{origin}: no training example is left{after}: use smaller split fractions or more data"
        )));
    }
    let mut classes: Vec<i64> = train.iter().map(|e| e.label).collect();
    classes.sort_unstable();
    classes.dedup();
    if classes.len() < 2 {
        let name = labels
            .names
            .get(classes[0] as usize)
            .map_or("?", String::as_str);
        return Err(user(format!(
            "{origin}: every training example{after} has the label {name:?}: a classifier needs at least two classes to learn from"
        )));
    }
    if train.len() < labels.len() {
        return Err(user(format!(
            "{origin}: {} training examples{after} for {} classes ({}): give at least one example per class",
            train.len(),
            labels.len(),
            labels.source
        )));
    }
    Ok(())
}
