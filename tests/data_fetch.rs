//! `heal data fetch`: against a local stand-in for the Hugging Face hub (the tree API and
//! resolve URLs of the parquet conversion branch) serving small parquet files written here.

mod common;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use common::heal_bin;
use heal::data::format::{read_examples, RawLabel};
use heal::data::{load_task, EvalSource};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::Digest;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const REVISION: &str = "refs%2Fconvert%2Fparquet";

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 server: exact request targets (path and query) to canned replies.
struct MockHub {
    base: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl MockHub {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, q) = (routes.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, q) = (r.clone(), q.clone());
                std::thread::spawn(move || serve(stream, &r, &q));
            }
        });
        MockHub {
            base,
            routes,
            requests,
        }
    }

    fn route(&self, target: String, reply: Reply) {
        self.routes.lock().unwrap().insert(target, reply);
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, routes: &Mutex<HashMap<String, Reply>>, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    log.lock().unwrap().push(target.clone());
    let reply = routes
        .lock()
        .unwrap()
        .get(&target)
        .cloned()
        .unwrap_or(Reply {
            status: 404,
            headers: vec![],
            body: b"{\"error\":\"Not Found\"}".to_vec(),
        });
    let reason = if reply.status == 200 { "OK" } else { "Error" };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply.body);
    let _ = stream.flush();
}

/// A file of the conversion branch: its bytes, what the server actually sends (a corrupt copy
/// when set), whether the listing describes it as an LFS file (sha256) or a plain git blob, and
/// whether its resolve URL answers with a relative redirect (as the hub does for small files)
/// that alone carries `X-Repo-Commit`.
struct BranchFile {
    path: String,
    bytes: Vec<u8>,
    served: Option<Vec<u8>>,
    lfs: bool,
    redirect: bool,
}

