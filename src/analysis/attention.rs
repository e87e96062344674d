//! Per-head views of one layer's attention: maps, averages, similarity, entropy and flow edges.

use super::matrix::Matrix;
use crate::structure::thumbnail_bins;
use crate::structure::trace::AttentionCapture;

/// One query→key weight kept for the flow chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowEdge {
    /// Query position (the token attending).
    pub query: usize,
    /// Key position (the token attended to).
    pub key: usize,
    /// Attention weight, normally in `0..=1`.
    pub weight: f32,
}

/// The `[queries, keys]` map of one head of one sequence, or `None` when out of range.
pub fn head_matrix(att: &AttentionCapture, batch: usize, head: usize) -> Option<Matrix> {
    let map = att.head_map(batch, head)?;
    Matrix::new(att.queries, att.keys, map.to_vec())
}

/// The `[queries, keys]` map averaged over all heads, or `None` when `batch` is out of range
/// or the layer has no heads.
pub fn mean_over_heads(att: &AttentionCapture, batch: usize) -> Option<Matrix> {
    if att.heads == 0 {
        return None;
    }
    let mut mean = Matrix::zeros(att.queries, att.keys);
    for head in 0..att.heads {
        let map = att.head_map(batch, head)?;
        for (acc, value) in mean.values.iter_mut().zip(map) {
            *acc += value;
        }
    }
    let scale = 1.0 / att.heads as f32;
    mean.values.iter_mut().for_each(|v| *v *= scale);
    Some(mean)
}

/// The `[heads, heads]` cosine similarity of the flattened head maps.
///
/// A head whose map is all zeros is similar to nothing (0, also on the diagonal); any other
/// head has exactly 1 on the diagonal.
pub fn head_similarity(att: &AttentionCapture, batch: usize) -> Option<Matrix> {
    if batch >= att.batch {
        return None;
    }
    let maps = (0..att.heads)
        .map(|head| att.head_map(batch, head))
        .collect::<Option<Vec<_>>>()?;
    let gram: Vec<f64> = maps
        .iter()
        .flat_map(|a| maps.iter().map(move |b| dot(a, b)))
        .collect();
    similarity_from_gram(&gram, att.heads)
}

/// The cosine similarity of `heads` vectors from their row-major `[heads, heads]` dot products
/// (a Gram matrix, such as the device computes), with [`head_similarity`]'s rules for zero
/// maps and the diagonal; `None` when `gram` is not `heads × heads`.
pub fn similarity_from_gram(gram: &[f64], heads: usize) -> Option<Matrix> {
    if gram.len() != heads * heads {
        return None;
    }
    let norms: Vec<f64> = (0..heads)
        .map(|head| gram[head * heads + head].max(0.0).sqrt())
        .collect();
    let mut similarity = Matrix::zeros(heads, heads);
    for (i, &norm_a) in norms.iter().enumerate() {
        for (j, &norm_b) in norms.iter().enumerate() {
            let value = if norm_a == 0.0 || norm_b == 0.0 {
                0.0
            } else if i == j {
                1.0
            } else {
                (gram[i * heads + j] / (norm_a * norm_b)).clamp(-1.0, 1.0)
            };
            similarity.values[i * heads + j] = value as f32;
        }
    }
    Some(similarity)
}

/// Every head of sequence `batch` of `att` shrunk to at most `size × size` cells, each the mean
/// of the weights in its bin ([`thumbnail_bins`]): what the head grid and the model view draw
/// for long texts. A map no larger than `size` comes back whole. `None` when `batch` is out of
/// range.
pub fn thumbnails(att: &AttentionCapture, batch: usize, size: usize) -> Option<AttentionCapture> {
    if batch >= att.batch {
        return None;
    }
    let (rows, cols) = (
        thumbnail_bins(att.queries, size),
        thumbnail_bins(att.keys, size),
    );
    let mut values = Vec::with_capacity(att.heads * rows.len() * cols.len());
    for head in 0..att.heads {
        let map = att.head_map(batch, head)?;
        for row_bin in &rows {
            for col_bin in &cols {
                let mut sum = 0.0f64;
                for query in row_bin.clone() {
                    let row = &map[query * att.keys..(query + 1) * att.keys];
                    sum += row[col_bin.clone()]
                        .iter()
                        .map(|&p| f64::from(p))
                        .sum::<f64>();
                }
                values.push((sum / (row_bin.len() * col_bin.len()) as f64) as f32);
            }
        }
    }
    Some(AttentionCapture {
        layer: att.layer,
        batch: 1,
        heads: att.heads,
        queries: rows.len(),
        keys: cols.len(),
        values,
    })
}

