//! TensorBoard on heal's run directories, read by TensorBoard's own code (the `tensorboard`
//! package, tests/fixtures/read_tensorboard.py): the scalars equal metrics.jsonl's, the
//! hyper-parameters are there, and the projector shows every exported layer with its metadata.
//! Also README's Python snippets, run as they are on a run directory.

mod common;

use common::{fixtures, venv_python};
use heal::run_dir::embeddings::EmbeddingSet;
use heal::run_dir::{read_metrics, read_result, EpochRecord, RunDir};
use heal::train::config::EmbeddingStage;
use serde_json::Value;
use std::path::Path;

fn finetune(run: &Path, extra: &[&str]) {
    let mut args = vec!["--batch-size", "8", "--lr", "3e-3"];
    args.extend_from_slice(extra);
    common::finetune_tiny(&fixtures().join("tiny-bert"), run, &args);
}

/// What TensorBoard's code reads in `logdir`.
fn read_tensorboard(logdir: &Path) -> Value {
    let script = std::fs::read_to_string(fixtures().join("read_tensorboard.py")).unwrap();
    common::python_json(&script, &[logdir.to_str().unwrap()])
}

/// (step, value) points of a scalar tag.
fn points(tb: &Value, tag: &str) -> Vec<(u64, f64)> {
    tb["scalars"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("no scalar {tag}: {:?}", tb["scalars"]))
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// TensorBoard stores float32.
fn assert_f32_eq(tb: f64, ours: f64, what: &str) {
    assert_eq!(
        tb, ours as f32 as f64,
        "{what}: TensorBoard {tb}, heal {ours}"
    );
}

#[test]
fn scalars_equal_metrics_jsonl_and_the_config_is_there() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // 72 training examples after the validation carve-out: 9 full batches of 8 per epoch.
    finetune(
        &run,
        &[
            "--epochs",
            "2",
            "--validation-split",
            "0.25",
            "--log-every",
            "3",
        ],
    );
    let files = RunDir::at(&run).events_files();
    assert_eq!(files.len(), 1, "one event file: {files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("events.out.tfevents.") && name.ends_with(".heal"),
        "{name}"
    );
    let tb = read_tensorboard(&run);
    let epochs = read_metrics(&run).unwrap();
    assert_eq!(epochs.len(), 2);

    // Per epoch, at the epoch's last optimiser step: metrics.jsonl's numbers.
    let steps_per_epoch = 9;
    type Field = fn(&EpochRecord) -> f64;
    let per_epoch: [(&str, Field); 9] = [
        ("train/epoch", |e| e.epoch as f64),
        ("train/epoch_loss", |e| e.train_loss),
        ("train/examples_per_second", |e| e.train_examples_per_second),
        ("eval/loss", |e| e.eval_loss),
        ("eval/accuracy", |e| e.accuracy),
        ("eval/f1_weighted", |e| e.f1_weighted),
        ("eval/f1_macro", |e| e.f1_macro),
        ("validation/f1_weighted", |e| {
            e.validation_f1_weighted.unwrap()
        }),
        ("validation/accuracy", |e| e.validation_accuracy.unwrap()),
    ];
    for (tag, value) in per_epoch {
        let got = points(&tb, tag);
        assert_eq!(
            got.iter().map(|p| p.0).collect::<Vec<_>>(),
            [steps_per_epoch, 2 * steps_per_epoch],
            "{tag}'s steps"
        );
        for (p, e) in got.iter().zip(&epochs) {
            assert_f32_eq(p.1, value(e), &format!("{tag} epoch {}", e.epoch));
        }
    }

    // Every --log-every steps: the mean loss since the previous point, and the learning rate.
    let loss = points(&tb, "train/loss");
    assert_eq!(
        loss.iter().map(|p| p.0).collect::<Vec<_>>(),
        [3, 6, 9, 12, 15, 18]
    );
    assert_eq!(points(&tb, "train/lr").len(), 6);
    // Three windows of 24 examples each make an epoch: their mean is the epoch's loss.
    for (chunk, e) in loss.chunks(3).zip(&epochs) {
        let mean = chunk.iter().map(|p| p.1).sum::<f64>() / 3.0;
        assert!(
            (mean - e.train_loss).abs() < 1e-5,
            "epoch {}: windows {chunk:?} vs {}",
            e.epoch,
            e.train_loss
        );
    }
    // The last step's learning rate is the epoch record's.
    let lr = points(&tb, "train/lr");
    assert_f32_eq(lr[2].1, epochs[0].lr, "train/lr at the end of epoch 1");

    // The best epoch's scores and the run's status at the end.
    let result = read_result(&run).unwrap();
    let best = result.best.unwrap();
    assert_eq!(points(&tb, "best/f1_weighted")[0].0, 18);
    assert_f32_eq(
        points(&tb, "best/f1_weighted")[0].1,
        best.f1_weighted,
        "best F1",
    );
    assert_f32_eq(
        points(&tb, "best/epoch")[0].1,
        result.best_epoch as f64,
        "best epoch",
    );
    assert_eq!(tb["session_status"], "STATUS_SUCCESS");

    // The hyper-parameters: run.json's config as JSON text, and as the HParams dashboard's.
    let run_json: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    let text = tb["texts"]["run/config"].as_str().unwrap();
    let json = text
        .strip_prefix("```json\n")
        .and_then(|t| t.strip_suffix("\n```"))
        .unwrap_or_else(|| panic!("a fenced JSON block: {text}"));
    assert_eq!(
        serde_json::from_str::<Value>(json).unwrap(),
        run_json["config"]
    );
    let hparams = &tb["hparams"];
    assert_eq!(hparams["lr"], 3e-3);
    assert_eq!(hparams["log-every"], 3.0);
    assert_eq!(hparams["validation-split"], 0.25);
    assert_eq!(hparams["optimizer"], "adamw");
    assert_eq!(hparams["fused-optimizer"], true);
    assert_eq!(
        hparams["modules"],
        run_json["config"]["modules"].to_string()
    );
    assert!(
        hparams.get("out").is_none(),
        "the folder is not a hyper-parameter"
    );

    // --overwrite leaves only the new run's events.
    finetune(&run, &["--epochs", "1", "--overwrite"]);
    assert_eq!(RunDir::at(&run).events_files().len(), 1);
    let tb = read_tensorboard(&run);
    assert_eq!(points(&tb, "eval/f1_weighted").len(), 1);
    assert_eq!(
        points(&tb, "train/loss")
            .iter()
            .map(|p| p.0)
            .collect::<Vec<_>>(),
        [10],
        "12 steps, --log-every 10 by default"
    );
}

