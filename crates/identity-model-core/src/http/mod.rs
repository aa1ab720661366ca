//! HTTP caching and retry rules as pure functions of header values and `now` (RFC 9111
//! freshness, RFC 9110 `Retry-After`). The IO layer reads the headers and the clock; these
//! functions decide.

mod freshness;

pub use freshness::{Freshness, FreshnessBounds, freshness, retry_after};
