//! The Diagnostics tab's decisions in plain Rust: the words and rows of its tables, the sort
//! rules of the parameter table, the training shape its memory is computed for, and the
//! exported report, all from plain data so the leptos components only wire them to signals.

use serde_json::{Value, json};

use crate::analysis::diagnostics::{
    BenchPass, FLOP_CONVENTION, FlopCount, LeafRow, OpClass, OptimizerState, ParameterStatistics,
    SPARSITY_THRESHOLD, SavedPart, SortKey, Timing, TrainingMemory, format_bytes, sort_rows,
};
use crate::format::group_thousands;
use crate::structure::{Head, Positional, TransformerConfig};
use crate::train::is_under;

/// Warm-up runs before timing, per benchmark pass.
pub const WARM_UP: usize = 10;
/// Timed runs per benchmark pass.
pub const TIMED: usize = 100;
/// Batch sizes (rows) of the saved-activation projection.
pub const PROJECT_BATCHES: [usize; 4] = [1, 8, 32, 64];
/// Sequence lengths (columns) of the saved-activation projection, where the model takes them.
pub const PROJECT_SEQS: [usize; 4] = [16, 64, 128, 512];
/// The training form's default batch size (`TrainConfig::new`), the memory section's default.
pub const DEFAULT_TRAINING_BATCH: usize = 64;

/// Parameters in all, trainable and frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParamCounts {
    /// Every parameter.
    pub total: usize,
    /// Parameters outside the frozen modules.
    pub trainable: usize,
    /// Parameters inside a frozen module.
    pub frozen: usize,
}

impl ParamCounts {
    /// The counts of the parameters `paths` (path and shape) with the modules `frozen` fixed.
    pub fn of(paths: &[(String, Vec<usize>)], frozen: &[String]) -> Self {
        let count = |shape: &Vec<usize>| shape.iter().product::<usize>();
        let total = paths.iter().map(|(_, shape)| count(shape)).sum();
        let frozen = paths
            .iter()
            .filter(|(path, _)| is_frozen(path, frozen))
            .map(|(_, shape)| count(shape))
            .sum();
        Self {
            total,
            trainable: total - frozen,
            frozen,
        }
    }

    /// The structure section's line, with counts grouped like the explorer's.
    pub fn text(&self) -> String {
        format!(
            "{} parameters: {} trainable, {} frozen",
            group_thousands(self.total),
            group_thousands(self.trainable),
            group_thousands(self.frozen)
        )
    }
}

/// Whether `path` lies in one of the `frozen` modules.
pub fn is_frozen(path: &str, frozen: &[String]) -> bool {
    frozen.iter().any(|prefix| is_under(path, prefix))
}

/// The parameters of the module `prefix` (a parameter path or a module above some).
pub fn module_count(paths: &[(String, Vec<usize>)], prefix: &str) -> usize {
    paths
        .iter()
        .filter(|(path, _)| is_under(path, prefix))
        .map(|(_, shape)| shape.iter().product::<usize>())
        .sum()
}

/// `frozen` with `module` added (`on`) or removed, sorted, each module once.
pub fn toggle_frozen(frozen: &[String], module: &str, on: bool) -> Vec<String> {
    let mut next: Vec<String> = frozen.iter().filter(|p| *p != module).cloned().collect();
    if on {
        next.push(module.to_string());
        next.sort();
    }
    next
}

/// One block of the architecture list, with the module a freeze box fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchitectureBlock {
    /// The module path the freeze box names: `embedding`, `layers.0`, `output`.
    pub module: String,
    /// What the block does and its shapes.
    pub description: String,
    /// The encoder layer, for the link to its attention.
    pub layer: Option<usize>,
}

impl ArchitectureBlock {
    /// The id of the block's freeze box: `freeze-layers-0`.
    pub fn freeze_id(&self) -> String {
        format!("freeze-{}", self.module.replace('.', "-"))
    }
}

