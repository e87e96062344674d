//! Seeded toy tasks (reverse, sort, next word) that make training batches for small Transformers.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::{BUNDLED_CORPUS, Tokenized, Vocabulary, split_words};

/// Examples in each held-out batch; the last language batch may hold fewer.
pub const HELD_OUT_BATCH_SIZE: usize = 32;

/// Seed of the held-out stream for the digit tasks.
///
/// Training streams are seeded by the caller; seed them with anything but this value so the
/// held-out batches are not also training batches.
pub const HELD_OUT_SEED: u64 = 0x6865_6c64_5f6f_7574;

/// Id of the digit "0" in the digit vocabulary; "1".."9" follow it, after `[PAD]` and `[UNK]`.
const FIRST_DIGIT_ID: u32 = 2;

/// Default shortest digit sequence; a length of four already needs more than copying.
const DIGIT_MIN_LEN: usize = 4;
/// Default longest digit sequence; short enough that a tiny model learns it in seconds.
const DIGIT_MAX_LEN: usize = 10;
/// Default window of the language task; long enough for a few clauses of context.
const LANGUAGE_SEQ_LEN: usize = 16;

/// Which toy problem. Its lower-case name (`reverse`, `sort`, `language`) is what URLs, the
/// page's select and the CLI (`--task`) use; strum derives the words both ways.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
    serde::Serialize,
    serde::Deserialize,
)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[strum(serialize_all = "lowercase", ascii_case_insensitive)]
pub enum TaskKind {
    /// Write a row of digits back to front.
    Reverse,
    /// Write a row of digits in ascending order.
    Sort,
    /// Predict the next word of the bundled corpus.
    Language,
}

impl TaskKind {
    /// Short lower-case name, for URLs and selects.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The task called `name` (as [`TaskKind::name`] writes it, ignoring ASCII case and
    /// surrounding spaces), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        name.trim().parse().ok()
    }

    /// One sentence for the page about what the model has to learn.
    pub fn describe(self) -> &'static str {
        match self {
            TaskKind::Reverse => {
                "Read a row of digits and write it back to front, so each position must attend to its mirror image."
            }
            TaskKind::Sort => {
                "Read a row of digits and write them in ascending order, so each position must count how many digits are smaller."
            }
            TaskKind::Language => {
                "Predict the next word of Moby-Dick from the words before it, looking only to the left."
            }
        }
    }
}

/// One batch: every sequence has the same length, and `targets[b][i]` is the token the model
/// should predict at position `i` of `inputs[b]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    /// Input token ids, `[batch][seq]`.
    pub inputs: Vec<Vec<u32>>,
    /// Target token ids, `[batch][seq]`.
    pub targets: Vec<Vec<u32>>,
    /// Token types (sentence A/B), `[batch][seq]`, for a model that has them.
    pub types: Option<Vec<Vec<u32>>>,
    /// Which positions the loss counts, `[batch][seq]`; all when `None`. A masked-LM batch
    /// counts its masked positions, a next-token batch all but the last.
    pub counted: Option<Vec<Vec<bool>>>,
}

