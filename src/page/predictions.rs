//! What the explorer's predictions panel lists: the top-5 tokens at each `[MASK]` (a
//! masked-LM) or after each position (a next-token model), from the run's own logits.

use crate::analysis::predictions::{position_logits, top_k};
use crate::model::{Head, Role, Site, Token, Trace};

/// Positions listed at most; the panel says how many more there were.
pub const MAX_ROWS: usize = 128;

/// One row: a position, its token, and the most likely tokens there.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    /// Position in the input.
    pub position: usize,
    /// The token at that position, as shown.
    pub token: String,
    /// Top-5: token as shown, its id, its probability.
    pub top: Vec<(String, u32, f64)>,
}

/// The rows for a run of a model whose head is `head`; `token_text` shows an id.
/// A masked-LM lists the positions of `mask_id`; a next-token model every position (the
/// prediction is for the token after it). `None` when the model has no head or the run no logits.
pub fn prediction_rows(
    head: Head,
    tokens: &[Token],
    trace: &Trace,
    mask_id: Option<u32>,
    token_text: impl Fn(u32) -> String,
) -> Option<(Vec<PredictionRow>, usize)> {
    let logits = trace.at(Site::global(Role::Logits))?;
    let vocab = *logits.shape.last()?;
    let positions: Vec<usize> = match head {
        Head::MaskedLm => tokens
            .iter()
            .enumerate()
            .filter(|(_, token)| Some(token.id) == mask_id)
            .map(|(position, _)| position)
            .collect(),
        Head::TiedEmbedding | Head::Linear => (0..tokens.len()).collect(),
        Head::None => return None,
    };
    let more = positions.len().saturating_sub(MAX_ROWS);
    let rows = positions
        .into_iter()
        .take(MAX_ROWS)
        .filter_map(|position| {
            let row = position_logits(&logits.values, vocab, position)?;
            Some(PredictionRow {
                position,
                token: tokens.get(position)?.display.clone(),
                top: top_k(row, 5)
                    .into_iter()
                    .map(|p| (token_text(p.id), p.id, p.probability))
                    .collect(),
            })
        })
        .collect();
    Some((rows, more))
}

/// The panel's heading for a model whose head is `head` and whose mask token is `mask`.
pub fn heading(head: Head, mask: &str) -> String {
    match head {
        Head::MaskedLm => format!("Top-5 predictions at each {mask}"),
        _ => "Top-5 next-token predictions after each position".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::Capture;

    fn token(id: u32, display: &str) -> Token {
        Token {
            id,
            display: display.into(),
            source: display.into(),
            known: true,
            segment: 0,
            special: false,
        }
    }

    fn trace(values: Vec<f32>, seq: usize, vocab: usize) -> Trace {
        Trace {
            attention: Vec::new(),
            modules: vec![Capture {
                role: Role::Logits,
                layer: None,
                path: "lm_head".into(),
                shape: vec![1, seq, vocab],
                values,
            }],
        }
    }

    #[test]
    fn a_masked_lm_lists_its_masks_and_a_next_token_model_every_position() {
        let tokens = [token(0, "a"), token(3, "[MASK]"), token(1, "b")];
        // Position 1 prefers id 2, then 0.
        let logits = vec![
            0.0, 0.0, 0.0, 0.0, //
            1.0, -1.0, 3.0, 0.0, //
            0.0, 0.0, 0.0, 5.0,
        ];
        let trace = trace(logits, 3, 4);
        let name = |id: u32| format!("t{id}");
        let (rows, more) = prediction_rows(Head::MaskedLm, &tokens, &trace, Some(3), name).unwrap();
        assert_eq!((rows.len(), more), (1, 0));
        assert_eq!(rows[0].position, 1);
        let ids: Vec<u32> = rows[0].top.iter().map(|(_, id, _)| *id).collect();
        assert_eq!(ids, [2, 0, 3, 1]);
        assert_eq!(rows[0].top[0].0, "t2");
        let (rows, _) = prediction_rows(Head::TiedEmbedding, &tokens, &trace, None, name).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].top[0].1, 3);
        assert!(prediction_rows(Head::None, &tokens, &trace, None, name).is_none());
    }
}
