//! Checkpoints on disk: a saved model comes back bit for bit, PyTorch files map onto glassbox,
//! and every kind of bad file is reported as its own error, never a panic.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use burn::tensor::Device;
use glassbox::model::checkpoint::{
    MAX_CHECKPOINT_BYTES, META_CONFIG, META_VOCABULARY, ParameterData, config_json,
    encode_checkpoint, parse_config, parse_vocabulary, pytorch_name, read_parameters,
    save_checkpoint,
};
use glassbox::model::{
    Activation, Checkpoint, CheckpointError, Naming, Positional, Sidecars, Transformer,
    TransformerConfig, Vocabulary,
};
use proptest::prelude::*;
use safetensors::{Dtype, SafeTensors};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A model small enough that parsing it thousands of times takes seconds.
fn small_config() -> TransformerConfig {
    TransformerConfig {
        vocab_size: 12,
        d_model: 8,
        num_heads: 2,
        d_ff: 16,
        num_layers: 1,
        max_seq_len: 8,
        ..TransformerConfig::tiny()
    }
}

const SMALL_WORDS: [&str; 12] = [
    "[PAD]", "[UNK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "it",
];

fn small_vocabulary() -> Vocabulary {
    Vocabulary::from_words(SMALL_WORDS.iter().map(|word| word.to_string()).collect())
}

fn small_parameters() -> BTreeMap<String, ParameterData> {
    let model = small_config().init_seeded(11, &Device::flex()).unwrap();
    pollster::block_on(read_parameters(&model)).unwrap()
}

/// A valid glassbox checkpoint of the small model, built once.
static SMALL: LazyLock<Vec<u8>> = LazyLock::new(|| {
    encode_checkpoint(
        &small_parameters(),
        &small_config(),
        &small_vocabulary(),
        &BTreeMap::new(),
    )
    .unwrap()
});

fn no_sidecars() -> Sidecars<'static> {
    Sidecars::default()
}

/// A tensor to write with any dtype, shape and raw bytes, consistent or not.
struct RawView {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl safetensors::View for RawView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn f32_view(parameter: &ParameterData) -> RawView {
    RawView {
        dtype: Dtype::F32,
        shape: parameter.shape.clone(),
        bytes: parameter
            .values
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect(),
    }
}

/// Writes tensors with exactly the metadata given (no config or vocabulary added).
fn write(tensors: Vec<(String, RawView)>, metadata: &[(&str, String)]) -> Vec<u8> {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(key, value)| (key.to_string(), value.clone()))
        .collect();
    safetensors::serialize(tensors, Some(metadata)).unwrap()
}

/// The small model's parameters as F32 views, after `edit`.
fn small_views(edit: impl FnOnce(&mut BTreeMap<String, RawView>)) -> Vec<(String, RawView)> {
    let mut views: BTreeMap<String, RawView> = small_parameters()
        .iter()
        .map(|(path, parameter)| (path.clone(), f32_view(parameter)))
        .collect();
    edit(&mut views);
    views.into_iter().collect()
}

fn small_metadata() -> Vec<(&'static str, String)> {
    vec![
        (META_CONFIG, config_json(&small_config())),
        (
            META_VOCABULARY,
            serde_json::to_string(&SMALL_WORDS).unwrap(),
        ),
    ]
}

/// The small model with its config and vocabulary, after `edit` of its tensors.
fn small_file_with(edit: impl FnOnce(&mut BTreeMap<String, RawView>)) -> Vec<u8> {
    write(small_views(edit), &small_metadata())
}

/// Splits a safetensors file into its header JSON and its data section.
fn split(bytes: &[u8]) -> (serde_json::Map<String, Value>, Vec<u8>) {
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + length]).unwrap();
    (header, bytes[8 + length..].to_vec())
}

/// A file of `header` bytes (any bytes, JSON or not) followed by `data`.
fn join_raw(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(data);
    bytes
}

fn join(header: &serde_json::Map<String, Value>, data: &[u8]) -> Vec<u8> {
    join_raw(&serde_json::to_vec(header).unwrap(), data)
}

/// The small checkpoint with its header JSON changed by `edit`, data untouched.
fn small_with_header(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let (mut header, data) = split(&SMALL);
    edit(&mut header);
    join(&header, &data)
}

/// The tensor whose data ends last, and the file offset where it ends.
fn last_tensor(bytes: &[u8]) -> (String, usize) {
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let (header, _) = split(bytes);
    header
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .map(|(name, info)| {
            let end = info["data_offsets"][1].as_u64().unwrap() as usize;
            (name.clone(), 8 + length + end)
        })
        .max_by_key(|(_, end)| *end)
        .unwrap()
}

