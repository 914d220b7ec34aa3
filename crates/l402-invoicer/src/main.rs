//! `l402-invoicer`: the invoice service binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use l402_invoicer::config::Config;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    version,
    about = "L402 invoice service: creates lnd invoices and mints L402 challenges"
)]
struct Args {
    /// The TOML configuration file.
    #[arg(long, env = "L402_INVOICER_CONFIG")]
    config: PathBuf,
    /// Validate the configuration (files and secrets included) and exit.
    #[arg(long)]
    check: bool,
    /// Log format; the level comes from RUST_LOG (default `info`).
    #[arg(long, value_enum, default_value = "text", env = "L402_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }

    let config = match Config::load(&args.config, &|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        println!(
            "configuration OK: services {:?}, minting with key {}",
            config.catalog.names().collect::<Vec<_>>(),
            config.minting.key_id
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(l402_invoicer::serve::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
