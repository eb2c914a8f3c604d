//! libtorch's errors as one line. tch reports a failing libtorch call by panicking (its
//! non-`f_` functions unwrap) or by an error whose text carries libtorch's whole C++ stack
//! trace; either would put kilobytes into a terminal or a result.json's `reason`. This keeps
//! libtorch's own first line ("shape '[2, 5, 4, 8]' is invalid for input of size 320") and
//! drops the rest.

use std::any::Any;
use std::cell::Cell;
use std::sync::Once;

thread_local! {
    /// Inside [`catch`]: the panic hook stays silent (the caught panic becomes an error).
    static CATCHING: Cell<usize> = const { Cell::new(0) };
}

static QUIET_HOOK: Once = Once::new();

/// The text up to its first line break (all of it when it has none).
pub fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim_end()
}

/// The one-line message of a panic's payload: for a tch panic
/// (``called `Result::unwrap()` on an `Err` value: Torch("MESSAGE\nException raised ...")``)
/// libtorch's first line, otherwise the payload's first line.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    one_line(text)
}

/// `text` (an error's or panic's message) cut to libtorch's first line.
pub fn one_line(text: &str) -> String {
    // tch's panic shows the error with Debug, so libtorch's line breaks are the two
    // characters `\n` inside `Torch("...")`.
    let inner = match text.find("Torch(\"") {
        Some(i) => {
            let rest = &text[i + "Torch(\"".len()..];
            let end = [rest.find("\\n"), rest.find("\")")]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(rest.len());
            rest[..end].to_string()
        }
        None => text.to_string(),
    };
    first_line(&inner).to_string()
}

/// Runs `f`; a panic inside it (libtorch's way of failing through tch) becomes an error
/// "libtorch error: FIRST LINE", and the panic hook prints nothing for it.
pub fn catch<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(|c| c.get()) == 0 {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(c.get() + 1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    result.unwrap_or_else(|payload| {
        Err(anyhow::anyhow!(
            "libtorch error: {}",
            panic_message(payload.as_ref())
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_libtorch_first_line() {
        let tch = "called `Result::unwrap()` on an `Err` value: Torch(\"shape '[48, 18, 5, 6]' is invalid for input of size 27648\\nException raised from infer_size_impl at InferSize.h:99\\nframe #0: c10::Error\")";
        assert_eq!(
            one_line(tch),
            "shape '[48, 18, 5, 6]' is invalid for input of size 27648"
        );
        assert_eq!(one_line("Torch(\"short\")"), "short");
        assert_eq!(
            one_line("writing x: Internal torch error: bad\nException raised from"),
            "writing x: Internal torch error: bad"
        );
    }

    #[test]
    fn a_caught_panic_is_one_line() {
        let err = catch::<()>(|| {
            let bad = tch::Tensor::zeros([320], (tch::Kind::Float, tch::Device::Cpu));
            let _ = bad.view([2, 5, 4, 9]);
            Ok(())
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("libtorch error: shape '[2, 5, 4, 9]' is invalid"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        assert_eq!(catch(|| Ok(3)).unwrap(), 3);
    }
}