/// The blocks of `config`, with shapes for the explorer's `seq` tokens (`seq` itself while
/// there is no input).
pub fn architecture(config: &TransformerConfig, seq: Option<usize>) -> Vec<ArchitectureBlock> {
    let seq = seq.map_or_else(|| "seq".to_string(), |n| n.to_string());
    let d = config.d_model;
    let block = |module: String, description: String, layer| ArchitectureBlock {
        module,
        description,
        layer,
    };
    let mut blocks = vec![block(
        "embedding".into(),
        format!("token embedding [1, {seq}] → [1, {seq}, {d}]"),
        None,
    )];
    if config.positional == Positional::Learned {
        blocks.push(block(
            "position_embedding".into(),
            format!("learned positions [1, {seq}] → [1, {seq}, {d}]"),
            None,
        ));
    }
    if config.token_types > 0 {
        blocks.push(block(
            "token_type_embedding".into(),
            format!(
                "{} token types (sentence A/B) [1, {seq}] → [1, {seq}, {d}]",
                config.token_types
            ),
            None,
        ));
    }
    if config.embedding_norm {
        blocks.push(block(
            "embedding_norm".into(),
            format!("LayerNorm over the embeddings' sum [1, {seq}, {d}]"),
            None,
        ));
    }
    for layer in 0..config.num_layers {
        blocks.push(block(
            format!("layers.{layer}"),
            format!(
                "encoder layer {layer}: {} heads, feed-forward {} — [1, {seq}, {d}] → [1, {seq}, {d}]",
                config.num_heads, config.d_ff
            ),
            Some(layer),
        ));
    }
    if config.final_norm {
        blocks.push(block(
            "final_norm".into(),
            format!("final LayerNorm [1, {seq}, {d}]"),
            None,
        ));
    }
    let vocab = config.vocab_size;
    match config.head {
        Head::Linear => blocks.push(block(
            "output".into(),
            format!("output head [1, {seq}, {d}] → [1, {seq}, {vocab}]"),
            None,
        )),
        // The embedding's own block (and freeze box) stands for the tied head too.
        Head::TiedEmbedding => {
            blocks[0].description.push_str(&format!(
                "; also the output head, tied: [1, {seq}, {d}] → [1, {seq}, {vocab}]"
            ));
        }
        Head::MaskedLm => blocks.push(block(
            "head_transform".into(),
            format!(
                "masked-LM head: dense, activation, LayerNorm, then the tied embedding [1, {seq}, {d}] → [1, {seq}, {vocab}]"
            ),
            None,
        )),
        Head::None => {}
    }
    blocks
}

/// How the parameter table is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortState {
    /// The column.
    pub key: SortKey,
    /// Largest (or last) first.
    pub descending: bool,
}

impl Default for SortState {
    /// Biggest tensors first.
    fn default() -> Self {
        Self {
            key: SortKey::Count,
            descending: true,
        }
    }
}

impl SortState {
    /// The order after a click on `key`'s header: a new column starts A→Z for paths and biggest
    /// first for counts; a second click on the same column turns the order round.
    pub fn clicked(self, key: SortKey) -> Self {
        let descending = if self.key == key {
            !self.descending
        } else {
            key == SortKey::Count
        };
        Self { key, descending }
    }

    /// `rows` in this order.
    pub fn sorted(self, mut rows: Vec<LeafRow>) -> Vec<LeafRow> {
        sort_rows(&mut rows, self.key, self.descending);
        rows
    }
}

/// One row of the parameter table as text.
pub fn leaf_cells(row: &LeafRow) -> [String; 4] {
    [
        row.path.clone(),
        format!("{:?}", row.shape),
        group_thousands(row.count),
        format!("{:.2}%", 100.0 * row.share),
    ]
}

/// The line above the weight histograms.
pub fn overall_text(stats: &ParameterStatistics) -> String {
    let s = &stats.overall;
    format!(
        "All {} weights: mean {:.4e}, std {:.4e}, min {:.4e}, max {:.4e}; {:.2}% with |w| < {SPARSITY_THRESHOLD:e}.",
        group_thousands(s.count),
        s.summary.mean,
        s.summary.std,
        s.summary.min,
        s.summary.max,
        100.0 * s.sparsity
    )
}

