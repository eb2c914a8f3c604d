//! Bad input ends with one line on stderr naming the file or flag and the problem, exit code 2,
//! no panic, and no run directory left behind.

mod common;

use common::{fixtures, heal_bin};
use std::path::Path;
use std::process::Command;

struct Outcome {
    code: Option<i32>,
    stderr: String,
}

fn heal(args: &[&str]) -> Outcome {
    heal_with(args, &[])
}

fn heal_with(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let out = Command::new(heal_bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("heal runs");
    Outcome {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a finetune on the tiny fixtures with `args` appended and checks the error contract.
fn expect_error(extra: &[&str], must_mention: &[&str]) {
    expect_error_with(extra, must_mention, &[]);
}

/// [`expect_error`] with environment variables set.
fn expect_error_with(extra: &[&str], must_mention: &[&str], env: &[(&str, &str)]) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let train = fixtures().join("tiny-data").join("train.jsonl");
    let model = fixtures().join("tiny-bert");
    let mut args = vec![
        "finetune".to_string(),
        "--model".into(),
        model.display().to_string(),
        "--data".into(),
        train.display().to_string(),
        "--eval-split".into(),
        "0.25".into(),
        "--epochs".into(),
        "1".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    // Later flags win in this test helper: drop defaults the case overrides.
    for pair in extra.chunks(2) {
        if let Some(i) = args.iter().position(|a| a == pair[0]) {
            args.drain(i..i + 2);
        }
        args.extend(pair.iter().map(|s| s.to_string()));
    }
    if args.iter().any(|a| a == "--eval-data") {
        if let Some(i) = args.iter().position(|a| a == "--eval-split") {
            args.drain(i..i + 2);
        }
    }
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let r = heal_with(&refs, env);
    assert_eq!(
        r.code,
        Some(2),
        "exit code for {extra:?}; stderr: {}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("panicked"),
        "panic for {extra:?}: {}",
        r.stderr
    );
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line for {extra:?}, got: {}", r.stderr);
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    for word in must_mention {
        assert!(
            lines[0].contains(word),
            "{extra:?}: {:?} should mention {word:?}",
            lines[0]
        );
    }
    assert!(!out.exists(), "{extra:?}: a run directory was left behind");
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn unknown_bf16_kernels_name_the_variable() {
    expect_error_with(
        &["--precision", "bf16"],
        &["HEAL_BF16_KERNELS=amx", "bf16", "fp32"],
        &[("HEAL_BF16_KERNELS", "amx")],
    );
}

#[test]
fn missing_model_folder() {
    expect_error(
        &["--model", "/no/such/model"],
        &["/no/such/model", "not found"],
    );
}

#[test]
fn unknown_model_type() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "config.json",
        r#"{"model_type": "gpt2", "n_embd": 8}"#,
    );
    write(tmp.path(), "model.safetensors", "");
    let dir = tmp.path().display().to_string();
    expect_error(&["--model", &dir], &["config.json", "gpt2"]);
}

#[test]
fn config_without_model_type() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "config.json", r#"{"hidden_size": 8}"#);
    write(tmp.path(), "model.safetensors", "");
    let dir = tmp.path().display().to_string();
    expect_error(&["--model", &dir], &["config.json", "model_type"]);
}

#[test]
fn no_tokenizer_files() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures().join("tiny-bert").join(f), tmp.path().join(f)).unwrap();
    }
    let dir = tmp.path().display().to_string();
    expect_error(&["--model", &dir], &["tokenizer.json", "vocab.txt"]);
}

#[test]
fn label_not_in_labels_json() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "labels.json", r#"["business", "sport"]"#);
    let data = write(
        tmp.path(),
        "train.jsonl",
        "{\"text\": \"a\", \"label\": \"sport\"}\n{\"text\": \"b\", \"label\": \"weather\"}\n",
    );
    expect_error(&["--data", &data], &["train.jsonl", "line 2", "weather"]);
}

