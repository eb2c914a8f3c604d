//! Models by HF hub id (issue 14): `heal model fetch`, the HF cache in huggingface_hub's own
//! layout (read back by huggingface_hub and HF transformers offline), cache hits that make no
//! request, offline mode, tokens, the hub's error codes and refused downloads. The hub is a local
//! stand-in on 127.0.0.1 that serves tests/fixtures/tiny-bert as `org/tiny-bert`; every heal run
//! gets a temporary HOME and no HF variable but those a test sets.

mod common;

use common::{fixtures, heal_bin, max_abs_diff, python_json};
use heal::model::head::Pooling;
use heal::model::tokenizer::TextEncoder;
use heal::model::{Batch, SequenceClassifier};
use sha2::Digest;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tch::{Device, Tensor};

/// The commit `main` points at on the stand-in hub.
const SHA: &str = "9e1c0ffee5b2a7d4c3f60815e2d9a4b7c6f1e0d3";
/// The token a gated repository wants.
const TOKEN: &str = "secret";
/// What heal needs of the tiny-bert repository; the other files listed must not be fetched.
const NEEDED: [&str; 4] = [
    "config.json",
    "model.safetensors",
    "tokenizer_config.json",
    "vocab.txt",
];

// The stand-in hub.

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// A Content-Length larger than the body: the connection closes mid-download.
    declared_len: Option<usize>,
}

impl Reply {
    fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        Reply {
            status,
            headers,
            body,
            declared_len: None,
        }
    }

    fn json(value: serde_json::Value) -> Self {
        Reply::new(200, vec![json_type()], serde_json::to_vec(&value).unwrap())
    }

    /// An error as the hub sends it: JSON `{"error": ...}` and, when given, `X-Error-Code`.
    fn error(status: u16, code: Option<&str>, message: &str) -> Self {
        let mut headers = vec![json_type()];
        if let Some(code) = code {
            headers.push(("X-Error-Code".into(), code.into()));
            headers.push(("X-Error-Message".into(), message.into()));
        }
        let body = serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap();
        Reply::new(status, headers, body)
    }
}

fn json_type() -> (String, String) {
    (
        "Content-Type".into(),
        "application/json; charset=utf-8".into(),
    )
}

#[derive(Clone)]
struct Route {
    reply: Reply,
    /// The token this route wants as `Authorization: Bearer TOKEN` (a gated repository).
    token: Option<String>,
}

#[derive(Clone, Debug)]
struct Request {
    target: String,
    authorization: Option<String>,
}

/// A minimal HTTP/1.1 server: request targets to canned replies; every request is recorded.
struct MockHub {
    base: String,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl MockHub {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
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

    fn route(&self, target: impl Into<String>, reply: Reply, token: Option<&str>) {
        let token = token.map(String::from);
        self.routes
            .lock()
            .unwrap()
            .insert(target.into(), Route { reply, token });
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn targets(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.target).collect()
    }
}

fn serve(stream: TcpStream, routes: &Mutex<HashMap<String, Route>>, log: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    log.lock().unwrap().push(Request {
        target: target.clone(),
        authorization: authorization.clone(),
    });
    // The exact target, else its path alone (a client may add query parameters of its own).
    let route = {
        let routes = routes.lock().unwrap();
        let path = target.split('?').next().unwrap_or("");
        routes.get(&target).or_else(|| routes.get(path)).cloned()
    };
    let reply = match route {
        None => Reply::error(404, None, "Not Found"),
        Some(Route {
            token: Some(token), ..
        }) if authorization.as_deref() != Some(format!("Bearer {token}").as_str()) => {
            Reply::error(
                403,
                Some("GatedRepo"),
                "Access to model org/gated is restricted. You must have access to it and be authenticated to access it. Please log in.",
            )
        }
        Some(route) => route.reply,
    };
    let reason = match reply.status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.declared_len.unwrap_or(reply.body.len())
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(&reply.body);
    }
    let _ = stream.flush();
}

// Repositories on the stand-in hub.

#[derive(Clone, Copy, PartialEq)]
enum Redirect {
    No,
    /// 302 to a path on the same server (`Location: /cdn/...`), as the hub does for LFS files.
    Relative,
    /// 307 to a full URL on the same server.
    Absolute,
}

#[derive(Clone)]
struct RepoFile {
    path: String,
    bytes: Vec<u8>,
    /// Listed as an LFS file (sha256) rather than a plain git blob (sha1 of the git object).
    lfs: bool,
    redirect: Redirect,
    /// What the server sends instead of `bytes` (a damaged copy).
    served: Option<Vec<u8>>,
    /// A Content-Length the server announces but does not send (a cut connection).
    declared_len: Option<usize>,
}

impl RepoFile {
    fn git(path: &str, bytes: Vec<u8>) -> Self {
        RepoFile {
            path: path.into(),
            bytes,
            lfs: false,
            redirect: Redirect::No,
            served: None,
            declared_len: None,
        }
    }

    fn lfs(path: &str, bytes: Vec<u8>) -> Self {
        RepoFile {
            lfs: true,
            ..RepoFile::git(path, bytes)
        }
    }

    /// The blob name huggingface_hub gives the file: sha256 for LFS files, else the git oid.
    fn etag(&self) -> String {
        if self.lfs {
            sha256_hex(&self.bytes)
        } else {
            git_blob_id(&self.bytes)
        }
    }

    fn lfs_pointer(&self) -> Vec<u8> {
        format!(
            "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n",
            sha256_hex(&self.bytes),
            self.bytes.len()
        )
        .into_bytes()
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

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("tiny-bert").join(name)).unwrap()
}

