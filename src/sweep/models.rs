//! A grid's cells checked against their models before any cell runs: each model's config.json
//! (read once, no weights loaded) must parse, and each cell's corruption spec and `--train`
//! layers must select layers that model has (`layers:9` on a 6-layer model), with the same
//! resolution the run itself uses. A model whose config.json is neither a local folder, the
//! embedded one nor in the HF cache is not checked here (nothing is downloaded to plan).

use super::Cell;
use crate::error::user;
use crate::model::config::EncoderConfig;
use crate::train::trainable::TrainMode;
use std::collections::HashMap;
use std::path::Path;

/// Checks every cell against its model's config.json; the first misfit is a UserError naming
/// the grid file, the cell and the setting.
pub(super) fn check(cells: &[Cell], grid_path: &Path) -> anyhow::Result<()> {
    let mut models: HashMap<(String, Option<String>), Option<EncoderConfig>> = HashMap::new();
    for cell in cells {
        let cfg = &cell.config;
        let key = (cfg.model.clone(), cfg.revision.clone());
        if !models.contains_key(&key) {
            let config = crate::hub::model::local_config(&cfg.model, cfg.revision.as_deref())
                .map(|path| EncoderConfig::from_file(&path))
                .transpose()
                .map_err(|e| {
                    user(format!(
                        "{}: cell {}: model {}: {e:#}",
                        grid_path.display(),
                        cell.name,
                        cfg.model
                    ))
                })?;
            models.insert(key.clone(), config);
        }
        let Some(model) = models.get(&key).and_then(Option::as_ref) else {
            continue;
        };
        let misfit = |setting: String, e: anyhow::Error| {
            user(format!(
                "{}: cell {}: {setting}: {e:#} (model {})",
                grid_path.display(),
                cell.name,
                cfg.model
            ))
        };
        crate::corrupt::selection(&cfg.corruption(), model)
            .map_err(|e| misfit(format!("corrupt = \"{}\"", cfg.corrupt), e))?;
        if let TrainMode::Layers(spec) = &cfg.train {
            spec.resolve(model.num_layers as usize)
                .map_err(|e| misfit(format!("train = \"{}\"", cfg.train), e))?;
        }
    }
    Ok(())
}
