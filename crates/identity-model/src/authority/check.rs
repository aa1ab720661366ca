//! The hot path: one synchronous function that, with fresh keys cached, settles a token
//! without a lock or an await (`Ready`), and otherwise says what the key source must obtain
//! first (`NeedsRefresh`), then the slow path that asks it.

use identity_model_core::{Error, ErrorKind, UnverifiedToken, ValidToken};
use tokio::time::Instant;

use super::Authority;
use super::keys::{Lack, is_miss};
use crate::telemetry::tally;

/// What the hot path decided.
#[derive(Debug)]
pub(crate) enum Step<'t> {
    /// The token is settled: valid, or invalid for a reason no refresh can change.
    Ready(Result<ValidToken, Error>),
    /// Keys must be fetched (or refetched) before the token can be judged.
    NeedsRefresh(Need<'t>),
}

/// A token waiting for keys, parsed once.
#[derive(Debug)]
pub(crate) struct Need<'t> {
    token: UnverifiedToken<'t>,
    lack: Lack,
    /// Key flights started before the hot path looked: a later one started after the token
    /// arrived, so its keys can prove a `kid` missing.
    arrived: u64,
}

impl Authority {
    /// The hot path: parses `token` once and, with fresh keys cached, settles it without a
    /// lock or an await. Starts a background refresh when the keys are due for one.
    #[inline(always)]
    pub(crate) fn check<'t>(&self, token: &'t str) -> Step<'t> {
        match UnverifiedToken::parse(token, self.inner.rules.token_len_limit()) {
            Ok(token) => self.judge(token),
            Err(e) => Step::Ready(Err(e)),
        }
    }

    /// [`Authority::check`] for a token already parsed (by [`super::Issuers`], to read its `iss`).
    #[inline]
    pub(crate) fn check_parsed<'t>(&self, token: UnverifiedToken<'t>) -> Step<'t> {
        // Issuers parsed it under the largest limit of its authorities: apply this one's.
        let limit = self.inner.rules.token_len_limit();
        if token.len() > limit {
            let message = format!("token is {} bytes, over the {limit}-byte limit", token.len());
            return Step::Ready(Err(Error::new(ErrorKind::MalformedToken, message)));
        }
        self.judge(token)
    }

    /// The hot path after parsing (the length limit already applied).
    #[inline(always)]
    fn judge<'t>(&self, token: UnverifiedToken<'t>) -> Step<'t> {
        let inner = &self.inner;
        let source = &inner.source;
        let arrived = source.flights_started();
        let Some(snapshot) = source.snapshot() else {
            tally!(source, misses);
            return Step::NeedsRefresh(Need { token, lack: Lack::Cold, arrived });
        };
        let now = Instant::now();
        if now > snapshot.stale_after {
            return Step::NeedsRefresh(Need { token, lack: Lack::TooStale(snapshot), arrived });
        }
        if now >= snapshot.fresh_until {
            tally!(source, stale_serves);
            source.refresh_in_background(now);
        } else {
            tally!(source, hits);
            if now >= snapshot.refresh_at {
                source.refresh_in_background(now);
            }
        }
        match inner.rules.check_signature(&token, &snapshot.keys) {
            Ok(()) => Step::Ready(inner.rules.accept(token, inner.clock.now())),
            // An unknown kid, or a signature that fails on a cached key (the provider may have
            // re-keyed under the same kid): keys may need refetching.
            Err(miss) if is_miss(&miss) => {
                Step::NeedsRefresh(Need { token, lack: Lack::UnknownKey { seen: snapshot, miss }, arrived })
            }
            Err(e) => Step::Ready(Err(e)),
        }
    }

    /// The slow path: the key source obtains the keys the hot path lacked and judges the
    /// signature with them; the claims are judged here.
    pub(crate) async fn resolve(&self, need: Need<'_>) -> Result<ValidToken, Error> {
        let Need { token, lack, arrived } = need;
        let rules = &self.inner.rules;
        self.inner
            .source
            .obtain(lack, arrived, token.kid(), |keys| rules.check_signature(&token, keys))
            .await?;
        rules.accept(token, self.inner.clock.now())
    }
}
