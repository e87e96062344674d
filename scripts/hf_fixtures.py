#!/usr/bin/env python3
"""Generate the HuggingFace-layout fixtures in ``tests/fixtures/hf/``.

glassbox loads real models from a HuggingFace folder (``config.json``,
``model.safetensors``, the tokenizer files).  There is no model hub here, so
this script makes five tiny models from scratch with ``transformers`` itself,
random-initialised from fixed seeds, with tokenizers trained by the
``tokenizers`` library on the bundled corpus ``assets/corpus/moby_dick_ch1-3.txt``:

``bert-mlm/``
    ``BertForMaskedLM``, 2 layers, 4 heads, hidden 32, WordPiece (vocab 400).
    Names carry the ``bert.`` prefix, the MLM head is ``cls.predictions.*``; the
    decoder weight is tied to ``bert.embeddings.word_embeddings.weight`` and is
    not in the file.
``bert-plain/``
    ``BertModel`` (MiniLM-like, no head, with the pooler), 3 layers.  Same
    WordPiece tokenizer, but its ``tokenizer.json`` pads to a fixed 128 and
    truncates at 128 (as all-MiniLM-L6-v2's does).  ``model.safetensors`` is
    rewritten the way old BERT files look: LayerNorm ``gamma``/``beta`` instead
    of ``weight``/``bias``, plus the I64 buffer ``embeddings.position_ids``.
    Names have no prefix.
``gpt2/``
    ``GPT2LMHeadModel``, 2 layers, 4 heads, n_embd 32, byte-level BPE (vocab
    512).  Conv1D weights ``[in, out]``; ``lm_head`` tied to
    ``transformer.wte.weight`` and not in the file.
``gpt2-bare/``
    ``GPT2Model`` (no ``transformer.`` prefix) plus the old causal-mask buffers
    ``h.{i}.attn.bias`` (F32 ``[1, 1, 64, 64]``, lower triangular); its
    tokenizer is only ``vocab.json`` + ``merges.txt`` (``#version: 0.2`` and one
    ``a b`` merge a line).
``roberta-mlm/``
    ``RobertaForMaskedLM``, 2 layers, 4 heads, hidden 32, byte-level BPE (vocab
    512) with ``<s>``=0 ``<pad>``=1 ``</s>``=2 ``<unk>``=3 ``<mask>``=4 (lstrip, as
    roberta-base's) and RoBERTa's post-processor (``<s> A </s></s> B </s>``, one token
    type).  Positions count from ``pad_token_id + 1`` = 2 (``max_position_embeddings``
    130, 128 usable: the analysis pair is 69 tokens).  Names ``roberta.*`` and ``lm_head.{dense,layer_norm,bias}``; the
    decoder weight is tied to the word embeddings and its bias to ``lm_head.bias``,
    neither is in the file.

Each folder holds only what a user's HF folder holds.  Beside it, for the
browser test to pick the folder whole, lie the references:

* ``<name>.expected.safetensors``: ``input_ids`` (I64 ``[1, S]``),
  ``token_type_ids`` (I64, BERT and RoBERTa; all 0 for RoBERTa), ``attention.{l}`` ``[1, heads, S, S]``
  (eager attention), ``hidden.{l}`` for ``l = 0..=layers`` (HF's
  ``output_hidden_states``: 0 is the embeddings output; for GPT-2 the last one
  is after ``ln_f``), ``logits`` ``[1, S, vocab]`` where there is a head
  (gpt2-bare: the tied head ``hidden @ wte.T``), ``pooler`` ``[1, hidden]``
  for bert-plain.
* ``<name>.expected.json``: text, ids, tokens, parameter count, top-5
  predictions, a tokenizer table over awkward strings, the "analyse one
  batch" loss with per-parameter gradient statistics, and ``flops`` /
  ``flops_by_op`` / ``flops_seq``: ``torch.utils.flop_counter.FlopCounterMode``'s
  count (a multiply-add is 2; eager attention, so QK^T and PV are matrix products)
  for the reference forward at batch 1 and its sequence length (bert-plain: the
  ``BertModel`` forward, pooler included; gpt2-bare: the tied LM-head model).
  RoBERTa's also holds ``position_ids``, the positions it used (from 2).

The script asserts that reloading each folder with ``from_pretrained``
reproduces the outputs (the folder is complete), and that the tokenizer
reloaded from the folder gives the same ids.

Run alone (writes only these fixtures) or through ``make_fixtures.py``::

    ~/.cache/glassbox/torchenv/bin/python scripts/hf_fixtures.py

The output is deterministic: two runs produce byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

# The trainers of `tokenizers` run on rayon; one thread keeps the run reproducible beyond doubt.
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from torch.utils.flop_counter import FlopCounterMode

import transformers
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertModel,
    BertTokenizerFast,
    GPT2Config,
    GPT2LMHeadModel,
    GPT2Model,
    GPT2TokenizerFast,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaTokenizerFast,
)

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures" / "hf"
CORPUS = ROOT / "assets" / "corpus" / "moby_dick_ch1-3.txt"

MAX_FOLDER_BYTES = 300_000
RELOAD_ATOL = 1e-6

TEXT = "Call me Ishmael. Some years ago, never mind how long precisely, I thought I would sail about."
TEXT_MASKED = "Call me [MASK]. Some years ago, never mind how long precisely, I thought I would sail about."
TEXT_MASKED_ROBERTA = "Call me <mask>. Some years ago, never mind how long precisely, I thought I would sail about."
TEXT_B = "It is a way I have of driving off the spleen."

TABLE_TEXTS = [
    "Call me Ishmael.",
    "Hello, world! (really?) -- yes; no: 'quoted' \"double\" [brackets] {braces} #hash @at",
    "3.14159 and 1,000,000 and 42nd, 2024-12-01",
    "café naïve résumé Zoë Ångström",
    "日本語のテキスト 中文字",
    "emoji 🙂🚀 here 👍🏽",
    "supercalifragilistic" * 15,
    "",
    "  leading and   multiple   spaces\tand\ttabs\nnewline",
]

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
GPT2_SPECIAL = "<|endoftext|>"
# RoBERTa's specials and ids: <s>=0, <pad>=1, </s>=2, <unk>=3; <mask> is 4 here (last in roberta-base).
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]

# Common to every model: no dropout, sharp attention (initializer_range 0.3).
COMMON = {"initializer_range": 0.3}
BERT_COMMON = dict(
    COMMON,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
    type_vocab_size=2,
    hidden_act="gelu",
    layer_norm_eps=1e-12,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    pad_token_id=0,
)
GPT2_COMMON = dict(
    COMMON,
    n_embd=32,
    n_head=4,
    n_positions=64,
    activation_function="gelu_new",
    layer_norm_epsilon=1e-5,
    resid_pdrop=0.0,
    embd_pdrop=0.0,
    attn_pdrop=0.0,
)

ROBERTA_COMMON = dict(
    COMMON,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
    # Positions count from padding_idx + 1 = 2, so 130 rows leave 128 usable.  (66, i.e. 64
    # usable as in the BERT fixtures, is too few: with a 512-token byte-level BPE the unmasked
    # pair of the analysis batch is 69 tokens; the masked reference pair is 63.)
    max_position_embeddings=130,
    type_vocab_size=1,
    hidden_act="gelu",
    layer_norm_eps=1e-5,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)

MODELS = {
    "bert-mlm": {"kind": "bert", "cls": BertForMaskedLM, "seed": 2024, "layers": 2},
    "bert-plain": {"kind": "bert", "cls": BertModel, "seed": 2025, "layers": 3},
    "gpt2": {"kind": "gpt2", "cls": GPT2LMHeadModel, "seed": 2026, "layers": 2},
    "gpt2-bare": {"kind": "gpt2", "cls": GPT2Model, "seed": 2027, "layers": 2},
    "roberta-mlm": {"kind": "roberta", "cls": RobertaForMaskedLM, "seed": 2028, "layers": 2},
}


def _mf():
    """make_fixtures' helpers (tensor_stats, write_json), imported late: it imports this module."""
    import make_fixtures

    return make_fixtures


