#!/usr/bin/env python3
"""Generate the PyTorch parity fixtures in ``tests/fixtures/``.

glassbox re-implements, in Rust/burn, the demo model of the seed chapter
(``DummyTransformer``: ``nn.Embedding`` -> ``nn.TransformerEncoder`` ->
``nn.Linear``).  The Rust tests load the checkpoints written here and compare
their own forward pass, attention maps, intermediate activations, gradient
statistics, parameter counts and FLOP counts with what PyTorch computes.

Two models are built, each from its own fixed seed:

``seed``
    Exactly the chapter's model: vocab 1000, d_model 256, 8 heads, d_ff 1024,
    4 layers, ReLU, post-LN, no positional encoding, not causal.  To keep the
    committed checkpoint small every parameter is rounded to float16 right after
    initialisation and the state_dict is saved as F16; all computation then runs
    in float32 on those (exactly f16-representable) weights, so the Rust side
    loading the F16 file and widening it sees bit-identical weights.

``tiny``
    The same structure, smaller and with the other options switched on:
    d_model 64, 4 heads, d_ff 256, 2 layers, pre-LN, exact (erf) GELU, causal
    attention and a learned position embedding (32 positions).  Saved as F32.

For each model ``<name>`` the script writes

* ``<name>.safetensors``           the state_dict, PyTorch names and layouts;
* ``<name>.config.json``           the glassbox ``TransformerConfig`` JSON;
* ``<name>.expected.safetensors``  input ids, targets, logits, per-layer
                                   attention weights and every sub-module
                                   output under glassbox module paths;
* ``<name>.expected.json``         loss, gradient statistics, parameter counts
                                   and FLOP counts.

The per-module outputs are obtained by composing each encoder layer step by
step from its own sub-modules; the script asserts that this composition
reproduces both each layer's own forward and the model's logits, so the values
are exactly what PyTorch's ``nn.TransformerEncoderLayer`` computes.

Run (see ``scripts/requirements-fixtures.txt`` for the pinned versions)::

    ~/.cache/glassbox/torchenv/bin/python scripts/make_fixtures.py

The output is deterministic: two runs produce byte-identical files.

At the end ``main()`` also writes the HuggingFace-layout fixtures in
``tests/fixtures/hf/`` through ``hf_fixtures.main()`` (see ``scripts/hf_fixtures.py``,
which can also be run alone).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.utils.flop_counter import FlopCounterMode

import autograd_memory
import hf_fixtures

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures"

# Everything below is float32 on the CPU, deterministic kernels only.
torch.set_default_dtype(torch.float32)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)  # one thread: no reduction-order differences between machines' core counts

# Tolerance for the composition self-checks (the Rust tests use their own tolerances).
COMPOSE_ATOL = 1e-5

# The two fixture models.  `config` is written verbatim (in this key order) as the
# glassbox TransformerConfig JSON; the remaining keys drive this script.
MODELS = {
    "seed": {
        "seed": 1234,
        "data_seed": 4321,
        "batch": 2,
        "seq_len": 10,
        "weights_dtype": torch.float16,
        "chapter_dropout": True,  # PyTorch's default dropout=0.1, as in the chapter
        "expected_parameters": 3_672_040,
        "config": {
            "vocab_size": 1000,
            "d_model": 256,
            "num_heads": 8,
            "d_ff": 1024,
            "num_layers": 4,
            "max_seq_len": 512,
            "activation": "Relu",
            "norm_position": "Post",
            "positional": "None",
            "causal": False,
            "dropout": 0.0,
            "layer_norm_eps": 1e-5,
        },
    },
    "tiny": {
        "seed": 5678,
        "data_seed": 8765,
        "batch": 2,
        "seq_len": 12,
        "weights_dtype": torch.float32,
        "chapter_dropout": False,
        "expected_parameters": 231_016,
        "config": {
            "vocab_size": 1000,
            "d_model": 64,
            "num_heads": 4,
            "d_ff": 256,
            "num_layers": 2,
            "max_seq_len": 32,
            "activation": "Gelu",
            "norm_position": "Pre",
            "positional": "Learned",
            "causal": True,
            "dropout": 0.0,
            "layer_norm_eps": 1e-5,
        },
    },
}


class DummyTransformer(nn.Module):
    """The seed chapter's ``DummyTransformer``, generalised by a glassbox config.

    With the ``seed`` config and ``chapter_dropout=True`` this is exactly the
    chapter's model (same attribute names, same constructor arguments, PyTorch
    defaults for everything else, including dropout=0.1, which ``eval()``
    switches off).
    """

    def __init__(self, cfg: dict, chapter_dropout: bool):
        super().__init__()
        self.cfg = cfg
        self.causal = cfg["causal"]
        pre_ln = cfg["norm_position"] == "Pre"
        self.embedding = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        if cfg["positional"] == "Learned":
            self.position_embedding = nn.Embedding(cfg["max_seq_len"], cfg["d_model"])
        else:
            assert cfg["positional"] == "None", "this generator covers None and Learned only"
            self.position_embedding = None
        layer_kwargs = dict(
            d_model=cfg["d_model"],
            nhead=cfg["num_heads"],
            dim_feedforward=cfg["d_ff"],
            batch_first=True,
        )
        encoder_kwargs = {}
        if cfg["activation"] == "Gelu":
            layer_kwargs["activation"] = "gelu"  # F.gelu, the exact erf form
        if pre_ln:
            layer_kwargs["norm_first"] = True
            # Nested tensors are never used with norm_first; say so to avoid a warning.
            encoder_kwargs["enable_nested_tensor"] = False
        if not chapter_dropout:
            # Built with the config's dropout (0.0) rather than PyTorch's default 0.1.
            layer_kwargs["dropout"] = cfg["dropout"]
        self.transformer = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(**layer_kwargs),
            num_layers=cfg["num_layers"],
            **encoder_kwargs,
        )
        self.output = nn.Linear(cfg["d_model"], cfg["vocab_size"])

    def attn_mask(self, seq_len: int) -> torch.Tensor | None:
        """Float causal mask (0 on/below the diagonal, -inf above) or None."""
        if not self.causal:
            return None
        return nn.Transformer.generate_square_subsequent_mask(seq_len)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Token embedding, and token + position embedding when there is one."""
        tok = self.embedding(x)
        if self.position_embedding is None:
            return tok, None
        pos = self.position_embedding(torch.arange(x.shape[1]))
        return tok, tok + pos

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tok, with_pos = self.embed(x)
        h = tok if with_pos is None else with_pos
        if self.causal:
            h = self.transformer(h, mask=self.attn_mask(x.shape[1]), is_causal=True)
        else:
            h = self.transformer(h)
        return self.output(h)


