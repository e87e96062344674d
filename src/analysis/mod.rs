//! Plain statistics on captured attention: matrices, per-head summaries and flow edges.

pub mod attention;
pub mod matrix;

pub use attention::{
    FlowEdge, flow_edges, head_entropy, head_matrix, head_similarity, max_entropy, mean_over_heads,
};
pub use matrix::Matrix;
