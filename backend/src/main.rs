//! `claimlink-backend serve [--config FILE]`: the reference backend's one binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// claimlink's reference app backend.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and the HTTP pre-provisioning hook. With no configuration: SQLite in
    /// ./claimlink-backend.db, 127.0.0.1:8080.
    Serve {
        /// A TOML configuration file (docs/backend.md); also `CLAIMLINK_CONFIG`.
        #[arg(long, env = "CLAIMLINK_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Started by AWS Lambda as the function's `bootstrap`, with no arguments: the pre-provisioning
    // hook or the HTTP API, as CLAIMLINK_LAMBDA says (src/lambda, backend/deploy/template.yaml).
    match claimlink_backend::lambda::LambdaFunction::from_env(|k| std::env::var(k).ok()) {
        Ok(None) => {}
        Ok(Some(function)) => {
            if let Err(e) = claimlink_backend::lambda::run(function).await {
                eprintln!("claimlink-backend on AWS Lambda: {e}");
                return ExitCode::FAILURE;
            }
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("claimlink-backend: {e}");
            return ExitCode::FAILURE;
        }
    }
    let Cli { command } = Cli::parse();
    let Command::Serve { config } = command;
    let result = async {
        let config = claimlink_backend::Config::load(config.as_deref())?;
        let database = describe_database(&config.database_url);
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let state = claimlink_backend::AppState::new(config).await?;
        claimlink_backend::serve(state, |addr| {
            // The one line a script waits for: where the service listens and keeps its records.
            println!("claimlink-backend listening on {scheme}://{addr}, records in {database}");
        })
        .await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("claimlink-backend: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where the records are, without a password: the SQLite file's absolute path, or the PostgreSQL host.
fn describe_database(url: &str) -> String {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        let absolute = std::env::current_dir()
            .map(|d| d.join(path).display().to_string())
            .unwrap_or_else(|_| path.to_owned());
        return format!("SQLite file {absolute}");
    }
    match url::Url::parse(url) {
        Ok(u) => format!(
            "PostgreSQL at {}:{}{}",
            u.host_str().unwrap_or("?"),
            u.port().unwrap_or(5432),
            u.path()
        ),
        Err(_) => "the configured database".to_owned(),
    }
}
