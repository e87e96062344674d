//! A model's structure as plain data, below both `model` (burn) and `analysis`: its
//! configuration and options (`config.rs`), whose names its modules and parameters go by
//! (`layout.rs`), and what a traced run captured (`trace.rs`). Nothing here knows burn, so
//! analysis, charts and the page read a model's description and traces without the model.

pub mod config;
pub mod layout;
pub mod slices;
pub mod trace;

pub use config::{Activation, Head, NormPosition, Positional, TransformerConfig};
pub use layout::Layout;
pub use slices::{HeadSummary, thumbnail_bins};
pub use trace::{AttentionCapture, Capture, Role, Site, Trace};