/// The seed fixture: PyTorch names, F16 values.
fn seed_fixture() -> (Vec<u8>, String) {
    let bytes = std::fs::read(format!("{FIXTURES}/seed.safetensors")).unwrap();
    let config = std::fs::read_to_string(format!("{FIXTURES}/seed.config.json")).unwrap();
    (bytes, config)
}

/// The seed fixture rewritten with its tensors changed by `edit`, dtypes and metadata kept.
fn seed_fixture_with(edit: impl FnOnce(&mut BTreeMap<String, RawView>)) -> Vec<u8> {
    let (bytes, _) = seed_fixture();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut views: BTreeMap<String, RawView> = file
        .iter()
        .map(|(name, view)| {
            (
                name.to_string(),
                RawView {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    bytes: view.data().to_vec(),
                },
            )
        })
        .collect();
    edit(&mut views);
    write(views.into_iter().collect(), &[("format", "pt".to_string())])
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|value| value.to_bits()).collect()
}

fn assert_bit_identical(
    what: &str,
    actual: &BTreeMap<String, ParameterData>,
    expected: &BTreeMap<String, ParameterData>,
) {
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{what}: parameter paths"
    );
    for (path, want) in expected {
        let got = &actual[path];
        assert_eq!(got.shape, want.shape, "{what}: shape of {path}");
        assert!(
            bits(&got.values) == bits(&want.values),
            "{what}: values of {path} differ"
        );
    }
}

fn logits(model: &Transformer, batch: &[Vec<u32>]) -> Vec<f32> {
    let device = Device::flex();
    let tokens = model.token_tensor(batch, &device).unwrap();
    model
        .forward(tokens)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
}

#[test]
fn a_saved_model_loads_back_bit_for_bit_with_its_config_vocabulary_and_metadata() {
    let device = Device::flex();
    let config = TransformerConfig {
        max_seq_len: 32,
        ..TransformerConfig::tiny()
    };
    let model = config.init_seeded(7, &device).unwrap();
    let original = pollster::block_on(read_parameters(&model)).unwrap();
    let metadata = BTreeMap::from([
        ("task".to_string(), "copy the sequence".to_string()),
        ("accuracy".to_string(), "0.875".to_string()),
    ]);
    let vocabulary = Vocabulary::bundled();
    let bytes =
        pollster::block_on(save_checkpoint(&model, &config, &vocabulary, &metadata)).unwrap();

    let checkpoint = Checkpoint::parse(&bytes, no_sidecars()).unwrap();
    assert_eq!(checkpoint.naming, Naming::Glassbox);
    assert_eq!(checkpoint.config, config);
    assert_eq!(checkpoint.vocabulary.words(), vocabulary.words());
    assert_eq!(checkpoint.meta("task"), Some("copy the sequence"));
    assert_eq!(checkpoint.meta("accuracy"), Some("0.875"));
    assert_eq!(checkpoint.meta("format"), Some("glassbox"));
    assert_bit_identical("parsed", &checkpoint.parameters, &original);

    let reloaded = checkpoint.to_model(&device).unwrap();
    let reread = pollster::block_on(read_parameters(&reloaded)).unwrap();
    assert_bit_identical("reloaded", &reread, &original);

    let batch = vec![vec![3, 17, 250, 999, 0, 42], vec![1, 1, 2, 3, 5, 8]];
    assert_eq!(
        bits(&logits(&reloaded, &batch)),
        bits(&logits(&model, &batch)),
        "logits of the reloaded model"
    );

    let saved_again =
        pollster::block_on(save_checkpoint(&reloaded, &config, &vocabulary, &metadata)).unwrap();
    let again = Checkpoint::parse(&saved_again, no_sidecars()).unwrap();
    assert_bit_identical("saved again", &again.parameters, &original);
    assert_eq!(again.metadata, checkpoint.metadata);
}

/// One bad input: the file, its sidecars, and what must be reported.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    config_json: Option<String>,
    vocabulary: Option<String>,
    expected: fn(&CheckpointError) -> bool,
    /// Substrings the error's message must contain.
    message: Vec<String>,
}

impl Case {
    fn new(name: &'static str, bytes: Vec<u8>, expected: fn(&CheckpointError) -> bool) -> Self {
        Self {
            name,
            bytes,
            config_json: None,
            vocabulary: None,
            expected,
            message: Vec::new(),
        }
    }

    fn config(mut self, json: impl Into<String>) -> Self {
        self.config_json = Some(json.into());
        self
    }

    fn vocabulary(mut self, text: impl Into<String>) -> Self {
        self.vocabulary = Some(text.into());
        self
    }

    fn says(mut self, parts: &[&dyn ToString]) -> Self {
        self.message = parts.iter().map(|part| part.to_string()).collect();
        self
    }
}

