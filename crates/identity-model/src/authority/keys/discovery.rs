//! The discovery document: fetched in its own task (single flight), cached for the freshness
//! the provider's headers give, and served past it while the provider cannot be reached.

use std::sync::Arc;

use identity_model_core::http::FreshnessBounds;
use identity_model_core::{DiscoveryDocument, Error, RetryClass, discovery_url, media_type};
use tokio::time::Instant;

use super::KeySource;
use super::snapshot::later;
use crate::http::transport::HttpResponse;
use crate::telemetry::tally;

const MAX_DISCOVERY_BYTES: usize = 1024 * 1024;

impl KeySource {
    fn fresh_document(&self) -> Option<Arc<DiscoveryDocument>> {
        let cached = self.document.load_full()?;
        (Instant::now() < cached.1).then(|| Arc::clone(&cached.0))
    }

    async fn refresh_document(self: &Arc<Self>) -> Result<Arc<DiscoveryDocument>, Error> {
        let this = Arc::clone(self);
        let (ticket, _) =
            self.document_flight.join_or_start(move |_| async move { this.fetch_document().await })?;
        ticket.outcome().await
    }

    /// The body of a discovery refresh task.
    async fn fetch_document(self: Arc<Self>) -> Result<Arc<DiscoveryDocument>, Error> {
        let config = &self.cache;
        let (document, response) = self.discovery_response().await?;
        let bounds = FreshnessBounds {
            default: config.disco_cache_ttl,
            floor: config.min_freshness,
            cap: config.max_disco_freshness,
        };
        let ttl = self.freshness_of(&response, bounds);
        let document = Arc::new(document);
        self.document.store(Some(Arc::new((Arc::clone(&document), later(Instant::now(), ttl)))));
        Ok(document)
    }

    async fn discovery_response(&self) -> Result<(DiscoveryDocument, HttpResponse), Error> {
        let url = discovery_url(&self.issuer, self.metadata)?;
        let response =
            self.get(&url, "application/json", None, MAX_DISCOVERY_BYTES, RetryClass::Retryable).await?;
        tally!(self, discovery_fetches);
        media_type::check(response.content_type.as_deref(), media_type::JSON)?;
        let document = DiscoveryDocument::from_json(&response.body, &self.issuer, &self.policy)?;
        Ok((document, response))
    }

    /// Fetches and checks the discovery document (not cached; for tools and diagnostics).
    pub(crate) async fn discover(&self) -> Result<DiscoveryDocument, Error> {
        self.discovery_response().await.map(|(document, _)| document)
    }

    /// The discovery document, cached for its freshness (the same fetch the keys use). When
    /// the provider cannot be reached, the last good document is served (so a reachable
    /// `jwks_uri` still serves keys while discovery is down).
    pub(crate) async fn metadata(self: &Arc<Self>) -> Result<Arc<DiscoveryDocument>, Error> {
        if let Some(document) = self.fresh_document() {
            return Ok(document);
        }
        match self.refresh_document().await {
            Ok(document) => Ok(document),
            Err(e) => match self.document.load_full() {
                Some(last) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "discovery failed; serving the last good document");
                    Ok(Arc::clone(&last.0))
                }
                None => Err(e),
            },
        }
    }
}
