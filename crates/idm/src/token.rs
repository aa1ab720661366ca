//! `idm token ...`: get, exchange, introspect, revoke tokens and read userinfo, with endpoints
//! from the issuer's discovery. Exit 0 on success, 1 when the provider (or the network)
//! refuses, 2 on usage errors. Under `--json`, stdout is the provider's JSON object, or the
//! error as `{"error", "error_description", "error_uri", "status"}` (an OAuth error) or
//! `{"error": KIND, "message"}` (anything else).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use identity_model::{
    Algorithm, Authority, Client, ClientAuth, Error, SigningKey, TokenClient, TokenExchange, TokenRequest,
    TokenResponse, token_type,
};
use serde_json::{Map, Value, json};

use crate::remote::block_on;

/// Exit code for a refused request.
const EXIT_REFUSED: u8 = 1;
/// Exit code for a usage error.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Client credentials grant: a token for the client itself.
    ClientCredentials {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Use a refresh token (sent once: rotating refresh tokens are single use).
    Refresh {
        /// The refresh token (`-` reads standard input).
        #[arg(allow_hyphen_values = true)]
        refresh_token: String,
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Token exchange (RFC 8693).
    Exchange {
        /// The subject token (`-` reads standard input).
        #[arg(allow_hyphen_values = true)]
        subject_token: String,
        /// Its type (a URI, or access_token, refresh_token, id_token, jwt, saml1, saml2).
        #[arg(long, default_value = "access_token")]
        subject_token_type: String,
        /// An actor token, for delegation.
        #[arg(long, requires = "actor_token_type")]
        actor_token: Option<String>,
        /// The actor token's type.
        #[arg(long)]
        actor_token_type: Option<String>,
        /// `requested_token_type`.
        #[arg(long)]
        requested_token_type: Option<String>,
        /// `audience` (repeatable).
        #[arg(long)]
        audience: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Device flow (RFC 8628): shows the code and URL, then polls until done.
    Device {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Introspect a token (RFC 7662).
    Introspect {
        /// The token (`-` reads standard input).
        #[arg(allow_hyphen_values = true)]
        token: String,
        /// `token_type_hint` (access_token, refresh_token).
        #[arg(long)]
        hint: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a token (RFC 7009). Exit 0 when the provider accepted the request.
    Revoke {
        /// The token (`-` reads standard input).
        #[arg(allow_hyphen_values = true)]
        token: String,
        /// `token_type_hint` (access_token, refresh_token).
        #[arg(long)]
        hint: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Read the userinfo endpoint with an access token.
    Userinfo {
        /// The access token (`-` reads standard input).
        #[arg(allow_hyphen_values = true)]
        access_token: String,
        /// Refuse the answer unless its `sub` is this (the ID token's `sub`).
        #[arg(long)]
        expected_sub: Option<String>,
        /// The issuer URL (the userinfo endpoint comes from its discovery).
        #[arg(long)]
        issuer: String,
        /// Allow http:// on loopback hosts (development).
        #[arg(long)]
        allow_http: bool,
        /// Print the provider's JSON object (or the error as JSON).
        #[arg(long)]
        json: bool,
    },
}

/// How the client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthMethod {
    /// client_secret_basic (default with a secret).
    Basic,
    /// client_secret_post.
    Post,
    /// client_secret_jwt (HS256; the secret must be at least 32 bytes).
    ClientSecretJwt,
    /// private_key_jwt (default with --key).
    PrivateKeyJwt,
    /// A public client: client_id only (default without a secret or key).
    None,
}

#[derive(Debug, ClapArgs)]
struct ClientArgs {
    /// The issuer URL (endpoints come from its discovery).
    #[arg(long)]
    issuer: String,
    /// Allow http:// on loopback hosts (development).
    #[arg(long)]
    allow_http: bool,
    /// The client id.
    #[arg(long)]
    client_id: String,
    /// The client secret (also read from IDM_CLIENT_SECRET).
    #[arg(long, env = "IDM_CLIENT_SECRET", hide_env_values = true, conflicts_with = "key")]
    client_secret: Option<String>,
    /// A private JWK (or a JWK Set with one key) for private_key_jwt.
    #[arg(long, value_name = "JWK_FILE")]
    key: Option<PathBuf>,
    /// The client authentication method.
    #[arg(long, value_enum)]
    auth: Option<AuthMethod>,
    /// Get DPoP-bound tokens (RFC 9449): every token request carries a proof by this private
    /// JWK (from `idm dpop key`); a demanded nonce is retried once.
    #[arg(long, value_name = "JWK_FILE")]
    dpop_key: Option<PathBuf>,
    /// Print the provider's JSON object (or the error as JSON).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, ClapArgs)]
struct ScopeArgs {
    /// Scopes (repeatable, or space-separated).
    #[arg(long)]
    scope: Vec<String>,
    /// Resource indicators (RFC 8707; repeatable).
    #[arg(long)]
    resource: Vec<String>,
}

impl ScopeArgs {
    fn scopes(&self) -> Vec<String> {
        self.scope.iter().flat_map(|s| s.split(' ')).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    }
}

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("idm: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn load_key(path: &PathBuf) -> Result<SigningKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let jwk = match value.get("keys").and_then(Value::as_array) {
        Some(keys) if keys.len() == 1 => keys[0].clone(),
        Some(_) => return Err(format!("{} has more than one key: give one", path.display())),
        None => value,
    };
    let jwk = jwk.as_object().ok_or_else(|| format!("{} is not a JWK object", path.display()))?;
    let default_alg = identity_model::default_algorithm(jwk);
    SigningKey::from_jwk(jwk, default_alg).map_err(|e| format!("{}: {e}", path.display()))
}

fn client_of(args: &ClientArgs) -> Result<Client, String> {
    let method = args.auth.unwrap_or(match (&args.client_secret, &args.key) {
        (Some(_), _) => AuthMethod::Basic,
        (None, Some(_)) => AuthMethod::PrivateKeyJwt,
        (None, None) => AuthMethod::None,
    });
    let secret = || {
        args.client_secret
            .clone()
            .map(Into::into)
            .ok_or_else(|| format!("--auth {method:?} needs --client-secret").to_lowercase())
    };
    let auth = match method {
        AuthMethod::Basic => ClientAuth::SecretBasic(secret()?),
        AuthMethod::Post => ClientAuth::SecretPost(secret()?),
        AuthMethod::ClientSecretJwt => ClientAuth::SecretJwt(secret()?, Algorithm::HS256),
        AuthMethod::PrivateKeyJwt => {
            let path = args.key.as_ref().ok_or("--auth private-key-jwt needs --key JWK_FILE")?;
            return Client::with_key(args.client_id.clone(), load_key(path)?).map_err(|e| e.to_string());
        }
        AuthMethod::None => ClientAuth::None,
    };
    Ok(Client::new(args.client_id.clone(), auth))
}

fn token_client(
    issuer: &str,
    allow_http: bool,
    client: Client,
    dpop: Option<identity_model::DpopKey>,
    json: bool,
) -> Result<TokenClient, ExitCode> {
    let config = crate::remote::config()?;
    let authority = Authority::builder(issuer)
        .policy(crate::remote::policy(allow_http))
        .settings(config)
        .build()
        .map_err(|e| report(&e, json))?;
    let mut builder = TokenClient::builder(client).authority(&authority);
    if let Some(key) = dpop {
        builder = builder.dpop_key(key);
    }
    builder.build().map_err(|e| report(&e, json))
}

/// Prints an error (as JSON under `--json`) and gives exit 1.
fn report(e: &Error, json: bool) -> ExitCode {
    eprintln!("idm: {e}");
    if json {
        let value = match e.oauth() {
            Some(oauth) => json!({
                "error": oauth.error,
                "error_description": oauth.error_description,
                "error_uri": oauth.error_uri,
                "status": oauth.status,
            }),
            None => json!({"error": e.kind().as_str(), "message": e.message()}),
        };
        println!("{value}");
    }
    ExitCode::from(EXIT_REFUSED)
}

fn print_json(members: &Map<String, Value>) {
    println!("{}", serde_json::to_string_pretty(&Value::Object(members.clone())).unwrap_or_default());
}

fn print_tokens(tokens: &TokenResponse, json: bool) {
    if json {
        return print_json(tokens.json());
    }
    println!("access_token: {}", tokens.access_token.expose());
    println!("token_type: {}", tokens.token_type);
    if let Some(expires_in) = tokens.expires_in {
        println!("expires_in: {expires_in}");
    }
    for (name, value) in [("scope", &tokens.scope), ("issued_token_type", &tokens.issued_token_type)] {
        if let Some(value) = value {
            println!("{name}: {value}");
        }
    }
    if let Some(refresh) = &tokens.refresh_token {
        println!("refresh_token: {}", refresh.expose());
    }
    if let Some(id_token) = &tokens.id_token {
        println!("id_token: {}", id_token.expose());
    }
}

fn token_type_uri(name: &str) -> String {
    match name {
        "access_token" => token_type::ACCESS_TOKEN,
        "refresh_token" => token_type::REFRESH_TOKEN,
        "id_token" => token_type::ID_TOKEN,
        "jwt" => token_type::JWT,
        "saml1" => token_type::SAML1,
        "saml2" => token_type::SAML2,
        uri => uri,
    }
    .to_owned()
}

pub(crate) fn run(args: Args) -> ExitCode {
    match run_inner(args) {
        Ok(code) | Err(code) => code,
    }
}

fn setup(client: &ClientArgs) -> Result<TokenClient, ExitCode> {
    let built = client_of(client).map_err(usage)?;
    let dpop = client.dpop_key.as_deref().map(crate::dpop::load_key).transpose().map_err(usage)?;
    token_client(&client.issuer, client.allow_http, built, dpop, client.json)
}

fn finish<T>(result: Result<Result<T, Error>, ExitCode>, json: bool, print: impl FnOnce(T)) -> ExitCode {
    match result {
        Err(code) => code,
        Ok(Err(e)) => report(&e, json),
        Ok(Ok(value)) => {
            print(value);
            ExitCode::SUCCESS
        }
    }
}

fn with_scope(mut request: TokenRequest, scope: &ScopeArgs) -> TokenRequest {
    request = request.scope(scope.scopes());
    for resource in &scope.resource {
        request = request.resource(resource.clone());
    }
    request
}

fn run_inner(args: Args) -> Result<ExitCode, ExitCode> {
    Ok(match args.command {
        Command::ClientCredentials { client, scope } => {
            let tc = setup(&client)?;
            let request = with_scope(TokenRequest::client_credentials(), &scope);
            finish(block_on(tc.request_token(&request)), client.json, |t| print_tokens(&t, client.json))
        }
        Command::Refresh { refresh_token, client, scope } => {
            let token = crate::read_token(&refresh_token)?;
            let tc = setup(&client)?;
            let request = with_scope(TokenRequest::refresh(token), &scope);
            finish(block_on(tc.request_token(&request)), client.json, |t| print_tokens(&t, client.json))
        }
        Command::Exchange {
            subject_token,
            subject_token_type,
            actor_token,
            actor_token_type,
            requested_token_type,
            audience,
            client,
            scope,
        } => {
            let token = crate::read_token(&subject_token)?;
            let tc = setup(&client)?;
            let mut exchange = TokenExchange::new(token, token_type_uri(&subject_token_type));
            if let (Some(actor), Some(actor_type)) = (actor_token, actor_token_type) {
                exchange = exchange.actor(actor, token_type_uri(&actor_type));
            }
            if let Some(requested) = requested_token_type {
                exchange = exchange.requested_token_type(token_type_uri(&requested));
            }
            for audience in audience {
                exchange = exchange.audience(audience);
            }
            let request = with_scope(TokenRequest::exchange(exchange), &scope);
            finish(block_on(tc.request_token(&request)), client.json, |t| print_tokens(&t, client.json))
        }
        Command::Device { client, scope } => {
            let tc = setup(&client)?;
            let scopes = scope.scopes();
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let resources: Vec<&str> = scope.resource.iter().map(String::as_str).collect();
            let flow = async {
                let device = tc.device_authorization(&scopes, &resources).await?;
                eprintln!(
                    "To sign in, visit {} and enter the code {}",
                    device.verification_uri, device.user_code
                );
                if let Some(complete) = &device.verification_uri_complete {
                    eprintln!("(or open {complete})");
                }
                eprintln!(
                    "Waiting (polling every {} s, code valid {} s)...",
                    device.interval, device.expires_in
                );
                tc.poll_device(&device).await
            };
            finish(block_on(flow), client.json, |t| print_tokens(&t, client.json))
        }
        Command::Introspect { token, hint, client } => {
            let token = crate::read_token(&token)?;
            let tc = setup(&client)?;
            finish(block_on(tc.introspect(&token, hint.as_deref())), client.json, |i| {
                if client.json {
                    print_json(i.json());
                } else {
                    for (name, value) in i.json() {
                        println!(
                            "{name}: {}",
                            value.as_str().map_or_else(|| value.to_string(), str::to_owned)
                        );
                    }
                }
            })
        }
        Command::Revoke { token, hint, client } => {
            let token = crate::read_token(&token)?;
            let tc = setup(&client)?;
            finish(block_on(tc.revoke(&token, hint.as_deref())), client.json, |()| {
                if client.json {
                    println!("{{\"revoked\":true}}");
                } else {
                    eprintln!("idm: the provider accepted the revocation");
                }
            })
        }
        Command::Userinfo { access_token, expected_sub, issuer, allow_http, json } => {
            let token = crate::read_token(&access_token)?;
            let tc = token_client(&issuer, allow_http, Client::public("idm"), None, json)?;
            finish(block_on(tc.userinfo(&token, expected_sub.as_deref())), json, |u| print_json(u.json()))
        }
    })
}