fn bad_inputs() -> Vec<Case> {
    use CheckpointError as E;
    let (_, seed_config) = seed_fixture();
    let small_len = SMALL.len();
    let (last_name, last_end) = last_tensor(&SMALL);
    let truncated = SMALL[..small_len - 100].to_vec();
    let mut trailing = SMALL.clone();
    trailing.extend_from_slice(b"junk");
    let eleven_words = serde_json::to_string(&SMALL_WORDS[..11]).unwrap();
    let mut duplicate = SMALL_WORDS;
    duplicate[7] = "cat";
    let duplicate = duplicate.join("\n");

    vec![
        Case::new("empty file", Vec::new(), |e| {
            matches!(e, E::TooShort { size_bytes: 0 })
        }),
        Case::new("7 bytes", vec![1; 7], |e| {
            matches!(e, E::TooShort { size_bytes: 7 })
        })
        .says(&[&"7 bytes"]),
        Case::new(
            "header length past the end",
            join_raw(b"{}", &[])
                .into_iter()
                .enumerate()
                .map(|(i, byte)| if i == 0 { 200 } else { byte })
                .collect(),
            |e| {
                matches!(
                    e,
                    E::HeaderPastEnd {
                        header_bytes: 200,
                        available: 2
                    }
                )
            },
        )
        .says(&[&"200", &"only 2 bytes"]),
        Case::new(
            "header length u64::MAX",
            [u64::MAX.to_le_bytes().as_slice(), b"{}"].concat(),
            |e| matches!(e, E::HeaderPastEnd { .. }),
        ),
        Case::new("header not JSON", join_raw(b"hello", &[]), |e| {
            matches!(e, E::BadHeader { header_end: 13, .. })
        })
        .says(&[&"bytes 8 to 13"]),
        Case::new("header not UTF-8", join_raw(&[b'{', 0xff, b'}'], &[]), |e| {
            matches!(e, E::BadHeader { .. })
        }),
        Case::new("header a JSON array", join_raw(b"[1, 2]", &[]), |e| {
            matches!(e, E::BadHeader { .. })
        }),
        Case::new(
            "unknown dtype",
            small_with_header(|header| {
                header["output.bias"]["dtype"] = json!("Q7");
            }),
            |e| matches!(e, E::BadHeader { .. }),
        )
        .says(&[&"Q7"]),
        Case::new("truncated by 100 bytes", truncated, |e| {
            matches!(e, E::Truncated { .. })
        })
        .says(&[&format!("`{last_name}`"), &last_end, &(small_len - 100)]),
        Case::new(
            "data offsets past u64::MAX",
            join_raw(
                br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}}"#,
                &[0; 4],
            ),
            |e| matches!(e, E::Truncated { tensor, .. } if tensor == "w"),
        ),
        Case::new("trailing garbage", trailing, |e| {
            matches!(e, E::BadLayout { .. })
        })
        .says(&[&(small_len + 4)]),
        Case::new(
            "data offsets that do not match the shape",
            small_with_header(|header| {
                header["output.bias"]["shape"] = json!([13]);
            }),
            |e| matches!(e, E::BadOffsets { tensor } if tensor == "output.bias"),
        )
        .says(&[&"`output.bias`"]),
        Case::new(
            "a gap between tensors",
            small_with_header(|header| {
                let offsets = &mut header["output.bias"]["data_offsets"];
                let start = offsets[0].as_u64().unwrap() + 4;
                let end = offsets[1].as_u64().unwrap() + 4;
                *offsets = json!([start, end]);
            }),
            |e| matches!(e, E::BadOffsets { tensor } if tensor == "output.bias"),
        ),
        Case::new(
            "an I64 weight",
            small_file_with(|views| {
                views.insert(
                    "output.bias".into(),
                    RawView {
                        dtype: Dtype::I64,
                        shape: vec![12],
                        bytes: vec![0; 96],
                    },
                );
            }),
            |e| {
                matches!(e, E::NotFloat { tensor, dtype } if tensor == "output.bias" && dtype == "I64")
            },
        )
        .says(&[&"`output.bias`", &"I64"]),
        Case::new(
            "a missing tensor",
            small_file_with(|views| {
                views.remove("layers.0.norm2.beta");
            }),
            |e| {
                matches!(e, E::Missing { tensor, shape } if tensor == "layers.0.norm2.beta" && shape == &[8])
            },
        )
        .says(&[&"`layers.0.norm2.beta`", &"[8]"]),
        Case::new(
            "an extra tensor",
            small_file_with(|views| {
                views.insert(
                    "layers.0.attn.temperature".into(),
                    f32_view(&ParameterData {
                        shape: vec![2],
                        values: vec![1.0, 2.0],
                    }),
                );
            }),
            |e| matches!(e, E::Unexpected { tensor } if tensor == "layers.0.attn.temperature"),
        )
        .says(&[&"`layers.0.attn.temperature`"]),
        Case::new(
            "a tensor of the wrong shape",
            small_file_with(|views| {
                let weight = views.get_mut("layers.0.ff.linear1.weight").unwrap();
                weight.shape = vec![16, 8];
            }),
            |e| {
                matches!(e, E::Shape { tensor, expected, found }
                    if tensor == "layers.0.ff.linear1.weight" && expected == &[8, 16] && found == &[16, 8])
            },
        )
        .says(&[&"`layers.0.ff.linear1.weight`", &"[8, 16]", &"[16, 8]"]),
        Case::new(
            "no config anywhere",
            write(
                small_views(|_| {}),
                &[(META_VOCABULARY, serde_json::to_string(&SMALL_WORDS).unwrap())],
            ),
            |e| matches!(e, E::NoConfig),
        ),
        Case::new("malformed config JSON", SMALL.clone(), |e| {
            matches!(e, E::BadConfig(_))
        })
        .config("{\"vocab_size\": 12, \"d_model\": "),
        Case::new(
            "malformed config in the metadata",
            write(
                small_views(|_| {}),
                &[(META_CONFIG, "{\"d_model\": \"wide\"}".to_string())],
            ),
            |e| matches!(e, E::BadConfig(_)),
        ),
        Case::new("d_model not divisible by the heads", SMALL.clone(), |e| {
            matches!(e, E::BadConfig(_))
        })
        .config(config_json(&TransformerConfig {
            num_heads: 3,
            ..small_config()
        }))
        .says(&[&"d_model 8 is not divisible by 3 heads"]),
        Case::new("a config of millions of layers", SMALL.clone(), |e| {
            matches!(e, E::BadConfig(_))
        })
        .config(config_json(&TransformerConfig {
            num_layers: 3_000_000,
            ..small_config()
        }))
        .says(&[&"3000000 layers", &"20 tensors"]),
        Case::new("a sinusoidal table of 2^40 positions", SMALL.clone(), |e| {
            matches!(e, E::BadConfig(_))
        })
        .config(config_json(&TransformerConfig {
            max_seq_len: 1 << 40,
            positional: Positional::Sinusoidal,
            ..small_config()
        }))
        .says(&[&"1099511627776 positions"]),
        Case::new("a sinusoidal table of no positions", SMALL.clone(), |e| {
            matches!(e, E::BadConfig(_))
        })
        .config(config_json(&TransformerConfig {
            max_seq_len: 0,
            positional: Positional::Sinusoidal,
            ..small_config()
        }))
        .says(&[&"(max_seq_len) must be at least 1"]),
        Case::new("vocabulary of the wrong size", SMALL.clone(), |e| {
            matches!(e, E::BadVocabulary(_))
        })
        .vocabulary(eleven_words)
        .says(&[&"11 words", &"12 token ids"]),
        Case::new("vocabulary with a duplicate word", SMALL.clone(), |e| {
            matches!(e, E::BadVocabulary(_))
        })
        .vocabulary(duplicate)
        .says(&[&"`cat` appears twice", &"id 3", &"id 7"]),
        Case::new(
            "no vocabulary for 12 ids",
            write(
                small_views(|_| {}),
                &[(META_CONFIG, config_json(&small_config()))],
            ),
            |e| matches!(e, E::NoVocabulary { vocab_size: 12 }),
        )
        .says(&[&"12 token ids"]),
        Case::new(
            "over the size limit",
            vec![0u8; MAX_CHECKPOINT_BYTES + 1],
            |e| {
                matches!(e, E::TooLarge { size_bytes, max_bytes }
                    if *size_bytes == MAX_CHECKPOINT_BYTES + 1 && *max_bytes == MAX_CHECKPOINT_BYTES)
            },
        ),
        Case::new(
            "PyTorch file missing a bias",
            seed_fixture_with(|views| {
                views.remove("transformer.layers.1.linear2.bias");
            }),
            |e| {
                matches!(e, E::Missing { tensor, shape }
                    if tensor == "transformer.layers.1.linear2.bias" && shape == &[256])
            },
        )
        .config(seed_config.clone())
        .says(&[&"`transformer.layers.1.linear2.bias`"]),
        Case::new(
            "PyTorch in_proj_weight of the wrong shape",
            seed_fixture_with(|views| {
                let weight = views
                    .get_mut("transformer.layers.2.self_attn.in_proj_weight")
                    .unwrap();
                weight.shape = vec![256, 768];
            }),
            |e| {
                matches!(e, E::Shape { tensor, expected, found }
                    if tensor == "transformer.layers.2.self_attn.in_proj_weight"
                        && expected == &[768, 256] && found == &[256, 768])
            },
        )
        .config(seed_config.clone())
        .says(&[&"`transformer.layers.2.self_attn.in_proj_weight`"]),
        Case::new(
            "PyTorch file with an extra tensor",
            seed_fixture_with(|views| {
                views.insert(
                    "transformer.layers.0.self_attn.bias_k".into(),
                    f32_view(&ParameterData {
                        shape: vec![1],
                        values: vec![0.5],
                    }),
                );
            }),
            |e| {
                matches!(e, E::Unexpected { tensor } if tensor == "transformer.layers.0.self_attn.bias_k")
            },
        )
        .config(seed_config),
    ]
}

