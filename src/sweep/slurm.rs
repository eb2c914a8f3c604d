//! The sbatch job-array script: one array task per cell, each `heal sweep --cell I`.

use super::Plan;
use std::path::{Path, PathBuf};

/// Settings of the generated sbatch script.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: String,
    pub cpus: u32,
    pub mem: String,
    pub gpus: u32,
    pub job_name: String,
}

/// An sbatch job-array script: one array task per cell, each `heal sweep --cell I`.
pub fn sbatch_script(
    plan: &Plan,
    sweep_dir: &Path,
    heal: &Path,
    opts: &SlurmOptions,
) -> anyhow::Result<String> {
    let abs = |p: &Path| -> anyhow::Result<PathBuf> {
        Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()?.join(p)
        })
    };
    let sweep = abs(sweep_dir)?;
    let cwd = std::env::current_dir()?;
    let mut s = String::new();
    s.push_str("#!/bin/bash\n");
    s.push_str(&format!(
        "# heal sweep: {} cells of {}, one array task per cell.\n# Submit: sbatch {}\n# Then: heal report {}\n",
        plan.cells.len(),
        plan.grid.display(),
        sweep.join("sweep.sbatch").display(),
        sweep.display()
    ));
    s.push_str(&format!("#SBATCH --job-name={}\n", opts.job_name));
    s.push_str(&format!(
        "#SBATCH --array=0-{}\n",
        plan.cells.len().saturating_sub(1)
    ));
    s.push_str(&format!(
        "#SBATCH --output={}/logs/%A_%a.out\n",
        sweep.display()
    ));
    if let Some(p) = &opts.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    s.push_str(&format!("#SBATCH --time={}\n", opts.time));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", opts.cpus));
    s.push_str(&format!("#SBATCH --mem={}\n", opts.mem));
    if opts.gpus > 0 {
        s.push_str(&format!("#SBATCH --gres=gpu:{}\n", opts.gpus));
    }
    s.push_str("set -euo pipefail\n");
    s.push_str(&format!("cd {}\n", shell_quote(&cwd.display().to_string())));
    s.push_str(&format!(
        "export OMP_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-{}}}\n",
        opts.cpus
    ));
    s.push_str(&format!(
        "exec {} sweep --out {} --cell \"$SLURM_ARRAY_TASK_ID\" --threads \"$OMP_NUM_THREADS\"\n",
        shell_quote(&abs(heal)?.display().to_string()),
        shell_quote(&sweep.display().to_string())
    ));
    Ok(s)
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