impl BranchFile {
    fn lfs(path: &str, bytes: Vec<u8>) -> Self {
        BranchFile {
            path: path.into(),
            bytes,
            served: None,
            lfs: true,
            redirect: false,
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn git_blob_id(bytes: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Serves `files` under `repo` as the tree listing of `config` (in pages of `page_size`
/// entries, linked by `Link: <...>; rel="next"`) plus one resolve URL per file. The listing
/// also holds a folder entry and a duckdb index, as the real branch does.
fn publish(hub: &MockHub, repo: &str, config: &str, files: &[BranchFile], page_size: usize) {
    let mut entries = vec![serde_json::json!({
        "type": "directory", "oid": "0000000000000000000000000000000000000000", "size": 0,
        "path": format!("{config}/train"),
    })];
    for f in files {
        let mut e = serde_json::json!({
            "type": "file", "path": f.path, "size": f.bytes.len(), "oid": git_blob_id(&f.bytes),
        });
        if f.lfs {
            e["oid"] = serde_json::json!("1111111111111111111111111111111111111111");
            e["lfs"] = serde_json::json!({
                "oid": sha256_hex(&f.bytes), "size": f.bytes.len(), "pointerSize": 134,
            });
        }
        entries.push(e);
        let resolve = format!("/datasets/{repo}/resolve/{REVISION}/{}", f.path);
        let body = f.served.clone().unwrap_or_else(|| f.bytes.clone());
        let commit = ("X-Repo-Commit".to_string(), COMMIT.to_string());
        if f.redirect {
            let cache = format!("/api/resolve-cache/datasets/{repo}/{COMMIT}/{}", f.path);
            hub.route(
                resolve,
                Reply {
                    status: 302,
                    headers: vec![commit, ("Location".into(), cache.clone())],
                    body: vec![],
                },
            );
            hub.route(
                cache,
                Reply {
                    status: 200,
                    headers: vec![],
                    body,
                },
            );
        } else {
            hub.route(
                resolve,
                Reply {
                    status: 200,
                    headers: vec![commit],
                    body,
                },
            );
        }
    }
    entries.push(serde_json::json!({
        "type": "file", "path": format!("{config}/train/index.duckdb"), "size": 10,
        "oid": "2222222222222222222222222222222222222222",
        "lfs": {"oid": "33", "size": 10, "pointerSize": 120},
    }));
    let first = format!("/api/datasets/{repo}/tree/{REVISION}/{config}?recursive=true");
    let pages: Vec<&[serde_json::Value]> = entries.chunks(page_size).collect();
    for (i, page) in pages.iter().enumerate() {
        let target = if i == 0 {
            first.clone()
        } else {
            format!("{first}&cursor=page{i}")
        };
        let mut headers = vec![("Content-Type".into(), "application/json".into())];
        if i + 1 < pages.len() {
            headers.push((
                "Link".into(),
                format!("<{}{first}&cursor=page{}>; rel=\"next\"", hub.base, i + 1),
            ));
        }
        hub.route(
            target,
            Reply {
                status: 200,
                headers,
                body: serde_json::to_vec(page).unwrap(),
            },
        );
    }
}

/// A parquet file of `columns`, optionally with the datasets library's `huggingface` metadata.
fn parquet(columns: Vec<(&str, ArrayRef)>, hf_features: Option<serde_json::Value>) -> Vec<u8> {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut props = WriterProperties::builder().set_compression(Compression::SNAPPY);
    if let Some(features) = hf_features {
        let meta = serde_json::json!({"info": {"features": features}}).to_string();
        props = props.set_key_value_metadata(Some(vec![KeyValue::new("huggingface".into(), meta)]));
    }
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props.build())).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    buf
}

fn zstd_parquet(columns: Vec<(&str, ArrayRef)>) -> Vec<u8> {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    buf
}

fn strings(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn labels(v: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}

fn idx(n: usize) -> ArrayRef {
    Arc::new(Int32Array::from((0..n as i32).collect::<Vec<_>>()))
}

/// (sentence, label) rows of the sst2 stand-in: train in two files, validation, and a test split
/// whose labels are hidden (-1).
type Rows = Vec<(&'static str, i64)>;

fn sst2_rows() -> (Rows, Rows, Rows, Rows) {
    let train_a = vec![
        ("hide new secretions from the parental units ", 0),
        (
            "that loves its characters and communicates something rather beautiful",
            1,
        ),
        ("a \"quoted\" word, a backslash \\ and a tab\t", 0),
    ];
    let train_b = vec![
        ("naïve charm — déjà vu 🎬", 1),
        ("the greatest musicians", 1),
    ];
    let validation = vec![
        ("it 's a charming and often affecting journey . ", 1),
        ("unflinchingly bleak and desperate ", 0),
        ("allows us to hope", 1),
    ];
    let test = vec![
        ("uneasy mishmash of styles", -1),
        ("director rob marshall", -1),
    ];
    (train_a, train_b, validation, test)
}

fn sst2_file(rows: &[(&str, i64)]) -> Vec<u8> {
    let texts: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let ls: Vec<i64> = rows.iter().map(|r| r.1).collect();
    parquet(
        vec![
            ("idx", idx(rows.len())),
            ("sentence", strings(&texts)),
            ("label", labels(&ls)),
        ],
        Some(serde_json::json!({
            "idx": {"dtype": "int32", "_type": "Value"},
            "sentence": {"dtype": "string", "_type": "Value"},
            "label": {"names": ["negative", "positive"], "_type": "ClassLabel"},
        })),
    )
}

fn sst2_files() -> Vec<BranchFile> {
    let (a, b, v, t) = sst2_rows();
    vec![
        BranchFile::lfs("default/train/0000.parquet", sst2_file(&a)),
        BranchFile::lfs("default/train/0001.parquet", sst2_file(&b)),
        BranchFile::lfs("default/validation/0000.parquet", sst2_file(&v)),
        BranchFile::lfs("default/test/0000.parquet", sst2_file(&t)),
    ]
}

/// Runs `heal ARGS` in `cwd` against `endpoint` with `env` set, with no proxy in the way and
/// neither HF_HUB_OFFLINE nor HEAL_DATA_DIR inherited.
fn heal(endpoint: &str, cwd: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new(heal_bin());
    cmd.current_dir(cwd)
        .env("HF_ENDPOINT", endpoint)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .args(args);
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "HF_HUB_OFFLINE",
        "HEAL_DATA_DIR",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("heal runs")
}

/// Runs `heal data fetch ARGS` in `cwd` against `endpoint`, heal's data folder `cwd/data`.
fn fetch(endpoint: &str, cwd: &Path, args: &[&str]) -> Output {
    let data_dir = cwd.join("data");
    let all: Vec<&str> = ["data", "fetch"].iter().chain(args).copied().collect();
    heal(endpoint, cwd, &[("HEAL_DATA_DIR", &data_dir)], &all)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "heal data fetch failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exit code 2 and exactly one line on stderr besides the log (env_logger's `[time LEVEL ]`
/// lines, e.g. the fetch's progress); returns that line.
fn user_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    stderr
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn sst2_is_fetched_converted_and_readable_by_finetune() {
    let hub = MockHub::start();
    let files = sst2_files();
    publish(&hub, "stanfordnlp/sst2", "default", &files, 100);
    let tmp = tempfile::tempdir().unwrap();

    // Default output folder: NAME in heal's data folder ($HEAL_DATA_DIR, here tmp/data).
    let stdout = ok(&fetch(&hub.base, tmp.path(), &["sst2"]));
    let out = tmp.path().join("data").join("sst2");
    assert!(
        stdout.contains("test") && stdout.contains("skipped"),
        "{stdout}"
    );
    assert_eq!(
        entries(&tmp.path().join("data")),
        ["sst2"],
        "no temp leftovers"
    );
    assert_eq!(
        entries(&out),
        [
            "SOURCE.json",
            "labels.json",
            "train.jsonl.gz",
            "validation.jsonl.gz"
        ]
    );

    // The rows, in order, as written to the parquet files.
    let (a, b, v, _) = sst2_rows();
    let check = |file: &str, want: Vec<(&str, i64)>| {
        let got = read_examples(&out.join(file)).unwrap();
        let got: Vec<(String, Option<String>, RawLabel)> = got
            .into_iter()
            .map(|e| (e.text, e.text_pair, e.label))
            .collect();
        let want: Vec<(String, Option<String>, RawLabel)> = want
            .into_iter()
            .map(|(t, l)| (t.to_string(), None, RawLabel::Int(l)))
            .collect();
        assert_eq!(got, want, "{file}");
    };
    check("train.jsonl.gz", a.iter().chain(&b).cloned().collect());
    check("validation.jsonl.gz", v.clone());

    // One JSON object per line with exactly text and label.
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(out.join("train.jsonl.gz")).unwrap()),
        &mut text,
    )
    .unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let mut keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["label", "text"]);

    assert_eq!(
        json(&out.join("labels.json")),
        serde_json::json!(["negative", "positive"])
    );

    // The source record.
    let source = json(&out.join("SOURCE.json"));
    assert_eq!(source["name"], "sst2");
    assert_eq!(source["hub"], hub.base.as_str());
    assert_eq!(source["repo"], "stanfordnlp/sst2");
    assert_eq!(source["config"], "default");
    assert_eq!(source["revision"], "refs/convert/parquet");
    assert_eq!(source["commit"], COMMIT);
    assert_eq!(source["label_names_from"], "parquet features (ClassLabel)");
    assert_eq!(source["columns"]["text"], "sentence");
    let recorded = source["files"].as_array().unwrap();
    assert_eq!(recorded.len(), 4);
    let rows_of = [3, 2, 3, 2];
    for ((f, rec), rows) in files.iter().zip(recorded).zip(rows_of) {
        assert_eq!(rec["path"], f.path.as_str());
        assert_eq!(rec["sha256"], sha256_hex(&f.bytes).as_str());
        assert_eq!(rec["bytes"], f.bytes.len());
        assert_eq!(rec["rows"], rows);
        assert_eq!(
            rec["verified"],
            format!("sha256:{}", sha256_hex(&f.bytes)).as_str()
        );
    }
    let splits = source["splits"].as_array().unwrap();
    assert_eq!(splits.len(), 2);
    assert_eq!(splits[0]["split"], "train");
    assert_eq!(splits[0]["rows"], 5);
    assert_eq!(splits[0]["label_counts"], serde_json::json!([2, 3]));
    assert_eq!(splits[1]["split"], "validation");
    assert_eq!(splits[1]["rows"], 3);
    let train_bytes = std::fs::read(out.join("train.jsonl.gz")).unwrap();
    assert_eq!(splits[0]["sha256"], sha256_hex(&train_bytes).as_str());
    assert_eq!(source["skipped"][0]["split"], "test");
    assert!(source["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("-1"));

    // The duckdb index in the listing was not downloaded.
    assert!(hub.requests().iter().all(|r| !r.contains("duckdb")));

    // heal finetune's loader reads the folder: train, the validation split, the label names.
    let task = load_task(out.to_str().unwrap(), None, &EvalSource::Builtin, 42).unwrap();
    assert_eq!(task.train.len(), 5);
    assert_eq!(task.eval.len(), 3);
    assert!(task.eval_source.ends_with("validation.jsonl.gz"));
    assert_eq!(task.labels.names, ["negative", "positive"]);
    assert_eq!(task.train[3].text, "naïve charm — déjà vu 🎬");
    assert_eq!(task.train[3].label, 1);
}

#[test]
fn mrpc_pairs_over_paged_listing_redirect_git_blob_and_zstd() {
    let hub = MockHub::start();
    let pair = |rows: &[(&str, &str, i64)]| {
        let s1: Vec<&str> = rows.iter().map(|r| r.0).collect();
        let s2: Vec<&str> = rows.iter().map(|r| r.1).collect();
        let ls: Vec<i64> = rows.iter().map(|r| r.2).collect();
        zstd_parquet(vec![
            ("sentence1", strings(&s1)),
            ("sentence2", strings(&s2)),
            ("label", labels(&ls)),
            ("idx", idx(rows.len())),
        ])
    };
    let train = [
        (
            "Amrozi accused his brother .",
            "Referring to him , Amrozi accused his brother .",
            1,
        ),
        (
            "Yucaipa owned Dominick 's .",
            "Yucaipa bought Dominick 's in 1995 .",
            0,
        ),
        (
            "They had published an advertisement .",
            "On June 10 , they published it .",
            1,
        ),
        (
            "Around 0335 GMT , Tab shares were up .",
            "Tab shares jumped 20 cents .",
            0,
        ),
    ];
    let validation = [
        (
            "He said the foodservice pie business .",
            "The foodservice pie business .",
            1,
        ),
        (
            "Magnarelli said Racicot hated the Iraqi regime .",
            "His wife said he was 100 percent behind Bush .",
            0,
        ),
    ];
    let test = [("A", "B", -1), ("C", "D", -1), ("E", "F", -1)];
    let validation_file = BranchFile {
        path: "mrpc/validation/0000.parquet".into(),
        bytes: pair(&validation),
        served: None,
        lfs: false,
        redirect: false,
    };
    let mut train_file = BranchFile::lfs("mrpc/train/0000.parquet", pair(&train));
    train_file.redirect = true;
    let files = vec![
        train_file,
        validation_file,
        BranchFile::lfs("mrpc/test/0000.parquet", pair(&test)),
    ];
    // Two entries per page: three pages.
    publish(&hub, "nyu-mll/glue", "mrpc", &files, 2);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("glue-mrpc");
    ok(&fetch(
        &hub.base,
        tmp.path(),
        &["mrpc", "--out", "glue-mrpc"],
    ));
    assert!(hub.requests().iter().any(|r| r.contains("cursor=page2")));
    assert!(hub
        .requests()
        .iter()
        .any(|r| r.starts_with("/api/resolve-cache/")));

    assert_eq!(
        entries(&out),
        [
            "SOURCE.json",
            "labels.json",
            "train.jsonl.gz",
            "validation.jsonl.gz"
        ]
    );
    assert_eq!(
        json(&out.join("labels.json")),
        serde_json::json!(["not_equivalent", "equivalent"])
    );
    for (file, want) in [
        ("train.jsonl.gz", &train[..]),
        ("validation.jsonl.gz", &validation[..]),
    ] {
        let got = read_examples(&out.join(file)).unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.text, w.0);
            assert_eq!(g.text_pair.as_deref(), Some(w.1));
            assert_eq!(g.label, RawLabel::Int(w.2));
        }
    }
    let source = json(&out.join("SOURCE.json"));
    assert_eq!(source["repo"], "nyu-mll/glue");
    assert_eq!(source["config"], "mrpc");
    assert_eq!(source["columns"]["text_pair"], "sentence2");
    assert_eq!(source["label_names_from"], "heal's registry");
    assert_eq!(
        source["commit"], COMMIT,
        "from the redirect's X-Repo-Commit"
    );
    assert_eq!(
        source["files"][1]["verified"],
        format!("git-blob:{}", git_blob_id(&files[1].bytes)).as_str()
    );
    assert_eq!(source["skipped"][0]["split"], "test");

    let task = load_task(out.to_str().unwrap(), None, &EvalSource::Builtin, 42).unwrap();
    assert_eq!(task.train.len(), 4);
    assert_eq!(task.eval.len(), 2);
    assert_eq!(
        task.eval[1].text_pair.as_deref(),
        Some("His wife said he was 100 percent behind Bush .")
    );
    assert_eq!(task.labels.names, ["not_equivalent", "equivalent"]);
}

#[test]
fn corrupt_or_short_downloads_are_refused_and_leave_nothing() {
    // A flipped byte in the first training file: same size, other sha256. The output's parent
    // folders did not exist: the fetch made them and removes them again.
    let hub = MockHub::start();
    let mut files = sst2_files();
    let mut bad = files[0].bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    files[0].served = Some(bad);
    publish(&hub, "stanfordnlp/sst2", "default", &files, 100);
    let tmp = tempfile::tempdir().unwrap();
    let line = user_error(&fetch(
        &hub.base,
        tmp.path(),
        &["sst2", "--out", "new/deeper/sst2"],
    ));
    assert!(line.contains("default/train/0000.parquet"), "{line}");
    assert!(line.contains("checksum mismatch"), "{line}");
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));

    // A validation file cut short, after the training files were fine; the default folder.
    let hub = MockHub::start();
    let mut files = sst2_files();
    let short = files[2].bytes[..files[2].bytes.len() - 7].to_vec();
    files[2].served = Some(short);
    publish(&hub, "stanfordnlp/sst2", "default", &files, 100);
    let line = user_error(&fetch(&hub.base, tmp.path(), &["sst2"]));
    assert!(line.contains("default/validation/0000.parquet"), "{line}");
    assert!(line.contains("size mismatch"), "{line}");
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
}

#[test]
fn existing_folder_is_kept_without_force_and_replaced_with_it() {
    let hub = MockHub::start();
    publish(&hub, "stanfordnlp/sst2", "default", &sst2_files(), 100);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data").join("sst2");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("mine.txt"), "keep me").unwrap();

    let line = user_error(&fetch(&hub.base, tmp.path(), &["sst2"]));
    assert!(
        line.contains("data/sst2") && line.contains("--force"),
        "{line}"
    );
    assert_eq!(entries(&out), ["mine.txt"]);
    assert_eq!(
        std::fs::read_to_string(out.join("mine.txt")).unwrap(),
        "keep me"
    );
    assert!(hub.requests().is_empty(), "nothing was fetched");

    ok(&fetch(&hub.base, tmp.path(), &["sst2", "--force"]));
    assert_eq!(
        entries(&out),
        [
            "SOURCE.json",
            "labels.json",
            "train.jsonl.gz",
            "validation.jsonl.gz"
        ]
    );
    assert_eq!(entries(&tmp.path().join("data")), ["sst2"]);
}

#[test]
fn unknown_names_and_unreachable_hubs_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let line = user_error(&fetch("http://127.0.0.1:9", tmp.path(), &["sst-2"]));
    for name in [
        "sst2",
        "imdb",
        "ag_news",
        "emotion",
        "dbpedia",
        "twitter-financial-news-topic",
        "mrpc",
        "rte",
    ] {
        assert!(line.contains(name), "{line}");
    }