impl Batch {
    /// A batch whose loss counts every position, without token types.
    pub fn new(inputs: Vec<Vec<u32>>, targets: Vec<Vec<u32>>) -> Self {
        Self {
            inputs,
            targets,
            ..Self::default()
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// True when the batch has no examples.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Length of every sequence in the batch (0 for an empty batch).
    pub fn seq_len(&self) -> usize {
        self.inputs.first().map_or(0, Vec::len)
    }
}

/// A toy task: its vocabulary, its sequence lengths and, for language, the tokenized corpus.
#[derive(Debug, Clone)]
pub struct Task {
    kind: TaskKind,
    vocabulary: Vocabulary,
    min_len: usize,
    max_len: usize,
    /// The whole corpus as ids; empty for the digit tasks.
    tokens: Vec<u32>,
    /// Index of the first held-out token: training windows lie in `tokens[..split]`, held-out
    /// windows in `tokens[split..]`.
    split: usize,
}

impl Task {
    /// The task with its default lengths: 4..=10 digits, or windows of 16 words.
    pub fn new(kind: TaskKind) -> Task {
        match kind {
            TaskKind::Reverse | TaskKind::Sort => Task {
                kind,
                vocabulary: digit_vocabulary(),
                min_len: DIGIT_MIN_LEN,
                max_len: DIGIT_MAX_LEN,
                tokens: Vec::new(),
                split: 0,
            },
            TaskKind::Language => {
                let vocabulary = Vocabulary::bundled();
                let unk_id = vocabulary.unk_id();
                let tokens: Vec<u32> = split_words(BUNDLED_CORPUS)
                    .iter()
                    .map(|word| vocabulary.id(word).unwrap_or(unk_id))
                    .collect();
                // The last 10% of the stream is held out.
                let split = tokens.len() * 9 / 10;
                Task {
                    kind,
                    vocabulary,
                    min_len: LANGUAGE_SEQ_LEN,
                    max_len: LANGUAGE_SEQ_LEN,
                    tokens,
                    split,
                }
            }
        }
    }

    /// The same task with other sequence lengths.
    ///
    /// `min_len` is raised to at least 1 and `max_len` to at least `min_len`. The language task
    /// has one fixed window length: it uses `max_len` for both, cut so that a window of
    /// `max_len + 1` tokens still fits in the held-out part of the corpus.
    pub fn with_lengths(mut self, min_len: usize, max_len: usize) -> Task {
        let min_len = min_len.max(1);
        let max_len = max_len.max(min_len);
        match self.kind {
            TaskKind::Reverse | TaskKind::Sort => {
                self.min_len = min_len;
                self.max_len = max_len;
            }
            TaskKind::Language => {
                let held_out_len = self.tokens.len() - self.split;
                let seq_len = max_len.min(held_out_len.saturating_sub(1)).max(1);
                self.min_len = seq_len;
                self.max_len = seq_len;
            }
        }
        self
    }

    /// Which toy problem this is.
    pub fn kind(&self) -> TaskKind {
        self.kind
    }

    /// The vocabulary of inputs and targets; the model's vocabulary size is its length.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// Examples in one epoch: the language task's training windows; the digit tasks draw
    /// fresh sequences for ever, so their epoch is a nominal 10,000 examples.
    pub fn epoch_size(&self) -> usize {
        match self.kind {
            TaskKind::Language => (self.split / self.max_len.max(1)).max(1),
            TaskKind::Reverse | TaskKind::Sort => 10_000,
        }
    }

    /// Whether the model must not look ahead: true only for language, where the target at a
    /// position is the next input.
    pub fn causal(&self) -> bool {
        self.kind == TaskKind::Language
    }

    /// Shortest sequence in a batch.
    pub fn min_len(&self) -> usize {
        self.min_len
    }

    /// Longest sequence in a batch.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// A training batch of `batch_size` examples drawn from `rng`.
    ///
    /// Digit tasks draw one length uniformly in `min_len..=max_len` for the whole batch, then
    /// every digit uniformly. Language draws each window start uniformly in the first 90% of the
    /// corpus.
    pub fn train_batch(&self, rng: &mut ChaCha8Rng, batch_size: usize) -> Batch {
        match self.kind {
            TaskKind::Reverse | TaskKind::Sort => {
                let len = rng.random_range(self.min_len..=self.max_len);
                self.digit_batch(rng, batch_size, len)
            }
            TaskKind::Language => {
                let window = self.max_len + 1;
                let Some(last_start) = self.split.checked_sub(window) else {
                    return empty_batch();
                };
                let starts: Vec<usize> = (0..batch_size)
                    .map(|_| rng.random_range(0..=last_start))
                    .collect();
                self.language_batch(&starts)
            }
        }
    }

    /// A fixed evaluation set of up to `count` batches of [`HELD_OUT_BATCH_SIZE`] examples,
    /// the same on every call.
    ///
    /// Digit tasks draw from [`HELD_OUT_SEED`], batch `k` having length
    /// `min_len + k % (max_len - min_len + 1)` so every length is covered in turn. The examples
    /// come from the training distribution, so one may also occur in training; with 10^L digit
    /// rows of length L that is negligible from L = 6 up, while short rows are simply memorised
    /// and measure little. Language cuts the held-out last 10% of the corpus into consecutive,
    /// non-overlapping windows of `max_len + 1` tokens, as many as fit, so it may return fewer
    /// than `count` batches and its last batch may be smaller.
    pub fn held_out(&self, count: usize) -> Vec<Batch> {
        match self.kind {
            TaskKind::Reverse | TaskKind::Sort => {
                let mut rng = ChaCha8Rng::seed_from_u64(HELD_OUT_SEED);
                let num_lengths = self.max_len - self.min_len + 1;
                (0..count)
                    .map(|k| {
                        let len = self.min_len + k % num_lengths;
                        self.digit_batch(&mut rng, HELD_OUT_BATCH_SIZE, len)
                    })
                    .collect()
            }
            TaskKind::Language => {
                let window = self.max_len + 1;
                let starts: Vec<usize> = (self.split..)
                    .step_by(window)
                    .take_while(|start| start + window <= self.tokens.len())
                    .take(count * HELD_OUT_BATCH_SIZE)
                    .collect();
                starts
                    .chunks(HELD_OUT_BATCH_SIZE)
                    .map(|chunk| self.language_batch(chunk))
                    .collect()
            }
        }
    }

    /// Default input text for the page, every token of it in the vocabulary.
    pub fn probe_text(&self) -> &'static str {
        match self.kind {
            TaskKind::Reverse => "3 1 4 1 5 9 2 6",
            TaskKind::Sort => "5 2 8 1 9 3 7 4",
            TaskKind::Language => "call me ishmael . some years ago",
        }
    }

    /// `batch_size` rows of `len` random digits with their reversed or sorted targets.
    fn digit_batch(&self, rng: &mut ChaCha8Rng, batch_size: usize, len: usize) -> Batch {
        let inputs: Vec<Vec<u32>> = (0..batch_size)
            .map(|_| {
                (0..len)
                    .map(|_| FIRST_DIGIT_ID + rng.random_range(0..10u32))
                    .collect()
            })
            .collect();
        let targets = inputs
            .iter()
            .map(|row| {
                let mut target = row.clone();
                if self.kind == TaskKind::Sort {
                    // Digit ids are in digit order, so sorting ids sorts digits.
                    target.sort_unstable();
                } else {
                    target.reverse();
                }
                target
            })
            .collect();
        Batch::new(inputs, targets)
    }

    /// The windows of `max_len + 1` tokens starting at `starts`, split into inputs and targets
    /// shifted by one.
    fn language_batch(&self, starts: &[usize]) -> Batch {
        let seq_len = self.max_len;
        let mut inputs = Vec::with_capacity(starts.len());
        let mut targets = Vec::with_capacity(starts.len());
        for &start in starts {
            let Some(window) = self.tokens.get(start..start + seq_len + 1) else {
                continue;
            };
            inputs.push(window[..seq_len].to_vec());
            targets.push(window[1..].to_vec());
        }
        Batch::new(inputs, targets)
    }
}

/// Counts positions where the prediction equals the target, as `(correct, total)`.
///
/// `total` counts every target position; a prediction missing for one counts as wrong.
pub fn token_accuracy(predictions: &[Vec<u32>], targets: &[Vec<u32>]) -> (usize, usize) {
    let total = targets.iter().map(Vec::len).sum();
    let correct = predictions
        .iter()
        .zip(targets)
        .map(|(predicted, target)| predicted.iter().zip(target).filter(|(p, t)| p == t).count())
        .sum();
    (correct, total)
}

/// `[PAD]`, `[UNK]`, then the digits "0".."9" at ids 2..=11.
fn digit_vocabulary() -> Vocabulary {
    // All ten digits occur once, so the alphabetical tie-break puts them in digit order.
    Vocabulary::from_corpus("0 1 2 3 4 5 6 7 8 9", 12)
}

/// Every `MASK_EVERY`-th token of the text (special tokens not counted) is masked in a
/// masked-LM batch: the 7th, the 14th, …
pub const MASK_EVERY: usize = 7;

/// The explorer's text as a next-token batch: position `i` predicts token `i + 1`, and the last
/// position, which has no next token, is not counted (HuggingFace's shifted LM loss).
pub fn next_token_batch(tokens: &Tokenized) -> Option<Batch> {
    let ids = tokens.ids();
    if ids.len() < 2 {
        return None;
    }
    let mut targets: Vec<u32> = ids[1..].to_vec();
    targets.push(0);
    let mut counted = vec![true; ids.len()];
    counted[ids.len() - 1] = false;
    Some(Batch {
        inputs: vec![ids],
        targets: vec![targets],
        types: Some(vec![tokens.segments()]),
        counted: Some(vec![counted]),
    })
}

/// The explorer's text as a masked-LM batch: every [`MASK_EVERY`]-th text token is replaced by
/// `mask_id` and predicted; nothing else is counted. Also returns the masked positions.
pub fn masked_lm_batch(tokens: &Tokenized, mask_id: u32) -> Option<(Batch, Vec<usize>)> {
    let mut inputs = tokens.ids();
    let targets = inputs.clone();
    let mut counted = vec![false; inputs.len()];
    let mut masked = Vec::new();
    let text_positions = tokens
        .tokens
        .iter()
        .enumerate()
        .filter(|(_, token)| !token.special)
        .map(|(position, _)| position);
    for (index, position) in text_positions.enumerate() {
        if index % MASK_EVERY == MASK_EVERY - 1 {
            inputs[position] = mask_id;
            counted[position] = true;
            masked.push(position);
        }
    }
    if masked.is_empty() {
        return None;
    }
    let batch = Batch {
        inputs: vec![inputs],
        targets: vec![targets],
        types: Some(vec![tokens.segments()]),
        counted: Some(vec![counted]),
    };
    Some((batch, masked))
}

/// A batch with no examples.
fn empty_batch() -> Batch {
    Batch::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WordTokenizer;
    use strum::VariantArray;

    /// The digits behind a row of digit ids.
    fn digits(batch_row: &[u32]) -> Vec<u32> {
        batch_row.iter().map(|id| id - FIRST_DIGIT_ID).collect()
    }

    #[test]
    fn names_round_trip_and_only_language_is_causal() {
        for kind in TaskKind::VARIANTS.iter().copied() {
            assert_eq!(TaskKind::from_name(kind.name()), Some(kind));
            assert!(!kind.describe().is_empty());
            assert_eq!(Task::new(kind).kind(), kind);
            assert_eq!(Task::new(kind).causal(), kind == TaskKind::Language);
        }
        assert_eq!(TaskKind::from_name(" Sort "), Some(TaskKind::Sort));
        assert_eq!(TaskKind::from_name("copy"), None);
    }

    #[test]
    fn digit_vocabulary_puts_digits_at_ids_2_to_11() {
        let task = Task::new(TaskKind::Reverse);
        let vocabulary = task.vocabulary();
        assert_eq!(vocabulary.len(), 12);
        assert_eq!(vocabulary.word(0), Some("[PAD]"));
        assert_eq!(vocabulary.word(1), Some("[UNK]"));
        for digit in 0..10u32 {
            assert_eq!(vocabulary.id(&digit.to_string()), Some(2 + digit));
        }
        assert_eq!(Task::new(TaskKind::Sort).vocabulary(), vocabulary);
    }

    #[test]
    fn reverse_targets_are_inputs_back_to_front() {
        let task = Task::new(TaskKind::Reverse);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..20 {
            let batch = task.train_batch(&mut rng, 8);
            for (input, target) in batch.inputs.iter().zip(&batch.targets) {
                let len = input.len();
                for i in 0..len {
                    assert_eq!(target[i], input[len - 1 - i]);
                }
            }
        }
    }

    #[test]
    fn sort_targets_are_inputs_in_ascending_order() {
        let task = Task::new(TaskKind::Sort);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..20 {
            let batch = task.train_batch(&mut rng, 8);
            for (input, target) in batch.inputs.iter().zip(&batch.targets) {
                let target = digits(target);
                assert!(target.windows(2).all(|pair| pair[0] <= pair[1]));
                // Same multiset of digits.
                let mut counts = [0i32; 10];
                for d in digits(input) {
                    counts[d as usize] += 1;
                }
                for d in &target {
                    counts[*d as usize] -= 1;
                }
                assert_eq!(counts, [0; 10]);
            }
        }
    }

    #[test]
    fn batches_are_deterministic_per_seed_and_differ_across_seeds() {
        for kind in TaskKind::VARIANTS.iter().copied() {
            let task = Task::new(kind);
            let a = task.train_batch(&mut ChaCha8Rng::seed_from_u64(1), 16);
            let b = task.train_batch(&mut ChaCha8Rng::seed_from_u64(1), 16);
            let c = task.train_batch(&mut ChaCha8Rng::seed_from_u64(2), 16);
            assert_eq!(a, b, "{kind:?}");
            assert_ne!(a, c, "{kind:?}");
            // Later batches of one stream differ from the first.
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let first = task.train_batch(&mut rng, 16);
            let second = task.train_batch(&mut rng, 16);
            assert_eq!(first, a);
            assert_ne!(first, second, "{kind:?}");
        }
    }

    #[test]
    fn chacha8_stream_is_pinned() {
        // ChaCha8 and rand 0.9's uniform sampling are portable: this batch is the same on every
        // platform, wasm32 included. A change here means a dependency changed its stream.
        let task = Task::new(TaskKind::Reverse);
        let batch = task.train_batch(&mut ChaCha8Rng::seed_from_u64(0), 2);
        let shown: Vec<Vec<u32>> = batch.inputs.iter().map(|row| digits(row)).collect();
        assert_eq!(shown, PINNED_STREAM);
    }

    const PINNED_STREAM: [[u32; 8]; 2] = [[7, 7, 4, 5, 6, 5, 0, 1], [8, 5, 5, 4, 8, 8, 9, 4]];

    #[test]
    fn lengths_stay_in_bounds_and_constant_within_a_batch() {
        for kind in TaskKind::VARIANTS.iter().copied() {
            let task = Task::new(kind);
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let batch = task.train_batch(&mut rng, 4);
                assert_eq!(batch.len(), 4);
                let len = batch.seq_len();
                assert!((task.min_len()..=task.max_len()).contains(&len));
                assert!(batch.inputs.iter().all(|row| row.len() == len));
                assert!(batch.targets.iter().all(|row| row.len() == len));
                seen.insert(len);
            }
            // Every allowed length occurs.
            assert_eq!(seen.len(), task.max_len() - task.min_len() + 1, "{kind:?}");
        }
        assert_eq!(Task::new(TaskKind::Reverse).min_len(), 4);
        assert_eq!(Task::new(TaskKind::Reverse).max_len(), 10);
        assert_eq!(Task::new(TaskKind::Language).min_len(), 16);
        assert_eq!(Task::new(TaskKind::Language).max_len(), 16);
    }

