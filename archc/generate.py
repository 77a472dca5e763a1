"""Text from a trained language model: ``archc generate``.

The prompt is encoded as the training data was (bytes, archc/train/data/text.py) and
the network samples one token at a time. Its input has a fixed length L (the context):
the tokens so far fill it from the left and the rest is padding, and the next token is
drawn from the logits at the last real position — right for a *causal* network (GPT's
masked attention, a one-way LSTM), whose output at position i reads tokens ≤ i only.
Past L tokens the window slides: it holds the last L. A prompt longer than L is cut to
its last L tokens (and a note says so).

Sampling: logits / temperature, then the k most likely tokens (``top_k``), then a draw
from their softmax with a generator seeded by ``seed``; temperature 0 takes the argmax.

>>> from archc.generate import generate                                    # doctest: +SKIP
>>> text, notes = generate("specs/gpt_tiny.yaml", "runs/gpt_tiny", "def ", 40)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import torch

from archc.train.data.text import decode, encode
from archc.train.errors import TrainError


def read_model(spec, weights, overrides=None, preset=None):
    """(graph, model in eval mode) of a language-model spec with ``weights`` loaded:
    a run directory (its best.pt, else last.pt), a checkpoint or a state_dict file."""
    from archc.backends.torch.build import build
    from archc.backends.torch.codegen import as_graph
    from archc.train import checkpoint as ckpt

    graph = as_graph(spec, None, overrides, preset)
    check_language_model(graph)
    path = Path(weights)
    if path.is_dir():
        path = next((p for p in (path / "best.pt", path / "last.pt") if p.is_file()), path / "best.pt")
    from archc.backends.torch.weights import WeightsError, load_weights, refusal

    model = build(graph, seed=0)
    try:
        load_weights(model, ckpt.model_state(ckpt.load(path)))
    except WeightsError as exc:
        raise TrainError(refusal(exc, f"--weights {path}")) from None
    return graph, model.eval()


def check_language_model(graph) -> None:
    """Refuse a network that is not one: token ids in, [L, vocab] logits out."""
    shape = tuple(graph.input_shape)
    if graph.input_dtype != "int64" or len(shape) != 1:
        raise TrainError(f"{graph.name} is not a language model: its input is {list(shape)} of "
                         f"{graph.input_dtype}, not token ids", "generate from a spec with input "
                         "{shape: [L], dtype: int64, vocab: V}")
    out = tuple(graph.shape_of(graph.outputs[0]))
    if len(out) != 2 or out[0] != shape[0]:
        raise TrainError(f"{graph.name} is not a language model: its output is {list(out)}, not "
                         f"[{shape[0]}, vocab] logits", "end the network with linear: {out: VOCAB}")


def next_token(logits: torch.Tensor, temperature: float, top_k: int | None, g: torch.Generator) -> int:
    """Draw a token from one row of logits (V,)."""
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits.float() / temperature
    if top_k is not None and top_k < len(logits):
        kth = logits.topk(top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return int(torch.multinomial(logits.softmax(-1), 1, generator=g))


@torch.no_grad()
def sample(model, prompt: list[int], tokens: int, length: int, temperature: float = 1.0,
           top_k: int | None = None, seed: int = 0) -> list[int]:
    """``tokens`` new ids after ``prompt`` from a causal ``model`` with a context of ``length``."""
    g = torch.Generator().manual_seed(seed)
    ids = list(prompt)
    window = torch.zeros(1, length, dtype=torch.long)
    for _ in range(tokens):
        context = ids[-length:]
        window.zero_()
        window[0, :len(context)] = torch.tensor(context)  # padding after: unseen by a causal net
        logits = model(window)[0, len(context) - 1]        # (V,) the scores of the next token
        ids.append(next_token(logits, temperature, top_k, g))
    return ids[len(prompt):]


def generate(spec, weights, prompt: str, tokens: int, temperature: float = 1.0, top_k: int | None = None,
             seed: int = 0, overrides=None, preset=None) -> tuple[str, list[str]]:
    """(the prompt followed by ``tokens`` sampled bytes, notes for the user)."""
    graph, model = read_model(spec, weights, overrides, preset)
    length, notes = graph.input_shape[0], []
    ids = encode(prompt) or encode("\n")  # an empty prompt starts a new line
    limit = graph.id_limit()
    if max(ids) >= limit:
        raise TrainError(f"the prompt holds byte {max(ids)} but the network reads token ids below {limit}",
                         "give a plain-ASCII prompt")
    if len(ids) > length:
        notes.append(f"the prompt has {len(ids)} tokens, the context {length}: the model reads its last {length}")
    out = sample(model, ids, tokens, length, temperature, top_k, seed)
    return decode(encode(prompt) + out), notes  # decoded together: a character may span both
