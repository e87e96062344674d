//! What a model's head predicts: the most likely tokens at a position, from its logits.

/// One predicted token: its id and probability (softmax of the position's logits).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Token id.
    pub id: u32,
    /// Probability, from 0 to 1.
    pub probability: f64,
}

/// The `k` most likely tokens of one position's `logits`, most likely first (ties by the
/// lower id, so the order never depends on the sort).
pub fn top_k(logits: &[f32], k: usize) -> Vec<Prediction> {
    let finite = logits.iter().copied().filter(|logit| logit.is_finite());
    let Some(largest) = finite.clone().reduce(f32::max) else {
        return Vec::new();
    };
    let total: f64 = finite.map(|logit| f64::from(logit - largest).exp()).sum();
    let mut order: Vec<usize> = (0..logits.len())
        .filter(|&i| logits[i].is_finite())
        .collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|index| Prediction {
            id: index as u32,
            probability: f64::from(logits[index] - largest).exp() / total,
        })
        .collect()
}

/// The logits of position `position` in row-major `[seq, vocab]` logits.
pub fn position_logits(logits: &[f32], vocab: usize, position: usize) -> Option<&[f32]> {
    logits.get(position * vocab..(position + 1) * vocab)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_likely_tokens_come_first_with_their_softmax_probability() {
        let logits = [0.0, 2.0, 1.0, 2.0];
        let top = top_k(&logits, 3);
        let ids: Vec<u32> = top.iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 3, 2]);
        let total = 1.0 + 2.0 * 2f64.exp() + 1f64.exp();
        assert!((top[0].probability - 2f64.exp() / total).abs() < 1e-12);
        assert!(top_k(&[], 5).is_empty());
    }
}
