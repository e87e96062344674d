//! The page's decisions in plain Rust: state, rules and words that the leptos components in
//! `app` only wire to signals. No burn, no browser: everything here compiles and is unit-tested
//! natively.

pub mod bench;
pub mod diagnostics;
pub mod embed;
pub mod explorer;
pub mod inside;
pub mod predictions;
pub mod slices;
pub mod training;
pub mod training_report;
pub mod training_run;
