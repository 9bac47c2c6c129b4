//! mender-compose-upgrade: parse, run one verb, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use mender_compose_upgrade::cli::{self, Cli};
use mender_compose_upgrade::exit::{Exit, Failure};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { Exit::Usage.into() } else { Exit::Ok.into() };
        }
    };
    init_tracing(&cli.global);
    let json = cli.global.json;
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Unexpected.into();
        }
    };
    match rt.block_on(cli::run(cli)) {
        Ok(exit) => exit.into(),
        Err(e) => match e.downcast_ref::<Failure>() {
            Some(f) => {
                if json {
                    println!("{}", f.json());
                }
                eprint!("{}", f.render());
                f.exit.into()
            }
            None => {
                eprintln!("error: {e:#}");
                Exit::Unexpected.into()
            }
        },
    }
}

fn init_tracing(g: &cli::Global) {
    let level = if g.quiet {
        "error"
    } else {
        match g.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MENDER_COMPOSE_UPGRADE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("mender_compose_upgrade={level}")));
    let ansi = !g.no_color && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}
