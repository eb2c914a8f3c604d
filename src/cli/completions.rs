//! `heal completions SHELL`: the shell's completion script for heal, on stdout.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Args, Debug)]
#[command(after_help = "Examples (then open a new shell):
  heal completions bash > ~/.local/share/bash-completion/completions/heal
  heal completions zsh > ~/.zfunc/_heal     # with fpath+=(~/.zfunc); autoload -U compinit; compinit in ~/.zshrc
  heal completions fish > ~/.config/fish/completions/heal.fish
  heal completions powershell >> $PROFILE
  source <(heal completions bash)           # this bash session only")]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut command = super::Cli::command();
    clap_complete::generate(args.shell, &mut command, "heal", &mut std::io::stdout());
    Ok(())
}
