//! The accepted range of every fine-tuning option, checked once the options are resolved and
//! before anything is read or written: flags, TOML files, run.json and sweep cells all pass
//! here. A NaN or an infinity is refused everywhere (NaN fails every comparison, so each range
//! below is written so that NaN falls outside it).

use super::config::FinetuneConfig;
use super::options::defaults;
use crate::error::user;

pub(super) fn check(cfg: &FinetuneConfig) -> anyhow::Result<()> {
    let positive = |name: &str, v: usize, example: &str| {
        if v == 0 {
            Err(user(format!(
                "--{name} 0: give a positive number, e.g. {example}"
            )))
        } else {
            Ok(())
        }
    };
    positive("max-len", cfg.max_len, "128")?;
    positive("epochs", cfg.epochs, "3")?;
    positive("batch-size", cfg.batch_size, "32")?;
    positive("eval-batch-size", cfg.eval_batch_size, "64")?;
    positive(
        "gradient-accumulation-steps",
        cfg.gradient_accumulation_steps,
        "4",
    )?;
    positive("log-every", cfg.log_every, "10")?;
    if cfg.max_len < 3 {
        return Err(user(format!(
            "--max-len {}: too short for [CLS] text [SEP]; use at least 3",
            cfg.max_len
        )));
    }
    if !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        return Err(user(format!(
            "--lr {}: give a positive learning rate, e.g. 2e-5",
            cfg.lr
        )));
    }
    if !(0.0..1.0).contains(&cfg.warmup) {
        return Err(user(format!(
            "--warmup {}: give a fraction in [0, 1), e.g. 0.1",
            cfg.warmup
        )));
    }
    if !(cfg.grad_clip >= 0.0 && cfg.grad_clip.is_finite()) {
        return Err(user(format!(
            "--grad-clip {}: give a norm of 0 or more (0 disables clipping), e.g. 1.0",
            cfg.grad_clip
        )));
    }
    if !(cfg.weight_decay >= 0.0 && cfg.weight_decay.is_finite()) {
        return Err(user(format!(
            "--weight-decay {}: give a number of 0 or more, e.g. 0.01",
            cfg.weight_decay
        )));
    }
    for (flag, split) in [
        ("eval-split", cfg.eval_split),
        ("validation-split", cfg.validation_split),
    ] {
        if let Some(f) = split {
            if !(f > 0.0 && f < 1.0) {
                return Err(user(format!(
                    "--{flag} {f}: give a fraction between 0 and 1, e.g. 0.1"
                )));
            }
        }
    }
    if cfg.max_train_examples == Some(0) {
        return Err(user(
            "--max-train-examples 0: give a positive number".to_string(),
        ));
    }
    if cfg.analysis_examples > defaults::MAX_ANALYSIS_EXAMPLES {
        return Err(user(format!(
            "--analysis-examples {}: at most {} (0 turns the artefacts off)",
            cfg.analysis_examples,
            defaults::MAX_ANALYSIS_EXAMPLES
        )));
    }
    if !(cfg.collapse_threshold > 0.0 && cfg.collapse_threshold <= 1.0) {
        return Err(user(format!(
            "--collapse-threshold {}: give a share in (0, 1]",
            cfg.collapse_threshold
        )));
    }
    if let Some(n) = cfg.threads {
        crate::threads::check("--threads", n)?;
    }
    crate::device::parse_device(&cfg.device)?;
    Ok(())
}
