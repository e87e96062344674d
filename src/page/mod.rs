//! The page's decisions in plain Rust: state, rules and words that the leptos components in
//! `app` only wire to signals. No burn, no browser: everything here compiles and is unit-tested
//! natively.

pub mod bench;
pub mod embed;
