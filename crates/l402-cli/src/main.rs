//! `l402`: mint, decode, attenuate and verify L402 tokens from the command line, and revoke them
//! through the invoice service.
//!
//! Other tools and tests drive this interface; keep it stable. Exit codes: 0 success (or a valid
//! token), 1 bad input (or an invalid token), 2 bad usage.

mod args;
mod commands;
mod output;
mod revoke;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("l402: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