/// The sequence the FLOPs are counted for: the explorer's input, or while there is none one
/// sequence of the longest input the model takes.
pub fn flops_seq(config: &TransformerConfig, run_len: Option<usize>) -> usize {
    run_len.filter(|&n| n > 0).unwrap_or(config.max_seq_len)
}

/// The note above the FLOPs table.
pub fn flops_note(config: &TransformerConfig, run_len: Option<usize>) -> String {
    match run_len.filter(|&n| n > 0) {
        Some(n) => format!(
            "FLOPs of one forward pass on the explorer's input (1 × {} tokens), counted from shapes: {FLOP_CONVENTION}.",
            group_thousands(n)
        ),
        None => format!(
            "No input in the explorer yet (type some text there to count its FLOPs), so this \
             counts one forward pass on one sequence of the longest input the model takes \
             ({} tokens), from shapes: {FLOP_CONVENTION}.",
            group_thousands(config.max_seq_len)
        ),
    }
}

/// One row of the FLOPs table: a label, one cell per layer, outside the layers, total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlopsRow {
    /// The op class, or `all`.
    pub label: &'static str,
    /// Per layer.
    pub layers: Vec<String>,
    /// Outside the layers.
    pub outside: String,
    /// Over the whole pass.
    pub total: String,
    /// Whether this is the totals row.
    pub is_total: bool,
}

/// The FLOPs table: one row per op class, then the totals, counts grouped by thousands.
pub fn flops_rows(flops: &FlopCount) -> Vec<FlopsRow> {
    let text = |value: u64| group_thousands(value as usize);
    let mut rows: Vec<FlopsRow> = OpClass::all()
        .map(|class| FlopsRow {
            label: class.name(),
            layers: flops
                .layers
                .iter()
                .map(|layer| text(layer.get(&class).copied().unwrap_or(0)))
                .collect(),
            outside: text(flops.outside.get(&class).copied().unwrap_or(0)),
            total: text(flops.class_total(class)),
            is_total: false,
        })
        .collect();
    rows.push(FlopsRow {
        label: "all",
        layers: (0..flops.layers.len())
            .map(|layer| text(flops.per_layer_total(layer)))
            .collect(),
        outside: text(flops.outside.values().sum()),
        total: text(flops.total()),
        is_total: true,
    });
    rows
}

/// The batch and sequence length the memory of a training step is computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainingShape {
    /// Sequences per step.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq: usize,
}

impl TrainingShape {
    /// The training form's default batch, and the longest input `config` takes.
    pub fn default_for(config: &TransformerConfig) -> Self {
        Self {
            batch: DEFAULT_TRAINING_BATCH,
            seq: config.max_seq_len,
        }
    }
}

/// Reads a whole number in `1..=max` from a form field named `what`, or says in words why not.
pub fn parse_count(text: &str, what: &str, max: usize) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(value) if (1..=max).contains(&value) => Ok(value),
        Ok(_) => Err(format!(
            "The {what} must be between 1 and {}.",
            group_thousands(max)
        )),
        Err(_) => Err(format!(
            "The {what} must be a whole number, not “{}”.",
            text.trim()
        )),
    }
}

/// Largest batch the memory section accepts.
pub const MAX_MEMORY_BATCH: usize = 65_536;

/// One row of the memory table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRow {
    /// What is counted.
    pub label: String,
    /// Bytes, `None` where there is nothing to measure yet.
    pub bytes: Option<u64>,
    /// Whether this row is a total.
    pub is_total: bool,
}

impl MemoryRow {
    /// The size in binary units, or a dash.
    pub fn size(&self) -> String {
        self.bytes.map_or_else(|| "—".to_string(), format_bytes)
    }

    /// The bytes grouped by thousands, or a dash.
    pub fn exact(&self) -> String {
        self.bytes
            .map_or_else(|| "—".to_string(), |b| group_thousands(b as usize))
    }
}

