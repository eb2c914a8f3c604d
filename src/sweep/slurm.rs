//! The sbatch job-array script: one array task per cell, each `heal sweep --cell I`.

use super::Plan;
use crate::error::user;
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

impl SlurmOptions {
    /// Refuses what sbatch would reject only once the array is submitted (or, worse, read as
    /// another directive: a newline in a name), so that nothing is written for it.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.cpus == 0 {
            return Err(user("--cpus 0: a cell needs at least 1 CPU"));
        }
        if !is_slurm_time(&self.time) {
            return Err(user(format!(
                "--time {:?}: not a Slurm time limit; give MINUTES, HH:MM:SS, D-HH or D-HH:MM:SS (e.g. 02:00:00)",
                self.time
            )));
        }
        let digits = self.mem.trim_end_matches(['K', 'M', 'G', 'T']);
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || self.mem.len() - digits.len() > 1
        {
            return Err(user(format!(
                "--mem {:?}: give a whole number with an optional K, M, G or T suffix (e.g. 16G)",
                self.mem
            )));
        }
        for (flag, value) in [
            ("--job-name", Some(&self.job_name)),
            ("--partition", self.partition.as_ref()),
        ] {
            if let Some(v) = value {
                if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(user(format!("{flag} {v:?}: give a name without spaces")));
                }
            }
        }
        Ok(())
    }
}

/// Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (each part digits), or
/// "infinite"/"unlimited".
fn is_slurm_time(t: &str) -> bool {
    if t == "infinite" || t == "unlimited" {
        return true;
    }
    let number = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, t),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let parts_ok = parts.iter().all(|p| number(p));
    match days {
        Some(d) => number(d) && parts_ok && (1..=3).contains(&parts.len()),
        None => parts_ok && (1..=3).contains(&parts.len()),
    }
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

#[cfg(test)]
mod tests {
    use super::is_slurm_time;

    #[test]
    fn slurm_time_formats() {
        for ok in [
            "30",
            "30:00",
            "02:00:00",
            "1-0",
            "1-12:00",
            "2-00:30:00",
            "infinite",
        ] {
            assert!(is_slurm_time(ok), "{ok}");
        }
        for bad in [
            "",
            "soon",
            "1h",
            "1-",
            "-1",
            "1:2:3:4",
            "1-2:3:4:5",
            "02:00:xx",
        ] {
            assert!(!is_slurm_time(bad), "{bad}");
        }
    }
}