/// tiny-bert as a hub repository: the weights an LFS file behind a relative redirect, a
/// tokenizer file behind an absolute one, plus files heal has no use for.
fn tiny_bert_files() -> Vec<RepoFile> {
    vec![
        RepoFile::git(
            ".gitattributes",
            b"*.bin filter=lfs diff=lfs merge=lfs -text\n*.onnx filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n".to_vec(),
        ),
        RepoFile::git("README.md", b"---\nlicense: mit\n---\n# tiny-bert\n".to_vec()),
        RepoFile::git("config.json", fixture("config.json")),
        RepoFile {
            redirect: Redirect::Relative,
            ..RepoFile::lfs("model.safetensors", fixture("model.safetensors"))
        },
        RepoFile::lfs("onnx/model.onnx", b"not an onnx graph".to_vec()),
        RepoFile::lfs("pytorch_model.bin", b"not a pickle either".to_vec()),
        RepoFile {
            redirect: Redirect::Absolute,
            ..RepoFile::git("tokenizer_config.json", fixture("tokenizer_config.json"))
        },
        RepoFile::git("vocab.txt", fixture("vocab.txt")),
    ]
}

fn file<'a>(files: &'a [RepoFile], path: &str) -> &'a RepoFile {
    files.iter().find(|f| f.path == path).unwrap()
}

/// Serves `files` as `repo` at commit SHA (branch `main`): the revision API, the recursive tree
/// listing in pages of `page_size` entries linked by `Link: <...>; rel="next"`, and one resolve
/// URL per file. With `token`, every route but the CDN wants it.
fn publish(hub: &MockHub, repo: &str, files: &[RepoFile], page_size: usize, token: Option<&str>) {
    let siblings: Vec<serde_json::Value> = files
        .iter()
        .map(|f| serde_json::json!({ "rfilename": f.path }))
        .collect();
    let info = serde_json::json!({
        "_id": "65f0c0ffee0000000000beef", "id": repo, "modelId": repo, "sha": SHA,
        "private": false, "gated": if token.is_some() { serde_json::json!("manual") } else { serde_json::json!(false) },
        "disabled": false, "tags": ["bert", "text-classification"],
        "lastModified": "2024-05-01T12:00:00.000Z", "siblings": siblings,
    });
    for revision in ["main", SHA] {
        hub.route(
            format!("/api/models/{repo}/revision/{revision}"),
            Reply::json(info.clone()),
            token,
        );
    }

    let mut entries = vec![serde_json::json!({
        "type": "directory", "oid": "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "size": 0,
        "path": "onnx",
    })];
    for f in files {
        let mut e = serde_json::json!({
            "type": "file", "path": f.path, "size": f.bytes.len(), "oid": git_blob_id(&f.bytes),
        });
        if f.lfs {
            let pointer = f.lfs_pointer();
            e["oid"] = serde_json::json!(git_blob_id(&pointer));
            e["lfs"] = serde_json::json!({
                "oid": sha256_hex(&f.bytes), "size": f.bytes.len(), "pointerSize": pointer.len(),
            });
        }
        entries.push(e);

        let body = f.served.clone().unwrap_or_else(|| f.bytes.clone());
        let mut headers = vec![("X-Repo-Commit".to_string(), SHA.to_string())];
        let resolve = format!("/{repo}/resolve/{SHA}/{}", f.path);
        let cdn = format!("/cdn/{repo}/{}/{}", f.etag(), f.path);
        if f.lfs {
            headers.push(("X-Linked-Etag".into(), format!("\"{}\"", f.etag())));
            headers.push(("X-Linked-Size".into(), f.bytes.len().to_string()));
        } else {
            headers.push(("ETag".into(), format!("\"{}\"", f.etag())));
        }
        // The hub's headers on the final answer too: huggingface_hub's HEAD follows a relative
        // redirect and wants them there.
        let direct = Reply {
            declared_len: f.declared_len,
            ..Reply::new(200, headers.clone(), body)
        };
        let redirect = |status: u16, location: String| {
            let mut h = headers.clone();
            h.push(("Location".into(), location));
            Reply::new(status, h, vec![])
        };
        match f.redirect {
            Redirect::No => hub.route(resolve, direct, token),
            Redirect::Relative => {
                hub.route(resolve, redirect(302, cdn.clone()), token);
                hub.route(cdn, direct, None);
            }
            Redirect::Absolute => {
                hub.route(resolve, redirect(307, format!("{}{cdn}", hub.base)), token);
                hub.route(cdn, direct, None);
            }
        }
    }
    entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));

    let first = format!("/api/models/{repo}/tree/{SHA}?recursive=true");
    let pages: Vec<&[serde_json::Value]> = entries.chunks(page_size).collect();
    for (i, page) in pages.iter().enumerate() {
        let target = if i == 0 {
            first.clone()
        } else {
            format!("{first}&cursor=page{i}")
        };
        let mut reply = Reply::json(serde_json::json!(page));
        if i + 1 < pages.len() {
            reply.headers.push((
                "Link".into(),
                format!("<{}{first}&cursor=page{}>; rel=\"next\"", hub.base, i + 1),
            ));
        }
        if i == 0 {
            // Also for a client that adds parameters of its own (huggingface_hub: expand=false).
            let path = first.split('?').next().unwrap().to_string();
            hub.route(path, reply.clone(), token);
        }
        hub.route(target, reply, token);
    }
}

// Running heal.

