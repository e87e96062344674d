//! HuggingFace model folders (`tests/fixtures/hf/`, made with `transformers` by
//! `scripts/hf_fixtures.py`) opened by glassbox: token ids, attention, hidden states, logits,
//! top-5 predictions and the gradients of "analyse one batch" against HuggingFace's, and every
//! kind of bad folder refused by name.
//!
//! Run with `--nocapture` to see the largest error of each quantity.

use std::collections::BTreeMap;

use burn::tensor::Device;
use glassbox::analysis::hf_parity::{
    HfReference, compare_hf_forward, gradient_reference, gradients_by_checkpoint_name,
};
use glassbox::analysis::parity::compare_gradients;
use glassbox::analysis::predictions::{position_logits, top_k};
use glassbox::model::hf::{HfError, OpenedModel, open_folder};
use glassbox::model::hf_tokenizer::{HfTokenizer, TokenizerFiles};
use glassbox::model::{Head, Layout, Role, Site};
use glassbox::train::{analyse_batch, masked_lm_batch, next_token_batch};
use proptest::prelude::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf");

/// Every file of a fixture folder, named `folder/file` as a folder picker gives them.
fn folder_files(name: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(format!("{FIXTURES}/{name}"))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let file = entry.file_name().into_string().unwrap();
            (
                format!("{name}/{file}"),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn open(files: Vec<(String, Vec<u8>)>) -> Result<OpenedModel, HfError> {
    pollster::block_on(open_folder(files, &Device::flex(), |_, _| {}))
}

fn reference(name: &str) -> HfReference {
    let tensors = std::fs::read(format!("{FIXTURES}/{name}.expected.safetensors")).unwrap();
    let json = std::fs::read_to_string(format!("{FIXTURES}/{name}.expected.json")).unwrap();
    HfReference::parse(&tensors, &json).unwrap()
}

const MODELS: [&str; 5] = ["bert-mlm", "bert-plain", "gpt2", "gpt2-bare", "roberta-mlm"];

#[test]
fn token_ids_equal_huggingfaces_for_every_text_of_the_table() {
    for name in MODELS {
        let opened = open(folder_files(name)).unwrap();
        let reference = reference(name);
        // The table's 300-character word is longer than the model's 64 positions: uncut here.
        let mut uncut = opened.tokenizer.clone();
        uncut.max_len = 10_000;
        for row in &reference.expected.tokenizer_table {
            let tokens = uncut.tokenize(&row.text, None);
            assert_eq!(tokens.ids(), row.ids, "{name}: {:?}", row.text);
            assert_eq!(tokens.dropped, 0);
        }
        let tokens = opened.tokenizer.tokenize(
            &reference.expected.text,
            reference.expected.text_b.as_deref(),
        );
        assert_eq!(tokens.ids(), reference.expected.ids, "{name}");
        if let Some(types) = &reference.expected.token_type_ids {
            assert_eq!(&tokens.segments(), types, "{name}: token types");
        }
    }
}

#[test]
fn a_folder_without_tokenizer_json_builds_the_same_tokenizer_from_its_vocabulary_files() {
    // gpt2-bare has only vocab.json and merges.txt (merges in the old `a b` form).
    let mut bare = open(folder_files("gpt2-bare")).unwrap();
    bare.tokenizer.max_len = 10_000;
    let table = reference("gpt2").expected.tokenizer_table;
    for row in &table {
        assert_eq!(
            bare.tokenizer.tokenize(&row.text, None).ids(),
            row.ids,
            "{:?}",
            row.text
        );
    }
    // BERT from vocab.txt alone, with and without tokenizer_config.json.
    let read = |file: &str| std::fs::read_to_string(format!("{FIXTURES}/bert-mlm/{file}")).unwrap();
    let vocab = read("vocab.txt");
    let config = read("tokenizer_config.json");
    for tokenizer_config in [Some(config.as_str()), None] {
        let files = TokenizerFiles {
            vocab_txt: Some(&vocab),
            tokenizer_config,
            ..TokenizerFiles::default()
        };
        let tokenizer = HfTokenizer::from_files(files, "BERT", 10_000).unwrap();
        for row in &reference("bert-mlm").expected.tokenizer_table {
            assert_eq!(
                tokenizer.tokenize(&row.text, None).ids(),
                row.ids,
                "{:?}",
                row.text
            );
        }
        assert_eq!(tokenizer.assumptions.is_empty(), tokenizer_config.is_some());
    }
}

#[test]
fn the_padding_and_truncation_a_tokenizer_json_carries_are_switched_off() {
    // bert-plain's tokenizer.json pads every input to 128, like all-MiniLM-L6-v2's.
    let opened = open(folder_files("bert-plain")).unwrap();
    let unpadded = open(folder_files("bert-mlm")).unwrap();
    let tokens = opened.tokenizer.tokenize("call me", None);
    assert_eq!(
        tokens.ids(),
        unpadded.tokenizer.tokenize("call me", None).ids()
    );
    assert!(
        tokens.tokens.len() < 10,
        "no padding to 128: {}",
        tokens.tokens.len()
    );
    // Longer than the model's 64 positions: cut, and the cut is counted.
    let long = "call me ishmael ".repeat(40);
    let tokens = opened.tokenizer.tokenize(&long, None);
    assert_eq!(tokens.tokens.len(), 64);
    let mut uncut = opened.tokenizer.clone();
    uncut.max_len = 10_000;
    assert_eq!(
        tokens.dropped,
        uncut.tokenize(&long, None).tokens.len() - 64
    );
    assert_eq!(tokens.tokens.last().unwrap().source, "[SEP]");
}

#[test]
fn tokens_show_legibly_with_their_ids() {
    let gpt2 = open(folder_files("gpt2")).unwrap();
    let tokens = gpt2.tokenizer.tokenize("Call me 🙂", None);
    let shown: Vec<&str> = tokens.tokens.iter().map(|t| t.display.as_str()).collect();
    assert_eq!(shown[..3], ["C", "all", "␣me"]);
    // The emoji's four bytes are split across tokens that are not UTF-8 on their own.
    assert_eq!(shown[3], "␣");
    assert_eq!(shown[4..], ["<F0>", "<9F>", "<99>", "<82>"]);
    let bert = open(folder_files("bert-mlm")).unwrap();
    let tokens = bert.tokenizer.tokenize("sailing", None);
    let shown: Vec<&str> = tokens.tokens.iter().map(|t| t.display.as_str()).collect();
    assert!(
        shown.iter().any(|token| token.starts_with("##")),
        "{shown:?}"
    );
    assert!(tokens.tokens[0].special && tokens.tokens[0].display == "[CLS]");
}

fn check_forward(name: &str) {
    let opened = open(folder_files(name)).unwrap();
    let reference = reference(name);
    let device = Device::flex();
    let tokens = opened.tokenizer.tokenize(
        &reference.expected.text,
        reference.expected.text_b.as_deref(),
    );
    let ids = opened.model.token_tensor(&[tokens.ids()], &device).unwrap();
    let types = opened
        .model
        .type_tensor(&[tokens.segments()], &device)
        .unwrap();
    let (logits, recorder) = opened.model.forward_traced_typed(ids, Some(types));
    let [_, seq, vocab] = logits.dims();
    let logits: Vec<f32> = logits.into_data().try_into_vec_as::<f32>().unwrap();
    let trace = pollster::block_on(recorder.read()).unwrap();
    let parity = compare_hf_forward(&reference, &trace, &logits).unwrap();
    for (what, difference) in [
        ("attention", &parity.attention),
        ("hidden states", &parity.hidden),
        ("logits", &parity.logits),
    ] {
        println!("{name}: {what}: {}", difference.describe());
        assert!(
            difference.within_tolerance(),
            "{name}: {what}: {}",
            difference.describe()
        );
    }
    assert!(parity.hidden.compared > 0 && parity.attention.compared > 0);
    assert_eq!(
        parity.logits.compared > 0,
        opened.model.has_head(),
        "{name}"
    );
    for (position, expected) in &reference.expected.top5 {
        let row = position_logits(&logits, vocab, position.parse().unwrap()).unwrap();
        let ids: Vec<u32> = top_k(row, 5).iter().map(|p| p.id).collect();
        assert_eq!(&ids, expected, "{name}: top-5 at {position}");
    }
    assert!(seq > 0);
    // Captures are labelled with the checkpoint's own module paths.
    let label = |role, layer| trace.at(Site::layer(role, layer)).unwrap().path.clone();
    let expected_label = match opened.plan.config.layout {
        Layout::Bert { prefixed: true } => "bert.encoder.layer.1.intermediate.dense",
        Layout::Bert { prefixed: false } => "encoder.layer.1.intermediate.dense",
        Layout::Gpt2 { prefixed: true } => "transformer.h.1.mlp.c_fc",
        Layout::Roberta { prefixed: true } => "roberta.encoder.layer.1.intermediate.dense",
        _ => "h.1.mlp.c_fc",
    };
    assert_eq!(label(Role::FeedForwardHidden, 1), expected_label);
}

#[test]
fn bert_with_a_masked_lm_head_matches_transformers() {
    check_forward("bert-mlm");
}

#[test]
fn a_bert_encoder_without_a_head_and_with_old_names_matches_transformers() {
    check_forward("bert-plain");
}

#[test]
fn gpt2_matches_transformers() {
    check_forward("gpt2");
}

#[test]
fn gpt2_without_the_transformer_prefix_and_with_mask_buffers_matches_transformers() {
    check_forward("gpt2-bare");
}

fn check_gradients(name: &str) {
    let opened = open(folder_files(name)).unwrap();
    let reference = reference(name);
    let analysis = reference.expected.analysis.clone().unwrap();
    let text_b = reference.expected.text_b.as_deref();
    let batch = match opened.model.head {
        Head::MaskedLm => {
            // The reference masks the unmasked text: the same rule must pick the same tokens.
            let (mask_token, mask) = opened.tokenizer.mask().unwrap();
            let unmasked = reference.expected.text.replace(mask_token, "Ishmael");
            let tokens = opened.tokenizer.tokenize(&unmasked, text_b);
            let (batch, masked) = masked_lm_batch(&tokens, mask).unwrap();
            assert_eq!(batch.inputs[0], analysis.input_ids);
            assert_eq!(Some(masked), analysis.masked_positions);
            batch
        }
        _ => {
            let tokens = opened.tokenizer.tokenize(&reference.expected.text, None);
            let batch = next_token_batch(&tokens).unwrap();
            assert_eq!(batch.inputs[0], analysis.input_ids);
            batch
        }
    };
    let result = pollster::block_on(analyse_batch(&opened.model, &batch)).unwrap();
    let gradients = gradients_by_checkpoint_name(
        &result.gradients,
        opened.plan.config.layout,
        &analysis.gradients,
    );
    let parity =
        compare_gradients(&gradient_reference(&analysis), result.loss, &gradients).unwrap();
    println!("{name}: loss: {}", parity.loss.describe());
    for (statistic, difference) in &parity.statistics {
        println!("{name}: gradient {statistic}: {}", difference.describe());
    }
    assert!(parity.within_tolerance(), "{name}: {parity:?}");
}

#[test]
fn analysing_one_masked_lm_batch_matches_transformers_loss_and_gradients() {
    check_gradients("bert-mlm");
}

#[test]
fn roberta_with_its_position_offset_and_lm_head_matches_transformers() {
    check_forward("roberta-mlm");
    check_gradients("roberta-mlm");
    let opened = open(folder_files("roberta-mlm")).unwrap();
    assert_eq!(opened.plan.config.config.position_offset, 2);
    assert_eq!(opened.plan.config.config.max_seq_len, 128);
    assert_eq!(
        opened.tokenizer.mask().map(|(token, _)| token),
        Some("<mask>")
    );
}

#[test]
fn roberta_builds_its_tokenizer_from_vocab_json_and_merges_txt() {
    let read =
        |file: &str| std::fs::read_to_string(format!("{FIXTURES}/roberta-mlm/{file}")).unwrap();
    let (vocab, merges) = (read("vocab.json"), read("merges.txt"));
    let files = TokenizerFiles {
        vocab_json: Some(&vocab),
        merges_txt: Some(&merges),
        ..TokenizerFiles::default()
    };
    let tokenizer = HfTokenizer::from_files(files, "RoBERTa", 10_000).unwrap();
    let reference = reference("roberta-mlm");
    for row in &reference.expected.tokenizer_table {
        assert_eq!(
            tokenizer.tokenize(&row.text, None).ids(),
            row.ids,
            "{:?}",
            row.text
        );
    }
    let pair = tokenizer.tokenize(
        &reference.expected.text,
        reference.expected.text_b.as_deref(),
    );
    assert_eq!(
        pair.ids(),
        reference.expected.ids,
        "the pair with its <mask>"
    );
}

#[test]
fn analysing_one_next_token_batch_matches_transformers_loss_and_gradients() {
    check_gradients("gpt2");
    check_gradients("gpt2-bare");
}

#[test]
fn parameter_counts_match_transformers() {
    for name in MODELS {
        let opened = open(folder_files(name)).unwrap();
        let expected = reference(name).expected.num_parameters as usize;
        // The pooler is in the file and in HuggingFace's count, but no view uses it.
        let pooler: usize = if name == "bert-plain" {
            32 * 32 + 32
        } else {
            0
        };
        assert_eq!(opened.model.parameter_count() + pooler, expected, "{name}");
        let unused: Vec<&str> = opened
            .plan
            .unused
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        if name == "bert-plain" {
            assert!(unused.contains(&"pooler.dense.weight"), "{unused:?}");
        }
        assert!(
            opened.describe().contains("stored as F32"),
            "{}",
            opened.describe()
        );
    }
}

/// A fixture folder with one file replaced (or removed, with `None`).
fn with_file(name: &str, file: &str, contents: Option<Vec<u8>>) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = folder_files(name)
        .into_iter()
        .filter(|(path, _)| !path.ends_with(&format!("/{file}")))
        .collect();
    if let Some(contents) = contents {
        files.push((format!("{name}/{file}"), contents));
    }
    files
}

fn edited_config(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}/config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut config);
    serde_json::to_vec(&config).unwrap()
}

