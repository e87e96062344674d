//! Which layer and head the explorer opens on: the sharpest head that is not an attention sink.
//!
//! A new user should see what the model learned at once. Layer 0's mean of heads rarely shows
//! it (the trained reverse model's anti-diagonal is in layer 1), so the page opens on the head
//! whose rows are most concentrated, measured by the normalised entropy of each query's row,
//! leaving out heads that park most of their weight on one position (a first-token, `[CLS]` or
//! `[SEP]` sink), which are sharp without telling anything about the input.

use crate::structure::slices::query_weights;
use crate::structure::{AttentionCapture, HeadSummary};

/// A head that puts more than this share of its weight, averaged over queries, on one key
/// position is a sink.
pub const SINK_SHARE: f64 = 0.5;

/// How sharp one head is, and whether it is a sink (the same measurements whether made here
/// or on the device).
pub type HeadSharpness = HeadSummary;

impl HeadSummary {
    /// Whether the head parks over [`SINK_SHARE`] of its weight on one position.
    pub fn is_sink(&self) -> bool {
        self.top_key.1 > SINK_SHARE
    }
}

/// The view the explorer opens on, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct OpeningView {
    /// Layer, from 0.
    pub layer: usize,
    /// Head, from 0.
    pub head: usize,
    /// The chosen head's measurements.
    pub chosen: HeadSharpness,
    /// How many heads were compared.
    pub heads_compared: usize,
    /// How many heads were left out as sinks.
    pub sinks: usize,
}

impl OpeningView {
    /// Why this view was chosen, in words for the page.
    pub fn reason(&self) -> String {
        let mut reason = format!(
            "Opened on layer {}, head {}: the sharpest of the {} heads (normalised entropy {:.2}, where 0 means every query looks at one token and 1 means it looks evenly at all it may see)",
            self.layer, self.head, self.heads_compared, self.chosen.normalised_entropy
        );
        if self.chosen.is_sink() {
            reason.push_str(
                ". Every head puts over half its weight on one position, so none could be left out as a sink",
            );
        } else if self.sinks > 0 {
            reason.push_str(&format!(
                ", leaving out {} head{} that put over half {} weight on one position",
                self.sinks,
                if self.sinks == 1 { "" } else { "s" },
                if self.sinks == 1 { "its" } else { "their" }
            ));
        }
        reason.push('.');
        reason
    }
}

/// Measures every head of sequence 0 of every layer. `causal` models let query `q` see keys
/// `0..=q` only; queries that may see a single key say nothing about sharpness and are skipped
/// (a head with no other query is left out).
pub fn head_sharpness(attention: &[AttentionCapture], causal: bool) -> Vec<HeadSharpness> {
    let mut out = Vec::new();
    for capture in attention {
        let weights = query_weights(capture.queries, capture.keys, causal);
        for head in 0..capture.heads {
            let Some(map) = capture.head_map(0, head) else {
                continue;
            };
            if let Some(summary) = measure(map, capture.keys, &weights) {
                out.push(HeadSummary {
                    layer: capture.layer,
                    head,
                    ..summary
                });
            }
        }
    }
    out
}

/// The measurements of one `[queries, keys]` map whose queries count by `weights`
/// ([`query_weights`]); layer and head are left 0.
fn measure(map: &[f32], keys: usize, weights: &[f64]) -> Option<HeadSummary> {
    if keys == 0 {
        return None;
    }
    let (mut entropy_sum, mut normalised_sum) = (0.0, 0.0);
    let mut key_weight = vec![0.0f64; keys];
    let mut counted = 0usize;
    for (row, &weight) in map.chunks_exact(keys).zip(weights) {
        let entropy: f64 = row
            .iter()
            .map(|&p| f64::from(p))
            .filter(|&p| p > 0.0)
            .map(|p| -p * p.ln())
            .sum();
        entropy_sum += entropy;
        if weight == 0.0 {
            continue;
        }
        normalised_sum += entropy * weight;
        for (total, &p) in key_weight.iter_mut().zip(row) {
            *total += f64::from(p);
        }
        counted += 1;
    }
    if counted == 0 {
        return None;
    }
    // The earlier key on a tie, as the device's argmax picks.
    let (top, weight) =
        key_weight
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (key, &weight)| {
                if weight > best.1 { (key, weight) } else { best }
            });
    Some(HeadSummary {
        layer: 0,
        head: 0,
        entropy: entropy_sum / weights.len() as f64,
        normalised_entropy: normalised_sum / counted as f64,
        top_key: (top, weight / counted as f64),
    })
}

/// The sharpest head that is not a sink (the sharpest of all when every head is one); `None`
/// when there is nothing to measure (no layers, or one token).
pub fn choose_opening_view(attention: &[AttentionCapture], causal: bool) -> Option<OpeningView> {
    choose_among(&head_sharpness(attention, causal))
}

