//! Reading HF checkpoint folders into a var store and writing HF-compatible folders back.

use super::config::Family;
use super::head::Head;
use crate::error::user;
use crate::fsio;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

/// The files a checkpoint folder must hold, found or explained.
#[derive(Debug, Clone)]
pub struct CheckpointFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    /// model.safetensors, the shards of model.safetensors.index.json, or pytorch_model.bin.
    pub weights: Vec<PathBuf>,
}

impl CheckpointFiles {
    pub fn locate(dir: &Path) -> anyhow::Result<Self> {
        if !dir.is_dir() {
            return Err(user(format!(
                "{}: model folder not found: give an HF checkpoint folder (config.json + model.safetensors) or the name minilm-l6",
                dir.display()
            )));
        }
        let config = dir.join("config.json");
        if !config.is_file() {
            return Err(user(format!(
                "{}: no config.json in the model folder",
                dir.display()
            )));
        }
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let bin = dir.join("pytorch_model.bin");
        let weights = if single.is_file() {
            vec![single]
        } else if index.is_file() {
            shards(&index)?
        } else if bin.is_file() {
            vec![bin]
        } else {
            return Err(user(format!(
                "{}: no weights: expected model.safetensors, model.safetensors.index.json or pytorch_model.bin",
                dir.display()
            )));
        };
        Ok(CheckpointFiles {
            dir: dir.to_path_buf(),
            config,
            weights,
        })
    }
}

fn shards(index: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index)?;
    let json: serde_json::Value = serde_json::from_str(crate::bom::strip(&text))
        .map_err(|e| user(format!("{}: not valid JSON ({e})", index.display())))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| user(format!("{}: no \"weight_map\" object", index.display())))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = map
        .values()
        .filter_map(|v| v.as_str())
        .map(|f| dir.join(f))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Reads every tensor of the checkpoint to the CPU, names normalised to the
/// *ForSequenceClassification layout of `family` (encoder tensors under `bert.` etc.).
pub fn read_tensors(
    files: &CheckpointFiles,
    family: Family,
) -> anyhow::Result<HashMap<String, Tensor>> {
    Ok(read_raw_tensors(files)?
        .into_iter()
        .map(|(name, t)| (normalise_name(&name, family), t))
        .collect())
}

/// `encoder.layer.0...` -> `bert.encoder.layer.0...`; old `LayerNorm.gamma/beta` -> `weight/bias`.
pub fn normalise_name(name: &str, family: Family) -> String {
    let prefix = family.prefix();
    let bare_roots = ["embeddings.", "encoder.", "pooler.", "transformer."];
    let mut name = if bare_roots.iter().any(|r| name.starts_with(r)) {
        format!("{prefix}.{name}")
    } else {
        name.to_string()
    };
    if name.ends_with(".gamma") {
        name = format!("{}.weight", name.trim_end_matches(".gamma"));
    } else if name.ends_with(".beta") {
        name = format!("{}.bias", name.trim_end_matches(".beta"));
    }
    name
}

/// What loading did with each tensor.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LoadReport {
    pub loaded: usize,
    /// Head tensors that the checkpoint lacked (or had for another label count): freshly drawn.
    pub initialised: Vec<String>,
    /// Checkpoint tensors with no place in the model (MLM heads, position_ids, ...).
    pub ignored: Vec<String>,
}

/// Copies checkpoint tensors into the var store's variables (same names).
pub fn load_into(
    vs: &nn::VarStore,
    tensors: &HashMap<String, Tensor>,
    family: Family,
    source: &Path,
) -> anyhow::Result<LoadReport> {
    let mut report = LoadReport::default();
    let head_prefixes = Head::tensor_prefixes(family);
    let variables = vs.variables();
    let mut names: Vec<&String> = variables.keys().collect();
    names.sort();
    tch::no_grad(|| -> anyhow::Result<()> {
        for name in names {
            let mut var = variables[name].shallow_clone();
            let is_head = head_prefixes.iter().any(|p| name.starts_with(p));
            match tensors.get(name) {
                Some(src) if src.size() == var.size() => {
                    // An integer tensor where a weight belongs is a broken or quantised file:
                    // converting it would train on its truncated values without a word.
                    if !matches!(
                        src.kind(),
                        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
                    ) {
                        return Err(user(format!(
                            "{}: tensor {name} is stored as {:?}, not a floating-point type: give an unquantised float checkpoint",
                            source.display(),
                            src.kind()
                        )));
                    }
                    var.copy_(&src.to_kind(Kind::Float));
                    report.loaded += 1;
                }
                Some(_) | None if is_head => report.initialised.push(name.clone()),
                Some(src) => {
                    return Err(user(format!(
                        "{}: tensor {name} has shape {:?}, but config.json implies {:?}",
                        source.display(),
                        src.size(),
                        var.size()
                    )))
                }
                None => {
                    return Err(user(format!(
                        "{}: tensor {name} is missing: is this really a {} checkpoint?",
                        source.display(),
                        family.prefix()
                    )))
                }
            }
        }
        Ok(())
    })?;
    let mut ignored: Vec<String> = tensors
        .keys()
        .filter(|k| !variables.contains_key(*k))
        .cloned()
        .collect();
    ignored.sort();
    report.ignored = ignored;
    Ok(report)
}

