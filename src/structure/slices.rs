//! What a view asks of a run, as plain data: the same answers whether the trace is on the host
//! (`analysis` computes them from a [`super::Trace`]) or still on the device (`model`'s
//! `DeviceTrace` reduces it there and reads back only the answer).

use std::ops::Range;

/// How a view's thumbnail of an `n`-position axis is cut into at most `size` bins: bin `i`
/// covers positions `⌊i·n/size⌋ .. ⌊(i+1)·n/size⌋`, so the bins differ in length by one at most
/// and every position is in exactly one. An axis no longer than `size` keeps one position per bin.
pub fn thumbnail_bins(n: usize, size: usize) -> Vec<Range<usize>> {
    let bins = n.min(size.max(1));
    (0..bins)
        .map(|bin| bin * n / bins..(bin + 1) * n / bins)
        .collect()
}

/// The most bytes one run's trace may take on the device: a 12-layer, 12-head, width-768 model
/// at 1,024 tokens with GPT-2's vocabulary takes 1.3 GiB, and wasm32 memory stops at 4 GiB with
/// the weights and the forward pass's own tensors beside it.
pub const TRACE_BUDGET_BYTES: u64 = 2 << 30;

/// The bytes a run of `tokens` tokens (one sequence) captures for a model of `config`: every
/// layer's attention, up to seven `[tokens, width]`-sized outputs per layer (two of them
/// `d_ff` wide), the embeddings and the logits, in f32. An upper bound: a model captures some
/// of these only (post-LN shares its layer output with its second norm).
pub fn trace_bytes(config: &super::TransformerConfig, tokens: usize) -> u64 {
    let (n, d) = (tokens as u64, config.d_model as u64);
    let attention = config.num_layers as u64 * config.num_heads as u64 * n * n;
    let per_layer = 5 * n * d + 2 * n * config.d_ff as u64;
    let outside = 4 * n * d
        + if config.has_head() {
            n * config.vocab_size as u64
        } else {
            0
        };
    4 * (attention + config.num_layers as u64 * per_layer + outside)
}

/// The most tokens whose trace fits `budget` bytes for a model of `config`.
pub fn tokens_within(config: &super::TransformerConfig, budget: u64) -> usize {
    let (mut low, mut high) = (0usize, config.max_seq_len.max(1));
    while low < high {
        let middle = (low + high).div_ceil(2);
        if trace_bytes(config, middle) <= budget {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    low
}

/// How one head attends, measured on sequence 0: what the head grid's titles, the model view's
/// entropy heatmap and the explorer's opening choice read.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeadSummary {
    /// Layer, from 0.
    pub layer: usize,
    /// Head, from 0.
    pub head: usize,
    /// Mean over every query of the row entropy `−Σ p ln p`, in nats (`0 ln 0 = 0`).
    pub entropy: f64,
    /// Mean over the queries that may see two keys or more of the row entropy divided by
    /// `ln(visible keys)`: 0 when every query looks at one key, 1 when every query spreads its
    /// weight evenly over what it may see. A causal model's query `q` sees keys `0..=q`.
    pub normalised_entropy: f64,
    /// The key position that gets the most weight on average over those queries (the earlier
    /// on a tie), and that average.
    pub top_key: (usize, f64),
}

/// Which queries a head's sharpness counts, and by how much: `1 / ln(visible keys)` for a query
/// that may see two keys or more, 0 for one that may see a single key (it says nothing).
pub fn query_weights(queries: usize, keys: usize, causal: bool) -> Vec<f64> {
    (0..queries)
        .map(|query| {
            let visible = if causal { (query + 1).min(keys) } else { keys };
            if visible < 2 {
                0.0
            } else {
                1.0 / (visible as f64).ln()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_every_position_once_and_differ_by_one_at_most() {
        for (n, size) in [(1024, 48), (10, 3), (7, 7), (5, 64), (1, 1), (100, 1)] {
            let bins = thumbnail_bins(n, size);
            assert_eq!(bins.len(), n.min(size));
            assert_eq!(bins.first().map(|bin| bin.start), Some(0));
            assert_eq!(bins.last().map(|bin| bin.end), Some(n));
            for pair in bins.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            let lengths: Vec<usize> = bins.iter().map(ExactSizeIterator::len).collect();
            let (min, max) = (lengths.iter().min(), lengths.iter().max());
            assert!(max.unwrap() - min.unwrap() <= 1, "{n}/{size}: {lengths:?}");
        }
        assert_eq!(thumbnail_bins(10, 3), vec![0..3, 3..6, 6..10]);
        assert!(thumbnail_bins(0, 8).is_empty());
    }

    #[test]
    fn a_gpt2_sized_trace_at_1024_tokens_fits_the_budget_and_a_bigger_one_does_not() {
        use crate::structure::TransformerConfig;
        let gpt2 = TransformerConfig::new(50257, 768, 12, 3072, 12).with_max_seq_len(1024);
        // Attention 12·12·1024² + layers 12·(5·1024·768 + 2·1024·3072) + 4·1024·768 + 1024·50257.
        let expected = 4 * (150_994_944 + 12 * (3_932_160 + 6_291_456) + 3_145_728 + 51_463_168);
        assert_eq!(trace_bytes(&gpt2, 1024), expected);
        assert!(trace_bytes(&gpt2, 1024) < TRACE_BUDGET_BYTES);
        assert_eq!(tokens_within(&gpt2, TRACE_BUDGET_BYTES), 1024);
        let wide = TransformerConfig::new(1000, 1024, 32, 4096, 24).with_max_seq_len(4096);
        let fits = tokens_within(&wide, TRACE_BUDGET_BYTES);
        assert!(trace_bytes(&wide, fits) <= TRACE_BUDGET_BYTES);
        assert!(trace_bytes(&wide, fits + 1) > TRACE_BUDGET_BYTES);
    }

    #[test]
    fn a_query_that_sees_one_key_is_not_counted() {
        let weights = query_weights(3, 3, true);
        assert_eq!(weights[0], 0.0);
        assert!((weights[1] - 1.0 / 2f64.ln()).abs() < 1e-15);
        assert!((weights[2] - 1.0 / 3f64.ln()).abs() < 1e-15);
        assert!(query_weights(2, 1, false).iter().all(|&w| w == 0.0));
    }
}