/// Runs `heal ARGS` in `root` with HOME = `root`/home (so no user cache or token is seen),
/// every HF variable cleared and then `vars` set; HF_ENDPOINT is a closed local port unless
/// `vars` names one.
fn heal(root: &Path, vars: &[(&str, &str)], args: &[impl AsRef<OsStr>]) -> Output {
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(heal_bin());
    cmd.current_dir(root)
        .env("HOME", &home)
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .args(args);
    for var in [
        "HF_HOME",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "XDG_CACHE_HOME",
        "HEAL_DATA_DIR",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("heal runs")
}

/// `heal finetune` of `model` on the tiny 3-class data, one epoch on the CPU, into `run`.
fn finetune_args(model: &str, run: &Path) -> Vec<String> {
    let data = fixtures().join("tiny-data");
    let mut args: Vec<String> = ["finetune", "--model", model, "--data"]
        .map(String::from)
        .to_vec();
    args.push(s(&data.join("train.jsonl")).into());
    args.push("--eval-data".into());
    args.push(s(&data.join("test.jsonl")).into());
    args.extend(["--epochs", "1", "--device", "cpu", "--out", s(run)].map(String::from));
    args
}

/// `heal corrupt` of `model` with `extra` flags, layer 1 re-initialised, into `out`.
fn corrupt_args(model: &str, extra: &[&str], out: &Path) -> Vec<String> {
    let mut args = vec!["corrupt", "--model", model];
    args.extend_from_slice(extra);
    args.extend(["--spec", "layers:1", "--out", s(out)]);
    args.into_iter().map(String::from).collect()
}

/// Arguments without paths, written as one line.
fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "heal failed ({:?}): {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The last stdout line of a successful `heal model fetch`: the snapshot folder.
fn printed_snapshot(out: &Output) -> PathBuf {
    let stdout = ok(out);
    let last = stdout.lines().last().unwrap_or("").trim().to_string();
    assert!(!last.is_empty(), "no snapshot path printed: {stdout:?}");
    PathBuf::from(last)
}

fn assert_same_path(got: &Path, want: &Path) {
    assert!(want.is_dir(), "{} is not a folder", want.display());
    assert_eq!(
        got.canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}", got.display())),
        want.canonicalize().unwrap(),
        "printed {}, expected {}",
        got.display(),
        want.display()
    );
}

/// Exit code 2 and exactly one line on stderr; returns that line.
fn user_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    stderr
}

// The cache on disk.

fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

/// Every entry under `dir`, relative and sorted: folders end in `/`, links as `path -> target`.
fn layout(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push(format!("{rel} -> {}", target.display()));
            } else if meta.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The files and links under `dir` (folders left out).
fn files_under(dir: &Path) -> Vec<String> {
    layout(dir)
        .into_iter()
        .filter(|e| !e.ends_with('/'))
        .collect()
}

/// What huggingface_hub leaves after downloading `paths` of `files` at SHA through `main`.
fn expected_layout(files: &[RepoFile], paths: &[&str]) -> Vec<String> {
    let mut v = vec![
        "blobs/".to_string(),
        "refs/".into(),
        "refs/main".into(),
        "snapshots/".into(),
        format!("snapshots/{SHA}/"),
    ];
    for p in paths {
        let f = file(files, p);
        v.push(format!("blobs/{}", f.etag()));
        v.push(format!("snapshots/{SHA}/{p} -> ../../blobs/{}", f.etag()));
    }
    v.sort();
    v
}

/// The repository folder holds exactly what huggingface_hub would write for the needed files
/// of tiny-bert, blobs with the right bytes, and refs/main the bare commit. (huggingface_hub
/// 2.x also keeps the listing it read under trees/; allowed, not required.)
fn assert_fetched(cache: &Path, repo: &str, files: &[RepoFile]) {
    let dir = repo_dir(cache, repo);
    let written: Vec<String> = layout(&dir)
        .into_iter()
        .filter(|e| !e.starts_with("trees/"))
        .collect();
    assert_eq!(written, expected_layout(files, &NEEDED));
    for p in NEEDED {
        let f = file(files, p);
        assert_eq!(
            std::fs::read(dir.join("blobs").join(f.etag())).unwrap(),
            f.bytes,
            "{p}"
        );
        assert_eq!(
            std::fs::read(dir.join("snapshots").join(SHA).join(p)).unwrap(),
            f.bytes,
            "{p} through its link"
        );
    }
    // huggingface_hub reads refs without trimming: no newline.
    assert_eq!(
        std::fs::read_to_string(dir.join("refs").join("main")).unwrap(),
        SHA
    );
}

/// Whether a file named like a blob (40 or 64 hex digits) holds the bytes its name hashes.
fn blob_is_sound(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = std::fs::read(path).unwrap();
    match name.len() {
        64 => sha256_hex(&bytes) == name,
        40 => git_blob_id(&bytes) == name,
        _ => true,
    }
}

