"""tiny-lm: a small GPT-style character language model trained on a generated corpus (nothing downloaded).

Entrypoint ``executors.workflows.tiny_lm:train``. Params (see ``BUILTINS``): steps, d_model, n_layers,
n_heads, seq_len, batch_size, lr, seed. Logs ``loss`` at every step (1-based) and ``tokens_per_s`` every
``LOG_EVERY`` steps; checks ``ctx.cancelled`` before each step and then checkpoints and returns; saves a
checkpoint ``{"model", "optimizer", "generator", "step"}`` every ``CHECKPOINT_EVERY`` steps and resumes from
it. Memory does not grow with ``steps``. Returns ``{loss, steps, tokens_per_s, train_seconds}``.

Tuning hook: ``tuning_target(params, device) -> (model, (inputs, targets), loss_fn)`` gives a fresh model on
``device`` (train mode), one batch of int64 token ids ``(batch_size, seq_len)`` for inputs and targets (the
inputs shifted by one), and ``loss_fn(model(inputs), targets) -> scalar Tensor``. ``params`` may be partial.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ptw.executors.workflows import defaults_of
from ptw.executors.workflows.tiny_lm_corpus import CorpusSampler
from ptw.executors.workflows.training_state import StepLosses, cpu_snapshot

LOG_EVERY = 10
CHECKPOINT_EVERY = 100


class CausalBlock(nn.Module):
    """Pre-norm self-attention and MLP.

    Hand-written rather than nn.TransformerEncoder: scaled_dot_product_attention with ``is_causal`` needs no
    mask tensor, and plain modules trace cleanly under torch.compile for the tuning feature.
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.attention_norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        qkv = self.qkv(self.attention_norm(x)).view(batch, length, 3, self.n_heads, width // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, length, head width)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp(self.mlp_norm(x))


class TinyLM(nn.Module):
    def __init__(self, vocab_size: int, d_model: int, n_layers: int, n_heads: int, seq_len: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Embedding(seq_len, d_model)
        self.blocks = nn.Sequential(*(CausalBlock(d_model, n_heads) for _ in range(n_layers)))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.tokens.weight  # tied: fewer parameters, better on a small corpus

    def forward(self, ids: Tensor) -> Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.head(self.norm(self.blocks(self.tokens(ids) + self.positions(positions))))


def next_token_loss(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def build_model(params: dict[str, Any], vocab_size: int) -> TinyLM:
    return TinyLM(vocab_size, params["d_model"], params["n_layers"], params["n_heads"], params["seq_len"])


def train(ctx: Any) -> dict[str, float]:
    params = {**defaults_of("tiny-lm"), **ctx.params}
    torch.manual_seed(params["seed"])
    sampler = CorpusSampler(ctx.device, params["seq_len"], params["batch_size"], params["seed"])
    model = build_model(params, sampler.vocab_size).to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params["lr"], weight_decay=0.01)
    step = _resume(ctx, model, optimizer, sampler)
    losses = StepLosses(ctx, "loss")
    tokens_per_step = params["batch_size"] * params["seq_len"]
    started = window_start = time.perf_counter()
    first_step = saved_step = step
    model.train()
    while step < params["steps"]:
        if ctx.cancelled:
            losses.flush()
            if step != saved_step:
                _save(ctx, model, optimizer, sampler, step)
            break
        inputs, targets = sampler.batch()
        loss = next_token_loss(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        losses.add(loss, step)
        if step % LOG_EVERY == 0:
            window_steps = len(losses)
            losses.flush()  # waits for the device, so the clock below measures finished work
            now = time.perf_counter()
            ctx.log({"tokens_per_s": window_steps * tokens_per_step / (now - window_start)}, step)
            window_start = now
        if step % CHECKPOINT_EVERY == 0:
            _save(ctx, model, optimizer, sampler, step)
            saved_step = step
    losses.flush()
    seconds = time.perf_counter() - started
    return {
        "loss": losses.last if losses.last is not None else float("nan"),
        "steps": step,
        "tokens_per_s": (step - first_step) * tokens_per_step / seconds if seconds > 0 else 0.0,
        "train_seconds": seconds,
    }


def tuning_target(
    params: dict[str, Any], device: torch.device
) -> tuple[nn.Module, tuple[Tensor, Tensor], Callable[[Tensor, Tensor], Tensor]]:
    params = {**defaults_of("tiny-lm"), **params}
    torch.manual_seed(params["seed"])
    sampler = CorpusSampler(device, params["seq_len"], params["batch_size"], params["seed"])
    model = build_model(params, sampler.vocab_size).to(device).train()
    return model, sampler.batch(), next_token_loss


def _resume(ctx: Any, model: nn.Module, optimizer: torch.optim.Optimizer, sampler: CorpusSampler) -> int:
    state = ctx.load_checkpoint()
    if state is None:
        return 0
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    sampler.generator.set_state(state["generator"])
    return int(state["step"])


def _save(
    ctx: Any, model: nn.Module, optimizer: torch.optim.Optimizer, sampler: CorpusSampler, step: int
) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": sampler.generator.get_state(),
        "step": step,
    }
    ctx.save_checkpoint(cpu_snapshot(state), step=step)
