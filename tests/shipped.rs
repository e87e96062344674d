//! The demo models the page ships (`assets/models/`, made by `scripts/train-models`): each one
//! loads, is small, and reaches the held-out accuracy its metadata states.

use burn::tensor::Device;
use glassbox::analysis::{head_matrix, mean_over_heads, strongest_keys};
use glassbox::model::{Checkpoint, Sidecars, WordTokenizer, run_traced};
use glassbox::train::{EVAL_BATCHES, Task, TaskKind, evaluate};
use strum::VariantArray;

const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/models");

/// The page's limit for a shipped model.
const MAX_SHIPPED_BYTES: usize = 1024 * 1024;

fn load(task: TaskKind) -> (Checkpoint, usize) {
    let path = format!("{MODELS}/{}.safetensors", task.name());
    let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let checkpoint = Checkpoint::parse(&bytes, Sidecars::default()).unwrap();
    (checkpoint, bytes.len())
}

#[test]
fn every_shipped_model_reaches_its_stated_held_out_accuracy() {
    for &task in TaskKind::VARIANTS {
        let (checkpoint, size_bytes) = load(task);
        assert!(
            size_bytes <= MAX_SHIPPED_BYTES,
            "{}: {size_bytes} bytes",
            task.name()
        );
        assert_eq!(checkpoint.meta("glassbox.task"), Some(task.name()));
        let stated: f64 = checkpoint
            .meta("glassbox.heldout_accuracy")
            .unwrap()
            .parse()
            .unwrap();
        let model = checkpoint.to_model(&Device::flex()).unwrap();
        let evaluation =
            pollster::block_on(evaluate(&model, &Task::new(task), EVAL_BATCHES)).unwrap();
        println!(
            "{}: {size_bytes} bytes, {} parameters, held-out accuracy {:.4} over {} tokens (stated {stated})",
            task.name(),
            model.parameter_count(),
            evaluation.accuracy(),
            evaluation.total
        );
        // The metadata rounds to four decimals.
        assert!(
            (evaluation.accuracy() - stated).abs() <= 5e-5,
            "{}: measured {} but the file states {stated}",
            task.name(),
            evaluation.accuracy()
        );
    }
}

#[test]
fn the_digit_models_are_nearly_perfect_and_the_language_model_beats_guessing_the() {
    let accuracy = |task: TaskKind| -> f64 {
        load(task)
            .0
            .meta("glassbox.heldout_accuracy")
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(accuracy(TaskKind::Reverse) >= 0.99);
    assert!(accuracy(TaskKind::Sort) >= 0.99);
    // "the", the most frequent word, is about 6% of the corpus.
    assert!(accuracy(TaskKind::Language) >= 0.12);
}

#[test]
fn the_reverse_model_attends_along_the_anti_diagonal() {
    let (checkpoint, _) = load(TaskKind::Reverse);
    let device = Device::flex();
    let model = checkpoint.to_model(&device).unwrap();
    let task = Task::new(TaskKind::Reverse);
    let tokenizer =
        WordTokenizer::new(checkpoint.vocabulary.clone(), checkpoint.config.max_seq_len);
    let ids = tokenizer.tokenize(task.probe_text()).ids();
    let len = ids.len();
    let trace = pollster::block_on(run_traced(&model, &[ids], &device)).unwrap();
    let mirror: Vec<usize> = (0..len).rev().collect();
    let mut found = Vec::new();
    for capture in &trace.attention {
        let mut maps = vec![("mean".to_string(), mean_over_heads(capture, 0).unwrap())];
        for head in 0..capture.heads {
            maps.push((
                format!("head {head}"),
                head_matrix(capture, 0, head).unwrap(),
            ));
        }
        for (name, matrix) in maps {
            if strongest_keys(&matrix) == mirror {
                found.push(format!("layer {} {name}", capture.layer));
            }
        }
    }
    println!("anti-diagonal in: {found:?}");
    assert!(
        !found.is_empty(),
        "no layer or head reads the input backwards"
    );
}