fn looks_like_hash(name: &str) -> bool {
    matches!(name.len(), 40 | 64) && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// After a refused download of `bad`: no blob under its name, no snapshot entry for it, every
/// file named like a blob holds the bytes of its name, and every snapshot link leads to one.
fn assert_nothing_complete_of(cache: &Path, repo: &str, bad: &RepoFile) {
    let dir = repo_dir(cache, repo);
    let entries = files_under(cache);
    assert!(
        !dir.join("blobs").join(bad.etag()).exists(),
        "blob of the refused {} left: {entries:?}",
        bad.path
    );
    assert!(
        std::fs::symlink_metadata(dir.join("snapshots").join(SHA).join(&bad.path)).is_err(),
        "snapshot entry for the refused {}: {entries:?}",
        bad.path
    );
    for entry in &entries {
        let rel = entry.split(" -> ").next().unwrap();
        let path = cache.join(rel);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if entry.contains(" -> ") {
            let target = std::fs::canonicalize(&path)
                .unwrap_or_else(|_| panic!("dangling link {entry}: {entries:?}"));
            assert!(
                blob_is_sound(&target),
                "{entry} leads to a damaged blob: {entries:?}"
            );
        } else if looks_like_hash(&name) {
            assert!(
                blob_is_sound(&path),
                "{rel} is named like a blob but holds other bytes: {entries:?}"
            );
        }
        assert!(
            !(rel.contains("snapshots") && name == bad.path),
            "{rel}: {entries:?}"
        );
    }
}

// A cache made by hand, as huggingface_hub lays it out.

const COMMIT_MAIN: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const COMMIT_V1: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
const COMMIT_UNNAMED: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";

/// Writes `files` as snapshots/`commit` of `repo` in `cache`: blobs named by sha256 (weights)
/// or git oid (the rest), relative links; `refs` are the names that point at `commit`.
fn put_snapshot(cache: &Path, repo: &str, commit: &str, refs: &[&str], files: &[(&str, Vec<u8>)]) {
    let dir = repo_dir(cache, repo);
    for (path, bytes) in files {
        let lfs = path.ends_with(".safetensors") || path.ends_with(".bin");
        let etag = if lfs {
            sha256_hex(bytes)
        } else {
            git_blob_id(bytes)
        };
        std::fs::create_dir_all(dir.join("blobs")).unwrap();
        std::fs::write(dir.join("blobs").join(&etag), bytes).unwrap();
        let link = dir.join("snapshots").join(commit).join(path);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        let up = "../".repeat(2 + path.matches('/').count());
        std::os::unix::fs::symlink(format!("{up}blobs/{etag}"), link).unwrap();
    }
    for name in refs {
        std::fs::create_dir_all(dir.join("refs")).unwrap();
        std::fs::write(dir.join("refs").join(name), commit).unwrap();
    }
}

fn tiny_bert_snapshot() -> Vec<(&'static str, Vec<u8>)> {
    NEEDED.iter().map(|p| (*p, fixture(p))).collect()
}

/// tiny-bert's config with `tag` as the first label name, which `heal corrupt` carries into
/// its output: it tells which snapshot a name resolved to.
fn tagged_config(tag: &str) -> Vec<u8> {
    let mut config: serde_json::Value = serde_json::from_slice(&fixture("config.json")).unwrap();
    config["id2label"] = serde_json::json!({"0": tag, "1": "b", "2": "c"});
    config["label2id"] = serde_json::json!({tag: 0, "b": 1, "c": 2});
    serde_json::to_vec_pretty(&config).unwrap()
}

fn tagged_snapshot(tag: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = tiny_bert_snapshot();
    files[0] = ("config.json", tagged_config(tag));
    files
}

/// tiny-bert's weights in two safetensors shards and their index, with `config`.
fn sharded_snapshot(config: Vec<u8>, with_second_shard: bool) -> Vec<(&'static str, Vec<u8>)> {
    let mut tensors =
        Tensor::read_safetensors(fixtures().join("tiny-bert").join("model.safetensors")).unwrap();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let second = tensors.split_off(tensors.len() / 2);
    let names = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let mut weight_map = serde_json::Map::new();
    let mut out = vec![("config.json", config), ("vocab.txt", fixture("vocab.txt"))];
    let mut total = 0;
    for (name, part) in names.iter().zip([tensors, second]) {
        for (t, tensor) in &part {
            weight_map.insert(t.clone(), serde_json::json!(name));
            total += tensor.numel() * 4;
        }
        let path = tmp.path().join(name);
        Tensor::write_safetensors(&part, &path).unwrap();
        if with_second_shard || *name == names[0] {
            out.push((name, std::fs::read(&path).unwrap()));
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    out.push((
        "model.safetensors.index.json",
        serde_json::to_vec_pretty(&index).unwrap(),
    ));
    out
}

/// In `cache`: org/tiny-bert with main, v1 and a commit no ref names; the bare name tiny-bert;
/// org/tiny-bert-sharded. Each snapshot's first label is `{place} {which}`.
fn hand_cache(cache: &Path, place: &str) {
    let tag = |which: &str| tagged_snapshot(&format!("{place} {which}"));
    put_snapshot(cache, "org/tiny-bert", COMMIT_MAIN, &["main"], &tag("main"));
    put_snapshot(cache, "org/tiny-bert", COMMIT_V1, &["v1"], &tag("v1"));
    put_snapshot(cache, "org/tiny-bert", COMMIT_UNNAMED, &[], &tag("unnamed"));
    put_snapshot(cache, "tiny-bert", COMMIT_MAIN, &["main"], &tag("bare"));
    let sharded = sharded_snapshot(tagged_config(&format!("{place} sharded")), true);
    put_snapshot(
        cache,
        "org/tiny-bert-sharded",
        COMMIT_MAIN,
        &["main"],
        &sharded,
    );
}

/// The first label name of the checkpoint that `heal corrupt --model MODEL EXTRA` read, i.e.
/// which snapshot MODEL resolved to.
fn resolved(root: &Path, vars: &[(&str, &str)], model: &str, extra: &[&str]) -> String {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let out = root.join(format!(
        "corrupted-{}",
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    ok(&heal(root, vars, &corrupt_args(model, extra, &out)));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    config["id2label"]["0"].as_str().unwrap().to_string()
}

fn snapshot_of(cache: &Path, repo: &str, commit: &str) -> PathBuf {
    repo_dir(cache, repo).join("snapshots").join(commit)
}

// The tests.

/// HF transformers and huggingface_hub, offline, on the cache heal wrote: what the cache scan
/// sees, where huggingface_hub finds config.json, and per text the token ids and logits.
const HF_READS_CACHE: &str = r#"
import json, os, sys
for var in ("HF_HOME", "HF_ENDPOINT", "HF_TOKEN", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"):
    os.environ.pop(var, None)
os.environ["HF_HUB_CACHE"] = sys.argv[1]
os.environ["HF_HUB_OFFLINE"] = "1"
import huggingface_hub, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

scan = huggingface_hub.scan_cache_dir(sys.argv[1])
repos = [
    {"repo_id": r.repo_id, "repo_type": r.repo_type, "revisions": [
        {"commit": v.commit_hash, "refs": sorted(v.refs), "files": sorted(f.file_name for f in v.files)}
        for v in r.revisions]}
    for r in scan.repos
]
tok = AutoTokenizer.from_pretrained("org/tiny-bert")
model = AutoModelForSequenceClassification.from_pretrained("org/tiny-bert").eval()
rows = []
with torch.no_grad():
    for text in json.loads(sys.argv[2]):
        enc = tok(text, return_tensors="pt")
        out = model(**enc, output_hidden_states=True)
        rows.append({
            "input_ids": enc["input_ids"][0].tolist(),
            "token_type_ids": enc["token_type_ids"][0].tolist(),
            "last_hidden": out.hidden_states[-1][0].tolist(),
            "logits": out.logits[0].tolist(),
        })
print(json.dumps({
    "warnings": [str(w) for w in scan.warnings],
    "repos": repos,
    "config": huggingface_hub.try_to_load_from_cache("org/tiny-bert", "config.json"),
    "rows": rows,
}))
"#;

#[test]
fn fetch_writes_the_hf_cache_that_transformers_loads_offline() {
    let hub = MockHub::start();
    let files = tiny_bert_files();
    publish(&hub, "org/tiny-bert", &files, 3, None);
    let tmp = tempfile::tempdir().unwrap();
    // Not there yet: heal makes it.
    let cache = tmp.path().join("hf-cache");
    let out = heal(
        tmp.path(),
        &[("HF_ENDPOINT", &hub.base), ("HF_HUB_CACHE", s(&cache))],
        &["model", "fetch", "org/tiny-bert"],
    );
    let snapshot = printed_snapshot(&out);
    assert_same_path(&snapshot, &snapshot_of(&cache, "org/tiny-bert", SHA));
    assert_fetched(&cache, "org/tiny-bert", &files);
    let visible: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(visible, ["models--org--tiny-bert"]);

    // What was asked: the revision, every page of the listing, the needed files only.
    let targets = hub.targets();
    assert!(
        targets.contains(&"/api/models/org/tiny-bert/revision/main".to_string()),
        "{targets:?}"
    );
    for page in ["cursor=page1", "cursor=page2"] {
        assert!(targets.iter().any(|t| t.contains(page)), "{targets:?}");
    }
    for p in NEEDED {
        let resolve = format!("/org/tiny-bert/resolve/{SHA}/{p}");
        assert!(targets.contains(&resolve), "{p} not fetched: {targets:?}");
    }
    for p in ["model.safetensors", "tokenizer_config.json"] {
        let cdn = format!("/cdn/org/tiny-bert/{}/{p}", file(&files, p).etag());
        assert!(
            targets.contains(&cdn),
            "redirect for {p} not followed: {targets:?}"
        );
    }
    let downloads = targets
        .iter()
        .filter(|t| t.starts_with("/org/tiny-bert/resolve/") || t.starts_with("/cdn/"));
    for t in downloads {
        assert!(
            NEEDED.iter().any(|p| t.ends_with(&format!("/{p}"))),
            "{t} is not needed: {targets:?}"
        );
    }
    assert!(
        hub.requests().iter().all(|r| r.authorization.is_none()),
        "no token anywhere, none sent"
    );

    assert_transformers_agrees(&cache, &snapshot);
}

/// huggingface_hub sees a sound cache holding org/tiny-bert at SHA (main); transformers loads it
/// offline; heal loads `snapshot` through its links and agrees with it.
fn assert_transformers_agrees(cache: &Path, snapshot: &Path) {
    let texts: Vec<String> = [
        "the market fell",
        "film award for the actor!",
        "bank profit shares, music zebra",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    let hf: serde_json::Value = python_json(
        HF_READS_CACHE,
        &[s(cache), &serde_json::to_string(&texts).unwrap()],
    );
    assert_eq!(hf["warnings"], serde_json::json!([]), "{hf}");
    let mut needed: Vec<&str> = NEEDED.to_vec();
    needed.sort();
    assert_eq!(
        hf["repos"],
        serde_json::json!([{
            "repo_id": "org/tiny-bert", "repo_type": "model",
            "revisions": [{"commit": SHA, "refs": ["main"], "files": needed}],
        }])
    );
    assert_eq!(
        hf["config"],
        s(&snapshot_of(cache, "org/tiny-bert", SHA).join("config.json"))
    );

    let (model, report) = SequenceClassifier::load(snapshot, 3, Pooling::Cls, Device::Cpu).unwrap();
    assert!(
        report.initialised.is_empty(),
        "the fixture has its head: {:?}",
        report.initialised
    );
    // The fixture's logits are small and close together: the last hidden states (LayerNorm
    // outputs, of order 1) are compared too, and heal's own token ids exactly.
    let encoder = TextEncoder::from_dir(snapshot, 128).unwrap();
    for (text, row) in texts.iter().zip(hf["rows"].as_array().unwrap()) {
        let ids: Vec<i64> = serde_json::from_value(row["input_ids"].clone()).unwrap();
        let types: Vec<i64> = serde_json::from_value(row["token_type_ids"].clone()).unwrap();
        let want_logits: Vec<f64> = serde_json::from_value(row["logits"].clone()).unwrap();
        let want_hidden: Vec<Vec<f64>> =
            serde_json::from_value(row["last_hidden"].clone()).unwrap();
        let ours = encoder.encode_batch(&[(text.clone(), None)]).unwrap();
        assert_eq!(ours[0].ids, ids, "{text}");
        assert_eq!(ours[0].type_ids, types, "{text}");

        let n = ids.len() as i64;
        let batch = Batch {
            input_ids: Tensor::from_slice(&ids).unsqueeze(0),
            token_type_ids: Tensor::from_slice(&types).unsqueeze(0),
            attention_mask: Tensor::ones([1, n], (tch::Kind::Int64, Device::Cpu)),
            labels: Tensor::zeros([1], (tch::Kind::Int64, Device::Cpu)),
        };
        let (logits, states) = tch::no_grad(|| {
            (
                model.forward_t(&batch, false),
                model.hidden_states(&batch, false),
            )
        });
        let flat: Vec<f64> = want_hidden.concat();
        let want_hidden = Tensor::from_slice(&flat).view([1, n, -1]);
        let last = states.last().unwrap().to_kind(tch::Kind::Double);
        let d = max_abs_diff(&last, &want_hidden);
        assert!(
            d < 1e-4,
            "{text}: last hidden state differs from HF by {d:e}"
        );
        let d = max_abs_diff(
            &logits.to_kind(tch::Kind::Double),
            &Tensor::from_slice(&want_logits).unsqueeze(0),
        );
        assert!(d < 1e-4, "{text}: logits differ from HF by {d:e}");
    }
}

#[test]
fn cached_model_serves_other_commands_without_any_request() {
    let hub = MockHub::start();
    let files = tiny_bert_files();
    publish(&hub, "org/tiny-bert", &files, 100, None);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cache = root.join("cache");
    let vars = [
        ("HF_ENDPOINT", hub.base.as_str()),
        ("HF_HUB_CACHE", s(&cache)),
    ];
    printed_snapshot(&heal(root, &vars, &words("model fetch org/tiny-bert")));
    let asked = hub.requests().len();
    assert!(asked > 0);
    let cached = layout(&cache);
    let asks_nothing = |what: &str| {
        let targets = hub.targets();
        assert_eq!(
            targets.len(),
            asked,
            "{what}: a cache hit asks nothing: {:?}",
            &targets[asked..]
        );
        assert_eq!(layout(&cache), cached, "{what}: the cache is only read");
    };

    let run = root.join("run");
    ok(&heal(root, &vars, &finetune_args("org/tiny-bert", &run)));
    assert!(run.join("result.json").is_file());
    asks_nothing("heal finetune");

    let corrupted = root.join("corrupted");
    ok(&heal(
        root,
        &vars,
        &corrupt_args("org/tiny-bert", &[], &corrupted),
    ));
    assert!(corrupted.join("model.safetensors").is_file());
    asks_nothing("heal corrupt");
}

#[test]
fn hand_made_cache_is_found_by_every_rule_without_any_request() {
    // The hub has org/tiny-bert at another commit: asking it would show in the labels too.
    let hub = MockHub::start();
    publish(&hub, "org/tiny-bert", &tiny_bert_files(), 100, None);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cache = root.join("cache");
    hand_cache(&cache, "cache");
    let endpoint = ("HF_ENDPOINT", hub.base.as_str());
    let by_cache = [endpoint, ("HF_HUB_CACHE", s(&cache))];

    // HF_HUB_CACHE: main through refs/main, v1 through refs/v1, a commit by its hash.
    assert_eq!(
        resolved(root, &by_cache, "org/tiny-bert", &[]),
        "cache main"
    );
    let v1 = ["--revision", "v1"];
    assert_eq!(resolved(root, &by_cache, "org/tiny-bert", &v1), "cache v1");
    let by_hash = ["--revision", COMMIT_UNNAMED];
    assert_eq!(
        resolved(root, &by_cache, "org/tiny-bert", &by_hash),
        "cache unnamed"
    );
    let refs = repo_dir(&cache, "org/tiny-bert").join("refs");
    assert_eq!(layout(&refs), ["main", "v1"], "no ref written for a hash");
    // A bare name: models--NAME. Shards with their index.
    assert_eq!(resolved(root, &by_cache, "tiny-bert", &[]), "cache bare");
    assert_eq!(
        resolved(root, &by_cache, "org/tiny-bert-sharded", &[]),
        "cache sharded"
    );
    // Offline, a cached revision is fine.
    let offline = [
        endpoint,
        ("HF_HUB_CACHE", s(&cache)),
        ("HF_HUB_OFFLINE", "1"),
    ];
    assert_eq!(resolved(root, &offline, "org/tiny-bert", &v1), "cache v1");

    // HF_HOME: the cache is HF_HOME/hub.
    let hf_home = root.join("hf-home");
    hand_cache(&hf_home.join("hub"), "hf-home");
    let vars = [endpoint, ("HF_HOME", s(&hf_home))];
    assert_eq!(resolved(root, &vars, "org/tiny-bert", &[]), "hf-home main");
    // HF_HUB_CACHE before HF_HOME.
    let vars = [
        endpoint,
        ("HF_HOME", s(&hf_home)),
        ("HF_HUB_CACHE", s(&cache)),
    ];
    assert_eq!(resolved(root, &vars, "org/tiny-bert", &v1), "cache v1");
    // Neither: ~/.cache/huggingface/hub.
    let default = root.join("home/.cache/huggingface/hub");
    hand_cache(&default, "home");
    assert_eq!(
        resolved(root, &[endpoint], "org/tiny-bert", &[]),
        "home main"
    );

    assert!(hub.requests().is_empty(), "{:?}", hub.targets());
}

#[test]
fn model_fetch_refreshes_online_and_reads_the_cache_offline() {
    // Offline, `heal model fetch` returns the cached snapshot (no request, no network); online
    // it asks the hub which commit the revision names now, as snapshot_download does.
    let hub = MockHub::start();
    publish(&hub, "org/tiny-bert", &tiny_bert_files(), 100, None);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cache = root.join("cache");
    hand_cache(&cache, "cache");
    let online = [
        ("HF_ENDPOINT", hub.base.as_str()),
        ("HF_HUB_CACHE", s(&cache)),
    ];
    let offline = [
        ("HF_ENDPOINT", hub.base.as_str()),
        ("HF_HUB_CACHE", s(&cache)),
        ("HF_HUB_OFFLINE", "1"),
    ];
    for (vars, args, commit) in [
        (&offline[..], "org/tiny-bert", COMMIT_MAIN),
        (&offline[..], "org/tiny-bert --revision v1", COMMIT_V1),
        (
            &offline[..],
            &format!("org/tiny-bert --revision {COMMIT_UNNAMED}")[..],
            COMMIT_UNNAMED,
        ),
    ] {
        let out = heal(root, vars, &words(&format!("model fetch {args}")));
        let got = printed_snapshot(&out);
        assert_same_path(&got, &snapshot_of(&cache, "org/tiny-bert", commit));
        assert!(hub.requests().is_empty(), "{args}: {:?}", hub.targets());
    }
    // Online: the hub's main (another commit than the cached refs/main) is fetched and
    // refs/main moves to it.
    let out = heal(root, &online, &words("model fetch org/tiny-bert"));
    let got = printed_snapshot(&out);
    assert_same_path(&got, &snapshot_of(&cache, "org/tiny-bert", SHA));
    assert!(!hub.requests().is_empty(), "online fetch asks the hub");
    assert_eq!(
        std::fs::read_to_string(cache.join("models--org--tiny-bert/refs/main")).unwrap(),
        SHA
    );
    let asked = hub.requests().len();
    // Offline and not cached: the variable and where it looked.
    let out = heal(root, &offline, &words("model fetch org/absent"));
    let line = user_error(&out);
    assert!(line.contains("HF_HUB_OFFLINE"), "{line}");
    assert!(
        line.contains(s(&cache)),
        "names the place looked in: {line}"
    );
    assert_eq!(hub.requests().len(), asked, "{:?}", hub.targets());
}

#[test]
fn offline_without_a_usable_snapshot_is_one_line_naming_hf_hub_offline() {
    let hub = MockHub::start();
    publish(&hub, "org/tiny-bert", &tiny_bert_files(), 100, None);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cache = root.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let vars = [
        ("HF_ENDPOINT", hub.base.as_str()),
        ("HF_HUB_CACHE", s(&cache)),
        ("HF_HUB_OFFLINE", "1"),
    ];
    let out = root.join("out");
    let refused = |args: &[String]| {
        let before = layout(&cache);
        let line = user_error(&heal(root, &vars, args));
        assert!(line.contains("HF_HUB_OFFLINE"), "{line}");
        assert!(
            line.contains(s(&cache)),
            "names the place looked in: {line}"
        );
        assert_eq!(layout(&cache), before, "{args:?} wrote to the cache");
        assert!(
            !out.exists(),
            "{args:?}: nothing written for a refused model"
        );
    };

    // Nothing cached.
    refused(&finetune_args("org/tiny-bert", &out));
    refused(&corrupt_args("org/tiny-bert", &[], &out));

    // A snapshot without weights, a sharded one missing a shard, a revision with no ref, a
    // commit with no snapshot.
    put_snapshot(
        &cache,
        "org/tiny-bert",
        COMMIT_MAIN,
        &["main"],
        &[
            ("config.json", fixture("config.json")),
            ("vocab.txt", fixture("vocab.txt")),
        ],
    );
    refused(&corrupt_args("org/tiny-bert", &[], &out));
    put_snapshot(
        &cache,
        "org/tiny-bert-sharded",
        COMMIT_MAIN,
        &["main"],
        &sharded_snapshot(fixture("config.json"), false),
    );
    refused(&corrupt_args("org/tiny-bert-sharded", &[], &out));
    put_snapshot(
        &cache,
        "org/other",
        COMMIT_MAIN,
        &["main"],
        &tiny_bert_snapshot(),
    );
    refused(&corrupt_args("org/other", &["--revision", "v1"], &out));
    refused(&corrupt_args("org/other", &["--revision", COMMIT_V1], &out));

    assert!(hub.requests().is_empty(), "{:?}", hub.targets());
}

#[test]
fn gated_repo_needs_a_token_from_hf_token_or_a_token_file() {
    let hub = MockHub::start();
    let files = tiny_bert_files();
    publish(&hub, "org/gated", &files, 3, Some(TOKEN));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let endpoint = ("HF_ENDPOINT", hub.base.as_str());

    // No token, a wrong one: refused, naming HF_TOKEN; nothing cached.
    let cache = root.join("cache");
    for token in [None, Some("wrong")] {
        let before = hub.requests().len();
        let mut vars = vec![endpoint, ("HF_HUB_CACHE", s(&cache))];
        if let Some(t) = token {
            vars.push(("HF_TOKEN", t));
        }
        let line = user_error(&heal(root, &vars, &["model", "fetch", "org/gated"]));
        assert!(line.contains("HF_TOKEN"), "{line}");
        assert!(files_under(&cache).is_empty(), "{:?}", files_under(&cache));
        let sent: Vec<Option<String>> = hub.requests()[before..]
            .iter()
            .map(|r| r.authorization.clone())
            .collect();
        assert!(!sent.is_empty());
        let want = token.map(|t| format!("Bearer {t}"));
        assert!(sent.iter().all(|a| *a == want), "{sent:?}");
    }
    let asked = hub.requests().len();
    assert!(asked > 0);

    // HF_TOKEN: sent on every hub request, and the whole model is there.
    let vars = [endpoint, ("HF_HUB_CACHE", s(&cache)), ("HF_TOKEN", TOKEN)];
    let got = printed_snapshot(&heal(root, &vars, &["model", "fetch", "org/gated"]));
    assert_same_path(&got, &snapshot_of(&cache, "org/gated", SHA));
    assert_fetched(&cache, "org/gated", &files);
    for r in &hub.requests()[asked..] {
        if !r.target.starts_with("/cdn/") {
            assert_eq!(
                r.authorization.as_deref(),
                Some("Bearer secret"),
                "{}",
                r.target
            );
        }
    }

    // $HF_HOME/token (as `echo TOKEN > file` writes it); the cache is then $HF_HOME/hub.
    let hf_home = root.join("hf-home");
    std::fs::create_dir_all(&hf_home).unwrap();
    std::fs::write(hf_home.join("token"), format!("{TOKEN}\n")).unwrap();
    let got = printed_snapshot(&heal(
        root,
        &[endpoint, ("HF_HOME", s(&hf_home))],
        &["model", "fetch", "org/gated"],
    ));
    assert_same_path(&got, &snapshot_of(&hf_home.join("hub"), "org/gated", SHA));
    assert_fetched(&hf_home.join("hub"), "org/gated", &files);

    // HF_TOKEN_PATH, through another command that downloads what it lacks.
    let token_file = root.join("my-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let cache2 = root.join("cache2");
    let out = root.join("corrupted");
    ok(&heal(
        root,
        &[
            endpoint,
            ("HF_HUB_CACHE", s(&cache2)),
            ("HF_TOKEN_PATH", s(&token_file)),
        ],
        &corrupt_args("org/gated", &[], &out),
    ));
    assert_fetched(&cache2, "org/gated", &files);
    assert!(out.join("model.safetensors").is_file());

    // HF_TOKEN before the token file.
    let wrong_home = root.join("wrong-home");
    std::fs::create_dir_all(&wrong_home).unwrap();
    std::fs::write(wrong_home.join("token"), "wrong").unwrap();
    ok(&heal(
        root,
        &[endpoint, ("HF_HOME", s(&wrong_home)), ("HF_TOKEN", TOKEN)],
        &["model", "fetch", "org/gated"],
    ));
    assert_fetched(&wrong_home.join("hub"), "org/gated", &files);
}

#[test]
fn hub_errors_name_the_revision_the_repo_or_hf_token() {
    let hub = MockHub::start();
    publish(&hub, "org/tiny-bert", &tiny_bert_files(), 100, None);
    hub.route(
        "/api/models/org/tiny-bert/revision/no-such-branch",
        Reply::error(
            404,
            Some("RevisionNotFound"),
            "Invalid rev id: no-such-branch",
        ),
        None,
    );
    hub.route(
        "/api/models/org/missing/revision/main",
        Reply::error(404, Some("RepoNotFound"), "Repository not found"),
        None,
    );
    hub.route(
        "/api/models/org/private/revision/main",
        Reply::error(401, Some("RepoNotFound"), "Invalid username or password."),
        None,
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cache = root.join("cache");
    let vars = [
        ("HF_ENDPOINT", hub.base.as_str()),
        ("HF_HUB_CACHE", s(&cache)),
    ];
    let refused = |args: &[&str], must_name: &str| {
        let line = user_error(&heal(root, &vars, args));
        assert!(line.contains(must_name), "{args:?}: {line}");
        assert!(files_under(&cache).is_empty(), "{:?}", files_under(&cache));
    };

    refused(
        &[
            "model",
            "fetch",
            "org/tiny-bert",
            "--revision",
            "no-such-branch",
        ],
        "no-such-branch",
    );
    refused(&["model", "fetch", "org/missing"], "org/missing");
    // A plain 404, no error code.
    refused(&["model", "fetch", "org/nowhere"], "org/nowhere");
    // 401: private or absent, a token may help.
    refused(&["model", "fetch", "org/private"], "HF_TOKEN");
}

#[test]
fn damaged_short_or_cut_downloads_leave_nothing_that_looks_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let weights = |files: &[RepoFile]| -> usize {
        files
            .iter()
            .position(|f| f.path == "model.safetensors")
            .unwrap()
    };

    // One flipped byte in the weights: same size, another sha256.
    let hub = MockHub::start();
    let mut files = tiny_bert_files();
    let i = weights(&files);
    let mut bad = files[i].bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    files[i].served = Some(bad);
    publish(&hub, "org/tiny-bert", &files, 3, None);
    let cache = root.join("flipped");
    let online = [
        ("HF_ENDPOINT", hub.base.as_str()),
        ("HF_HUB_CACHE", s(&cache)),
    ];
    let line = user_error(&heal(root, &online, &["model", "fetch", "org/tiny-bert"]));
    assert!(line.contains("model.safetensors"), "{line}");
    assert_nothing_complete_of(&cache, "org/tiny-bert", &files[i]);
    // Whatever else arrived, the snapshot is not usable offline.
    let offline = [("HF_HUB_CACHE", s(&cache)), ("HF_HUB_OFFLINE", "1")];
    let out = root.join("corrupted");
    let args = corrupt_args("org/tiny-bert", &[], &out);
    let line = user_error(&heal(root, &offline, &args));
    assert!(line.contains("HF_HUB_OFFLINE"), "{line}");
    // Once the hub serves the right bytes, the same cache completes.
    let files = tiny_bert_files();
    publish(&hub, "org/tiny-bert", &files, 3, None);
    let got = printed_snapshot(&heal(root, &online, &["model", "fetch", "org/tiny-bert"]));
    assert_same_path(&got, &snapshot_of(&cache, "org/tiny-bert", SHA));
    let repo = repo_dir(&cache, "org/tiny-bert");
    for p in NEEDED {
        assert_eq!(
            std::fs::read(repo.join("snapshots").join(SHA).join(p)).unwrap(),
            file(&files, p).bytes
        );
        assert_eq!(
            std::fs::read_link(repo.join("snapshots").join(SHA).join(p)).unwrap(),
            Path::new("../../blobs").join(file(&files, p).etag())
        );
    }

    // The weights cut short, with a Content-Length that says so: fewer bytes than listed.
    let hub = MockHub::start();
    let mut files = tiny_bert_files();
    let i = weights(&files);
    files[i].served = Some(files[i].bytes[..files[i].bytes.len() - 100].to_vec());
    publish(&hub, "org/tiny-bert", &files, 3, None);
    let cache = root.join("short");
    let vars = [
        ("HF_ENDPOINT", hub.base.as_str()),
        ("HF_HUB_CACHE", s(&cache)),
    ];
    let line = user_error(&heal(root, &vars, &["model", "fetch", "org/tiny-bert"]));
    assert!(line.contains("model.safetensors"), "{line}");
    assert_nothing_complete_of(&cache, "org/tiny-bert", &files[i]);

    // A plain git file (checked by its git oid) with a flipped byte.
    let hub = MockHub::start();
    let mut files = tiny_bert_files();
    let v = files.iter().position(|f| f.path == "vocab.txt").unwrap();
    let mut bad = files[v].bytes.clone();
    bad[0] ^= 0x20;
    files[v].served = Some(bad);
    publish(&hub, "org/tiny-bert", &files, 3, None);
    let cache = root.join("vocab");
    let vars = [
        ("HF_ENDPOINT", hub.base.as_str()),
        ("HF_HUB_CACHE", s(&cache)),
    ];
    let line = user_error(&heal(root, &vars, &["model", "fetch", "org/tiny-bert"]));
    assert!(line.contains("vocab.txt"), "{line}");
    assert_nothing_complete_of(&cache, "org/tiny-bert", &files[v]);

    // The connection closes mid-download (a Content-Length of the full size, half the bytes):
    // a failure, whatever its exit code, and nothing that looks complete.
    let hub = MockHub::start();
    let mut files = tiny_bert_files();
    let i = weights(&files);
    let n = files[i].bytes.len();
    files[i].served = Some(files[i].bytes[..n / 2].to_vec());
    files[i].declared_len = Some(n);
    publish(&hub, "org/tiny-bert", &files, 3, None);
    let cache = root.join("cut");
    let vars = [
        ("HF_ENDPOINT", hub.base.as_str()),
        ("HF_HUB_CACHE", s(&cache)),
    ];
    let out = heal(root, &vars, &["model", "fetch", "org/tiny-bert"]);
    assert!(!out.status.success(), "a cut download succeeded");
    assert!(!out.stderr.is_empty());
    assert_nothing_complete_of(&cache, "org/tiny-bert", &files[i]);
}
