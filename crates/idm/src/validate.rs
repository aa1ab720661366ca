//! `idm validate`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args as ClapArgs;
use identity_model::{Algorithm, AlgorithmSet, Clock as _, Error, KeySet, SystemClock, UnixTime, Validation};
use serde_json::Value;

/// Exit code for an invalid token.
pub(crate) const EXIT_INVALID: u8 = 1;
/// Exit code when keys could not be obtained.
pub(crate) const EXIT_NO_KEYS: u8 = 3;

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The token, or `-` to read it from standard input.
    token: String,
    /// The issuer the token's `iss` must equal.
    #[arg(long)]
    issuer: String,
    /// A JWK Set file holding the verification keys (without it, keys come from the issuer's
    /// discovery document).
    #[arg(long)]
    jwks: Option<PathBuf>,
    /// With discovery: allow http:// on loopback hosts (development).
    #[arg(long)]
    allow_http: bool,
    /// An accepted audience (repeatable); without it the audience is not checked.
    #[arg(long = "audience")]
    audiences: Vec<String>,
    /// Allowed algorithms, comma-separated (default: every asymmetric algorithm). HS256/384/512
    /// must be listed explicitly and need an `oct` key in the JWK Set.
    #[arg(long, value_delimiter = ',', value_parser = parse_alg)]
    algorithms: Vec<Algorithm>,
    /// Clock leeway in seconds for exp, nbf and iat.
    #[arg(long, default_value_t = 60)]
    leeway: u64,
    /// Validate as of this time (Unix seconds) instead of now.
    #[arg(long)]
    now: Option<i64>,
    /// Require this header `typ` (e.g. `at+jwt`, which also accepts `application/at+jwt`).
    #[arg(long = "token-type")]
    token_type: Option<String>,
    /// A DPoP proof (RFC 9449) sent with the token: validated against --method and --url,
    /// with `ath` checked against the token and the token's `cnf.jkt` against the proof's key.
    /// Without it, a token bound to a key (`cnf.jkt`) is `dpop_proof_required`. `--now`
    /// applies to the proof's `iat` too. (A single run has no replay memory: `jti` reuse is
    /// caught by `idm serve` and the library's replay store.)
    #[arg(long, value_name = "PROOF", requires_all = ["method", "url"])]
    dpop: Option<String>,
    /// The request method the proof must name (htm). With --dpop.
    #[arg(long, value_name = "M", requires = "dpop")]
    method: Option<String>,
    /// The request URL the proof must name (htu, compared normalized). With --dpop.
    #[arg(long, value_name = "U", requires = "dpop")]
    url: Option<String>,
    /// The server requires this nonce in the proof (use_dpop_nonce otherwise). With --dpop.
    #[arg(long = "dpop-nonce", value_name = "N", requires = "dpop")]
    dpop_nonce: Option<String>,
    /// The oldest proof accepted, in seconds since its iat. With --dpop.
    #[arg(long = "dpop-max-age", value_name = "SECONDS", default_value_t = identity_model::DEFAULT_PROOF_MAX_AGE_SECS)]
    dpop_max_age: u32,
    /// How far ahead of now a proof's iat may be, in seconds [default: --leeway, the tokens'
    /// own]. With --dpop.
    #[arg(long = "dpop-leeway", value_name = "SECONDS", requires = "dpop")]
    dpop_leeway: Option<u32>,
}

pub(crate) fn parse_alg(name: &str) -> Result<Algorithm, String> {
    name.trim().parse::<Algorithm>().map_err(|e| e.message().to_owned())
}

/// Prints `{"valid": false, "error": KIND, "message": "..."}` with its members in that order.
fn print_failure(kind: &str, message: &str) {
    println!("{{\"valid\":false,\"error\":{},\"message\":{}}}", Value::from(kind), Value::from(message));
}

pub(crate) fn run(args: Args) -> ExitCode {
    let token = match crate::read_token(&args.token) {
        Ok(token) => token,
        Err(code) => return code,
    };
    let mut rules = Validation::new(args.issuer.clone()).leeway(Duration::from_secs(args.leeway));
    if !args.algorithms.is_empty() {
        rules = rules.algorithms(args.algorithms.iter().copied().collect::<AlgorithmSet>());
    }
    for audience in args.audiences.clone() {
        rules = rules.audience(audience);
    }
    if !rules.checks_audience() {
        // The documented CLI behaviour, asked for explicitly: the library requires an audience.
        eprintln!("idm: note: no --audience given, so the audience is not checked");
        rules = rules.dangerous_any_audience();
    }
    if let Some(typ) = &args.token_type {
        rules = rules.token_type(typ);
    }
    let Some(jwks) = args.jwks.clone() else {
        return validate_with_discovery(&args, &token, rules);
    };
    let keys = match load_keys(&jwks) {
        Ok(keys) => keys,
        Err(code) => return code,
    };
    let now = args.now.map_or_else(|| SystemClock.now(), UnixTime::from_secs);
    answer(&args, &token, rules.validate(&token, &keys, now), now)
}

