//! What the explorer's predictions panel lists: the top-5 tokens at each `[MASK]` (a
//! masked-LM) or after each position (a next-token model), from the run's own logits.

use crate::model::{Head, Token};

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

/// The positions the panel lists for a model whose head is `head`, at most [`MAX_ROWS`], and
/// how many more there were: a masked-LM's positions of `mask_id`, a next-token model's every
/// position (the prediction is for the token after it). `None` when the model has no head.
pub fn prediction_positions(
    head: Head,
    tokens: &[Token],
    mask_id: Option<u32>,
) -> Option<(Vec<usize>, usize)> {
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
    Some((positions.into_iter().take(MAX_ROWS).collect(), more))
}

/// The rows for `positions` ([`prediction_positions`]) from the top tokens at each (`(id,
/// probability)`, most likely first, as the run's slices give them); `token_text` shows an id.
pub fn prediction_rows(
    tokens: &[Token],
    positions: &[usize],
    top: &[Vec<(u32, f32)>],
    token_text: impl Fn(u32) -> String,
) -> Vec<PredictionRow> {
    positions
        .iter()
        .zip(top)
        .filter_map(|(&position, top)| {
            Some(PredictionRow {
                position,
                token: tokens.get(position)?.display.clone(),
                top: top
                    .iter()
                    .map(|&(id, p)| (token_text(id), id, f64::from(p)))
                    .collect(),
            })
        })
        .collect()
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

    #[test]
    fn a_masked_lm_lists_its_masks_and_a_next_token_model_every_position() {
        let tokens = [token(0, "a"), token(3, "[MASK]"), token(1, "b")];
        let (positions, more) = prediction_positions(Head::MaskedLm, &tokens, Some(3)).unwrap();
        assert_eq!((positions.as_slice(), more), ([1].as_slice(), 0));
        let top = vec![vec![(2, 0.7), (0, 0.2)]];
        let rows = prediction_rows(&tokens, &positions, &top, |id| format!("t{id}"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].token, "[MASK]");
        assert_eq!(rows[0].top[0], ("t2".to_string(), 2, f64::from(0.7f32)));
        let (positions, _) = prediction_positions(Head::TiedEmbedding, &tokens, None).unwrap();
        assert_eq!(positions, [0, 1, 2]);
        assert!(prediction_positions(Head::None, &tokens, None).is_none());
        let many: Vec<Token> = (0..MAX_ROWS as u32 + 3).map(|id| token(id, "w")).collect();
        let (positions, more) = prediction_positions(Head::Linear, &many, None).unwrap();
        assert_eq!((positions.len(), more), (MAX_ROWS, 3));
    }
}
