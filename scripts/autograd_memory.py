"""What PyTorch's autograd keeps for the backward pass of glassbox's forward, in bytes.

glassbox's Diagnostics tab computes, from shapes alone, the activations one training step keeps
for its backward pass (``analysis::diagnostics::saved_for_backward``). This module measures the
same quantity in PyTorch so that the Rust test ``saved_bytes_match_pytorch_autograd`` can fail:

* ``glassbox_forward`` is glassbox's forward (``src/model/transformer.rs`` and burn's
  ``MultiHeadAttention``) written op by op in plain PyTorch: separate query/key/value linears,
  ``QKᵀ / √d_head``, the causal mask filled in, softmax, ``·V``, the output projection, dropout
  where glassbox has it, residual sums, LayerNorm before or after, the feed-forward block, the
  vocabulary head and the mean cross-entropy. For the two parity models it is checked against
  ``DummyTransformer`` (``nn.TransformerEncoder``) to 1e-5, so it computes what PyTorch's own
  layers compute.
* ``saved_bytes`` runs that forward and the loss in training mode under
  ``torch.autograd.graph.saved_tensors_hooks`` and sums the bytes of every distinct storage
  autograd saves, leaving out the parameters (they are counted as parameters), integer index
  tensors (token ids and targets) and zero-dimensional bookkeeping tensors (``nll_loss``'s total
  weight). Floating-point and boolean (mask) storages are summed separately.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _param(shape, gen):
    return (torch.randn(*shape, generator=gen) * 0.2).requires_grad_()


def random_parameters(cfg: dict, seed: int) -> dict[str, torch.Tensor]:
    """Leaf parameters under glassbox paths, in PyTorch's ``[out, in]`` layout."""
    gen = torch.Generator().manual_seed(seed)
    d, d_ff, vocab = cfg["d_model"], cfg["d_ff"], cfg["vocab_size"]
    p = {"embedding.weight": _param((vocab, d), gen)}
    if cfg["positional"] == "Learned":
        p["position_embedding.weight"] = _param((cfg["max_seq_len"], d), gen)
    for i in range(cfg["num_layers"]):
        for name in ("query", "key", "value", "output"):
            p[f"layers.{i}.attn.{name}.weight"] = _param((d, d), gen)
            p[f"layers.{i}.attn.{name}.bias"] = _param((d,), gen)
        if cfg["norm_position"] != "None":
            for norm in ("norm1", "norm2"):
                p[f"layers.{i}.{norm}.gamma"] = _param((d,), gen)
                p[f"layers.{i}.{norm}.beta"] = _param((d,), gen)
        p[f"layers.{i}.ff.linear1.weight"] = _param((d_ff, d), gen)
        p[f"layers.{i}.ff.linear1.bias"] = _param((d_ff,), gen)
        p[f"layers.{i}.ff.linear2.weight"] = _param((d, d_ff), gen)
        p[f"layers.{i}.ff.linear2.bias"] = _param((d,), gen)
    p["output.weight"] = _param((vocab, d), gen)
    p["output.bias"] = _param((vocab,), gen)
    return p


def _sinusoids(seq: int, d: int, max_timescale: float) -> torch.Tensor:
    """burn's sinusoidal positions (a constant: nothing is saved for it)."""
    pos = torch.arange(seq, dtype=torch.float32)[:, None]
    i = torch.arange(d, dtype=torch.float32)[None, :]
    angle = pos / max_timescale ** ((i - i % 2) / d)
    return torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle))