/// The answer for a validated (or refused) token: with its DPoP proof checked, if any.
fn answer(
    args: &Args,
    token: &str,
    result: Result<identity_model::ValidToken, Error>,
    now: UnixTime,
) -> ExitCode {
    match result.and_then(|valid| check_dpop(args, token, &valid, now).map(|()| valid)) {
        Ok(valid) => {
            println!("{}", valid.claims.raw_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            report(&e);
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// The proof against the request and the token; without a proof, the token must be unbound.
fn check_dpop(
    args: &Args,
    token: &str,
    valid: &identity_model::ValidToken,
    now: UnixTime,
) -> Result<(), Error> {
    let Some(proof) = &args.dpop else {
        return identity_model::check_binding(&valid.claims, None);
    };
    let (Some(method), Some(url)) = (&args.method, &args.url) else {
        unreachable!("clap requires --method and --url with --dpop");
    };
    let token_leeway = u32::try_from(args.leeway).unwrap_or(u32::MAX);
    let mut rules = identity_model::DpopRules::new()
        .max_age_secs(args.dpop_max_age)
        .leeway_secs(args.dpop_leeway.unwrap_or(token_leeway));
    if let Some(nonce) = &args.dpop_nonce {
        rules = rules.nonce(identity_model::NonceRule::Exact(nonce.clone()));
    }
    let verified = rules.verify(proof.trim(), method, url, Some(token), now)?;
    identity_model::check_binding(&valid.claims, Some(&verified))
}

fn load_keys(path: &std::path::Path) -> Result<KeySet, ExitCode> {
    let keys = match std::fs::read(path) {
        Err(e) => {
            let message = format!("cannot read {}: {e}", path.display());
            eprintln!("idm: {message}");
            print_failure("keys_unavailable", &message);
            return Err(ExitCode::from(EXIT_NO_KEYS));
        }
        Ok(bytes) => match KeySet::from_json(&bytes) {
            Err(e) => {
                eprintln!("idm: {}: {e}", path.display());
                print_failure(e.kind().as_str(), e.message());
                return Err(ExitCode::from(EXIT_NO_KEYS));
            }
            Ok(keys) => keys,
        },
    };
    for rejected in keys.rejected() {
        eprintln!(
            "idm: note: key #{} (kid {:?}) set aside: {}",
            rejected.index,
            rejected.kid.as_deref().unwrap_or("-"),
            rejected.reason
        );
    }
    if keys.is_empty() {
        // A JWK Set with no usable key is still a JWK Set: the token is judged against it
        // (invalid_key when its kid names a set-aside key, key_not_found otherwise), exit 1.
        eprintln!("idm: note: {} holds no usable key", path.display());
    }
    Ok(keys)
}

/// Validates through the issuer's discovery document and key set.
fn validate_with_discovery(args: &Args, token: &str, rules: Validation) -> ExitCode {
    let config = match crate::remote::config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let mut builder = identity_model::Authority::builder(&args.issuer)
        .rules(rules)
        .policy(crate::remote::policy(args.allow_http).resource_server_fields())
        .settings(config);
    if let Some(now) = args.now {
        builder =
            builder.clock(std::sync::Arc::new(identity_model::FixedClock::new(UnixTime::from_secs(now))));
    }
    let authority = match builder.build() {
        Ok(a) => a,
        Err(e) => return crate::remote::print_error(&e),
    };
    let now = args.now.map_or_else(|| SystemClock.now(), UnixTime::from_secs);
    match crate::remote::block_on(authority.validate(token)) {
        Err(code) => code,
        Ok(Err(e)) if e.kind().fault() != identity_model::Fault::Token => {
            eprintln!("idm: the token could not be judged: {e}");
            print_failure(e.kind().as_str(), e.message());
            ExitCode::from(crate::remote::exit_code(e.kind()))
        }
        Ok(result) => answer(args, token, result, now),
    }
}

fn report(e: &Error) {
    eprintln!("idm: invalid token: {e}");
    print_failure(e.kind().as_str(), e.message());
}
