//! Validation at every boundary, before work starts (issue 17, item 2): a config.json that
//! parses but describes no buildable encoder, thread counts libtorch cannot take, NaN in any
//! float option, training sets nothing can be learnt from, label files that map two ways,
//! scores outside [0, 1], checkpoints of two architectures. Each refusal is exit code 2, one
//! line "error: ..." naming the file, flag or field, no panic, and nothing written.
//! A UTF-8 byte order mark, on the other hand, is accepted in every text file a user gives.

mod common;

use common::{fixtures, heal_bin};
use std::path::{Path, PathBuf};
use std::process::Output;

fn heal(args: &[&str]) -> Output {
    std::process::Command::new(heal_bin())
        .args(args)
        .output()
        .expect("heal runs")
}

/// Asserts exit code 2, exactly one stderr line "error: ..." holding every `needle`, no panic,
/// and `out` absent afterwards.
fn refuses(args: &[&str], out: &Path, needles: &[&str]) {
    let o = heal(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "heal {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "heal {args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "heal {args:?}: not one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "heal {args:?}: {stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "heal {args:?}: {n:?} not in {stderr}");
    }
    assert!(
        !out.exists(),
        "heal {args:?} wrote {} though it refused",
        out.display()
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tiny(name: &str) -> PathBuf {
    fixtures().join("tiny-data").join(name)
}

/// tiny-bert copied into `dir/name` with config.json's `field` set to `value`.
fn broken_bert(dir: &Path, name: &str, field: &str, value: serde_json::Value) -> PathBuf {
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(fixtures().join("tiny-bert")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let path = to.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config[field] = value;
    std::fs::write(&path, config.to_string()).unwrap();
    to
}

/// `heal finetune` of `model` on `data` evaluated on `eval` (or as `extra` says), one quick
/// epoch, writing `out`.
fn finetune_args<'a>(model: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "finetune",
        "--model",
        model,
        "--out",
        out,
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--analysis-examples",
        "0",
    ];
    args.extend(extra);
    args
}

fn tiny_data_args() -> [String; 4] {
    [
        "--data".into(),
        s(&tiny("train.jsonl")).into(),
        "--eval-data".into(),
        s(&tiny("test.jsonl")).into(),
    ]
}

// Finding 4: a config.json whose heads do not divide the hidden size panicked (exit 101) in
// finetune, embed and every sweep cell.
#[test]
fn inconsistent_config_json_is_refused_by_every_command_that_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let heads = broken_bert(tmp.path(), "heads", "num_attention_heads", 5.into());
    let out = tmp.path().join("out");
    let (m, o) = (s(&heads), s(&out));
    let data = tiny_data_args();
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    let needles = ["config.json", "num_attention_heads 5", "hidden_size 32"];
    refuses(&finetune_args(m, o, &data), &out, &needles);
    let mut embed = vec!["embed", m, "--out", o];
    embed.extend(&data);
    refuses(&embed, &out, &needles);
    refuses(
        &["corrupt", "--model", m, "--spec", "all", "--out", o],
        &out,
        &needles,
    );
    refuses(&["weights", m, "--out", o], &out, &needles);

    // The other shape rules: no layers (finding 6: it trained an encoder without layers, and
    // `corrupt --spec all` reported "0 tensors"), sizes, a quantised dtype.
    let layers = broken_bert(tmp.path(), "layers", "num_hidden_layers", 0.into());
    let l = s(&layers);
    refuses(
        &finetune_args(l, o, &data),
        &out,
        &["num_hidden_layers is 0", "at least one layer"],
    );
    refuses(
        &["corrupt", "--model", l, "--spec", "all", "--out", o],
        &out,
        &["num_hidden_layers is 0"],
    );
    let vocab = broken_bert(tmp.path(), "vocab", "vocab_size", 0.into());
    refuses(
        &["weights", s(&vocab), "--out", o],
        &out,
        &["vocab_size is 0"],
    );
    let dtype = broken_bert(tmp.path(), "dtype", "torch_dtype", "int8".into());
    refuses(
        &["weights", s(&dtype), "--out", o],
        &out,
        &["torch_dtype \"int8\" is not supported", "float32"],
    );
    let dropout = broken_bert(tmp.path(), "dropout", "hidden_dropout_prob", 1.5.into());
    refuses(
        &finetune_args(s(&dropout), o, &data),
        &out,
        &["hidden dropout probability 1.5"],
    );
}

// Finding 4: --threads 0 panicked (exit 101) in finetune, sweep and demo; --threads 100000
// segfaulted.
#[test]
fn thread_counts_outside_one_to_four_per_core_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = s(&out);
    let model = fixtures().join("tiny-bert");
    let data = tiny_data_args();
    let mut args: Vec<&str> = finetune_args(s(&model), o, &[]);
    args.extend(data.iter().map(String::as_str));
    let at = args.iter().position(|a| *a == "--threads").unwrap() + 1;
    for bad in ["0", "100000"] {
        args[at] = bad;
        refuses(
            &args,
            &out,
            &[&format!("--threads {bad}"), "thread count from 1 to"],
        );
    }
    // The same count from a TOML file (without the flag, which would win over it).
    let toml = tmp.path().join("threads.toml");
    std::fs::write(&toml, "threads = 0\n").unwrap();
    args.drain(at - 1..=at);
    args.extend(["--config", s(&toml)]);
    refuses(&args, &out, &["--threads 0"]);

    let grid = common::tiny_grid(tmp.path(), "epochs = 1", "");
    refuses(
        &["sweep", "--config", s(&grid), "--out", o, "--threads", "0"],
        &out,
        &["--threads 0"],
    );
    let grid0 = common::tiny_grid(tmp.path(), "epochs = 1\nthreads = 100000", "");
    refuses(
        &["sweep", "--config", s(&grid0), "--out", o],
        &out,
        &["--threads 100000"],
    );
    refuses(
        &["demo", "--out", o, "--threads", "0"],
        &out,
        &["--threads 0"],
    );
}