def glassbox_forward(p: dict, cfg: dict, x: torch.Tensor, training: bool) -> torch.Tensor:
    """glassbox's forward pass op by op; returns the logits ``[batch, seq, vocab]``."""
    batch, seq = x.shape
    d, heads = cfg["d_model"], cfg["num_heads"]
    d_head = d // heads
    drop = cfg["dropout"] if training else 0.0
    eps = cfg["layer_norm_eps"]

    def dropout(t):
        return F.dropout(t, drop, training=True) if drop > 0 else t

    h = F.embedding(x, p["embedding.weight"])
    if cfg["positional"] == "Learned":
        h = h + F.embedding(torch.arange(seq).expand(batch, seq), p["position_embedding.weight"])
    elif cfg["positional"] == "Sinusoidal":
        h = h + _sinusoids(seq, d, max(10_000, cfg["max_seq_len"]))
    # burn's autoregressive mask is one [batch, seq, seq] tensor shared by every layer.
    mask = None
    if cfg["causal"]:
        mask = torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1).repeat(batch, 1, 1)

    for i in range(cfg["num_layers"]):
        w = lambda name: p[f"layers.{i}.{name}"]  # noqa: E731

        def attend(a):
            def split(t):
                return t.view(batch, seq, heads, d_head).transpose(1, 2)  # [batch, heads, seq, d_head]

            q = split(F.linear(a, w("attn.query.weight"), w("attn.query.bias")))
            k = split(F.linear(a, w("attn.key.weight"), w("attn.key.bias")))
            v = split(F.linear(a, w("attn.value.weight"), w("attn.value.bias")))
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_head)  # [batch, heads, seq, seq]
            if mask is not None:
                scores = scores.masked_fill(mask.unsqueeze(1), float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            context = torch.matmul(weights, v).transpose(1, 2).reshape(batch, seq, d)
            out = F.linear(context, w("attn.output.weight"), w("attn.output.bias"))
            return dropout(out)

        def feed_forward(a):
            hidden = F.linear(a, w("ff.linear1.weight"), w("ff.linear1.bias"))
            act = cfg["activation"]
            hidden = F.relu(hidden) if act == "Relu" else F.gelu(hidden) if act == "Gelu" else torch.sigmoid(hidden)
            return F.linear(dropout(hidden), w("ff.linear2.weight"), w("ff.linear2.bias"))

        def norm(name, t):
            if cfg["norm_position"] == "None":
                return t
            return F.layer_norm(t, (d,), w(f"{name}.gamma"), w(f"{name}.beta"), eps)

        def add(a, b):
            return a + b if cfg.get("residual", True) else b

        if cfg["norm_position"] == "Pre":
            h = add(h, attend(norm("norm1", h)))
            h = add(h, dropout(feed_forward(norm("norm2", h))))
        else:
            h = norm("norm1", add(h, attend(h)))
            h = norm("norm2", add(h, dropout(feed_forward(h))))
    return F.linear(h, p["output.weight"], p["output.bias"])


def saved_bytes(cfg: dict, batch: int, seq: int, seed: int) -> dict:
    """Bytes autograd keeps for one training step of ``cfg`` on ``batch × seq`` tokens."""
    params = random_parameters(cfg, seed)
    parameter_storages = {t.untyped_storage().data_ptr() for t in params.values()}
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randint(0, cfg["vocab_size"], (batch, seq), generator=gen)
    targets = torch.randint(0, cfg["vocab_size"], (batch, seq), generator=gen)
    storages: dict[int, tuple[int, bool]] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        floating, boolean = t.dtype.is_floating_point, t.dtype == torch.bool
        if (floating or boolean) and t.dim() > 0 and ptr not in parameter_storages:
            storages.setdefault(ptr, (storage.nbytes(), boolean))
        return t

    torch.manual_seed(seed + 2)  # dropout masks
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = glassbox_forward(params, cfg, x, training=True)
        loss = F.cross_entropy(logits.reshape(-1, cfg["vocab_size"]), targets.reshape(-1))
    loss.backward()  # the graph runs on what was saved: every gradient exists
    assert all(t.grad is not None for t in params.values())
    return {
        "batch": batch,
        "seq_len": seq,
        "float_bytes": sum(n for n, boolean in storages.values() if not boolean),
        "bool_bytes": sum(n for n, boolean in storages.values() if boolean),
        "storages": len(storages),
    }


def check_against(model, glassbox_parameters, cfg: dict, input_ids: torch.Tensor, atol: float) -> float:
    """``glassbox_forward`` on the parity model's own weights against ``model(x)``."""
    with torch.no_grad():
        p = glassbox_parameters(model, use_grad=False)
        mirror = glassbox_forward(p, cfg, input_ids, training=False)
        reference = model(input_ids)
    diff = (mirror - reference).abs().max().item()
    assert diff <= atol, f"glassbox_forward differs from the PyTorch model by {diff:.3e}"
    return diff


# Configurations beyond the two parity models: every option that changes what is saved.
EXTRA_CASES = {
    "sigmoid, no LayerNorm, no residual": (
        {"vocab_size": 40, "d_model": 8, "num_heads": 2, "d_ff": 24, "num_layers": 2, "max_seq_len": 16,
         "activation": "Sigmoid", "norm_position": "None", "positional": "None", "causal": False,
         "dropout": 0.0, "layer_norm_eps": 1e-5, "residual": False},
        1, 5,
    ),
    "pre-LN ReLU, causal, learned positions, dropout 0.1": (
        {"vocab_size": 50, "d_model": 16, "num_heads": 4, "d_ff": 32, "num_layers": 3, "max_seq_len": 16,
         "activation": "Relu", "norm_position": "Pre", "positional": "Learned", "causal": True,
         "dropout": 0.1, "layer_norm_eps": 1e-5, "residual": True},
        3, 7,
    ),
    "post-LN GELU, sinusoidal, dropout 0.2": (
        {"vocab_size": 30, "d_model": 12, "num_heads": 3, "d_ff": 20, "num_layers": 2, "max_seq_len": 16,
         "activation": "Gelu", "norm_position": "Post", "positional": "Sinusoidal", "causal": False,
         "dropout": 0.2, "layer_norm_eps": 1e-5, "residual": True},
        2, 9,
    ),
}
