//! Plain statistics on captured data: attention matrices, per-head summaries, flow edges and
//! tensor summaries.

pub mod attention;
pub mod matrix;
pub mod stats;
pub mod training;

pub use attention::{
    FlowEdge, flow_edges, head_entropy, head_matrix, head_similarity, max_entropy, mean_over_heads,
    strongest_keys,
};
pub use matrix::Matrix;
pub use stats::Summary;
