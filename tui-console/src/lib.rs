//! Terminal console.
