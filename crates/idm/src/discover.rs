//! `idm discover` and `idm jwks`.

use std::process::ExitCode;

use clap::Args as ClapArgs;
use identity_model::KeySet;
use serde_json::{Value, json};

use crate::remote::{authority, block_on, print_error};

#[derive(Debug, ClapArgs)]
pub(crate) struct DiscoverArgs {
    /// The issuer URL.
    issuer: String,
    /// Allow http:// on loopback hosts (development).
    #[arg(long)]
    allow_http: bool,
}

#[derive(Debug, ClapArgs)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["issuer", "jwks_uri"]))]
pub(crate) struct JwksArgs {
    /// The issuer URL (keys found through discovery).
    issuer: Option<String>,
    /// Fetch this key set URL directly instead.
    #[arg(long)]
    jwks_uri: Option<String>,
    /// Allow http:// on loopback hosts (development).
    #[arg(long)]
    allow_http: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run_discover(args: DiscoverArgs) -> ExitCode {
    let config = match crate::remote::config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    // No rules: this authority only fetches (it validates no token).
    let authority = match identity_model::Authority::builder(&args.issuer)
        .policy(crate::remote::policy(args.allow_http))
        .settings(config)
        .build()
    {
        Ok(a) => a,
        Err(e) => return print_error(&e),
    };
    match block_on(authority.discover()) {
        Err(code) => code,
        Ok(Err(e)) => print_error(&e),
        Ok(Ok(document)) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&Value::Object(document.members().clone())).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
    }
}

pub(crate) fn run_jwks(args: JwksArgs) -> ExitCode {
    let issuer = args.issuer.clone().unwrap_or_else(|| args.jwks_uri.clone().unwrap_or_default());
    let config = match crate::remote::config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let authority = match authority(&issuer, args.allow_http, config) {
        Ok(a) => a,
        Err(e) => return print_error(&e),
    };
    let fetched = block_on(async {
        match &args.jwks_uri {
            Some(url) => authority.fetch_key_set(url).await.map(std::sync::Arc::new),
            None => authority.keys().await,
        }
    });
    let keys = match fetched {
        Err(code) => return code,
        // A diagnostic command: the provider's own reason, not the validation wrapper.
        Ok(Err(e)) => return print_error(crate::remote::reason(&e)),
        Ok(Ok(keys)) => keys,
    };
    print_keys(&keys, args.json);
    ExitCode::SUCCESS
}

fn print_keys(keys: &KeySet, as_json: bool) {
    let rows: Vec<Value> = keys
        .keys()
        .iter()
        .map(|k| {
            json!({
                "kid": k.kid(),
                "kty": k.kty().as_str(),
                "alg": k.declared_alg().map(|a| a.as_str()),
                "use": k.key_use(),
                "thumbprint": k.thumbprint(),
            })
        })
        .collect();
    let rejected: Vec<Value> = keys
        .rejected()
        .iter()
        .map(|r| json!({"index": r.index, "kid": r.kid, "kty": r.kty, "reason": r.reason}))
        .collect();
    if as_json {
        println!("{}", json!({"keys": rows, "rejected": rejected}));
        return;
    }
    println!("{:<44} {:<4} {:<8} {:<4} thumbprint", "kid", "kty", "alg", "use");
    for k in keys.keys() {
        println!(
            "{:<44} {:<4} {:<8} {:<4} {}",
            k.kid().unwrap_or("-"),
            k.kty().as_str(),
            k.declared_alg().map_or("-", |a| a.as_str()),
            k.key_use().unwrap_or("-"),
            k.thumbprint()
        );
    }
    for r in keys.rejected() {
        println!("set aside: key #{} (kid {}): {}", r.index, r.kid.as_deref().unwrap_or("-"), r.reason);
    }
}
