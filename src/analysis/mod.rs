//! Plain statistics on captured data: attention matrices, per-head summaries, flow edges and
//! tensor summaries.

pub mod activations;
pub mod attention;
pub mod diagnostics;
pub mod gradients;
pub mod hf_parity;
pub mod matrix;
pub mod opening;
pub mod parity;
pub mod predictions;
pub mod stats;
pub mod thinning;
pub mod training;

pub use activations::{
    ActivationSummary, DeadHistory, DeadNeurons, Histogram, ModuleActivation, dead_units_note,
};
pub use attention::{
    FlowEdge, flow_edges, flow_top_edges, head_entropy, head_matrix, head_similarity, max_entropy,
    mean_over_heads, similarity_from_gram, strongest_keys, thumbnails,
};
pub use gradients::{
    GradientFinding, GradientHistory, GradientProblem, GradientThresholds, ParameterGradient,
};
pub use matrix::Matrix;
pub use opening::{HeadSharpness, OpeningView, choose_among, choose_opening_view, head_sharpness};
pub use stats::Summary;
