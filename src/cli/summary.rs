//! The one-screen summary printed at the end of a run.

use heal::run_dir::Status;
use heal::train::{FinetuneConfig, RunOutcome};

pub fn print(cfg: &FinetuneConfig, outcome: &RunOutcome) {
    println!();
    println!(
        "{} on {} ({} epoch{}, lr {:e}, batch {}, max-len {})",
        cfg.model,
        cfg.data,
        cfg.epochs,
        if cfg.epochs == 1 { "" } else { "s" },
        cfg.lr,
        cfg.batch_size,
        outcome.max_len
    );
    println!(
        "{:>5}  {:>10}  {:>9}  {:>8}  {:>8}  {:>8}  {:>7}",
        "epoch", "train loss", "eval loss", "accuracy", "F1 (w)", "F1 (m)", "seconds"
    );
    for e in &outcome.epochs {
        let mark = if e.epoch == outcome.result.best_epoch {
            " *"
        } else {
            ""
        };
        println!(
            "{:>5}  {:>10.4}  {:>9.4}  {:>8.4}  {:>8.4}  {:>8.4}  {:>7.1}{mark}",
            e.epoch,
            e.train_loss,
            e.eval_loss,
            e.accuracy,
            e.f1_weighted,
            e.f1_macro,
            e.train_seconds + e.eval_seconds
        );
    }
    let r = &outcome.result;
    match (r.status, &r.best) {
        (Status::Ok, Some(b)) => println!(
            "best epoch {}: weighted F1 {:.4}, accuracy {:.4} on {} examples",
            r.best_epoch, b.f1_weighted, b.accuracy, r.eval_examples
        ),
        (status, _) => println!("status {status:?}: {}", r.reason),
    }
    println!("run directory: {}", outcome.run_dir.display());
}