fn error_of(files: Vec<(String, Vec<u8>)>) -> String {
    match open(files) {
        Ok(_) => panic!("the folder opened"),
        Err(error) => error.to_string(),
    }
}

/// The safetensors file of a fixture with its tensors changed by `edit`.
fn edited_weights(
    name: &str,
    edit: impl FnOnce(&mut BTreeMap<String, (Vec<usize>, Vec<u8>)>),
) -> Vec<u8> {
    let bytes = std::fs::read(format!("{FIXTURES}/{name}/model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = file
        .iter()
        .filter(|(_, view)| view.dtype() == safetensors::Dtype::F32)
        .map(|(name, view)| {
            (
                name.to_string(),
                (view.shape().to_vec(), view.data().to_vec()),
            )
        })
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, (shape, data))| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn bad_folders_are_refused_with_the_file_tensor_or_field_at_fault() {
    let unsupported = with_file(
        "gpt2",
        "config.json",
        Some(edited_config("gpt2", |c| c["model_type"] = "llama".into())),
    );
    let message = error_of(unsupported);
    assert!(
        message.contains("`llama`") && message.contains("bert, gpt2"),
        "{message}"
    );

    let heads = with_file(
        "bert-mlm",
        "config.json",
        Some(edited_config("bert-mlm", |c| {
            c["num_attention_heads"] = 5.into()
        })),
    );
    let message = error_of(heads);
    assert!(
        message.contains("num_attention_heads") && message.contains("does not divide"),
        "{message}"
    );

    let vocab = with_file(
        "gpt2",
        "config.json",
        Some(edited_config("gpt2", |c| c["vocab_size"] = 600.into())),
    );
    let message = error_of(vocab);
    assert!(
        message.contains("transformer.wte.weight") && message.contains("[600, 32]"),
        "{message}"
    );

    let missing = edited_weights("gpt2", |tensors| {
        tensors.remove("transformer.h.1.mlp.c_fc.bias");
    });
    let message = error_of(with_file("gpt2", "model.safetensors", Some(missing)));
    assert!(
        message.contains("`transformer.h.1.mlp.c_fc.bias`") && message.contains("missing"),
        "{message}"
    );

    let extra = edited_weights("gpt2", |tensors| {
        tensors.insert(
            "transformer.h.0.adapter.weight".into(),
            (vec![2], vec![0; 8]),
        );
    });
    let message = error_of(with_file("gpt2", "model.safetensors", Some(extra)));
    assert!(
        message.contains("`transformer.h.0.adapter.weight`") && message.contains("not a parameter"),
        "{message}"
    );

    let small = with_file(
        "bert-mlm",
        "config.json",
        Some(edited_config("bert-mlm", |c| c["vocab_size"] = 100.into())),
    );
    let message = error_of(small);
    assert!(message.contains("embedding has 100 rows"), "{message}");

    let mut tokenizer = std::fs::read(format!("{FIXTURES}/bert-mlm/tokenizer.json")).unwrap();
    tokenizer.truncate(tokenizer.len() / 2);
    let message = error_of(with_file("bert-mlm", "tokenizer.json", Some(tokenizer)));
    assert!(message.contains("`tokenizer.json`"), "{message}");

    let mut weights = std::fs::read(format!("{FIXTURES}/gpt2/model.safetensors")).unwrap();
    weights.truncate(weights.len() - 100);
    let message = error_of(with_file("gpt2", "model.safetensors", Some(weights)));
    assert!(
        message.contains("model.safetensors") && message.contains("truncated"),
        "{message}"
    );

    let mut two = folder_files("gpt2");
    two.extend(folder_files("bert-mlm"));
    let message = error_of(two);
    assert!(message.contains("two config.json"), "{message}");

    let message = error_of(with_file("gpt2", "model.safetensors", None));
    assert!(message.contains("no weights"), "{message}");
    let message = error_of(
        with_file("gpt2", "model.safetensors", Some(Vec::new()))
            .into_iter()
            .map(|(name, bytes)| {
                (
                    name.replace("model.safetensors", "pytorch_model.bin"),
                    bytes,
                )
            })
            .collect(),
    );
    assert!(message.contains("save_pretrained"), "{message}");

    let message = error_of(with_file("gpt2", "config.json", None));
    assert!(message.contains("no config.json"), "{message}");
}

#[test]
fn sharded_weights_open_through_their_index() {
    let bytes = std::fs::read(format!("{FIXTURES}/gpt2/model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
    let (first, second): (Vec<&String>, Vec<&String>) = names
        .iter()
        .partition(|name| name.contains(".h.0.") || name.contains("wte"));
    let shard = |part: &[&String]| {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = part
            .iter()
            .map(|name| ((*name).clone(), file.tensor(name).unwrap()))
            .collect();
        safetensors::serialize(views, None).unwrap()
    };
    let mut map = serde_json::Map::new();
    for name in &first {
        map.insert((*name).clone(), "model-00001-of-00002.safetensors".into());
    }
    for name in &second {
        map.insert((*name).clone(), "model-00002-of-00002.safetensors".into());
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    let mut files = with_file("gpt2", "model.safetensors", None);
    files.push((
        "gpt2/model-00002-of-00002.safetensors".into(),
        shard(&second),
    ));
    files.push((
        "gpt2/model-00001-of-00002.safetensors".into(),
        shard(&first),
    ));
    files.push((
        "gpt2/model.safetensors.index.json".into(),
        serde_json::to_vec(&index).unwrap(),
    ));
    let sharded = open(files.clone()).unwrap_or_else(|error| {
        panic!(
            "{error}: {:?}",
            files.iter().map(|f| &f.0).collect::<Vec<_>>()
        )
    });
    let whole = open(folder_files("gpt2")).unwrap();
    assert_eq!(
        sharded.model.parameter_count(),
        whole.model.parameter_count()
    );
    assert_eq!(sharded.files.len(), 2);
    // A shard the index names but the drop lacks is named.
    files.retain(|(name, _)| !name.starts_with("gpt2/model-00002"));
    let message = error_of(files);
    assert!(
        message.contains("model-00002-of-00002.safetensors"),
        "{message}"
    );
}

#[test]
fn a_failed_open_leaves_nothing_half_built() {
    // The plan checks every tensor before a single weight is read: a bad last tensor fails
    // before any progress is reported.
    let missing = edited_weights("gpt2", |tensors| {
        tensors.remove("transformer.ln_f.weight");
    });
    let mut reported = 0;
    let result = pollster::block_on(open_folder(
        with_file("gpt2", "model.safetensors", Some(missing)),
        &Device::flex(),
        |_, _| reported += 1,
    ));
    assert!(result.is_err());
    assert_eq!(reported, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_config_json_is_read_or_refused_without_a_panic(
        model_type in prop::sample::select(vec!["bert", "gpt2", "roberta", ""]),
        numbers in prop::collection::vec(prop_oneof![Just(serde_json::json!(0)), Just(serde_json::json!(-1)), Just(serde_json::json!(7)), Just(serde_json::json!(32)), Just(serde_json::json!(1e30)), Just(serde_json::json!("x")), Just(serde_json::Value::Null)], 12),
    ) {
        let keys = ["vocab_size", "hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers", "max_position_embeddings", "n_embd", "n_head", "n_layer", "n_positions", "n_inner", "type_vocab_size"];
        let mut config = serde_json::Map::new();
        config.insert("model_type".into(), model_type.into());
        for (key, value) in keys.iter().zip(numbers) {
            config.insert((*key).into(), value);
        }
        let json = serde_json::Value::Object(config).to_string();
        let _ = glassbox::model::hf::parse_config(&json, &Default::default());
    }

    #[test]
    fn any_tokenizer_file_is_read_or_refused_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), cut in 0usize..20_000) {
        let text = String::from_utf8_lossy(&bytes).to_string();
        let _ = HfTokenizer::from_files(TokenizerFiles { tokenizer_json: Some(&text), ..Default::default() }, "BERT", 64);
        // A real file cut anywhere.
        let real = std::fs::read_to_string(format!("{FIXTURES}/gpt2/tokenizer.json")).unwrap();
        let cut = real.char_indices().map(|(i, _)| i).find(|i| *i >= cut % real.len()).unwrap_or(0);
        let _ = HfTokenizer::from_files(TokenizerFiles { tokenizer_json: Some(&real[..cut]), ..Default::default() }, "GPT-2", 64);
        let _ = HfTokenizer::from_files(TokenizerFiles { vocab_json: Some(&text), merges_txt: Some(&text), ..Default::default() }, "GPT-2", 64);
        let _ = HfTokenizer::from_files(TokenizerFiles { vocab_txt: Some(&text), ..Default::default() }, "BERT", 64);
    }

    #[test]
    fn any_text_tokenizes_without_a_panic(text in "\\PC{0,80}", pair in proptest::option::of("\\PC{0,20}")) {
        for name in ["bert-mlm", "gpt2"] {
            let read = |file: &str| std::fs::read_to_string(format!("{FIXTURES}/{name}/{file}")).unwrap();
            let json = read("tokenizer.json");
            let tokenizer = HfTokenizer::from_files(TokenizerFiles { tokenizer_json: Some(&json), ..Default::default() }, name, 16).unwrap();
            let tokens = tokenizer.tokenize(&text, pair.as_deref());
            prop_assert!(tokens.tokens.len() <= 16);
        }
    }
}

#[test]
fn the_diagnostics_formulas_count_what_the_loaded_model_holds() {
    use glassbox::analysis::diagnostics::{forward_flops, parameter_count};
    for name in MODELS {
        let opened = open(folder_files(name)).unwrap();
        let config = &opened.plan.config.config;
        assert_eq!(
            parameter_count(config),
            opened.model.parameter_count() as u64,
            "{name}"
        );
        // The matrix products are what torch's FlopCounterMode counts for the same forward (a
        // BertModel runs its pooler, which glassbox does not load: 2·d² more).
        let reference = reference(name);
        let seq = reference.expected.ids.len();
        let pooler = if name == "bert-plain" { 2 * 32 * 32 } else { 0 };
        assert_eq!(
            forward_flops(config, 1, seq).matmul_total() + pooler,
            reference.expected.flops.unwrap(),
            "{name}"
        );
        // The head's matrix product is there exactly when the model has a head.
        let flops = forward_flops(config, 1, 10);
        let head = 2 * 10 * config.d_model as u64 * config.vocab_size as u64;
        let layers: u64 = (0..config.num_layers)
            .map(|layer| flops.per_layer_matmul(layer))
            .sum();
        let outside = flops.matmul_total() - layers;
        assert_eq!(
            outside >= head,
            opened.model.has_head(),
            "{name}: {outside} vs {head}"
        );
    }
}

#[test]
fn a_model_with_a_tensor_over_the_device_buffer_limit_opens_on_the_cpu_and_says_why() {
    use glassbox::model::hf::open_folder_within;
    // The gpt2 fixture's largest tensor is its logits at 64 positions: 64 × 512 × 4 bytes.
    let limit = 64 * 512 * 4 - 1;
    let (opened, fallback) = pollster::block_on(open_folder_within(
        folder_files("gpt2"),
        &Device::flex(),
        Some(limit),
        |_, _| {},
    ))
    .unwrap();
    let fallback = fallback.unwrap();
    assert!(
        fallback.contains("the logits of 64 tokens (131072 bytes)"),
        "{fallback}"
    );
    assert!(opened.model.has_head());
    let (_, none) = pollster::block_on(open_folder_within(
        folder_files("gpt2"),
        &Device::flex(),
        Some(limit + 1),
        |_, _| {},
    ))
    .unwrap();
    assert_eq!(none, None);
}

#[test]
fn robertas_mask_shows_as_itself_though_it_takes_the_space_before_it() {
    let opened = open(folder_files("roberta-mlm")).unwrap();
    let tokens = opened.tokenizer.tokenize("Call me <mask>.", None);
    let shown: Vec<&str> = tokens.tokens.iter().map(|t| t.display.as_str()).collect();
    assert_eq!(shown, ["<s>", "C", "all", "␣me", "<mask>", ".", "</s>"]);
}

#[test]
fn a_model_without_a_head_analyses_its_activations_with_transformers_statistics() {
    use glassbox::train::{Batch, analyse_activations};
    let opened = open(folder_files("bert-plain")).unwrap();
    let reference = reference("bert-plain");
    let tokens = opened.tokenizer.tokenize(
        &reference.expected.text,
        reference.expected.text_b.as_deref(),
    );
    let batch = Batch {
        inputs: vec![tokens.ids()],
        targets: vec![tokens.ids()],
        types: Some(vec![tokens.segments()]),
        counted: None,
    };
    // No head: the gradient path refuses, the activations path runs.
    assert!(pollster::block_on(glassbox::train::analyse_batch(&opened.model, &batch)).is_err());
    let analysis = pollster::block_on(analyse_activations(&opened.model, &batch)).unwrap();
    assert!(analysis.loss.is_nan() && analysis.gradients.is_empty());
    // Each layer's output has the mean and spread of transformers' hidden state.
    for layer in 0..3 {
        let module = analysis
            .activations
            .modules
            .iter()
            .find(|m| m.site == Some(Site::layer(Role::BlockOutput, layer)))
            .unwrap();
        let values = &reference.tensors[&format!("hidden.{}", layer + 1)].values;
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var =
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64;
        assert!(
            (module.mean - mean).abs() < 1e-5,
            "layer {layer}: {} vs {mean}",
            module.mean
        );
        assert!((module.std - var.sqrt()).abs() < 1e-5, "layer {layer}");
    }
    assert_eq!(
        analysis.activations.dead.len(),
        3,
        "GELU units per layer, counted"
    );
}

#[test]
fn configs_that_claim_more_than_the_weights_hold_and_odd_folders_are_refused_in_words() {
    // A layer count far past the weights is refused before anything is built.
    let huge = with_file(
        "bert-plain",
        "config.json",
        Some(edited_config("bert-plain", |c| {
            c["num_hidden_layers"] = 16_000_000.into()
        })),
    );
    let message = error_of(huge);
    assert!(
        message.contains("num_hidden_layers") && message.contains("hold 3 layers"),
        "{message}"
    );
    // A sentence-transformers folder keeps its pooling module's config one level down.
    let mut nested = folder_files("bert-plain");
    nested.push((
        "bert-plain/1_Pooling/config.json".into(),
        br#"{"word_embedding_dimension": 32}"#.to_vec(),
    ));
    assert!(open(nested).is_ok());
    // Two model folders dropped together are still two configs.
    let mut two = folder_files("gpt2");
    two.extend(folder_files("gpt2-bare"));
    assert!(error_of(two).contains("two config.json"));
    // Several weight files, none the model's by name and no index.
    let weights = std::fs::read(format!("{FIXTURES}/gpt2/model.safetensors")).unwrap();
    let mut several = with_file("gpt2", "model.safetensors", None);
    several.push(("gpt2/a.safetensors".into(), weights.clone()));
    several.push(("gpt2/b.safetensors".into(), weights));
    let message = error_of(several);
    assert!(message.contains("one of 2 .safetensors files"), "{message}");
}

#[test]
fn robertas_sentence_b_tokens_come_from_sentence_b() {
    let opened = open(folder_files("roberta-mlm")).unwrap();
    let tokens = opened.tokenizer.tokenize("Call me", Some("It is"));
    let sources: Vec<&str> = tokens.tokens.iter().map(|t| t.source.as_str()).collect();
    // Offsets are trimmed of the space; B's come from B ("It is"), not from A.
    assert_eq!(
        sources,
        [
            "<s>", "C", "all", "me", "</s>", "</s>", "I", "t", "is", "</s>"
        ]
    );
    assert!(
        tokens.segments().iter().all(|segment| *segment == 0),
        "RoBERTa has one token type"
    );
}