#[test]
fn every_bad_file_is_reported_as_its_own_error_without_panicking() {
    let cases = bad_inputs();
    let mut failures = Vec::new();
    for case in &cases {
        let sidecars = Sidecars {
            config_json: case.config_json.as_deref(),
            vocabulary: case.vocabulary.as_deref(),
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            Checkpoint::parse(&case.bytes, sidecars)
        }));
        match result {
            Err(_) => failures.push(format!("{}: panicked", case.name)),
            Ok(Ok(_)) => failures.push(format!("{}: parsed without an error", case.name)),
            Ok(Err(error)) => {
                let message = error.to_string();
                if !(case.expected)(&error) {
                    failures.push(format!("{}: wrong error {error:?}", case.name));
                }
                for part in &case.message {
                    if !message.contains(part.as_str()) {
                        failures.push(format!(
                            "{}: message {message:?} does not mention {part:?}",
                            case.name
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn a_vocabulary_reads_the_same_as_a_json_array_a_json_object_or_lines() {
    let expected = small_vocabulary();
    let array = serde_json::to_string_pretty(&SMALL_WORDS).unwrap();
    let object: serde_json::Map<String, Value> = SMALL_WORDS
        .iter()
        .enumerate()
        .rev()
        .map(|(id, word)| (word.to_string(), json!(id)))
        .collect();
    let object = serde_json::to_string(&object).unwrap();
    let lines = SMALL_WORDS.join("\n") + "\n";
    let crlf_lines = SMALL_WORDS.join("\r\n");
    for (format, text) in [
        ("JSON array", array.as_str()),
        ("JSON object", object.as_str()),
        ("one word per line", lines.as_str()),
        ("one word per CRLF line", crlf_lines.as_str()),
    ] {
        let parsed = parse_vocabulary(text).unwrap_or_else(|error| panic!("{format}: {error}"));
        assert_eq!(parsed, expected, "{format}");
    }
}

#[test]
fn a_vocabulary_with_a_gap_in_its_ids_is_refused() {
    for text in [
        r#"{"a": 0, "b": 2}"#,
        r#"{"a": 1, "b": 2}"#,
        r#"{"a": 0, "b": 0}"#,
    ] {
        let error = parse_vocabulary(text).unwrap_err();
        assert!(
            matches!(error, CheckpointError::BadVocabulary(_)),
            "{text}: {error:?}"
        );
    }
    for text in ["", "[]", "{}"] {
        let error = parse_vocabulary(text).unwrap_err();
        assert_eq!(
            error,
            CheckpointError::BadVocabulary("it has no words".into()),
            "{text:?}"
        );
    }
}

#[test]
fn sidecar_config_and_vocabulary_override_the_files_own() {
    let corrected = TransformerConfig {
        activation: Activation::Gelu,
        causal: true,
        layer_norm_eps: 1e-6,
        ..small_config()
    };
    let corrected_json = config_json(&corrected);
    let words: Vec<String> = (0..12).map(|id| format!("w{id}")).collect();
    let vocabulary = words.join("\n");
    let checkpoint = Checkpoint::parse(
        &SMALL,
        Sidecars {
            config_json: Some(&corrected_json),
            vocabulary: Some(&vocabulary),
        },
    )
    .unwrap();
    assert_eq!(checkpoint.config, corrected);
    assert_eq!(checkpoint.vocabulary.words(), words.as_slice());
    // The file's own entries are still there to show.
    assert_eq!(
        checkpoint.meta(META_CONFIG),
        Some(config_json(&small_config()).as_str())
    );

    // Without sidecars, the metadata decides.
    let own = Checkpoint::parse(&SMALL, no_sidecars()).unwrap();
    assert_eq!(own.config, small_config());
    assert_eq!(own.vocabulary, small_vocabulary());
}

#[test]
fn a_config_json_round_trips_and_an_unusable_one_is_refused() {
    let config = TransformerConfig::tiny();
    assert_eq!(parse_config(&config_json(&config)).unwrap(), config);
    let fixture = std::fs::read_to_string(format!("{FIXTURES}/tiny.config.json")).unwrap();
    assert_eq!(parse_config(&fixture).unwrap().max_seq_len, 32);
    let no_words = config_json(&TransformerConfig {
        vocab_size: 0,
        ..small_config()
    });
    assert!(matches!(
        parse_config(&no_words),
        Err(CheckpointError::BadConfig(message)) if message.contains("at least 1")
    ));
}

/// Writes the small model with every tensor in `dtype`, from values each dtype holds exactly.
fn small_file_in(dtype: Dtype) -> (Vec<u8>, BTreeMap<String, ParameterData>) {
    let mut expected = BTreeMap::new();
    let views = small_views(|views| {
        for (index, (path, view)) in views.iter_mut().enumerate() {
            let count: usize = view.shape.iter().product();
            // Multiples of 1/8 in [-4, 4): exact in F16, BF16, F32 and F64.
            let values: Vec<f32> = (0..count)
                .map(|i| ((i * 7 + index * 13) % 64) as f32 / 8.0 - 4.0)
                .collect();
            view.dtype = dtype;
            view.bytes = match dtype {
                Dtype::F16 => values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
                Dtype::BF16 => values
                    .iter()
                    .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                    .collect(),
                Dtype::F64 => values
                    .iter()
                    .flat_map(|v| f64::from(*v).to_le_bytes())
                    .collect(),
                _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            };
            expected.insert(
                path.clone(),
                ParameterData {
                    shape: view.shape.clone(),
                    values,
                },
            );
        }
    });
    (write(views, &small_metadata()), expected)
}

#[test]
fn f16_bf16_and_f64_weights_load_exactly() {
    for dtype in [Dtype::F16, Dtype::BF16, Dtype::F64, Dtype::F32] {
        let (bytes, expected) = small_file_in(dtype);
        let checkpoint = Checkpoint::parse(&bytes, no_sidecars())
            .unwrap_or_else(|error| panic!("{dtype:?}: {error}"));
        assert_bit_identical(&format!("{dtype:?}"), &checkpoint.parameters, &expected);
        let model = checkpoint.to_model(&Device::flex()).unwrap();
        let loaded = pollster::block_on(read_parameters(&model)).unwrap();
        assert_bit_identical(&format!("{dtype:?} model"), &loaded, &expected);
    }
}

#[test]
fn the_pytorch_seed_checkpoint_maps_onto_glassbox_paths_and_layouts() {
    let (bytes, config) = seed_fixture();
    let checkpoint = Checkpoint::parse(
        &bytes,
        Sidecars {
            config_json: Some(&config),
            vocabulary: None,
        },
    )
    .unwrap();
    assert_eq!(checkpoint.naming, Naming::PyTorch);
    assert_eq!(checkpoint.config, TransformerConfig::seed());
    assert_eq!(checkpoint.vocabulary, Vocabulary::bundled());
    assert_eq!(checkpoint.meta("format"), Some("pt"));

    for (path, name) in [
        ("embedding.weight", "embedding.weight"),
        (
            "layers.0.attn.query.weight",
            "transformer.layers.0.self_attn.in_proj_weight",
        ),
        (
            "layers.2.attn.key.weight",
            "transformer.layers.2.self_attn.in_proj_weight",
        ),
        (
            "layers.3.attn.value.bias",
            "transformer.layers.3.self_attn.in_proj_bias",
        ),
        (
            "layers.1.attn.output.weight",
            "transformer.layers.1.self_attn.out_proj.weight",
        ),
        (
            "layers.1.attn.output.bias",
            "transformer.layers.1.self_attn.out_proj.bias",
        ),
        (
            "layers.0.ff.linear1.weight",
            "transformer.layers.0.linear1.weight",
        ),
        (
            "layers.3.ff.linear2.bias",
            "transformer.layers.3.linear2.bias",
        ),
        ("layers.2.norm1.gamma", "transformer.layers.2.norm1.weight"),
        ("layers.2.norm2.beta", "transformer.layers.2.norm2.bias"),
        ("output.weight", "output.weight"),
        ("output.bias", "output.bias"),
    ] {
        assert_eq!(pytorch_name(path), name, "{path}");
    }

    // Every glassbox parameter comes from a tensor of the file, and every tensor is used.
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
    names.sort();
    let mut used: Vec<String> = checkpoint
        .parameters
        .keys()
        .map(|p| pytorch_name(p))
        .collect();
    used.sort();
    used.dedup();
    assert_eq!(used, names);

    // The key projection is the middle third of the packed rows, transposed to [d_in, d_out].
    let f16 = |name: &str| -> Vec<f32> {
        let tensor = file.tensor(name).unwrap();
        assert_eq!(tensor.dtype(), Dtype::F16);
        tensor
            .data()
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect()
    };
    let d_model = 256;
    let packed = f16("transformer.layers.2.self_attn.in_proj_weight");
    let key = &checkpoint.parameters["layers.2.attn.key.weight"];
    assert_eq!(key.shape, [d_model, d_model]);
    for d_in in 0..d_model {
        for d_out in 0..d_model {
            assert_eq!(
                key.values[d_in * d_model + d_out].to_bits(),
                packed[(d_model + d_out) * d_model + d_in].to_bits(),
                "key weight [{d_in}, {d_out}]"
            );
        }
    }
    let packed_bias = f16("transformer.layers.2.self_attn.in_proj_bias");
    assert_eq!(
        bits(&checkpoint.parameters["layers.2.attn.value.bias"].values),
        bits(&packed_bias[2 * d_model..])
    );
    // nn.Linear stores [out, in]; glassbox's output head is [in, out].
    let output = f16("output.weight");
    let head = &checkpoint.parameters["output.weight"];
    assert_eq!(head.shape, [d_model, 1000]);
    assert_eq!(head.values[5 * 1000 + 17], output[17 * d_model + 5]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_truncated_checkpoint_is_an_error_never_a_panic(length in 0..SMALL.len()) {
        prop_assert!(Checkpoint::parse(&SMALL[..length], no_sidecars()).is_err());
    }

    #[test]
    fn a_checkpoint_with_any_byte_overwritten_never_panics(
        position in 0..SMALL.len(),
        byte in any::<u8>(),
    ) {
        let mut bytes = SMALL.clone();
        bytes[position] = byte;
        let _ = Checkpoint::parse(&bytes, no_sidecars());
    }

    #[test]
    fn any_bytes_as_the_header_never_panic(header in proptest::collection::vec(any::<u8>(), 0..256)) {
        let (_, data) = split(&SMALL);
        let _ = Checkpoint::parse(&join_raw(&header, &data), no_sidecars());
    }

    #[test]
    fn any_tensor_entry_in_the_header_never_panics(
        name in "[a-z.]{1,12}",
        dtype in "F32|F16|BF16|F64|I64|U8|BOOL|F4|F8_E4M3|Q7",
        shape in proptest::collection::vec(prop_oneof![0u64..5000, any::<u64>()], 0..4),
        start in prop_oneof![0u64..64, any::<u64>()],
        end in prop_oneof![0u64..64, any::<u64>()],
        data_len in 0usize..64,
    ) {
        let header = json!({
            "__metadata__": { META_CONFIG: config_json(&small_config()) },
            name: { "dtype": dtype, "shape": shape, "data_offsets": [start, end] },
        });
        let bytes = join_raw(&serde_json::to_vec(&header).unwrap(), &vec![0; data_len]);
        let _ = Checkpoint::parse(&bytes, no_sidecars());
    }

    #[test]
    fn any_text_as_a_vocabulary_or_config_never_panics(text in any::<String>()) {
        let _ = parse_vocabulary(&text);
        let _ = parse_config(&text);
    }

    #[test]
    fn any_json_ish_vocabulary_or_config_never_panics(
        text in r#"[\[{]?("[a-z\[\]]{0,4}"|[0-9]{1,20}|[:,\n ]|-1|null|true){0,12}[\]}]?"#,
    ) {
        let _ = parse_vocabulary(&text);
        let _ = parse_config(&text);
    }

    #[test]
    fn any_config_numbers_never_panic_when_parsing_a_checkpoint(
        vocab_size in prop_oneof![Just(12usize), any::<usize>()],
        d_model in prop_oneof![Just(8usize), 0usize..40, any::<usize>()],
        num_heads in prop_oneof![Just(2usize), 0usize..9, any::<usize>()],
        d_ff in prop_oneof![Just(16usize), 0usize..40, any::<usize>()],
        num_layers in prop_oneof![Just(1usize), 0usize..4, any::<usize>()],
        max_seq_len in prop_oneof![Just(8usize), 0usize..40, any::<usize>()],
        positional in prop_oneof![Just(Positional::Learned), Just(Positional::Sinusoidal), Just(Positional::None)],
    ) {
        let config = config_json(&TransformerConfig {
            vocab_size,
            d_model,
            num_heads,
            d_ff,
            num_layers,
            max_seq_len,
            positional,
            ..small_config()
        });
        let result = Checkpoint::parse(
            &SMALL,
            Sidecars { config_json: Some(&config), vocabulary: None },
        );
        // Any head count that divides the width gives the same parameter shapes.
        let same = (vocab_size, d_model, d_ff, num_layers, max_seq_len, positional)
            == (12, 8, 16, 1, 8, Positional::Learned)
            && [1, 2, 4, 8].contains(&num_heads);
        prop_assert_eq!(result.is_ok(), same, "{:?}", result.err());
    }
}

/// A tensor of `shape` whose values count up from `start` in hundredths.
fn counting(shape: &[usize], start: usize) -> RawView {
    let count: usize = shape.iter().product();
    f32_view(&ParameterData {
        shape: shape.to_vec(),
        values: (0..count)
            .map(|i| ((start + i) % 97) as f32 / 100.0 - 0.4)
            .collect(),
    })
}

#[test]
fn the_tensor_count_a_config_needs_follows_its_layout() {
    // A norm-free PyTorch file of one layer has 11 tensors: a check that assumed 12 per layer
    // refused it as too small for its own config.
    let config = TransformerConfig {
        norm_position: glassbox::model::NormPosition::None,
        positional: Positional::None,
        ..small_config()
    };
    let layer = "transformer.layers.0";
    let shapes: Vec<(String, Vec<usize>)> = vec![
        ("embedding.weight".into(), vec![12, 8]),
        (format!("{layer}.self_attn.in_proj_weight"), vec![24, 8]),
        (format!("{layer}.self_attn.in_proj_bias"), vec![24]),
        (format!("{layer}.self_attn.out_proj.weight"), vec![8, 8]),
        (format!("{layer}.self_attn.out_proj.bias"), vec![8]),
        (format!("{layer}.linear1.weight"), vec![16, 8]),
        (format!("{layer}.linear1.bias"), vec![16]),
        (format!("{layer}.linear2.weight"), vec![8, 16]),
        (format!("{layer}.linear2.bias"), vec![8]),
        ("output.weight".into(), vec![12, 8]),
        ("output.bias".into(), vec![12]),
    ];
    let views = shapes
        .iter()
        .enumerate()
        .map(|(index, (name, shape))| (name.clone(), counting(shape, index * 31)))
        .collect();
    let bytes = write(views, &[("format", "pt".to_string())]);
    let json = config_json(&config);
    let sidecars = Sidecars {
        config_json: Some(&json),
        vocabulary: Some(
            "[\"[PAD]\",\"[UNK]\",\"the\",\"cat\",\"sat\",\"on\",\"mat\",\"a\",\"dog\",\"ran\",\"to\",\"it\"]",
        ),
    };
    let checkpoint = Checkpoint::parse(&bytes, sidecars).unwrap();
    assert_eq!(checkpoint.naming, Naming::PyTorch);
    let model = checkpoint.to_model(&Device::flex()).unwrap();
    assert_eq!(model.layers.len(), 1);

    // A glassbox file of three layers with a config of four: the file cannot hold it, and that
    // is said before a model is built (12 tensors per layer let it through: 4 × 12 < 52).
    let three = TransformerConfig {
        num_layers: 3,
        ..small_config()
    };
    let model = three.init_seeded(5, &Device::flex()).unwrap();
    let bytes = encode_checkpoint(
        &pollster::block_on(read_parameters(&model)).unwrap(),
        &three,
        &small_vocabulary(),
        &BTreeMap::new(),
    )
    .unwrap();
    let four = config_json(&TransformerConfig {
        num_layers: 4,
        ..small_config()
    });
    let error = Checkpoint::parse(
        &bytes,
        Sidecars {
            config_json: Some(&four),
            vocabulary: None,
        },
    )
    .unwrap_err();
    assert!(matches!(error, CheckpointError::BadConfig(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("it has 4 layers, but the file's 52 tensors hold 3"),
        "{error}"
    );
}

#[test]
fn a_file_of_another_layout_is_named_for_what_it_is_not() {
    // GPT-2's names start with `transformer.` like the seed chapter's, but have no packed
    // `self_attn.in_proj_weight`: they are not read as the seed layout.
    let gpt2 = write(
        vec![
            (
                "transformer.h.0.attn.c_attn.weight".into(),
                counting(&[8, 24], 0),
            ),
            (
                "transformer.h.0.mlp.c_fc.weight".into(),
                counting(&[8, 16], 1),
            ),
            ("transformer.wpe.weight".into(), counting(&[8, 8], 2)),
            ("transformer.wte.weight".into(), counting(&[12, 8], 3)),
        ],
        &small_metadata(),
    );
    let bert = write(
        vec![(
            "embeddings.word_embeddings.weight".into(),
            counting(&[12, 8], 0),
        )],
        &small_metadata(),
    );
    for (bytes, name) in [
        (gpt2, "`transformer.h.0.attn.c_attn.weight`"),
        (bert, "`embeddings.word_embeddings.weight`"),
    ] {
        let error = Checkpoint::parse(&bytes, no_sidecars()).unwrap_err();
        assert!(
            matches!(error, CheckpointError::UnknownLayout { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(name) && message.contains("GPT-2"),
            "{message}"
        );
    }
}
