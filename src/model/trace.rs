//! Plain data captured by a traced forward pass: nothing here touches burn.

/// One captured tensor: its module path, its shape and its values in row-major order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Capture {
    /// Module path of the sub-module that produced it, e.g. `layers.2.ff.linear1`.
    pub path: String,
    /// Shape, outermost dimension first, e.g. `[batch, seq, d_model]`.
    pub shape: Vec<usize>,
    /// Values in row-major order; `values.len()` is the product of `shape`.
    pub values: Vec<f32>,
}

impl Capture {
    /// Number of scalar values the shape describes.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Attention weights of one layer, `[batch, heads, queries, keys]`, as returned by the
/// layer's `MultiHeadAttention` (after softmax and masking, dropout off).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttentionCapture {
    /// Index of the encoder layer, counted from 0.
    pub layer: usize,
    /// Number of sequences in the batch.
    pub batch: usize,
    /// Number of attention heads.
    pub heads: usize,
    /// Number of query positions (rows).
    pub queries: usize,
    /// Number of key positions (columns).
    pub keys: usize,
    /// Values in `[batch, heads, queries, keys]` row-major order.
    pub values: Vec<f32>,
}

impl AttentionCapture {
    /// The `[queries, keys]` map of one head of one sequence, row-major (queries are rows).
    ///
    /// Returns `None` when `batch` or `head` is out of range.
    pub fn head_map(&self, batch: usize, head: usize) -> Option<&[f32]> {
        if batch >= self.batch || head >= self.heads {
            return None;
        }
        let size = self.queries * self.keys;
        let start = (batch * self.heads + head) * size;
        self.values.get(start..start + size)
    }
}

/// Everything one traced forward pass captured.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Attention weights per layer, in layer order.
    pub attention: Vec<AttentionCapture>,
    /// Output of every sub-module, in execution order, each under its module path.
    pub modules: Vec<Capture>,
}

impl Trace {
    /// The captured output of the sub-module at `path`, if it was captured.
    pub fn module(&self, path: &str) -> Option<&Capture> {
        self.modules.iter().find(|capture| capture.path == path)
    }
}