/// The projector's entries, as TensorBoard serves them for `run`.
fn projector_entries<'a>(tb: &'a Value, run: &str) -> &'a Vec<Value> {
    tb["projector"][run]
        .as_array()
        .unwrap_or_else(|| panic!("no projector run {run}: {:?}", tb["projector"]))
}

#[test]
fn projector_shows_every_layer_with_text_and_label_name() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    finetune(
        &run,
        &["--epochs", "1", "--dump-embeddings", "pretrained,best"],
    );
    let best = EmbeddingSet::read(&run, EmbeddingStage::Best).unwrap();
    let layers: Vec<usize> = best.layers.iter().map(|(l, _)| *l).collect();
    assert_eq!(layers, [0, 1, 2]);

    // The run folder: the best stage (written last), each layer its own tensor.
    let tb = read_tensorboard(&run);
    let entries = projector_entries(&tb, ".");
    assert_eq!(
        entries
            .iter()
            .map(|e| e["name"].clone())
            .collect::<Vec<_>>(),
        ["best/layer_0", "best/layer_1", "best/layer_2"]
    );
    for (e, (layer, values)) in entries.iter().zip(&best.layers) {
        assert_eq!(e["shape"], serde_json::json!([48, 32]), "layer {layer}");
        assert_eq!(e["metadata_path"], "embeddings/best/projector/metadata.tsv");
        let served: Vec<f64> = e["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(
            served,
            values.iter().copied().collect::<Vec<_>>(),
            "layer {layer}: the vectors as in layer_{layer}.npy"
        );
    }

    // The metadata: a header, then one row per example with its label name and text.
    let metadata = entries[0]["metadata"].as_str().unwrap();
    let rows: Vec<Vec<&str>> = metadata.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows[0], ["id", "label", "label_id", "text"]);
    assert_eq!(rows.len(), 1 + 48);
    let test = std::fs::read_to_string(fixtures().join("tiny-data").join("test.jsonl")).unwrap();
    for ((row, line), id) in rows[1..].iter().zip(test.lines()).zip(&best.ids) {
        let example: Value = serde_json::from_str(line).unwrap();
        assert_eq!(row.len(), 4);
        assert_eq!(row[0], id);
        assert_eq!(row[1], example["label"], "label name");
        let label_id: usize = row[2].parse().unwrap();
        assert_eq!(best.label_names[label_id], row[1]);
        let text = example["text"].as_str().unwrap();
        let kept: String = text.chars().take(100).collect();
        assert!(row[3].starts_with(&kept), "{} vs {text}", row[3]);
        assert!(row[3].chars().count() <= 101);
    }

    // A folder of runs: the run is found by its event file, with the same projector.
    let tb = read_tensorboard(tmp.path());
    assert_eq!(projector_entries(&tb, "run").len(), 3);

    // Each stage's own projector folder, alone (as `heal embed --out DIR` writes it).
    for stage in ["pretrained", "best"] {
        let folder = run.join("embeddings").join(stage).join("projector");
        let tb = read_tensorboard(&folder);
        let entries = projector_entries(&tb, ".");
        assert_eq!(
            entries
                .iter()
                .map(|e| e["name"].clone())
                .collect::<Vec<_>>(),
            ["layer_0", "layer_1", "layer_2"]
        );
        assert!(entries.iter().all(|e| e["metadata_path"] == "metadata.tsv"));
        for l in 0..3 {
            assert!(folder.join(format!("layer_{l}.tsv")).is_file());
        }
        assert!(folder.join("metadata.tsv").is_file());
    }
}

/// README's ```python blocks, in order.
fn readme_python() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut blocks = vec![];
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```python") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn readme_python_snippets_run_on_a_run_directory() {
    let blocks = readme_python();
    assert!(!blocks.is_empty(), "README has Python snippets");
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    finetune(
        &run,
        &[
            "--epochs",
            "2",
            "--save-checkpoint",
            "--dump-embeddings",
            "best",
        ],
    );
    // Every snippet names its run directory runs/x.
    let code = blocks.join("\n").replace("runs/x", run.to_str().unwrap());
    assert!(
        code.contains(run.to_str().unwrap()),
        "the snippets read runs/x"
    );
    // What the snippets promise, checked after them.
    let checks = r#"
import json as _json
assert list(epochs["epoch"]) == [1, 2], epochs
assert {"train_loss", "eval_loss", "f1_weighted"} <= set(epochs.columns)
assert result["status"] in ("ok", "collapsed"), result
assert model.config.id2label == {0: "business", 1: "sport", 2: "tech"}, model.config.id2label
assert vectors.shape == (48, 32), vectors.shape
assert [s.step for s in acc.Scalars("eval/f1_weighted")] == [12, 24]
print(_json.dumps({"ok": True}))
"#;
    let out = std::process::Command::new(venv_python())
        .arg("-c")
        .arg(code + checks)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "README's Python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ok\": true"));
}