/// Per head, the mean over queries of the row entropy `−Σ p ln p` in nats (with `0 ln 0 = 0`).
///
/// Ranges from 0 (every query looks at one key) to [`max_entropy`] (uniform rows).
pub fn head_entropy(att: &AttentionCapture, batch: usize) -> Option<Vec<f32>> {
    if batch >= att.batch {
        return None;
    }
    (0..att.heads)
        .map(|head| {
            let map = att.head_map(batch, head)?;
            if att.queries == 0 || att.keys == 0 {
                return Some(0.0);
            }
            let total: f64 = map.chunks_exact(att.keys).map(row_entropy).sum();
            Some((total / att.queries as f64) as f32)
        })
        .collect()
}

/// The largest possible row entropy over `keys` keys, `ln keys` (0 when there are none).
pub fn max_entropy(keys: usize) -> f32 {
    if keys == 0 { 0.0 } else { (keys as f32).ln() }
}

/// The cells of `m` with weight `>= threshold`, weakest first so that strong edges draw last.
///
/// Rows are queries and columns are keys; NaN weights are dropped and ties keep row-major order.
pub fn flow_edges(m: &Matrix, threshold: f32) -> Vec<FlowEdge> {
    let mut edges: Vec<FlowEdge> = m
        .values
        .iter()
        .enumerate()
        .filter(|&(_, &weight)| weight >= threshold)
        .map(|(index, &weight)| FlowEdge {
            query: index / m.cols,
            key: index % m.cols,
            weight,
        })
        .collect();
    edges.sort_by(|a, b| a.weight.total_cmp(&b.weight));
    edges
}

/// The flow view's arrows: for each query, its `k` strongest keys with weight `>= threshold`,
/// weakest first overall (as [`flow_edges`] orders them). At 1,024 tokens a threshold alone
/// can leave a million arrows; the cap keeps `k` per query at most.
pub fn flow_top_edges(m: &Matrix, threshold: f32, k: usize) -> Vec<FlowEdge> {
    let mut edges = Vec::new();
    for query in 0..m.rows {
        let Some(row) = m.row(query) else { continue };
        let mut keys: Vec<usize> = (0..m.cols).filter(|&key| row[key] >= threshold).collect();
        // Strongest first, the earlier key on a tie; then keep the first k.
        keys.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        keys.truncate(k);
        keys.sort_unstable();
        edges.extend(keys.into_iter().map(|key| FlowEdge {
            query,
            key,
            weight: row[key],
        }));
    }
    edges.sort_by(|a, b| a.weight.total_cmp(&b.weight));
    edges
}

/// Dot product accumulated in `f64`.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// Entropy of one row in nats; non-positive and NaN entries contribute nothing.
fn row_entropy(row: &[f32]) -> f64 {
    row.iter()
        .map(|&p| f64::from(p))
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum()
}