    // Nothing listening: the URL and what to do.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let line = user_error(&fetch(&endpoint, tmp.path(), &["rte"]));
    assert!(
        line.contains(&format!(
            "{endpoint}/api/datasets/nyu-mll/glue/tree/refs%2Fconvert%2Fparquet/rte"
        )),
        "{line}"
    );
    assert!(line.contains("HF_ENDPOINT"), "{line}");

    // A hub without the dataset: 404, named.
    let hub = MockHub::start();
    let line = user_error(&fetch(&hub.base, tmp.path(), &["emotion"]));
    assert!(
        line.contains("404") && line.contains("dair-ai/emotion"),
        "{line}"
    );
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));

    // --help names every dataset and the mirror variable.
    let help = Command::new(heal_bin())
        .args(["data", "fetch", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("HF_ENDPOINT"), "{help}");
    assert!(
        help.contains("zeroshot/twitter-financial-news-topic"),
        "{help}"
    );
    assert!(help.contains("fancyzhx/dbpedia_14"), "{help}");
}

/// `heal finetune` of tiny-bert for one epoch on the CPU, `--data NAME` resolved through heal's
/// data folder (tiny-bert's small vocabulary reads most sst2 words as [UNK]: enough to train).
fn finetune_named(hub: &MockHub, cwd: &Path, env: &[(&str, &Path)], extra: &[&str]) -> Output {
    let model = common::fixtures().join("tiny-bert");
    let mut args = vec!["finetune", "--model", model.to_str().unwrap()];
    args.extend([
        "--data",
        "sst2",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--max-train-examples",
        "4",
        "--max-len",
        "32",
    ]);
    args.extend(extra);
    heal(&hub.base, cwd, env, &args)
}