// Finding 10: --weight-decay nan was accepted while --lr nan was refused; every float option
// now refuses NaN and infinities.
#[test]
fn float_options_refuse_nan_and_infinity() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let model = fixtures().join("tiny-bert");
    let data = tiny_data_args();
    let cases: [(&str, &str); 8] = [
        ("--weight-decay", "nan"),
        ("--weight-decay", "inf"),
        ("--grad-clip", "nan"),
        ("--grad-clip", "inf"),
        ("--warmup", "nan"),
        ("--lr", "inf"),
        ("--collapse-threshold", "nan"),
        ("--validation-split", "nan"),
    ];
    for (flag, value) in cases {
        let mut args = finetune_args(s(&model), s(&out), &[flag, value]);
        args.extend(data.iter().map(String::as_str));
        refuses(&args, &out, &[flag]);
    }
    let train = tiny("train.jsonl");
    let args = finetune_args(
        s(&model),
        s(&out),
        &["--data", s(&train), "--eval-split", "NaN"],
    );
    refuses(&args, &out, &["--eval-split NaN"]);
}

// Finding 6: degenerate training sets trained and ended `ok` (F1 1.0 on nothing learnt).
#[test]
fn training_sets_nothing_can_be_learnt_from_are_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = s(&out);
    let model = fixtures().join("tiny-bert");
    let m = s(&model);
    let train = std::fs::read_to_string(tiny("train.jsonl")).unwrap();

    let one = tmp.path().join("one");
    std::fs::create_dir_all(&one).unwrap();
    std::fs::write(one.join("train.jsonl"), train.lines().next().unwrap()).unwrap();
    let one_file = one.join("train.jsonl");
    refuses(
        &finetune_args(m, o, &["--data", s(&one_file), "--eval-split", "0.5"]),
        &out,
        &["no training example is left after --eval-split 0.5"],
    );
    refuses(
        &finetune_args(
            m,
            o,
            &["--data", s(&tiny("train.jsonl")), "--eval-split", "0.999"],
        ),
        &out,
        &["no training example is left after --eval-split 0.999"],
    );
    refuses(
        &finetune_args(
            m,
            o,
            &[
                "--data",
                s(&tiny("train.jsonl")),
                "--eval-data",
                s(&tiny("test.jsonl")),
                "--validation-split",
                "0.999",
            ],
        ),
        &out,
        &["no training example is left after --validation-split 0.999"],
    );

    // One class (the folder has no labels.json: the labels are the training file's).
    let single = tmp.path().join("single");
    std::fs::create_dir_all(&single).unwrap();
    let sport: String = train
        .lines()
        .filter(|l| l.contains("\"sport\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(single.join("train.jsonl"), sport).unwrap();
    refuses(
        &finetune_args(
            m,
            o,
            &[
                "--data",
                s(&single.join("train.jsonl")),
                "--eval-split",
                "0.2",
            ],
        ),
        &out,
        &["has the label \"sport\"", "at least two classes"],
    );

    // Fewer examples than classes: five classes named in labels.json, three examples.
    let few = tmp.path().join("few");
    std::fs::create_dir_all(&few).unwrap();
    std::fs::write(
        few.join("labels.json"),
        r#"["business", "sport", "tech", "music", "politics"]"#,
    )
    .unwrap();
    std::fs::write(
        few.join("train.jsonl"),
        "{\"text\": \"a b\", \"label\": \"sport\"}\n{\"text\": \"c d\", \"label\": \"tech\"}\n{\"text\": \"e f\", \"label\": \"sport\"}\n",
    )
    .unwrap();
    refuses(
        &finetune_args(
            m,
            o,
            &[
                "--data",
                s(&few.join("train.jsonl")),
                "--eval-data",
                s(&tiny("test.jsonl")),
            ],
        ),
        &out,
        &["3 training examples for 5 classes", "labels.json"],
    );
}

// Finding 10: mixed integer and string labels became an extra class; duplicate names in
// labels.json were accepted; an integer label in an evaluation file was taken as an index
// into the training file's string labels.
#[test]
fn label_files_that_map_two_ways_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = s(&out);
    let model = fixtures().join("tiny-bert");
    let m = s(&model);

    let mixed = tmp.path().join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    std::fs::write(
        mixed.join("train.jsonl"),
        "{\"text\": \"a b\", \"label\": \"pos\"}\n{\"text\": \"c d\", \"label\": 1}\n{\"text\": \"e f\", \"label\": \"neg\"}\n{\"text\": \"g h\", \"label\": \"neg\"}\n",
    )
    .unwrap();
    refuses(
        &finetune_args(
            m,
            o,
            &[
                "--data",
                s(&mixed.join("train.jsonl")),
                "--eval-split",
                "0.5",
            ],
        ),
        &out,
        &[
            "train.jsonl: line 2: label 1 is a number",
            "line 1",
            "labels.json",
        ],
    );

    let dup = tmp.path().join("dup");
    std::fs::create_dir_all(&dup).unwrap();
    std::fs::copy(tiny("train.jsonl"), dup.join("train.jsonl")).unwrap();
    std::fs::write(
        dup.join("labels.json"),
        r#"["business", "sport", "business"]"#,
    )
    .unwrap();
    refuses(
        &finetune_args(
            m,
            o,
            &["--data", s(&dup.join("train.jsonl")), "--eval-split", "0.2"],
        ),
        &out,
        &["labels.json", "\"business\" is listed twice"],
    );

    // Training labels are strings (no labels.json); the evaluation file says 1.
    let strings = tmp.path().join("strings");
    std::fs::create_dir_all(&strings).unwrap();
    std::fs::write(
        strings.join("train.jsonl"),
        "{\"text\": \"a b\", \"label\": \"neg\"}\n{\"text\": \"c d\", \"label\": \"pos\"}\n",
    )
    .unwrap();
    std::fs::write(
        strings.join("eval.jsonl"),
        "{\"text\": \"a b\", \"label\": \"neg\"}\n{\"text\": \"c d\", \"label\": 1}\n",
    )
    .unwrap();
    refuses(
        &finetune_args(
            m,
            o,
            &[
                "--data",
                s(&strings.join("train.jsonl")),
                "--eval-data",
                s(&strings.join("eval.jsonl")),
            ],
        ),
        &out,
        &["eval.jsonl: line 2: label 1 is not among the 2 known labels"],
    );
}

