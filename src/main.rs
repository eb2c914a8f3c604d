use clap::Parser;

fn main() {
    let cli = heal::cli::Cli::parse();
    heal::cli::init_logging(cli.verbose);
    if let Err(err) = heal::cli::run(cli) {
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