def set_determinism() -> None:
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


# --------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------


def corpus_lines() -> list[str]:
    return CORPUS.read_text(encoding="utf-8").splitlines()


# WordPieceTrainer is not reproducible: it is BpeTrainer with a "##" prefix, and it gives the
# "##x" tokens ids in the order of a Rust HashMap of words (randomly seeded per process), so
# merges tied in count come out differently from run to run (tokenizers 0.23.2; seen here:
# five runs, five vocabularies).  BpeTrainer without a prefix is reproducible (alphabet sorted
# by code point, ties broken by ids).  So the WordPiece vocabulary is learned by BpeTrainer on
# the BERT-normalised, BERT-pre-tokenised words with every non-initial character moved to a
# private-use code point (U+F0000 + c): "##x" becomes its own symbol, the merges are exactly
# those WordPieceTrainer would make (the same counting, deterministic ties), and each token is
# mapped back ("##" + text when it starts with a moved character).
_PUA = 0xF0000


def _wordpiece_vocab(normalizer, pre_tokenizer, vocab_size: int, specials: list[str]) -> list[str]:
    words = []
    alphabet = set()
    for line in corpus_lines():
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)):
            assert all(ord(c) < 0x10000 for c in word), word
            alphabet.update(word)
            words.append(word[0] + "".join(chr(_PUA + ord(c)) for c in word[1:]))
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=sorted(alphabet),  # WordPieceTrainer keeps every character bare too
        show_progress=False,
    )
    bpe.train_from_iterator([" ".join(words[i : i + 64]) for i in range(0, len(words), 64)], trainer)
    by_id = sorted(bpe.get_vocab().items(), key=lambda kv: kv[1])
    assert [t for t, _ in by_id[: len(specials)]] == specials
    vocab = []
    for token, _ in by_id:
        if token in specials:
            vocab.append(token)
            continue
        text = "".join(chr(ord(c) - _PUA) if ord(c) >= _PUA else c for c in token)
        assert all(ord(c) >= _PUA for c in token[1:]), token
        vocab.append("##" + text if ord(token[0]) >= _PUA else text)
    assert len(set(vocab)) == len(vocab) == vocab_size, len(vocab)
    return vocab


