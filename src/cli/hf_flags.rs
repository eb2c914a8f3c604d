//! HF Trainer's flag names, caught before clap parses: clap would suggest the nearest heal flag
//! by spelling (`--num-train-epochs` -> `--max-train-examples`), which teaches the wrong one.
//! An error naming heal's flag, rather than a hidden alias, keeps one spelling per option in
//! commands, TOML files and grids, and does not pretend that the semantics match beyond the
//! example given.

use clap::CommandFactory;
use std::ffi::OsString;

/// An HF name, heal's flag for it, and an example value. `same_value`: the user's own value
/// carries over as it is (a number, a path).
struct Rename {
    hf: &'static str,
    heal: &'static str,
    example: &'static str,
    same_value: bool,
}

const RENAMES: &[Rename] = &[
    rename("num-train-epochs", "epochs", "3", true),
    rename("per-device-train-batch-size", "batch-size", "32", true),
    rename("per-device-eval-batch-size", "eval-batch-size", "64", true),
    rename("learning-rate", "lr", "2e-5", true),
    rename("output-dir", "out", "runs/my-run", true),
    rename("warmup-ratio", "warmup", "0.1", true),
    rename("max-seq-length", "max-len", "128", true),
    rename(
        "model-name-or-path",
        "model",
        "google-bert/bert-base-uncased",
        true,
    ),
    rename("max-grad-norm", "grad-clip", "1.0", true),
    rename("max-train-samples", "max-train-examples", "1000", true),
    rename("train-file", "data", "train.jsonl", true),
    rename("validation-file", "eval-data", "test.jsonl", true),
    rename("dataset-name", "data", "sst2", true),
    rename("optim", "optimizer", "adamw", false),
    rename("bf16", "precision", "bf16", false),
    rename("use-cpu", "device", "cpu", false),
    rename("no-cuda", "device", "cpu", false),
];

const fn rename(
    hf: &'static str,
    heal: &'static str,
    example: &'static str,
    same_value: bool,
) -> Rename {
    Rename {
        hf,
        heal,
        example,
        same_value,
    }
}

/// The error line for the first HF Trainer flag name in `argv` (the program name first) whose
/// heal flag the chosen subcommand has (or any, when no subcommand is named yet); None
/// otherwise, and clap takes over. `--name value`, `--name=value` and `--snake_case` forms.
pub fn misnamed(argv: &[OsString]) -> Option<String> {
    let root = super::Cli::command();
    let mut command = &root;
    let mut named = false;
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for (i, arg) in args.iter().enumerate() {
        if arg == "--" {
            return None;
        }
        let Some(flag) = arg.strip_prefix("--") else {
            if let Some(sub) = command.find_subcommand(arg) {
                command = sub;
                named = true;
            }
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let Some(r) = RENAMES.iter().find(|r| r.hf == name.replace('_', "-")) else {
            continue;
        };
        if named
            && !command
                .get_arguments()
                .any(|a| a.get_long() == Some(r.heal))
        {
            continue;
        }
        let given = inline.or_else(|| args.get(i + 1).filter(|v| !v.starts_with("--")).cloned());
        let value = match given {
            Some(v) if r.same_value && !v.is_empty() => v,
            _ => r.example.to_string(),
        };
        return Some(format!(
            "--{name} is HF Trainer's name: heal's flag is --{heal} (e.g. --{heal} {value})",
            heal = r.heal
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::misnamed;
    use std::ffi::OsString;

    fn check(args: &str) -> Option<String> {
        let argv: Vec<OsString> = std::iter::once("heal")
            .chain(args.split_whitespace())
            .map(OsString::from)
            .collect();
        misnamed(&argv)
    }

    #[test]
    fn hf_names_point_to_heals_flag_with_the_users_value() {
        assert_eq!(
            check("finetune --num-train-epochs 5").as_deref(),
            Some("--num-train-epochs is HF Trainer's name: heal's flag is --epochs (e.g. --epochs 5)")
        );
        assert_eq!(
            check("finetune --learning_rate=3e-5").as_deref(),
            Some("--learning_rate is HF Trainer's name: heal's flag is --lr (e.g. --lr 3e-5)")
        );
        assert_eq!(
            check("-v finetune --bf16 --epochs 1").as_deref(),
            Some("--bf16 is HF Trainer's name: heal's flag is --precision (e.g. --precision bf16)")
        );
        let out = check("sweep --config g.toml --output-dir s").unwrap();
        assert!(
            out.ends_with("heal's flag is --out (e.g. --out s)"),
            "{out}"
        );
    }

    #[test]
    fn other_arguments_are_left_to_clap() {
        assert_eq!(check("finetune --epochs 3 --lr 2e-5"), None);
        // sweep has no --lr: clap's own error is the right one.
        assert_eq!(check("sweep --learning-rate 2e-5"), None);
        assert_eq!(check("finetune -- --num-train-epochs"), None);
    }
}