# --------------------------------------------------------------------------------------
# Step-by-step composition of the forward pass, recording every sub-module output.
# --------------------------------------------------------------------------------------


def composed_forward(model: DummyTransformer, x: torch.Tensor):
    """Recompute the forward pass from each layer's sub-modules.

    Returns ``(modules, attention)``: ``modules`` maps glassbox module paths
    (without the ``modules.`` prefix) to outputs, ``attention`` maps layer index
    to the per-head attention weights ``[B, heads, S, S]``.  Asserts that every
    composed layer equals the layer's own forward.
    """
    modules: dict[str, torch.Tensor] = {}
    attention: dict[int, torch.Tensor] = {}
    seq_len = x.shape[1]
    mask = model.attn_mask(seq_len)
    causal = model.causal

    tok, with_pos = model.embed(x)
    modules["embedding"] = tok
    h = tok
    if with_pos is not None:
        modules["positional"] = with_pos
        h = with_pos

    for i, layer in enumerate(model.transformer.layers):
        p = f"layers.{i}"
        layer_in = h

        def self_attention(a: torch.Tensor) -> torch.Tensor:
            # The output exactly as the layer computes it (it asks for no weights) ...
            out = layer.self_attn(
                a, a, a, attn_mask=mask, need_weights=False, is_causal=causal
            )[0]
            # ... and the per-head weights from a second call that does ask for them.
            out_w, weights = layer.self_attn(
                a, a, a, need_weights=True, average_attn_weights=False, attn_mask=mask
            )
            assert torch.allclose(out, out_w, atol=COMPOSE_ATOL, rtol=0), f"{p}: attn paths differ"
            attention[i] = weights
            return out

        def feed_forward(a: torch.Tensor) -> torch.Tensor:
            l1 = layer.linear1(a)
            act = layer.activation(l1)
            l2 = layer.linear2(act)  # dropout is off in eval mode
            modules[f"{p}.ff.linear1"] = l1
            modules[f"{p}.ff.activation"] = act
            modules[f"{p}.ff.linear2"] = l2
            return l2

        if layer.norm_first:
            # Pre-LN: x = x + attn(norm1(x)); x = x + ff(norm2(x))
            n1 = layer.norm1(layer_in)
            modules[f"{p}.norm1"] = n1
            attn = self_attention(n1)
            modules[f"{p}.attn"] = attn
            mid = layer_in + attn
            n2 = layer.norm2(mid)
            modules[f"{p}.norm2"] = n2
            ff = feed_forward(n2)
            out = mid + ff
        else:
            # Post-LN: x = norm1(x + attn(x)); x = norm2(x + ff(x))
            attn = self_attention(layer_in)
            modules[f"{p}.attn"] = attn
            n1 = layer.norm1(layer_in + attn)
            modules[f"{p}.norm1"] = n1
            ff = feed_forward(n1)
            n2 = layer.norm2(n1 + ff)
            modules[f"{p}.norm2"] = n2
            out = n2
        modules[p] = out

        # The composition must equal the layer's own forward.
        reference = layer(layer_in, src_mask=mask, is_causal=causal)
        assert torch.allclose(out, reference, atol=COMPOSE_ATOL, rtol=0), (
            f"{p}: composed output differs from layer forward by "
            f"{(out - reference).abs().max().item():.3e}"
        )
        h = out

    # TransformerEncoder(norm=None): no final LayerNorm.
    assert model.transformer.norm is None
    modules["output"] = model.output(h)
    return modules, attention