#[test]
fn empty_data_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write(tmp.path(), "train.jsonl", "");
    expect_error(&["--data", &data], &["train.jsonl", "no examples"]);
}

#[test]
fn malformed_json_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write(
        tmp.path(),
        "train.jsonl",
        "{\"text\": \"a\", \"label\": 0}\n{\"text\": \"b\", \"label\": 1}\n{\"text\": \"c\", \"label\": \n",
    );
    expect_error(&["--data", &data], &["train.jsonl", "line 3"]);
}

#[test]
fn malformed_eval_file_names_that_file() {
    let tmp = tempfile::tempdir().unwrap();
    let eval = write(tmp.path(), "dev.jsonl", "not json\n");
    expect_error(&["--eval-data", &eval], &["dev.jsonl", "line 1"]);
}

#[test]
fn max_len_zero() {
    expect_error(&["--max-len", "0"], &["--max-len"]);
}

#[test]
fn unknown_device() {
    expect_error(&["--device", "tpu"], &["--device", "tpu"]);
}

#[test]
fn unknown_toml_key_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "run.toml", "epochs = 1\nlearning-rate = 0.1\n");
    expect_error(
        &["--config", &cfg],
        &["run.toml", "line 2", "learning-rate"],
    );
}

#[test]
fn finished_run_is_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("done");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("result.json"), "{\"status\": \"ok\"}").unwrap();
    let train = fixtures().join("tiny-data").join("train.jsonl");
    let model = fixtures().join("tiny-bert");
    let r = heal(&[
        "finetune",
        "--model",
        model.to_str().unwrap(),
        "--data",
        train.to_str().unwrap(),
        "--eval-split",
        "0.25",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("finished run") && r.stderr.contains("--overwrite"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(run.join("result.json")).unwrap(),
        "{\"status\": \"ok\"}"
    );
}

/// Issue 17's findings 1 and 2: `heal embed --out RUN` and `heal weights --out RUN` used to
/// replace a finished run directory, and `--out` an existing file failed with a bare OS error
/// after writing a hidden folder. Now each is one line, exit 2, and the target is untouched.
#[test]
fn outputs_never_replace_a_run_directory_or_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixtures().join("tiny-data");
    let (train, test) = (data.join("train.jsonl"), data.join("test.jsonl"));
    let model = fixtures().join("tiny-bert");
    let run = tmp.path().join("run");
    let (model_s, train_s, test_s, run_s) = (
        model.to_str().unwrap(),
        train.to_str().unwrap(),
        test.to_str().unwrap(),
        run.to_str().unwrap(),
    );
    let made = heal(&[
        "finetune",
        "--model",
        model_s,
        "--data",
        train_s,
        "--eval-data",
        test_s,
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--save-checkpoint",
        "--out",
        run_s,
    ]);
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push((p.display().to_string(), std::fs::read(&p).unwrap()));
                }
            }
        }
        files.sort();
        files
    };
    let before = snapshot(&run);
    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, "mine").unwrap();
    let notes_s = notes.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "embed",
                model_s,
                "--data",
                train_s,
                "--eval-data",
                test_s,
                "--out",
                run_s,
            ],
            "run directory",
        ),
        (vec!["weights", model_s, "--out", run_s], "run directory"),
        (
            vec![
                "embed",
                model_s,
                "--data",
                train_s,
                "--eval-data",
                test_s,
                "--out",
                notes_s,
            ],
            "is a file",
        ),
    ];
    for (args, says) in cases {
        let r = heal(&args);
        assert_eq!(r.code, Some(2), "heal {args:?}: {}", r.stderr);
        let line = r.stderr.trim();
        assert_eq!(line.lines().count(), 1, "heal {args:?}: {line}");
        assert!(line.contains(says), "heal {args:?}: {line}");
        assert!(!line.contains("panicked"), "{line}");
    }
    assert!(snapshot(&run) == before, "the run directory changed");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "mine");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary folders left: {leftovers:?}"
    );
}
