//! mender-standin: one small binary that plays every Mender Server service of the test bed (and
//! the gateway, GUI, OpenSearch and a MinIO front), and builds the test-bed images. Not part of
//! the product: the real services cannot be built or run here (see the README).

mod api;
mod artifacts;
mod backend;
mod front;
mod http;
mod identity;
mod images;
mod rules;
mod samples;
mod seed;

use std::process::ExitCode;

use mender_compose_upgrade::catalog::Role;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mender-standin: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mender-standin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Drops `--config FILE` (the real images' entrypoints pass it).
fn strip_config(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            it.next();
        } else {
            out.push(a);
        }
    }
    out
}

async fn run(args: Vec<String>) -> anyhow::Result<ExitCode> {
    match args.first().map(String::as_str) {
        Some("healthcheck") => {
            http::healthcheck(args.get(1).map_or("http://127.0.0.1:8080/", |s| s.as_str())).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Some("images") => {
            images::run(images::ImagesArgs::parse(&args[1..])?).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Some("seed") => {
            seed::run(seed::SeedArgs::parse(&args[1..])?).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Some("minio") => {
            front::minio(&args[1..]).await?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let resolved = identity::Resolved::load()?;
    let args = strip_config(args);
    let role = async {
        match resolved.role() {
            Role::Gateway => front::gateway(&resolved.facts.image, resolved.id.broken).await.map(|_| ExitCode::SUCCESS),
            Role::Gui => front::gui(identity::gui_port(&resolved.id.release)).await.map(|_| ExitCode::SUCCESS),
            Role::Search => front::opensearch().await.map(|_| ExitCode::SUCCESS),
            _ => backend::run(resolved, &args).await,
        }
    };
    // Like the real services, stop promptly on SIGTERM (PID 1 gets no default handler).
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = role => r,
        _ = term.recv() => Ok(ExitCode::SUCCESS),
        _ = tokio::signal::ctrl_c() => Ok(ExitCode::SUCCESS),
    }
}