def train_wordpiece() -> Tokenizer:
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    vocab = _wordpiece_vocab(normalizer, pre_tokenizer, 400, BERT_SPECIALS)
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece(prefix="##")
    # The specials as WordPieceTrainer adds them: special, matched before normalisation.
    tok.add_special_tokens(BERT_SPECIALS)
    ids = {t: tok.token_to_id(t) for t in BERT_SPECIALS}
    assert ids == {t: i for i, t in enumerate(BERT_SPECIALS)}, ids
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    assert tok.get_vocab_size() == 400
    return tok


def train_bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)  # as GPT-2's own tokenizer.json
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=[GPT2_SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer)
    assert tok.get_vocab_size() == 512
    return tok


def train_roberta_bpe() -> Tokenizer:
    """Byte-level BPE as for GPT-2 (vocab 512), with RoBERTa's five specials first and its post-processor."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=ROBERTA_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer)
    assert tok.get_vocab_size() == 512
    ids = {t: tok.token_to_id(t) for t in ROBERTA_SPECIALS}
    assert ids == {t: i for i, t in enumerate(ROBERTA_SPECIALS)}, ids
    # roberta-base's <mask>: lstrip (it takes the space before it), matched before normalisation.
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)])
    # As RobertaTokenizerFast sets it: trim_offsets=True, add_prefix_space=False.
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", ids["</s>"]), ("<s>", ids["<s>"]), trim_offsets=True, add_prefix_space=False
    )
    added = {t["content"]: t for t in json.loads(tok.to_str())["added_tokens"]}
    assert list(added) == ROBERTA_SPECIALS and all(t["special"] and not t["normalized"] for t in added.values())
    assert [t for t, a in added.items() if a["lstrip"] or a["rstrip"]] == ["<mask>"] and not added["<mask>"]["rstrip"]
    assert tok.get_vocab_size() == 512
    return tok


def write_special_tokens_map(folder: Path, mapping: dict) -> None:
    (folder / "special_tokens_map.json").write_text(json.dumps(mapping, indent=2, sort_keys=True) + "\n")


def save_bert_tokenizer(tok: Tokenizer, folder: Path, fixed_padding: bool) -> None:
    """BertTokenizerFast(tokenizer_object=...).save_pretrained, plus the legacy vocab files.

    transformers 5 writes only tokenizer.json and tokenizer_config.json; folders on the hub
    (written by transformers 4) also hold vocab.txt and special_tokens_map.json, which are
    written here as transformers 4 wrote them.
    """
    tok = Tokenizer.from_str(tok.to_str())
    if fixed_padding:
        tok.enable_padding(length=128, pad_id=0, pad_type_id=0, pad_token="[PAD]", direction="right")
        tok.enable_truncation(max_length=128)
    hf = BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=64 if not fixed_padding else 128,
    )
    hf.save_pretrained(folder)  # before any call: calls switch the backend's padding off
    tok.model.save(str(folder))  # vocab.txt, one token a line in id order
    write_special_tokens_map(folder, {k: k2 for k, k2 in zip(
        ["pad_token", "unk_token", "cls_token", "sep_token", "mask_token"], BERT_SPECIALS)})
    saved = json.loads((folder / "tokenizer.json").read_text())
    if fixed_padding:
        assert saved["padding"] is not None and saved["padding"]["strategy"] == {"Fixed": 128}, saved["padding"]
        assert saved["truncation"] is not None and saved["truncation"]["max_length"] == 128, saved["truncation"]
    else:
        assert saved["padding"] is None and saved["truncation"] is None


def save_gpt2_tokenizer(tok: Tokenizer, folder: Path, bare: bool) -> None:
    """GPT2TokenizerFast(tokenizer_object=...).save_pretrained plus vocab.json/merges.txt; or only those."""
    if not bare:
        hf = GPT2TokenizerFast(tokenizer_object=Tokenizer.from_str(tok.to_str()))
        hf.save_pretrained(folder)
        write_special_tokens_map(folder, {"bos_token": GPT2_SPECIAL, "eos_token": GPT2_SPECIAL, "unk_token": GPT2_SPECIAL})
    # tokenizers' BPE.save writes vocab.json and the old merges.txt: "#version: 0.2", then "a b" lines.
    tok.model.save(str(folder))
    merges = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert merges[0] == "#version: 0.2", merges[0]
    assert all(len(m.split(" ")) == 2 for m in merges[1:] if m), "merges.txt is not one `a b` pair a line"


def save_roberta_tokenizer(tok: Tokenizer, folder: Path) -> None:
    """RobertaTokenizerFast(tokenizer_object=...).save_pretrained, plus the legacy files.

    (In transformers 5 RobertaTokenizerFast is RobertaTokenizer, tokenizers-backed.)  As for GPT-2,
    vocab.json + merges.txt (and special_tokens_map.json) are written as transformers 4 wrote them.
    """
    hf = RobertaTokenizerFast(
        tokenizer_object=Tokenizer.from_str(tok.to_str()),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
        add_prefix_space=False,
        trim_offsets=True,
        # The usable positions (roberta-base: 514 rows, 512).
        model_max_length=ROBERTA_COMMON["max_position_embeddings"] - ROBERTA_COMMON["pad_token_id"] - 1,
    )
    hf.save_pretrained(folder)
    tok.model.save(str(folder))
    merges = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert merges[0] == "#version: 0.2", merges[0]
    assert all(len(m.split(" ")) == 2 for m in merges[1:] if m), "merges.txt is not one `a b` pair a line"
    mask = {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False}
    write_special_tokens_map(folder, {
        "bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "mask_token": mask,
        "pad_token": "<pad>", "sep_token": "</s>", "unk_token": "<unk>",
    })
    saved = json.loads((folder / "tokenizer.json").read_text())
    assert saved["padding"] is None and saved["truncation"] is None
    assert saved["post_processor"] == {
        "type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0], "trim_offsets": True, "add_prefix_space": False,
    }, saved["post_processor"]
    mask_saved = [t for t in saved["added_tokens"] if t["content"] == "<mask>"]
    assert len(mask_saved) == 1 and mask_saved[0]["id"] == 4 and mask_saved[0]["lstrip"], mask_saved


def load_tokenizer(kind: str, folder: Path):
    cls = {"bert": BertTokenizerFast, "gpt2": GPT2TokenizerFast, "roberta": RobertaTokenizerFast}[kind]
    return cls.from_pretrained(folder)


def raw_tokenizer(kind: str, folder: Path, trained: Tokenizer) -> Tokenizer:
    """What a Rust `tokenizers` user gets from the folder, padding and truncation off."""
    if (folder / "tokenizer.json").exists():
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    else:
        # gpt2-bare: only vocab.json + merges.txt, read the way a `tokenizers` user would.
        tok = Tokenizer(models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt")))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([GPT2_SPECIAL])
        assert tok.get_vocab() == trained.get_vocab()
    tok.no_padding()
    tok.no_truncation()
    return tok


def tokenizer_table(kind: str, raw: Tokenizer, hf, auto) -> list[dict]:
    table = []
    for text in TABLE_TEXTS:
        ids = raw.encode(text).ids
        for other in (hf, auto):
            other_ids = other(text)["input_ids"]
            assert other_ids == ids, (text, type(other).__name__, other_ids, ids)
        table.append({"text": text, "ids": ids})
    return table


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


def make_config(spec: dict, vocab: int):
    if spec["kind"] == "bert":
        return BertConfig(vocab_size=vocab, num_hidden_layers=spec["layers"], **BERT_COMMON)
    if spec["kind"] == "roberta":
        return RobertaConfig(vocab_size=vocab, num_hidden_layers=spec["layers"], **ROBERTA_COMMON)
    return GPT2Config(vocab_size=vocab, n_layer=spec["layers"], bos_token_id=0, eos_token_id=0, **GPT2_COMMON)


@torch.no_grad()
def perturb(model: torch.nn.Module, gen: torch.Generator) -> None:
    """LayerNorm weight 1 + 0.1·randn, bias 0.1·randn; every other zero bias 0.1·randn."""
    done = set()
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.weight.copy_(1 + 0.1 * torch.randn(module.weight.shape, generator=gen))
            module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
            done.update((id(module.weight), id(module.bias)))
    for name, p in model.named_parameters():
        if id(p) in done:
            continue
        if name.endswith("bias") and torch.count_nonzero(p) == 0:
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        assert torch.count_nonzero(p) > 0, f"{name} is still all zeros"


def build_model(spec: dict, vocab: int):
    torch.manual_seed(spec["seed"])
    config = make_config(spec, vocab)
    if spec["cls"] is BertModel:
        model = BertModel(config, add_pooling_layer=True)
    else:
        model = spec["cls"](config)
    model.set_attn_implementation("eager")
    assert model.config._attn_implementation == "eager"
    perturb(model, torch.Generator().manual_seed(spec["seed"] + 1))
    model.eval()
    return model


def forward(model, ids: torch.Tensor, tt: torch.Tensor | None) -> dict:
    kwargs = {"input_ids": ids, "output_attentions": True, "output_hidden_states": True}
    if tt is not None:
        kwargs["token_type_ids"] = tt
    with torch.no_grad():
        return model(**kwargs)


def count_flops(name: str, net, ids: torch.Tensor, tt: torch.Tensor | None, logits, out) -> tuple[int, dict]:
    """FlopCounterMode's total and per-op counts (a multiply-add is 2) for the forward giving the logits.

    Eager attention, so QK^T and PV are counted as the matrix products (bmm/matmul) they are.
    bert-plain: BertModel's forward (last hidden state; it runs its pooler too).  gpt2-bare: the
    LM-head model with tied weights, which made its logits.
    """
    assert net.config._attn_implementation == "eager"
    counter = FlopCounterMode(display=False)
    with counter:
        again = forward(net, ids, tt)
    if logits is not None:
        assert torch.equal(again.logits, logits), f"{name}: the counted forward differs"
    else:
        assert torch.equal(again.last_hidden_state, out.last_hidden_state), f"{name}: the counted forward differs"
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts()["Global"].items()}
    by_op = dict(sorted(by_op.items()))
    total = int(counter.get_total_flops())
    assert total == sum(by_op.values()) and total > 0, (total, by_op)
    return total, by_op


def safetensors_keys(path: Path) -> list[str]:
    with safe_open(str(path), framework="pt") as f:
        return sorted(f.keys())


def rewrite_old_bert(path: Path, max_pos: int) -> None:
    """LayerNorm weight/bias -> gamma/beta, plus the I64 buffer embeddings.position_ids [1, max_pos]."""
    state = load_file(str(path))
    out = {}
    for k, v in state.items():
        if ".LayerNorm." in k:
            k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        out[k] = v
    assert "embeddings.position_ids" not in out
    out["embeddings.position_ids"] = torch.arange(max_pos, dtype=torch.int64)[None, :]
    save_file(out, str(path), metadata={"format": "pt"})


def add_old_gpt2_buffers(path: Path, n_layer: int, n_pos: int) -> None:
    """Very old GPT-2 files store the causal mask `h.{i}.attn.bias`, F32 [1, 1, P, P]."""
    state = load_file(str(path))
    mask = torch.tril(torch.ones(n_pos, n_pos, dtype=torch.float32))[None, None]
    for i in range(n_layer):
        key = f"h.{i}.attn.bias"
        assert key not in state
        state[key] = mask.clone()
    save_file(state, str(path), metadata={"format": "pt"})


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


# --------------------------------------------------------------------------------------
# One model
# --------------------------------------------------------------------------------------


def build(name: str, spec: dict, trained: dict) -> dict:
    mf = _mf()
    kind = spec["kind"]
    folder = OUT_DIR / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)

    # ---- tokenizer ------------------------------------------------------------------
    if kind == "bert":
        save_bert_tokenizer(trained["wordpiece"], folder, fixed_padding=(name == "bert-plain"))
    elif kind == "roberta":
        save_roberta_tokenizer(trained["roberta"], folder)
    else:
        save_gpt2_tokenizer(trained["bpe"], folder, bare=(name == "gpt2-bare"))
    hf_tok = load_tokenizer(kind, folder)
    raw = raw_tokenizer(kind, folder, trained[{"bert": "wordpiece", "gpt2": "bpe", "roberta": "roberta"}[kind]])
    vocab = raw.get_vocab_size()
    assert len(hf_tok) == vocab, (len(hf_tok), vocab)

    # ---- model ------------------------------------------------------------------------
    model = build_model(spec, vocab)
    model.save_pretrained(folder)
    st = folder / "model.safetensors"
    assert st.exists()
    keys = safetensors_keys(st)
    if name == "bert-mlm":
        assert "cls.predictions.decoder.weight" not in keys, "tied MLM decoder was saved"
        assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
        assert all(k.startswith(("bert.", "cls.predictions.")) for k in keys), keys
    elif name == "bert-plain":
        assert not any(k.startswith("bert.") for k in keys), keys
        assert "pooler.dense.weight" in keys
        rewrite_old_bert(st, model.config.max_position_embeddings)
    elif name == "gpt2":
        assert "lm_head.weight" not in keys, "tied lm_head was saved"
        assert model.lm_head.weight is model.transformer.wte.weight
        assert "transformer.h.0.attn.c_attn.weight" in keys
        assert all(k.startswith("transformer.") for k in keys), keys
    elif name == "gpt2-bare":
        assert not any(k.startswith("transformer.") for k in keys), keys
        add_old_gpt2_buffers(st, model.config.n_layer, model.config.n_positions)
    elif name == "roberta-mlm":
        assert model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight
        assert model.lm_head.decoder.bias is model.lm_head.bias
        assert "lm_head.decoder.weight" not in keys, "tied MLM decoder was saved"
        allowed = ("roberta.embeddings.", "roberta.encoder.layer.", "lm_head.dense.", "lm_head.layer_norm.")
        assert all(k.startswith(allowed) or k == "lm_head.bias" for k in keys), keys
        assert "lm_head.bias" in keys and "lm_head.decoder.bias" not in keys, keys
        assert not any(k.startswith("roberta.pooler.") for k in keys), keys
    file_keys = safetensors_keys(st)
    # What a user's code would call (needs config.json for gpt2-bare, which has no tokenizer_config.json).
    auto_tok = AutoTokenizer.from_pretrained(folder)

    # ---- inputs -----------------------------------------------------------------------
    if kind in ("bert", "roberta"):
        text = {"bert-mlm": TEXT_MASKED, "roberta-mlm": TEXT_MASKED_ROBERTA}.get(name, TEXT)
        enc = raw.encode(text, TEXT_B)
        assert hf_tok(text, TEXT_B)["input_ids"] == enc.ids
        ids_list, tt_list = enc.ids, enc.type_ids
        text_b = TEXT_B
        if kind == "roberta":
            # One token type: RobertaProcessing gives type 0 to both sentences.
            assert tt_list == [0] * len(ids_list), tt_list
            assert hf_tok(text, TEXT_B, return_token_type_ids=True)["token_type_ids"] == tt_list
    else:
        text = TEXT
        ids_list = raw.encode(text).ids
        assert hf_tok(text)["input_ids"] == ids_list
        tt_list, text_b = None, None
    ids = torch.tensor([ids_list], dtype=torch.int64)
    tt = torch.tensor([tt_list], dtype=torch.int64) if tt_list is not None else None
    seq = ids.shape[1]
    assert seq <= 64

    # ---- forward ----------------------------------------------------------------------
    layers = spec["layers"]
    captured = {}
    blocks = model.encoder.layer if name == "bert-plain" else (
        model.bert.encoder.layer if kind == "bert" else (
            model.roberta.encoder.layer if kind == "roberta" else (model.h if name == "gpt2-bare" else model.transformer.h)))
    hook = blocks[-1].register_forward_hook(lambda m, i, o: captured.__setitem__("last", o[0] if isinstance(o, tuple) else o))
    out = forward(model, ids, tt)
    hook.remove()
    hidden, attns = out.hidden_states, out.attentions
    assert len(hidden) == layers + 1 and len(attns) == layers
    heads = model.config.num_attention_heads
    for a in attns:
        assert a.shape == (1, heads, seq, seq)
        assert torch.allclose(a.sum(-1), torch.ones(()), atol=1e-5)
    last_block = captured["last"]
    if kind == "gpt2":
        ln_f = model.ln_f if name == "gpt2-bare" else model.transformer.ln_f
        assert torch.allclose(hidden[-1], ln_f(last_block), atol=1e-6)
        assert not torch.allclose(hidden[-1], last_block, atol=1e-3)
        after_norm = True
        causal = torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1)
        assert all((a[..., causal] == 0).all() for a in attns)
    else:
        assert torch.equal(hidden[-1], last_block)
        after_norm = False

    expected = {"input_ids": ids}
    if tt is not None:
        expected["token_type_ids"] = tt
    for l, a in enumerate(attns):
        expected[f"attention.{l}"] = a
    for l, h in enumerate(hidden):
        expected[f"hidden.{l}"] = h

    # ---- logits -----------------------------------------------------------------------
    lm = None
    if name in ("bert-mlm", "roberta-mlm"):
        logits = out.logits
    elif name == "gpt2":
        logits = out.logits
        assert torch.allclose(logits, hidden[-1] @ model.transformer.wte.weight.T, atol=1e-5)
    elif name == "gpt2-bare":
        lm = GPT2LMHeadModel(model.config)
        lm.set_attn_implementation("eager")
        lm.transformer.load_state_dict(model.state_dict())
        assert lm.lm_head.weight is lm.transformer.wte.weight
        lm.eval()
        lm_out = forward(lm, ids, None)
        logits = lm_out.logits
        assert torch.equal(lm_out.hidden_states[-1], hidden[-1])
        assert torch.allclose(logits, hidden[-1] @ model.wte.weight.T, atol=1e-5)
    else:
        logits = None
        expected["pooler"] = out.pooler_output
    if logits is not None:
        assert logits.shape == (1, seq, vocab)
        expected["logits"] = logits
    expected = {
        k: v.detach().to(torch.int64 if v.dtype == torch.int64 else torch.float32).contiguous().clone()
        for k, v in expected.items()
    }

    # ---- RoBERTa's positions: padding_idx + 1 + (cumsum of non-pad - 1) ---------------------
    position_ids = None
    if kind == "roberta":
        pad = model.config.pad_token_id
        pos = model.roberta.embeddings.create_position_ids_from_input_ids(ids, pad)
        assert torch.equal(pos, ((ids != pad).long().cumsum(1)) * (ids != pad).long() + pad)
        assert pad not in ids_list and torch.equal(pos[0], torch.arange(pad + 1, pad + 1 + seq))
        assert seq + pad + 1 <= model.config.max_position_embeddings
        with torch.no_grad():
            explicit = model(input_ids=ids, token_type_ids=tt, position_ids=pos).logits
        assert torch.equal(explicit, logits), "position ids differ from RoBERTa's own"
        position_ids = pos[0].tolist()

    # ---- FLOPs of the reference forward (batch 1) ------------------------------------------
    flops, flops_by_op = count_flops(name, lm if name == "gpt2-bare" else model, ids, tt, logits, out)

    # ---- reload the folder: it must be complete ---------------------------------------
    reloaded, info = spec["cls"].from_pretrained(folder, attn_implementation="eager", output_loading_info=True)
    reloaded.eval()
    assert not info["missing_keys"], info["missing_keys"]
    assert not info["mismatched_keys"], info["mismatched_keys"]
    r = forward(reloaded, ids, tt)
    worst = 0.0
    for a, b in list(zip(r.hidden_states, hidden)) + list(zip(r.attentions, attns)):
        worst = max(worst, (a - b).abs().max().item())
    if logits is not None and name != "gpt2-bare":
        worst = max(worst, (r.logits - logits).abs().max().item())
    if name == "gpt2-bare":
        lm2 = GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager")  # a bare folder loads into the LM class
        lm2.eval()
        worst = max(worst, (forward(lm2, ids, None).logits - logits).abs().max().item())
    if name == "bert-plain":
        worst = max(worst, (r.pooler_output - out.pooler_output).abs().max().item())
    assert worst <= RELOAD_ATOL, f"{name}: reloaded folder differs by {worst:.3e}"

    # ---- top-5 ------------------------------------------------------------------------
    top5 = {}
    if name in ("bert-mlm", "roberta-mlm"):
        mask_id = raw.token_to_id("[MASK]" if kind == "bert" else "<mask>")
        positions = [p for p, t in enumerate(ids_list) if t == mask_id]
        assert len(positions) == 1
    elif kind == "gpt2":
        positions = list(range(seq))
    else:
        positions = []
    for p in positions:
        vals, idx = torch.topk(logits[0, p], 6)
        assert vals[4] > vals[5], f"{name}: top-5 tie at position {p}"
        top5[str(p)] = idx[:5].tolist()

    # ---- analysis: loss and gradients --------------------------------------------------
    analysis = None
    if name in ("bert-mlm", "roberta-mlm"):
        enc = raw.encode(TEXT, TEXT_B)
        orig, tts = enc.ids, enc.type_ids
        specials = enc.special_tokens_mask
        mask_id = raw.token_to_id("[MASK]" if kind == "bert" else "<mask>")
        masked, labels, masked_positions = list(orig), [-100] * len(orig), []
        j = 0
        for p, s in enumerate(specials):
            if s:
                continue
            if j % 7 == 6:
                masked[p], labels[p] = mask_id, orig[p]
                masked_positions.append(p)
            j += 1
        assert masked_positions
        usable = model.config.max_position_embeddings - (model.config.pad_token_id + 1 if kind == "roberta" else 0)
        assert len(masked) <= usable, f"{name}: the analysis batch has {len(masked)} tokens, {usable} positions"
        model.zero_grad(set_to_none=True)
        loss = model(
            input_ids=torch.tensor([masked]), token_type_ids=torch.tensor([tts]), labels=torch.tensor([labels])
        ).loss
        loss.backward()
        grads = {n: mf.tensor_stats(p.grad) for n, p in model.named_parameters()}
        analysis = {
            "input_ids": masked,
            "token_type_ids": tts,
            "labels": labels,
            "masked_positions": masked_positions,
            "loss": loss.item(),
            "gradients": grads,
        }
    elif kind == "gpt2":
        net = model if name == "gpt2" else lm
        net.zero_grad(set_to_none=True)
        loss = net(input_ids=ids, labels=ids).loss
        loss.backward()
        grads = {}
        for n, p in net.named_parameters():
            if name == "gpt2-bare":
                # The bare model's own names, as in its model.safetensors.
                assert n.startswith("transformer."), n
                n = n[len("transformer.") :]
            grads[n] = mf.tensor_stats(p.grad)
        analysis = {
            "input_ids": ids_list,
            "token_type_ids": None,
            "labels": ids_list,
            "masked_positions": None,
            "loss": loss.item(),
            "gradients": grads,
        }
    if analysis is not None:
        param_names = [n for n, _ in model.named_parameters()]
        if name == "gpt2-bare":
            assert list(analysis["gradients"]) == param_names, "gradient names differ from the bare model's"
        else:
            assert list(analysis["gradients"]) == param_names

    save_file(expected, str(OUT_DIR / f"{name}.expected.safetensors"), metadata={"format": "pt"})
    meta = {
        "model_type": model.config.model_type,
        "hf_class": type(model).__name__,
        "text": text,
        "text_b": text_b,
        "ids": ids_list,
        "tokens": hf_tok.convert_ids_to_tokens(ids_list),
        "token_type_ids": tt_list,
        **({"position_ids": position_ids} if position_ids is not None else {}),
        "num_parameters": model.num_parameters(),
        "flops": flops,
        "flops_by_op": flops_by_op,
        "flops_seq": seq,
        "hidden_last_after_final_norm": after_norm,
        "safetensors_keys": file_keys,
        "top5": top5,
        "tokenizer_table": tokenizer_table(kind, raw, hf_tok, auto_tok),
        "analysis": analysis,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": sys.modules["tokenizers"].__version__,
        },
    }
    mf.write_json(OUT_DIR / f"{name}.expected.json", meta)

    size = folder_size(folder)
    assert size < MAX_FOLDER_BYTES, f"{name}/ is {size:,} bytes"
    return {"size": size, "parameters": meta["num_parameters"], "loss": analysis and analysis["loss"], "reload": worst}


def main() -> None:
    set_determinism()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    print(f"transformers {transformers.__version__}; writing to {OUT_DIR.relative_to(ROOT)}/")
    trained = {"wordpiece": train_wordpiece(), "bpe": train_bpe(), "roberta": train_roberta_bpe()}
    summaries = {name: build(name, spec, trained) for name, spec in MODELS.items()}
    for name, s in summaries.items():
        loss = "-" if s["loss"] is None else f"{s['loss']:.6f}"
        print(
            f"[{name}] parameters {s['parameters']:,}  loss {loss}  folder {s['size']:,} B  "
            f"|reloaded - original| {s['reload']:.1e}"
        )
    print("\nfiles:")
    for path in sorted(OUT_DIR.rglob("*")):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            print(f"  {str(path.relative_to(OUT_DIR)):<40} {path.stat().st_size:>9,} B  sha256 {digest}")


if __name__ == "__main__":
    main()