// Finding 10: a UTF-8 BOM gave "expected value at line 1 column 1". Accepted in a CSV data
// file, a JSON-lines evaluation file, labels.json, config.json and a TOML config at once.
#[test]
fn a_byte_order_mark_is_accepted_in_every_text_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bom = "\u{feff}";
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut csv = format!("{bom}text,label\n");
    for line in std::fs::read_to_string(tiny("train.jsonl"))
        .unwrap()
        .lines()
    {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        csv.push_str(&format!(
            "{},{}\n",
            row["text"],
            row["label"].as_str().unwrap()
        ));
    }
    std::fs::write(data.join("train.csv"), csv).unwrap();
    let labels = std::fs::read_to_string(tiny("labels.json")).unwrap();
    std::fs::write(data.join("labels.json"), format!("{bom}{labels}")).unwrap();
    let test = std::fs::read_to_string(tiny("test.jsonl")).unwrap();
    std::fs::write(data.join("test.jsonl"), format!("{bom}{test}")).unwrap();
    let model = broken_bert(tmp.path(), "model", "hidden_act", "gelu".into());
    let config = std::fs::read_to_string(model.join("config.json")).unwrap();
    std::fs::write(model.join("config.json"), format!("{bom}{config}")).unwrap();
    let toml = tmp.path().join("options.toml");
    std::fs::write(&toml, format!("{bom}batch-size = 16\n")).unwrap();
    let out = tmp.path().join("run");
    let o = heal(&finetune_args(
        s(&model),
        s(&out),
        &[
            "--config",
            s(&toml),
            "--data",
            s(&data.join("train.csv")),
            "--eval-data",
            s(&data.join("test.jsonl")),
        ],
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["config"]["batch-size"], 16);
    assert_eq!(
        run["labels"]["names"],
        serde_json::json!(["business", "sport", "tech"])
    );
    assert_eq!(run["data"]["train_examples"], 96);
    assert_eq!(run["data"]["eval_examples"], 48);
}