/// For each query (row), the key (column) it attends to most; ties go to the earlier key.
///
/// The text twin of a heatmap: the reverse task's anti-diagonal reads `7 6 5 … 0`.
pub fn strongest_keys(matrix: &Matrix) -> Vec<usize> {
    (0..matrix.rows)
        .filter_map(|row| {
            let values = matrix.row(row)?;
            let mut best = 0;
            for (col, &value) in values.iter().enumerate() {
                if value > values[best] {
                    best = col;
                }
            }
            Some(best)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOLERANCE: f32 = 1e-6;

    /// One sequence, heads laid out one after another, each a `queries × keys` map.
    fn capture(heads: usize, queries: usize, keys: usize, values: Vec<f32>) -> AttentionCapture {
        AttentionCapture {
            layer: 0,
            batch: 1,
            heads,
            queries,
            keys,
            values,
        }
    }

    /// Head 0 is uniform `[[0.5, 0.5], [0.5, 0.5]]`, head 1 is the identity (one-hot rows).
    fn uniform_and_identity() -> AttentionCapture {
        capture(2, 2, 2, vec![0.5, 0.5, 0.5, 0.5, 1.0, 0.0, 0.0, 1.0])
    }

    fn assert_close(actual: f32, expected: f32) {
        assert!(
            (actual - expected).abs() < TOLERANCE,
            "{actual} != {expected}"
        );
    }

    #[test]
    fn head_matrix_picks_batch_and_head() {
        let att = AttentionCapture {
            layer: 1,
            batch: 2,
            heads: 2,
            queries: 1,
            keys: 2,
            values: vec![0.0, 1.0, 0.2, 0.8, 0.4, 0.6, 0.9, 0.1],
        };
        // Sequence 1, head 0 starts at (1 · 2 + 0) · 2 = 4.
        assert_eq!(head_matrix(&att, 1, 0).unwrap().values, vec![0.4, 0.6]);
        assert_eq!(head_matrix(&att, 0, 1).unwrap().values, vec![0.2, 0.8]);
        assert!(head_matrix(&att, 2, 0).is_none());
        assert!(head_matrix(&att, 0, 2).is_none());
    }

    #[test]
    fn mean_over_heads_averages_cells() {
        // (0.5 + 1) / 2 = 0.75 on the diagonal and (0.5 + 0) / 2 = 0.25 off it.
        let mean = mean_over_heads(&uniform_and_identity(), 0).unwrap();
        for (actual, expected) in mean.values.into_iter().zip([0.75, 0.25, 0.25, 0.75]) {
            assert_close(actual, expected);
        }
        assert!(mean_over_heads(&uniform_and_identity(), 1).is_none());
        assert!(mean_over_heads(&capture(0, 2, 2, vec![]), 0).is_none());
    }

    #[test]
    fn entropy_of_uniform_and_one_hot_rows() {
        // Uniform rows: −2 · 0.5 ln 0.5 = ln 2 ≈ 0.693147; one-hot rows: −1 ln 1 − 0 = 0.
        let entropy = head_entropy(&uniform_and_identity(), 0).unwrap();
        assert_close(entropy[0], std::f32::consts::LN_2);
        assert_close(entropy[1], 0.0);
        assert_close(max_entropy(2), std::f32::consts::LN_2);
        assert_eq!(max_entropy(0), 0.0);
    }

    #[test]
    fn entropy_averages_over_queries() {
        // Row [0.25, 0.75]: 0.25 ln 4 + 0.75 ln (4/3) = 0.346574 + 0.215762 = 0.562335.
        // Row [1, 0] gives 0, so the mean is 0.562335 / 2 = 0.281168.
        let att = capture(1, 2, 2, vec![0.25, 0.75, 1.0, 0.0]);
        assert_close(head_entropy(&att, 0).unwrap()[0], 0.281_168);
    }

    #[test]
    fn similarity_of_identical_orthogonal_and_zero_maps() {
        // Heads: a = [[1, 0], [1, 0]], b = a, c = [[0, 1], [0, 1]], d = zeros.
        let a = [1.0, 0.0, 1.0, 0.0];
        let c = [0.0, 1.0, 0.0, 1.0];
        let values = [a, a, c, [0.0; 4]].concat();
        let sim = head_similarity(&capture(4, 2, 2, values), 0).unwrap();
        assert_eq!((sim.rows, sim.cols), (4, 4));
        assert_close(sim.get(0, 1).unwrap(), 1.0);
        assert_close(sim.get(0, 2).unwrap(), 0.0);
        assert_close(sim.get(2, 2).unwrap(), 1.0);
        assert_close(sim.get(3, 3).unwrap(), 0.0);
        assert_close(sim.get(0, 3).unwrap(), 0.0);
    }

    #[test]
    fn similarity_of_uniform_and_identity() {
        // Dot = 0.5 + 0.5 = 1, norms 1 and √2, so cos = 1/√2 ≈ 0.707107, symmetric.
        let sim = head_similarity(&uniform_and_identity(), 0).unwrap();
        assert_close(sim.get(0, 1).unwrap(), std::f32::consts::FRAC_1_SQRT_2);
        assert_close(sim.get(1, 0).unwrap(), std::f32::consts::FRAC_1_SQRT_2);
        assert_close(sim.get(0, 0).unwrap(), 1.0);
        assert!(head_similarity(&uniform_and_identity(), 1).is_none());
        assert!(head_entropy(&uniform_and_identity(), 1).is_none());
    }

    #[test]
    fn thumbnails_average_each_bin_and_keep_small_maps_whole() {
        // One head over 3 tokens shrunk to 2 × 2: bins {0} and {1, 2} on both axes.
        let map = vec![0.1, 0.2, 0.7, 0.5, 0.5, 0.0, 0.0, 0.9, 0.1];
        let att = capture(1, 3, 3, map.clone());
        let small = thumbnails(&att, 0, 2).unwrap();
        assert_eq!((small.heads, small.queries, small.keys), (1, 2, 2));
        let expected = [0.1, 0.45, 0.25, 0.375];
        for (actual, expected) in small.values.iter().zip(expected) {
            assert_close(*actual, expected);
        }
        assert_eq!(thumbnails(&att, 0, 3).unwrap().values, map);
        assert!(thumbnails(&att, 1, 2).is_none());
    }

    #[test]
    fn similarity_from_a_gram_matrix_follows_the_same_rules() {
        // Gram of a = (1, 0), b = (1, 1), zero: a·b = 1, |a| = 1, |b| = √2.
        let gram = [1.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0];
        let sim = similarity_from_gram(&gram, 3).unwrap();
        assert_close(sim.get(0, 1).unwrap(), std::f32::consts::FRAC_1_SQRT_2);
        assert_close(sim.get(1, 1).unwrap(), 1.0);
        assert_close(sim.get(2, 2).unwrap(), 0.0);
        assert!(similarity_from_gram(&gram, 2).is_none());
    }

    #[test]
    fn flow_edges_threshold_and_order() {
        let m = Matrix::new(2, 2, vec![0.1, 0.6, 0.3, 0.6]).unwrap();
        let edge = |query, key, weight| FlowEdge { query, key, weight };
        // 0.1 is dropped, 0.3 is kept (>=), the two 0.6 ties keep row-major order.
        assert_eq!(
            flow_edges(&m, 0.3),
            vec![edge(1, 0, 0.3), edge(0, 1, 0.6), edge(1, 1, 0.6)]
        );
        assert_eq!(flow_edges(&m, 0.0).len(), 4);
        assert!(flow_edges(&m, 0.61).is_empty());
        assert!(flow_edges(&m, f32::NAN).is_empty());
        assert!(flow_edges(&Matrix::zeros(0, 0), 0.0).is_empty());
        let with_nan = Matrix::new(1, 2, vec![f32::NAN, 0.5]).unwrap();
        assert_eq!(flow_edges(&with_nan, 0.0), vec![edge(0, 1, 0.5)]);
    }

    #[test]
    fn the_flow_cap_keeps_each_querys_strongest_keys() {
        let m = Matrix::new(2, 3, vec![0.2, 0.5, 0.3, 0.4, 0.4, 0.2]).unwrap();
        let edge = |query, key, weight| FlowEdge { query, key, weight };
        // Query 0 keeps keys 1 and 2; query 1 ties 0.4 twice and keeps both over 0.2.
        assert_eq!(
            flow_top_edges(&m, 0.0, 2),
            vec![
                edge(0, 2, 0.3),
                edge(1, 0, 0.4),
                edge(1, 1, 0.4),
                edge(0, 1, 0.5)
            ]
        );
        // One per query: the tie goes to the earlier key.
        assert_eq!(
            flow_top_edges(&m, 0.0, 1),
            vec![edge(1, 0, 0.4), edge(0, 1, 0.5)]
        );
        // The threshold still applies, and a large k is every edge above it.
        assert_eq!(flow_top_edges(&m, 0.45, 3), vec![edge(0, 1, 0.5)]);
        assert_eq!(flow_top_edges(&m, 0.0, 9), flow_edges(&m, 0.0));
    }

    #[test]
    fn strongest_key_of_each_row() {
        let matrix = Matrix::new(3, 3, vec![0.1, 0.2, 0.7, 0.5, 0.5, 0.0, 0.0, 0.9, 0.1]).unwrap();
        // Row 1 ties between keys 0 and 1: the earlier key wins.
        assert_eq!(strongest_keys(&matrix), vec![2, 0, 1]);
        assert!(strongest_keys(&Matrix::zeros(0, 0)).is_empty());
    }
}
