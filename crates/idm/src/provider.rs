//! `idm provider`: the test provider as a development server.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args as ClapArgs;
use identity_model_testkit::{AuthMethod, Endpoint, ProviderConfig, TestProvider, TokenFormat};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 9400)]
    port: u16,
    /// A JSON configuration: clients, resources, users, algorithms, keys_file, lifetimes
    /// (see crates/identity-model-testkit/src/config.rs; absent fields keep their defaults).
    #[arg(long)]
    config: Option<PathBuf>,
}

fn load(path: Option<&PathBuf>) -> Result<ProviderConfig, String> {
    match path {
        None => Ok(ProviderConfig::default()),
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            ProviderConfig::from_json(&bytes)
        }
    }
}

pub(crate) fn run(args: Args) -> ExitCode {
    let config = match load(args.config.as_ref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("idm: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match identity_model::new_runtime(2) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("idm: {}", e.message());
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let provider = match TestProvider::builder().config(config).port(args.port).start().await {
            Ok(provider) => provider,
            Err(e) => {
                eprintln!("idm: cannot start the provider: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Listen for SIGINT/SIGTERM before the banner says we are up: a stop sent right after
        // it must be a clean stop, not the default action.
        let stop = Stop::listen();
        print!("{}", banner(&provider));
        let _ = std::io::Write::flush(&mut std::io::stdout());
        stop.wait().await;
        provider.shutdown();
        eprintln!("idm: provider stopped");
        ExitCode::SUCCESS
    })
}

/// SIGINT and SIGTERM, listened for from the moment this is made.
pub(crate) struct Stop {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Stop {
    pub(crate) fn listen() -> Stop {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::interrupt()).ok().zip(signal(SignalKind::terminate()).ok());
            Stop { signals }
        }
        #[cfg(not(unix))]
        Stop {}
    }

    pub(crate) async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut interrupt, mut terminate)) = self.signals {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn banner(provider: &TestProvider) -> String {
    use std::fmt::Write as _;
    let issuer = provider.issuer();
    let config = provider.config();
    let mut out = String::new();
    let _ =
        writeln!(out, "identity-model test provider (development only: keys and secrets are not protected)");
    let _ = writeln!(out, "issuer     {issuer}");
    let _ = writeln!(out, "discovery  {}", provider.url(Endpoint::Discovery));
    let _ = writeln!(out, "keys       {} ({})", provider.url(Endpoint::Jwks), provider.active_kids().len());
    let _ = writeln!(out, "clients");
    for client in &config.clients {
        let auth: Vec<&str> = client.auth_methods.iter().map(|m| m.as_str()).collect();
        let secret = match (&client.secret, client.auth_methods.contains(&AuthMethod::None)) {
            (Some(secret), _) => format!("secret {secret}"),
            (None, true) => "public".to_owned(),
            (None, false) => "keys".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {:<14} {secret}; auth {}; grants {}; scopes {}",
            client.id,
            auth.join(", "),
            client.grant_types.join(", "),
            client.scopes.join(" ")
        );
    }
    let _ = writeln!(out, "resources");
    for resource in &config.resources {
        let format = match resource.format {
            TokenFormat::Jwt => "at+jwt",
            TokenFormat::Opaque => "opaque",
        };
        let _ = writeln!(out, "  {:<24} {format}", resource.id);
    }
    let users: Vec<&str> = config.users.iter().map(|u| u.sub.as_str()).collect();
    let _ = writeln!(out, "users      {} (the first signs in automatically)", users.join(", "));
    let service = config.clients.iter().find(|c| c.secret.is_some());
    if let Some(client) = service {
        let secret = client.secret.as_deref().unwrap_or_default();
        let audience = provider.default_audience();
        let _ = writeln!(out, "try");
        let _ = writeln!(
            out,
            "  TOKEN=$(curl -s -u {}:{secret} -d grant_type=client_credentials {} | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')",
            client.id,
            provider.url(Endpoint::Token)
        );
        let _ =
            writeln!(out, "  idm validate \"$TOKEN\" --issuer {issuer} --allow-http --audience {audience}");
        let _ = writeln!(out, "  idm discover {issuer} --allow-http");
        let _ = writeln!(out, "  idm jwks {issuer} --allow-http");
    }
    let _ = writeln!(out, "Ctrl-C stops.");
    out
}