    #[test]
    fn with_lengths_clamps() {
        let task = Task::new(TaskKind::Sort).with_lengths(0, 0);
        assert_eq!((task.min_len(), task.max_len()), (1, 1));
        let task = Task::new(TaskKind::Sort).with_lengths(6, 3);
        assert_eq!((task.min_len(), task.max_len()), (6, 6));
        let task = Task::new(TaskKind::Language).with_lengths(4, 32);
        assert_eq!((task.min_len(), task.max_len()), (32, 32));
        let batch = task.train_batch(&mut ChaCha8Rng::seed_from_u64(0), 3);
        assert_eq!(batch.seq_len(), 32);
        let task = Task::new(TaskKind::Language).with_lengths(1, usize::MAX);
        assert!(!task.held_out(1).is_empty());
        assert_eq!(
            task.train_batch(&mut ChaCha8Rng::seed_from_u64(0), 2).len(),
            2
        );
    }

    /// Whether `window` occurs in `tokens` at some start in `range`.
    fn find_window(tokens: &[u32], window: &[u32], range: std::ops::Range<usize>) -> bool {
        range
            .filter(|&start| start + window.len() <= tokens.len())
            .any(|start| tokens[start..start + window.len()] == *window)
    }

    #[test]
    fn language_windows_shift_by_one_and_come_from_the_training_part() {
        let task = Task::new(TaskKind::Language);
        assert!(task.tokens.len() > 9000);
        assert_eq!(task.split, task.tokens.len() * 9 / 10);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let batch = task.train_batch(&mut rng, 32);
        assert_eq!(batch.len(), 32);
        for (input, target) in batch.inputs.iter().zip(&batch.targets) {
            assert_eq!(input[1..], target[..15]);
            let mut window = input.clone();
            window.push(target[15]);
            // Searched only among starts whose whole window is before the split.
            assert!(find_window(
                &task.tokens[..task.split],
                &window,
                0..task.split
            ));
        }
    }