# --------------------------------------------------------------------------------------
# PyTorch names -> glassbox parameter paths
# --------------------------------------------------------------------------------------


def glassbox_parameters(model: DummyTransformer, use_grad: bool) -> dict[str, torch.Tensor]:
    """Map glassbox parameter paths to PyTorch tensors (or their gradients).

    PyTorch packs query/key/value into one ``in_proj``; glassbox has three
    separate linears, so those are sliced by rows.  burn's Linear stores the
    weight transposed, which does not change any statistic computed here.
    """

    def get(t: torch.Tensor) -> torch.Tensor:
        if use_grad:
            assert t.grad is not None
            return t.grad.detach()
        return t.detach()

    d = model.cfg["d_model"]
    out: dict[str, torch.Tensor] = {"embedding.weight": get(model.embedding.weight)}
    if model.position_embedding is not None:
        out["position_embedding.weight"] = get(model.position_embedding.weight)
    for i, layer in enumerate(model.transformer.layers):
        p = f"layers.{i}"
        sa = layer.self_attn
        w, b = get(sa.in_proj_weight), get(sa.in_proj_bias)
        for j, name in enumerate(("query", "key", "value")):
            out[f"{p}.attn.{name}.weight"] = w[j * d : (j + 1) * d]
            out[f"{p}.attn.{name}.bias"] = b[j * d : (j + 1) * d]
        out[f"{p}.attn.output.weight"] = get(sa.out_proj.weight)
        out[f"{p}.attn.output.bias"] = get(sa.out_proj.bias)
        for norm in ("norm1", "norm2"):
            ln = getattr(layer, norm)
            out[f"{p}.{norm}.gamma"] = get(ln.weight)
            out[f"{p}.{norm}.beta"] = get(ln.bias)
        for lin in ("linear1", "linear2"):
            linear = getattr(layer, lin)
            out[f"{p}.ff.{lin}.weight"] = get(linear.weight)
            out[f"{p}.ff.{lin}.bias"] = get(linear.bias)
    out["output.weight"] = get(model.output.weight)
    out["output.bias"] = get(model.output.bias)
    return out


def tensor_stats(g: torch.Tensor) -> dict:
    """mean / std (unbiased, torch's default) / min / max / L2 norm, in float64."""
    g = g.double()
    return {
        "mean": g.mean().item(),
        "std": g.std().item(),  # correction=1, as the seed chapter's grad.std()
        "min": g.min().item(),
        "max": g.max().item(),
        "norm": g.norm().item(),
        "numel": g.numel(),
    }


# --------------------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------------------


def config_json(cfg: dict) -> str:
    """The glassbox config as compact JSON, with the epsilon spelled 0.00001."""
    parts = []
    for key, value in cfg.items():
        if key == "layer_norm_eps":
            assert value == 1e-5
            text = "0.00001"
        else:
            text = json.dumps(value)
        parts.append(f"{json.dumps(key)}:{text}")
    return "{" + ",".join(parts) + "}\n"


