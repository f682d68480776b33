"""tiny-lm's training text: a character corpus generated from a small grammar, and random windows of it.

Generated rather than downloaded or read from the stdlib's docstrings, so every machine and Python version
trains on the same bytes; the grammar (sentences and sums) gives a language model structure to learn.
"""

from __future__ import annotations

import functools
import random

import torch
from torch import Tensor

_SUBJECTS = [
    "the cat", "a dog", "the old man", "my sister", "the robot", "a small bird", "the teacher",
    "our neighbour", "the captain", "a quiet child", "the baker", "every student",
]  # fmt: skip
_VERBS = ["sees", "likes", "follows", "paints", "finds", "carries", "reads", "builds", "hides", "washes"]
_OBJECTS = [
    "the ball", "a red book", "the river", "an apple", "the moon", "a letter", "the green door",
    "a wooden boat", "the map", "some bread", "the old clock", "a blue kite",
]  # fmt: skip
_PLACES = ["in the park", "at night", "near the house", "on monday", "by the sea", "after lunch", "again"]
_CORPUS_SENTENCES = 6000


@functools.cache
def corpus() -> str:
    """About 200,000 characters, the same on every call and every machine."""
    rng = random.Random(0)
    lines = []
    for _ in range(_CORPUS_SENTENCES):
        if rng.random() < 0.2:
            a, b = rng.randrange(100), rng.randrange(100)
            lines.append(f"{a} plus {b} is {a + b}.")
        else:
            place = f" {rng.choice(_PLACES)}" if rng.random() < 0.5 else ""
            lines.append(f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{place}.")
    return "\n".join(lines) + "\n"


class CorpusSampler:
    """Random (inputs, targets) windows of the encoded corpus, held on the device once."""

    def __init__(self, device: torch.device, seq_len: int, batch_size: int, seed: int) -> None:
        text = corpus()
        self.alphabet = sorted(set(text))
        self.vocab_size = len(self.alphabet)
        lookup = {char: index for index, char in enumerate(self.alphabet)}
        self._ids = torch.tensor([lookup[char] for char in text], dtype=torch.long, device=device)
        self._offsets = torch.arange(seq_len + 1, device=device)
        self._batch_size = batch_size
        self._last_start = len(text) - seq_len - 1
        # On the CPU whatever the device: its state is small, and checkpointing it lets a resumed run
        # draw the windows the interrupted one would have drawn.
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self) -> tuple[Tensor, Tensor]:
        starts = torch.randint(self._last_start + 1, (self._batch_size, 1), generator=self.generator)
        windows = self._ids[starts.to(self._ids.device) + self._offsets]
        return windows[:, :-1], windows[:, 1:]