    #[test]
    fn language_tokens_match_the_word_tokenizer() {
        let task = Task::new(TaskKind::Language);
        let tokenizer = WordTokenizer::new(Vocabulary::bundled(), usize::MAX);
        assert_eq!(task.tokens, tokenizer.tokenize(BUNDLED_CORPUS).ids());
    }

    #[test]
    fn language_held_out_windows_are_consecutive_and_from_the_last_tenth() {
        let task = Task::new(TaskKind::Language);
        let held_out = task.held_out(100);
        let windows: Vec<Vec<u32>> = held_out
            .iter()
            .flat_map(|batch| {
                batch
                    .inputs
                    .iter()
                    .zip(&batch.targets)
                    .map(|(input, target)| {
                        assert_eq!(input[1..], target[..15]);
                        let mut window = input.clone();
                        window.push(target[15]);
                        window
                    })
            })
            .collect();
        // As many windows of 17 as fit in the held-out tokens.
        let held_out_len = task.tokens.len() - task.split;
        assert_eq!(windows.len(), held_out_len / 17);
        assert!(
            held_out
                .iter()
                .all(|batch| batch.len() <= HELD_OUT_BATCH_SIZE)
        );
        assert!(
            held_out[..held_out.len() - 1]
                .iter()
                .all(|batch| batch.len() == HELD_OUT_BATCH_SIZE)
        );
        // Window k is exactly the k-th run of 17 tokens after the split.
        for (k, window) in windows.iter().enumerate() {
            let start = task.split + 17 * k;
            assert_eq!(*window, task.tokens[start..start + 17]);
        }
        // Asking for fewer batches gives a prefix.
        assert_eq!(task.held_out(1), held_out[..1]);
        assert!(task.held_out(0).is_empty());
    }