def check_finite(obj, where: str = "") -> None:
    """JSON has no NaN/inf; refuse to write them."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            check_finite(v, f"{where}.{k}")
    elif isinstance(obj, float):
        assert math.isfinite(obj), f"non-finite value at {where}"


def write_json(path: Path, obj) -> None:
    check_finite(obj)
    path.write_text(json.dumps(obj, indent=1, allow_nan=False) + "\n")


# --------------------------------------------------------------------------------------
# One model
# --------------------------------------------------------------------------------------


def build_fixtures(name: str, spec: dict) -> dict:
    cfg = spec["config"]
    batch, seq_len = spec["batch"], spec["seq_len"]
    vocab = cfg["vocab_size"]

    # ---- model, with parameters stored in the checkpoint's dtype -------------------
    torch.manual_seed(spec["seed"])
    model = DummyTransformer(cfg, chapter_dropout=spec["chapter_dropout"])
    model.eval()  # no dropout anywhere below
    with torch.no_grad():
        for param in model.parameters():
            # Round-trip through the checkpoint dtype (a no-op for F32), so the float32
            # weights used below are exactly what the Rust side loads.
            param.data = param.data.to(spec["weights_dtype"]).float()
    state = {k: v.detach().to(spec["weights_dtype"]).contiguous() for k, v in model.state_dict().items()}
    for k, v in model.state_dict().items():
        assert torch.equal(state[k].float(), v), f"{k} is not exactly representable in the file"
    save_file(state, OUT_DIR / f"{name}.safetensors", metadata={"format": "pt"})
    (OUT_DIR / f"{name}.config.json").write_text(config_json(cfg))

    # ---- fixed inputs ---------------------------------------------------------------
    gen = torch.Generator().manual_seed(spec["data_seed"])
    input_ids = torch.randint(0, vocab, (batch, seq_len), generator=gen, dtype=torch.int64)
    targets = torch.randint(0, vocab, (batch, seq_len), generator=gen, dtype=torch.int64)

    # ---- forward: model's own, and composed ------------------------------------------
    with torch.no_grad():
        # Under no_grad in eval mode PyTorch takes its fused inference fast path
        # (aten::_transformer_encoder_layer_fwd); the layer-by-layer composition below
        # and the grad-enabled forward further down are both checked against it.
        logits = model(input_ids)
        modules, attention = composed_forward(model, input_ids)
    assert logits.shape == (batch, seq_len, vocab)
    diff = (modules["output"] - logits).abs().max().item()
    assert torch.allclose(modules["output"], logits, atol=COMPOSE_ATOL, rtol=0), (
        f"{name}: composed logits differ from model(x) by {diff:.3e}"
    )
    for i, w in attention.items():
        assert w.shape == (batch, cfg["num_heads"], seq_len, seq_len)
        assert torch.allclose(w.sum(-1), torch.ones(()), atol=1e-5)
        if model.causal:
            upper = torch.triu(torch.ones(seq_len, seq_len, dtype=torch.bool), 1)
            assert (w[..., upper] == 0).all(), f"layer {i}: attention to future positions"

    expected = {"input_ids": input_ids, "targets": targets, "logits": logits}
    for i in sorted(attention):
        expected[f"attention.layers.{i}"] = attention[i]
    for path, value in modules.items():
        expected[f"modules.{path}"] = value
    expected = {
        # clone(): in post-LN a layer's output *is* its norm2 output, and safetensors
        # refuses to save two names sharing one storage.
        k: v.detach()
        .to(torch.int64 if v.dtype == torch.int64 else torch.float32)
        .clone(memory_format=torch.contiguous_format)
        for k, v in expected.items()
    }
    save_file(expected, OUT_DIR / f"{name}.expected.safetensors", metadata={"format": "pt"})

    # ---- loss and gradients (eval mode, grad enabled) --------------------------------
    model.zero_grad(set_to_none=True)
    train_logits = model(input_ids)  # grad enabled: PyTorch's regular (non-fused) path
    assert torch.allclose(train_logits, logits, atol=COMPOSE_ATOL, rtol=0)
    loss = F.cross_entropy(train_logits.reshape(-1, vocab), targets.reshape(-1))
    loss.backward()
    gradients = {path: tensor_stats(g) for path, g in glassbox_parameters(model, use_grad=True).items()}

    # ---- parameter counts -------------------------------------------------------------
    gb_counts = {path: t.numel() for path, t in glassbox_parameters(model, use_grad=False).items()}
    pt_counts = {n: p.numel() for n, p in model.named_parameters()}
    total = sum(pt_counts.values())
    assert total == sum(gb_counts.values()) == spec["expected_parameters"], (name, total)

    # ---- FLOPs of one forward (grad enabled, eval mode) --------------------------------
    model.zero_grad(set_to_none=True)
    with FlopCounterMode(display=False) as counter:
        model(input_ids)
    # FlopCounterMode's dicts come out in an order that varies between runs (it keeps
    # modules in sets); sort modules and ops by name so the file is reproducible.
    by_module = {
        module: dict(sorted((str(op), int(n)) for op, n in ops.items()))
        for module, ops in sorted((str(m), ops) for m, ops in counter.get_flop_counts().items())
    }
    flops = {
        "convention": "torch.utils.flop_counter.FlopCounterMode (a multiply-add counts 2)",
        "total": int(counter.get_total_flops()),
        "forward_by_op": dict(by_module.get("Global", {})),
        "by_module": by_module,
    }

    stats = {
        "torch_version": torch.__version__,
        "seed": spec["seed"],
        "data_seed": spec["data_seed"],
        "batch": batch,
        "seq_len": seq_len,
        "loss": loss.item(),
        "gradients": gradients,
        "parameter_count": {"total": total, "tensors": gb_counts},
        "pytorch_parameter_count": {"total": total, "tensors": pt_counts},
        "flops": flops,
    }
    write_json(OUT_DIR / f"{name}.expected.json", stats)

    # ---- the op-by-op forward that autograd_memory measures is this model's forward ------
    mirror_diff = autograd_memory.check_against(model, glassbox_parameters, cfg, input_ids, COMPOSE_ATOL)
    return {"loss": loss.item(), "parameters": total, "flops": flops, "logits_diff": diff, "mirror_diff": mirror_diff}


def write_autograd_saved(summaries: dict) -> None:
    """``autograd_saved.json``: what autograd keeps for backward, for the parity models and more."""
    cases = [(name, spec["config"], spec["batch"], spec["seq_len"]) for name, spec in MODELS.items()]
    cases += [(name, cfg, batch, seq) for name, (cfg, batch, seq) in autograd_memory.EXTRA_CASES.items()]
    out = []
    # fork_rng: the dropout masks drawn here leave the global generator as it was.
    with torch.random.fork_rng():
        for index, (name, cfg, batch, seq) in enumerate(cases):
            measured = autograd_memory.saved_bytes(cfg, batch, seq, seed=100 + index)
            entry = {"name": name, "config": cfg, **measured}
            if name in summaries:
                entry["forward_matches_model_to"] = COMPOSE_ATOL
            out.append(entry)
    write_json(
        OUT_DIR / "autograd_saved.json",
        {
            "torch_version": torch.__version__,
            "what": "bytes of the distinct storages torch.autograd.graph.saved_tensors_hooks sees "
            "during one training forward and loss (scripts/autograd_memory.py); parameters, "
            "integer indices and 0-d tensors left out",
            "cases": out,
        },
    )


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}; writing to {OUT_DIR.relative_to(ROOT)}/")
    summaries = {name: build_fixtures(name, spec) for name, spec in MODELS.items()}
    write_autograd_saved(summaries)

    for name, s in summaries.items():
        print(
            f"\n[{name}] parameters {s['parameters']:,}  loss {s['loss']:.6f}  "
            f"FLOPs {s['flops']['total']:,}  |composed - model(x)| {s['logits_diff']:.2e}"
        )
        for op, n in s["flops"]["forward_by_op"].items():
            print(f"    {op:<28} {n:>14,}")

    print("\nfiles:")
    total = 0
    for path in sorted(OUT_DIR.iterdir()):
        if path.name == "README.md" or path.is_dir():  # hf/ is listed by hf_fixtures
            continue
        size = path.stat().st_size
        total += size
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        print(f"  {path.name:<30} {size:>10,} B  sha256 {digest}")
    print(f"  {'total':<30} {total:>10,} B")

    # The HuggingFace-layout models in tests/fixtures/hf/ (scripts/hf_fixtures.py).
    print()
    hf_fixtures.main()


if __name__ == "__main__":
    main()