// Finding 6: `heal corrupt` that selects nothing reported "0 tensors" and exited 0.
#[test]
fn a_corruption_that_selects_no_tensor_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let model = fixtures().join("tiny-bert");
    refuses(
        &[
            "corrupt",
            "--model",
            s(&model),
            "--spec",
            "none",
            "--out",
            s(&out),
        ],
        &out,
        &["--spec none: selects no tensor"],
    );
}

// Finding 8: two architectures gave exit 1 "nothing to plot: heatmap has no rows"; --bins
// 100000000 was OOM-killed and left a temporary folder.
#[test]
fn weights_refuses_two_architectures_and_absurd_bin_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let bert = fixtures().join("tiny-bert");
    let distil = fixtures().join("tiny-distilbert");
    refuses(
        &["weights", s(&bert), s(&distil), "--out", s(&out)],
        &out,
        &[
            "tiny-bert and tiny-distilbert are different architectures",
            "model_type bert against distilbert",
        ],
    );
    refuses(
        &["weights", s(&bert), "--bins", "100000000", "--out", s(&out)],
        &out,
        &["--bins 100000000", "from 1 to 10000"],
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

// Finding 10: `heal report` accepted an F1 of 7.5 in a result.json.
#[test]
fn report_refuses_scores_outside_zero_to_one() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = common::tiny_grid(
        tmp.path(),
        "epochs = 1\nthreads = 1\ndevice = \"cpu\"\nanalysis-examples = 0",
        "",
    );
    let sweep = tmp.path().join("sweep");
    common::heal_ok(&["sweep", "--config", s(&grid), "--out", s(&sweep)]);
    let results: Vec<PathBuf> = std::fs::read_dir(sweep.join("cells"))
        .unwrap()
        .map(|e| e.unwrap().path().join("result.json"))
        .collect();
    assert_eq!(results.len(), 1);
    let mut result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results[0]).unwrap()).unwrap();
    result["best"]["f1_weighted"] = 7.5.into();
    std::fs::write(&results[0], result.to_string()).unwrap();
    let report = tmp.path().join("report");
    refuses(
        &["report", s(&sweep), "--out", s(&report)],
        &report,
        &["result.json", "best.f1_weighted is 7.5", "[0, 1]"],
    );
}

// Finding 10: tsne accepted --iterations 0, --pca-dims 0 and --columns 0.
#[test]
fn tsne_refuses_zero_iterations_dimensions_and_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let emb = tmp.path().join("emb");
    let model = fixtures().join("tiny-bert");
    let data = tiny_data_args();
    let mut args = vec!["embed", s(&model), "--out", s(&emb)];
    args.extend(data.iter().map(String::as_str));
    common::heal_ok(&args);
    let png = tmp.path().join("map.png");
    let (e, p) = (s(&emb), s(&png));
    refuses(
        &[
            "tsne",
            e,
            "--perplexity",
            "5",
            "--iterations",
            "0",
            "--out",
            p,
        ],
        &png,
        &["--iterations 0"],
    );
    refuses(
        &[
            "tsne",
            e,
            "--perplexity",
            "5",
            "--pca-dims",
            "0",
            "--out",
            p,
        ],
        &png,
        &["--pca-dims 0", "2 or more"],
    );
    refuses(
        &[
            "tsne",
            e,
            e,
            "--perplexity",
            "5",
            "--panel",
            "--columns",
            "0",
            "--out",
            p,
        ],
        &png,
        &["--columns 0"],
    );
}
