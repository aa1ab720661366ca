//! HTTP caching and retry rules as pure functions of header values and `now` (RFC 9111
//! freshness, RFC 9110 `Retry-After`). The IO layer reads the headers and the clock; these
//! functions decide. [`target`] holds the request-target and path routines (RFC 3986).

mod freshness;
pub mod target;

pub use freshness::{Freshness, FreshnessBounds, freshness, retry_after};
