//! Library parts of the `idm` command line that benchmarks share.

pub mod speed;