    #[test]
    fn held_out_is_the_same_on_every_call_and_covers_every_length() {
        for kind in TaskKind::VARIANTS.iter().copied() {
            let task = Task::new(kind);
            assert_eq!(task.held_out(8), task.held_out(8), "{kind:?}");
        }
        let task = Task::new(TaskKind::Reverse);
        let held_out = task.held_out(14);
        assert_eq!(held_out.len(), 14);
        let lengths: Vec<usize> = held_out.iter().map(Batch::seq_len).collect();
        assert_eq!(lengths, [4, 5, 6, 7, 8, 9, 10, 4, 5, 6, 7, 8, 9, 10]);
        assert!(
            held_out
                .iter()
                .all(|batch| batch.len() == HELD_OUT_BATCH_SIZE)
        );
        // The held-out stream is not the stream of small training seeds.
        for seed in 0..100 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let batch = task.digit_batch(&mut rng, HELD_OUT_BATCH_SIZE, 4);
            assert_ne!(batch, held_out[0]);
        }
    }

    #[test]
    fn token_accuracy_counts_matching_positions() {
        let targets = vec![vec![1, 2, 3], vec![4, 5, 6]];
        assert_eq!(token_accuracy(&targets, &targets), (6, 6));
        let predictions = vec![vec![1, 0, 3], vec![0, 0, 6]];
        assert_eq!(token_accuracy(&predictions, &targets), (3, 6));
        // Missing predictions count as wrong.
        assert_eq!(token_accuracy(&[vec![1]], &targets), (1, 6));
        assert_eq!(token_accuracy(&[], &[]), (0, 0));
    }

    #[test]
    fn probe_text_is_in_vocabulary() {
        for kind in TaskKind::VARIANTS.iter().copied() {
            let task = Task::new(kind);
            let words = split_words(task.probe_text());
            assert!(!words.is_empty());
            for word in &words {
                assert!(task.vocabulary().id(word).is_some(), "{kind:?}: {word}");
            }
        }
        assert_eq!(
            split_words(Task::new(TaskKind::Reverse).probe_text()).len(),
            8
        );
        assert_eq!(split_words(Task::new(TaskKind::Sort).probe_text()).len(), 8);
    }
}