fn finished(out: &Output) -> String {
    assert!(
        out.status.success(),
        "heal failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn data_names_are_read_from_heal_data_folder_without_requests() {
    let hub = MockHub::start();
    publish(&hub, "stanfordnlp/sst2", "default", &sst2_files(), 100);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let env = [("HEAL_DATA_DIR", cache.as_path())];

    // No --out: NAME in $HEAL_DATA_DIR, printed last.
    let stdout = ok(&heal(
        &hub.base,
        tmp.path(),
        &env,
        &["data", "fetch", "sst2"],
    ));
    let folder = cache.join("sst2");
    assert_eq!(stdout.lines().last(), Some(folder.to_str().unwrap()));
    assert!(folder.join("SOURCE.json").is_file());
    let fetched = hub.requests().len();

    // A name with no such file or folder: the fetched copy, no request to the hub.
    finished(&finetune_named(&hub, tmp.path(), &env, &["--out", "run"]));
    assert_eq!(hub.requests().len(), fetched, "{:?}", hub.requests());
    let run = json(&tmp.path().join("run").join("run.json"));
    assert_eq!(run["config"]["data"], "sst2");
    let train_source = run["data"]["train_source"].as_str().unwrap();
    assert_eq!(
        Path::new(train_source),
        folder.join("train.jsonl.gz"),
        "{run}"
    );
    assert!(run["data"]["eval_source"]
        .as_str()
        .unwrap()
        .ends_with("validation.jsonl.gz"));
    assert!(tmp.path().join("run").join("result.json").is_file());

    // Offline too: a fetched copy needs no network.
    let offline = [
        ("HEAL_DATA_DIR", cache.as_path()),
        ("HF_HUB_OFFLINE", Path::new("1")),
    ];
    finished(&finetune_named(
        &hub,
        tmp.path(),
        &offline,
        &["--out", "run-offline"],
    ));
    assert_eq!(hub.requests().len(), fetched);

    // --data-dir wins over HEAL_DATA_DIR, for finetune and for data fetch.
    let empty = tmp.path().join("empty");
    let elsewhere = [
        ("HEAL_DATA_DIR", empty.as_path()),
        ("HF_HUB_OFFLINE", Path::new("1")),
    ];
    let flag = ["--out", "run-flag", "--data-dir", cache.to_str().unwrap()];
    finished(&finetune_named(&hub, tmp.path(), &elsewhere, &flag));
    let run = json(&tmp.path().join("run-flag").join("run.json"));
    assert_eq!(run["config"]["data-dir"], cache.to_str().unwrap());
    assert!(!empty.exists());
    assert_eq!(hub.requests().len(), fetched);
    let other = tmp.path().join("other");
    let env = [("HEAL_DATA_DIR", empty.as_path())];
    let args = [
        "data",
        "fetch",
        "sst2",
        "--data-dir",
        other.to_str().unwrap(),
    ];
    ok(&heal(&hub.base, tmp.path(), &env, &args));
    assert!(other.join("sst2").join("SOURCE.json").is_file());
    assert!(!empty.exists());

    // Neither: ~/.cache/heal/data.
    let home = tmp.path().join("home");
    let env = [("HOME", home.as_path())];
    ok(&heal(
        &hub.base,
        tmp.path(),
        &env,
        &["data", "fetch", "sst2"],
    ));
    let default = home.join(".cache").join("heal").join("data").join("sst2");
    assert!(default.join("SOURCE.json").is_file());
}

#[test]
fn a_missing_named_dataset_is_fetched_into_heal_data_folder_unless_offline() {
    let hub = MockHub::start();
    publish(&hub, "stanfordnlp/sst2", "default", &sst2_files(), 100);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");

    // HF_HUB_OFFLINE and nothing fetched: one line naming the variable, the folder looked in
    // and what to run; no request, nothing written.
    let offline = [
        ("HEAL_DATA_DIR", cache.as_path()),
        ("HF_HUB_OFFLINE", Path::new("1")),
    ];
    let out = finetune_named(&hub, tmp.path(), &offline, &["--out", "run"]);
    let line = user_error(&out);
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), line, "no log");
    assert!(line.contains("HF_HUB_OFFLINE"), "{line}");
    assert!(
        line.contains(cache.join("sst2").to_str().unwrap()),
        "{line}"
    );
    assert!(line.contains("heal data fetch sst2"), "{line}");
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
    // heal data fetch itself makes no request either.
    let line = user_error(&heal(
        &hub.base,
        tmp.path(),
        &offline,
        &["data", "fetch", "sst2"],
    ));
    assert!(line.contains("HF_HUB_OFFLINE"), "{line}");
    assert!(hub.requests().is_empty());

    // Online: fetched into the data folder (from HF_ENDPOINT, logged), then trained on.
    let env = [("HEAL_DATA_DIR", cache.as_path())];
    let stderr = finished(&finetune_named(&hub, tmp.path(), &env, &["--out", "run"]));
    assert!(stderr.contains("fetching"), "{stderr}");
    assert!(stderr.contains(&hub.base), "{stderr}");
    let folder = cache.join("sst2");
    assert_eq!(
        entries(&folder),
        [
            "SOURCE.json",
            "labels.json",
            "train.jsonl.gz",
            "validation.jsonl.gz"
        ]
    );
    assert_eq!(entries(&cache), ["sst2"], "no temp leftovers");
    assert!(!hub.requests().is_empty());
    let run = json(&tmp.path().join("run").join("run.json"));
    assert_eq!(
        Path::new(run["data"]["train_source"].as_str().unwrap()),
        folder.join("train.jsonl.gz")
    );

    // A file or folder called like a dataset is read as it is, not from the data folder.
    let local = tmp.path().join("sst2");
    std::fs::create_dir(&local).unwrap();
    std::fs::copy(folder.join("train.jsonl.gz"), local.join("train.jsonl.gz")).unwrap();
    std::fs::copy(folder.join("labels.json"), local.join("labels.json")).unwrap();
    let line = user_error(&finetune_named(
        &hub,
        tmp.path(),
        &offline,
        &["--out", "run-local"],
    ));
    assert!(line.contains("no evaluation data"), "{line}");
}

#[test]
fn paper_grids_plan_offline_with_names() {
    let hub = MockHub::start();
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    let offline = [
        ("HEAL_DATA_DIR", empty.as_path()),
        ("HF_HUB_OFFLINE", Path::new("1")),
        ("HF_HUB_CACHE", empty.as_path()),
    ];
    let grids = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join("grids");
    for (table, cells) in [
        ("table2", 432),
        ("table3", 432),
        ("table4", 144),
        ("table5", 432),
    ] {
        let grid = grids.join(format!("{table}.toml"));
        let out = tmp.path().join(table);
        let args = [
            "sweep",
            "--config",
            grid.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--plan",
        ];
        finished(&heal(&hub.base, tmp.path(), &offline, &args));
        let plan = json(&out.join("plan.json"));
        let planned = plan["cells"].as_array().unwrap();
        assert_eq!(planned.len(), cells, "{table}");
        for cell in planned {
            let data = cell["config"]["data"].as_str().unwrap();
            assert!(heal::data::fetch::find(data).is_some(), "{table}: {data}");
        }
    }
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
    assert!(!empty.exists());
}