/// The label of the training total row.
pub const TRAINING_TOTAL_LABEL: &str = "training step with AdamW: parameters, gradients and state of the trainable ones, saved activations";

/// The memory table: parameters, gradients and optimizer states of the trainable parameters,
/// the activations kept for backward by part, the training total, and apart from the total the
/// trace the explorer read back (`trace_bytes`, `None` without a run).
pub fn memory_rows(memory: &TrainingMemory, trace_bytes: Option<u64>) -> Vec<MemoryRow> {
    let row = |label: String, bytes: Option<u64>, is_total| MemoryRow {
        label,
        bytes,
        is_total,
    };
    let saved = &memory.saved;
    let mut rows = vec![
        row(
            "parameters (f32, all)".into(),
            Some(memory.parameters),
            false,
        ),
        row(
            "gradients (trainable parameters only)".into(),
            Some(memory.gradients),
            false,
        ),
    ];
    rows.extend(OptimizerState::all().map(|state| {
        row(
            format!("optimizer state: {} (trainable only)", state.name()),
            Some(memory.optimizer_bytes(state)),
            false,
        )
    }));
    rows.extend(
        SavedPart::all()
            .filter(|&part| saved.part(part) > 0)
            .map(|part| {
                row(
                    format!("kept for backward: {}", part.name()),
                    Some(saved.part(part)),
                    false,
                )
            }),
    );
    rows.push(row(
        format!(
            "activations kept for backward, {} × {} tokens (computed from shapes)",
            group_thousands(saved.batch),
            group_thousands(saved.seq)
        ),
        Some(saved.total()),
        true,
    ));
    rows.push(row(
        TRAINING_TOTAL_LABEL.into(),
        Some(memory.total(OptimizerState::AdamW)),
        true,
    ));
    rows.push(row(
        "not in the total: the explorer's trace (batch 1), measured from what was read back".into(),
        trace_bytes,
        false,
    ));
    rows
}

/// The note under the memory table: where the saved activations come from.
pub const MEMORY_NOTE: &str = "Activations kept for backward are computed from shapes, not \
measured: per op what its gradient needs (a linear keeps its input, a matrix product both \
operands, softmax, ReLU and sigmoid their output, GELU its input, LayerNorm its input, mean and \
1/σ, dropout its mask, the loss its log-softmax), each tensor once, for a model whose every \
tensor trains. The rule is checked against what PyTorch's autograd saves for the same forward; \
burn's autodiff, whose ops choose their own saved tensors, is not measured here. Frozen tensors \
have no gradient and no optimizer state.";

/// One benchmark result.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedRow {
    /// The backend's label.
    pub backend: String,
    /// What was timed.
    pub pass: BenchPass,
    /// Median and p95.
    pub timing: Timing,
    /// Sequences per run.
    pub batch: usize,
}

impl SpeedRow {
    /// The table's cells: backend, pass, median ms, p95 ms, sequences per second.
    pub fn cells(&self) -> [String; 5] {
        [
            self.backend.clone(),
            self.pass.name().to_string(),
            format!("{:.2}", self.timing.median_ms),
            format!("{:.2}", self.timing.p95_ms),
            format!("{:.1}", self.timing.samples_per_s(self.batch)),
        ]
    }
}

/// The note beside the benchmark buttons.
pub fn bench_note() -> String {
    format!(
        "{WARM_UP} warm-up runs, then {TIMED} timed runs of each pass, on the page's backend and the CPU."
    )
}

/// Benchmark runs in all for `backends` backends.
pub fn bench_total_runs(backends: usize) -> usize {
    backends * BenchPass::all().count() * (WARM_UP + TIMED)
}

