//! The `heal` binary: parses the command line and calls the library (src/cli/ only translates
//! flags into the library's typed configs).

mod cli;

use clap::Parser;

heal::use_jemalloc!();

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(line) = cli::hf_flags::misnamed(&argv) {
        eprintln!("error: {line}");
        std::process::exit(2);
    }
    let args = cli::Cli::parse_from(argv);
    cli::init_logging(args.verbose);
    if let Err(err) = cli::run(args) {
        match heal::error::find_user_error(&err) {
            Some(user) => {
                eprintln!("error: {user}");
                std::process::exit(2);
            }
            None => {
                eprintln!("error: {err:#}");
                std::process::exit(1);
            }
        }
    }
}
