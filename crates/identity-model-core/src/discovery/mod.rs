//! Discovery: OpenID Connect Discovery 1.0 and RFC 8414 metadata, the URL policy every URL
//! this library fetches or calls must meet, and the media types its responses may carry.

pub mod media_type;
mod metadata;

pub use metadata::{DiscoveryDocument, DiscoveryPolicy, MetadataKind, OPENID_REQUIRED, discovery_url};