/// Everything the exported report holds, as plain data.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// Where the model came from.
    pub provenance: Option<&'a str>,
    /// The model's config.
    pub config: Option<&'a TransformerConfig>,
    /// The parameter counts.
    pub counts: ParamCounts,
    /// The frozen modules.
    pub frozen: &'a [String],
    /// One row per parameter tensor.
    pub tensors: &'a [LeafRow],
    /// The weights' statistics, once read.
    pub statistics: Option<&'a ParameterStatistics>,
    /// The FLOPs and the tokens they are counted for.
    pub flops: Option<(&'a FlopCount, usize)>,
    /// The memory of a training step.
    pub memory: Option<&'a TrainingMemory>,
    /// Bytes of the explorer's trace.
    pub trace_bytes: Option<u64>,
    /// The benchmark's results.
    pub speed: &'a [SpeedRow],
}

/// The report as JSON.
pub fn report_json(report: &Report) -> Value {
    let stats_json = |stats: &ParameterStatistics| -> Vec<Value> {
        stats
            .tensors
            .iter()
            .chain(std::iter::once(&stats.overall))
            .map(|s| {
                json!({
                    "path": s.path, "mean": s.summary.mean, "std": s.summary.std,
                    "min": s.summary.min, "max": s.summary.max,
                    "near_zero_share": s.sparsity, "near_zero_below": SPARSITY_THRESHOLD,
                })
            })
            .collect()
    };
    json!({
        "model": report.provenance,
        "config": report.config.and_then(|c| serde_json::to_value(c).ok()),
        "parameters": {
            "total": report.counts.total,
            "trainable": report.counts.trainable,
            "frozen": report.counts.frozen,
            "frozen_modules": report.frozen,
            "tensors": report.tensors.iter().map(|row| json!({
                "path": row.path, "shape": row.shape, "count": row.count, "share": row.share,
            })).collect::<Vec<_>>(),
            "statistics": report.statistics.map(stats_json),
        },
        "flops": report.flops.map(|(flops, seq)| json!({
            "convention": FLOP_CONVENTION,
            "input": {"batch": 1, "seq": seq},
            "total": flops.total(),
            "matmul_total": flops.matmul_total(),
            "by_class": OpClass::all().map(|class| (class.name().to_string(), json!(flops.class_total(class)))).collect::<serde_json::Map<_, _>>(),
            "per_layer": (0..flops.layers.len()).map(|layer| flops.per_layer_total(layer)).collect::<Vec<_>>(),
        })),
        "memory_bytes": report.memory.map(|memory| json!({
            "parameters": memory.parameters,
            "gradients": memory.gradients,
            "optimizer": memory.optimizer.iter().map(|(state, bytes)| (state.name().to_string(), json!(bytes))).collect::<serde_json::Map<_, _>>(),
            "saved_for_backward": {
                "how": "computed from shapes (per-op autograd rules, checked against PyTorch)",
                "batch": memory.saved.batch,
                "seq": memory.saved.seq,
                "total": memory.saved.total(),
                "by_part": memory.saved.parts.iter().map(|(part, bytes)| (part.name().to_string(), json!(bytes))).collect::<serde_json::Map<_, _>>(),
            },
            "training_total_adamw": memory.total(OptimizerState::AdamW),
            "explorer_trace_measured": report.trace_bytes,
        })),
        "speed": report.speed.iter().map(|row| json!({
            "backend": row.backend, "pass": row.pass.name(), "batch": row.batch, "runs": row.timing.runs,
            "median_ms": row.timing.median_ms, "p95_ms": row.timing.p95_ms,
            "samples_per_s": row.timing.samples_per_s(row.batch),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::diagnostics::{forward_flops, leaf_table, saved_for_backward};

    fn paths() -> Vec<(String, Vec<usize>)> {
        vec![
            ("embedding.weight".into(), vec![10, 4]),
            ("layers.0.attn.query.weight".into(), vec![4, 4]),
            ("layers.0.attn.query.bias".into(), vec![4]),
            ("layers.10.ff.linear1.weight".into(), vec![4, 8]),
            ("output.weight".into(), vec![4, 1000]),
        ]
    }

    #[test]
    fn counts_are_grouped_like_the_explorer() {
        let counts = ParamCounts::of(&paths(), &["layers.0".to_string()]);
        assert_eq!(
            counts,
            ParamCounts {
                total: 4092,
                trainable: 4072,
                frozen: 20
            }
        );
        // The old tab wrote "4092 parameters".
        assert_eq!(
            counts.text(),
            "4,092 parameters: 4,072 trainable, 20 frozen"
        );
        // `layers.1` is not a prefix of `layers.10`.
        assert_eq!(module_count(&paths(), "layers.1"), 0);
        assert_eq!(module_count(&paths(), "layers.10"), 32);
        assert_eq!(
            leaf_cells(&leaf_table(&paths())[4]),
            [
                "output.weight".to_string(),
                "[4, 1000]".into(),
                "4,000".into(),
                "97.75%".into()
            ]
        );
    }

    #[test]
    fn freezing_toggles_one_module() {
        let frozen = toggle_frozen(&[], "layers.0", true);
        let frozen = toggle_frozen(&frozen, "embedding", true);
        assert_eq!(frozen, ["embedding", "layers.0"]);
        assert_eq!(toggle_frozen(&frozen, "embedding", true), frozen);
        assert_eq!(toggle_frozen(&frozen, "layers.0", false), ["embedding"]);
        assert!(is_frozen("layers.0.ff.linear1.weight", &frozen));
        assert!(!is_frozen("layers.00.ff.linear1.weight", &frozen));
    }

    #[test]
    fn sorting_follows_the_header_clicks() {
        let state = SortState::default();
        assert_eq!((state.key, state.descending), (SortKey::Count, true));
        let by_path = state.clicked(SortKey::Path);
        assert_eq!((by_path.key, by_path.descending), (SortKey::Path, false));
        let back = by_path.clicked(SortKey::Path);
        assert!(back.descending);
        assert!(!back.clicked(SortKey::Path).descending);
        let count = back.clicked(SortKey::Count);
        assert_eq!((count.key, count.descending), (SortKey::Count, true));
        assert!(!count.clicked(SortKey::Count).descending);
        let rows = by_path.sorted(leaf_table(&paths()));
        assert_eq!(rows[0].path, "embedding.weight");
        let rows = state.sorted(leaf_table(&paths()));
        assert_eq!(rows[0].path, "output.weight");
    }

    #[test]
    fn the_flops_note_says_what_it_needs_without_a_run() {
        let config = TransformerConfig::seed();
        let none = flops_note(&config, None);
        // The old note said "1 × 0 tokens".
        assert!(!none.contains("× 0"), "{none}");
        assert!(none.contains("type some text"), "{none}");
        assert!(none.contains("512 tokens"), "{none}");
        assert_eq!(flops_note(&config, Some(0)), none);
        assert_eq!(flops_seq(&config, None), 512);
        assert_eq!(flops_seq(&config, Some(7)), 7);
        assert!(flops_note(&config, Some(1234)).contains("(1 × 1,234 tokens)"));
        let rows = flops_rows(&forward_flops(&config, 1, 7));
        assert_eq!(rows.len(), OpClass::all().count() + 1);
        let total = rows.last().unwrap();
        assert!(total.is_total);
        assert_eq!(total.layers.len(), 4);
        assert_eq!(
            total.total,
            group_thousands(forward_flops(&config, 1, 7).total() as usize)
        );
        assert!(total.total.contains(','));
    }

    #[test]
    fn architecture_names_the_freezable_modules() {
        let config = TransformerConfig::tiny().with_positional(Positional::Learned);
        let blocks = architecture(&config, None);
        let modules: Vec<&str> = blocks.iter().map(|b| b.module.as_str()).collect();
        assert_eq!(
            modules,
            [
                "embedding",
                "position_embedding",
                "layers.0",
                "layers.1",
                "output"
            ]
        );
        assert_eq!(blocks[2].freeze_id(), "freeze-layers-0");
        assert_eq!(blocks[2].layer, Some(0));
        assert!(blocks[0].description.contains("[1, seq]"));
        assert!(
            architecture(&config, Some(5))[0]
                .description
                .contains("[1, 5, 64]")
        );
    }

    #[test]
    fn memory_rows_follow_the_training_step() {
        let config = TransformerConfig::new(10, 4, 2, 8, 1);
        let saved = saved_for_backward(&config, 2, 3);
        let memory = TrainingMemory::new(1000, 600, saved.clone());
        let rows = memory_rows(&memory, None);
        let find = |label: &str| {
            rows.iter()
                .find(|row| row.label.starts_with(label))
                .unwrap_or_else(|| panic!("no row {label}"))
        };
        assert_eq!(find("parameters").bytes, Some(4000));
        assert_eq!(find("gradients").bytes, Some(2400));
        assert_eq!(find("optimizer state: AdamW").bytes, Some(4800));
        assert_eq!(
            find("activations kept for backward, 2 × 3 tokens").bytes,
            Some(saved.total())
        );
        let total = find(TRAINING_TOTAL_LABEL);
        // The old total added the explorer's trace and counted state for frozen tensors.
        assert_eq!(total.bytes, Some(4000 + 2400 + 4800 + saved.total()));
        assert!(total.is_total);
        let trace = find("not in the total");
        assert_eq!((trace.size(), trace.exact()), ("—".into(), "—".into()));
        assert_eq!(
            memory_rows(&memory, Some(12_345)).last().unwrap().exact(),
            "12,345"
        );
        // Parts without bytes (no dropout, not causal) get no row.
        assert!(!rows.iter().any(|row| row.label.contains("dropout")));
        assert_eq!(
            TrainingShape::default_for(&config),
            TrainingShape {
                batch: DEFAULT_TRAINING_BATCH,
                seq: 512
            }
        );
    }

    #[test]
    fn form_counts_are_checked_in_words() {
        assert_eq!(parse_count(" 32 ", "batch", 64), Ok(32));
        assert_eq!(
            parse_count("0", "batch", 64),
            Err("The batch must be between 1 and 64.".into())
        );
        assert_eq!(
            parse_count("2000", "sequence length", 1024),
            Err("The sequence length must be between 1 and 1,024.".into())
        );
        assert_eq!(
            parse_count("a lot", "batch", 64),
            Err("The batch must be a whole number, not “a lot”.".into())
        );
    }

    #[test]
    fn the_report_holds_the_numbers_shown() {
        let config = TransformerConfig::new(10, 4, 2, 8, 1);
        let rows = leaf_table(&paths());
        let counts = ParamCounts::of(&paths(), &[]);
        let flops = forward_flops(&config, 1, 3);
        let memory = TrainingMemory::new(
            counts.total,
            counts.trainable,
            saved_for_backward(&config, 2, 3),
        );
        let speed = [SpeedRow {
            backend: "CPU".into(),
            pass: BenchPass::ForwardBackward,
            timing: Timing::of(&[2.0, 4.0]).unwrap(),
            batch: 2,
        }];
        let report = report_json(&Report {
            provenance: Some("seed preset"),
            config: Some(&config),
            counts,
            frozen: &[],
            tensors: &rows,
            statistics: None,
            flops: Some((&flops, 3)),
            memory: Some(&memory),
            trace_bytes: Some(100),
            speed: &speed,
        });
        assert_eq!(report["parameters"]["total"], 4092);
        assert_eq!(report["parameters"]["tensors"].as_array().unwrap().len(), 5);
        assert_eq!(report["config"]["d_model"], 4);
        assert_eq!(report["flops"]["matmul_total"], flops.matmul_total());
        assert_eq!(report["flops"]["input"]["seq"], 3);
        assert_eq!(
            report["memory_bytes"]["saved_for_backward"]["total"],
            memory.saved.total()
        );
        assert_eq!(
            report["memory_bytes"]["training_total_adamw"],
            memory.total(OptimizerState::AdamW)
        );
        assert_eq!(report["memory_bytes"]["explorer_trace_measured"], 100);
        assert_eq!(report["speed"][0]["pass"], "forward + backward");
        assert_eq!(speed[0].cells()[4], "666.7");
        assert_eq!(bench_total_runs(2), 2 * 2 * (WARM_UP + TIMED));
    }
}