/// [`choose_opening_view`] from heads already measured (on the device, say).
pub fn choose_among(heads: &[HeadSharpness]) -> Option<OpeningView> {
    let sinks = heads.iter().filter(|head| head.is_sink()).count();
    let sharpest = |candidates: &mut dyn Iterator<Item = &HeadSharpness>| {
        candidates
            .min_by(|a, b| a.normalised_entropy.total_cmp(&b.normalised_entropy))
            .cloned()
    };
    let chosen = sharpest(&mut heads.iter().filter(|head| !head.is_sink()))
        .or_else(|| sharpest(&mut heads.iter()))?;
    Some(OpeningView {
        layer: chosen.layer,
        head: chosen.head,
        heads_compared: heads.len(),
        sinks,
        chosen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One layer of `[1, heads, n, n]` maps from row-major `[n, n]` matrices.
    fn layer(index: usize, heads: &[Vec<f32>], n: usize) -> AttentionCapture {
        AttentionCapture {
            layer: index,
            batch: 1,
            heads: heads.len(),
            queries: n,
            keys: n,
            values: heads.concat(),
        }
    }

    fn uniform(n: usize) -> Vec<f32> {
        vec![1.0 / n as f32; n * n]
    }

    /// Each query looks at its mirror image, with `sharp` of its weight.
    fn anti_diagonal(n: usize, sharp: f32) -> Vec<f32> {
        let rest = (1.0 - sharp) / (n - 1) as f32;
        (0..n * n)
            .map(|i| if i % n == n - 1 - i / n { sharp } else { rest })
            .collect()
    }

    /// Every query puts `share` of its weight on key 0.
    fn first_token_sink(n: usize, share: f32) -> Vec<f32> {
        let rest = (1.0 - share) / (n - 1) as f32;
        (0..n * n)
            .map(|i| if i % n == 0 { share } else { rest })
            .collect()
    }

    #[test]
    fn uniform_rows_have_normalised_entropy_one_and_one_hot_rows_zero() {
        let n = 6;
        let heads = head_sharpness(&[layer(0, &[uniform(n), anti_diagonal(n, 1.0)], n)], false);
        assert!((heads[0].normalised_entropy - 1.0).abs() < 1e-6);
        assert!(heads[1].normalised_entropy.abs() < 1e-9);
    }

    #[test]
    fn the_sharpest_head_of_a_later_layer_is_chosen_over_a_blurry_first_layer() {
        let n = 8;
        let attention = [
            layer(0, &[uniform(n), anti_diagonal(n, 0.3)], n),
            layer(1, &[anti_diagonal(n, 0.6), anti_diagonal(n, 0.95)], n),
        ];
        let view = choose_opening_view(&attention, false).unwrap();
        assert_eq!((view.layer, view.head), (1, 1));
        assert_eq!(view.heads_compared, 4);
        assert!(
            view.reason().contains("layer 1, head 1"),
            "{}",
            view.reason()
        );
    }

    #[test]
    fn a_sharper_sink_head_is_left_out_and_the_reason_says_so() {
        let n = 8;
        let attention = [layer(
            0,
            &[first_token_sink(n, 0.99), anti_diagonal(n, 0.8)],
            n,
        )];
        let heads = head_sharpness(&attention, false);
        assert!(heads[0].normalised_entropy < heads[1].normalised_entropy);
        assert!(heads[0].is_sink() && !heads[1].is_sink());
        let view = choose_opening_view(&attention, false).unwrap();
        assert_eq!(view.head, 1);
        assert_eq!(view.sinks, 1);
        assert!(
            view.reason().contains("leaving out 1 head"),
            "{}",
            view.reason()
        );
    }

    #[test]
    fn when_every_head_is_a_sink_the_sharpest_is_still_shown_and_the_reason_says_why() {
        let n = 5;
        let attention = [layer(
            0,
            &[first_token_sink(n, 0.7), first_token_sink(n, 0.9)],
            n,
        )];
        let view = choose_opening_view(&attention, false).unwrap();
        assert_eq!(view.head, 1);
        assert!(
            view.reason().contains("none could be left out"),
            "{}",
            view.reason()
        );
    }

    #[test]
    fn causal_rows_are_normalised_by_the_keys_they_may_see() {
        // Query q spreads its weight evenly over keys 0..=q: uniform over what it may see.
        let n = 4;
        let mut map = vec![0.0f32; n * n];
        for q in 0..n {
            for k in 0..=q {
                map[q * n + k] = 1.0 / (q + 1) as f32;
            }
        }
        let heads = head_sharpness(&[layer(0, &[map], n)], true);
        assert!((heads[0].normalised_entropy - 1.0).abs() < 1e-6);
    }

    #[test]
    fn one_token_gives_nothing_to_choose() {
        assert_eq!(
            choose_opening_view(&[layer(0, &[vec![1.0]], 1)], false),
            None
        );
        assert_eq!(choose_opening_view(&[], false), None);
    }
}