/// Writes the var store as an HF-compatible `model.safetensors` (metadata format=pt).
pub fn write_safetensors(vs: &nn::VarStore, path: &Path) -> anyhow::Result<()> {
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    write_named_safetensors(&named, path)
}

fn safetensors_dtype(kind: Kind) -> anyhow::Result<safetensors::Dtype> {
    use safetensors::Dtype;
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Int16 => Dtype::I16,
        Kind::Int8 => Dtype::I8,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        other => anyhow::bail!("cannot store a {other:?} tensor in safetensors"),
    })
}

/// Writes named tensors, each in its own dtype, as safetensors with metadata format=pt.
pub fn write_named_safetensors(named: &[(String, Tensor)], path: &Path) -> anyhow::Result<()> {
    write_named_safetensors_with(named, path, HashMap::new())
}

/// As [`write_named_safetensors`], with more metadata entries.
pub fn write_named_safetensors_with(
    named: &[(String, Tensor)],
    path: &Path,
    mut metadata: HashMap<String, String>,
) -> anyhow::Result<()> {
    let mut buffers: BTreeMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (name, tensor) in named {
        let t = tensor.detach().to_device(Device::Cpu).contiguous();
        let kind = t.kind();
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let numel: usize = shape.iter().product();
        let mut bytes = vec![0u8; numel * kind.elt_size_in_bytes()];
        t.copy_data_u8(&mut bytes, numel);
        buffers.insert(name.clone(), (safetensors_dtype(kind)?, shape, bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, (dtype, shape, bytes))| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("safetensors view: {e:?}"))?;
    metadata.insert("format".to_string(), "pt".to_string());
    let bytes = safetensors::tensor::serialize(views, &Some(metadata))
        .map_err(|e| anyhow::anyhow!("safetensors serialise: {e:?}"))?;
    // write_atomic's error names the path already.
    fsio::write_atomic(path, &bytes)
}

/// Every tensor of a checkpoint with its name as stored (not normalised).
pub fn read_raw_tensors(files: &CheckpointFiles) -> anyhow::Result<Vec<(String, Tensor)>> {
    let mut out = Vec::new();
    for file in &files.weights {
        let named = match file.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => Tensor::read_safetensors(file),
            _ => Tensor::loadz_multi_with_device(file, Device::Cpu),
        }
        .map_err(|e| unreadable_weights(file, &e.to_string()))?;
        out.extend(named);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// One line for weights libtorch cannot read (its message runs to a C++ backtrace). Its
/// unpickler reads a `pytorch_model.bin` holding a plain dict (transformers 4.18 and later) but
/// turns an OrderedDict (`torch.save(model.state_dict())`, older transformers) into None.
fn unreadable_weights(file: &Path, libtorch: &str) -> anyhow::Error {
    let first = crate::torch_error::first_line(libtorch).trim();
    let why = if first.contains("Expected GenericDict but got None") {
        "it holds an OrderedDict (torch.save(model.state_dict())), which libtorch cannot read: re-save it with transformers' save_pretrained (safetensors)".to_string()
    } else {
        first.to_string()
    };
    user(format!(
        "{}: cannot read the weights ({why})",
        file.display()
    ))
}

/// Tokenizer files copied next to a saved checkpoint, when the source has them.
pub const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_weights_file_is_one_line() {
        // Found by tests/fuzz_safetensors.rs: a dimension past 2^63 (in a tensor of no
        // elements, which the safetensors header check lets through) made libtorch's error,
        // backtrace and all, the message.
        let dir = tempfile::tempdir().unwrap();
        let header =
            r#"{"w":{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        let path = dir.path().join("model.safetensors");
        std::fs::write(&path, bytes).unwrap();
        let files = CheckpointFiles {
            dir: dir.path().to_path_buf(),
            config: dir.path().join("config.json"),
            weights: vec![path],
        };
        let err = read_raw_tensors(&files).unwrap_err();
        let msg = crate::error::find_user_error(&err).unwrap().to_string();
        assert!(
            !msg.contains('\n') && msg.contains("cannot read the weights"),
            "{msg}"
        );
    }
}
