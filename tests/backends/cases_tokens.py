"""Op cases of token ops: embeddings, positional encodings, class token, permute, slice, split, mean
(merged into OP_CASES of tests/backends/test_torch_ops.py: torch and ONNX check them all).

op -> [(input, layers)]; ``input`` is a shape, or an ``input:`` mapping for token ids."""

IDS = "{shape: [6], dtype: int64, vocab: 11}"  # 6 token ids below 11
IDS_2D = "{shape: [3, 4], dtype: int64, vocab: 7}"

CASES: dict[str, list[tuple[str, str]]] = {
    "embedding": [
        (IDS, "- embedding: {num: 11, dim: 8}"),
        (IDS, "- embedding: {num: 16, dim: 4, padding_idx: 0}"),
        (IDS_2D, "- embedding: {num: 7, dim: 5, padding_idx: -1}"),  # any rank of ids
        (IDS, "- embedding: {num: 11, dim: 8, id: wte}\n- layernorm\n"
              "- linear: {out: 11, bias: false, tie: wte}"),  # GPT-2's tied output projection
    ],
    "pos_embedding": [
        (IDS, "- embedding: {num: 11, dim: 8}\n- pos_embedding"),
        ("[5, 8]", "- pos_embedding: {max_len: 9}"),
    ],
    "sinusoidal_encoding": [
        (IDS, "- embedding: {num: 11, dim: 8}\n- sinusoidal_encoding"),
        ("[5, 6]", "- sinusoidal_encoding: {max_len: 12, base: 100}"),
    ],
    "class_token": [
        ("[5, 8]", "- class_token"),
        # ViT's stem: patches -> tokens -> class token -> positions -> the class token's output
        ("[3, 8, 8]", "- conv2d: {out: 6, kernel: 4, stride: 4}\n- reshape: {shape: [6, 4]}\n"
                      "- permute: {dims: [1, 0]}\n- class_token\n- pos_embedding\n"
                      "- select: {dim: 0, index: 0}"),
    ],
    "permute": [
        ("[3, 4, 5]", "- permute: {dims: [1, 2, 0]}"),
        ("[4, 5]", "- permute: {dims: [-1, 0]}"),
        ("[4, 5]", "- permute: {dims: [0, 1]}"),  # the identity: no code
        ("{shape: [3, 4], dtype: int64, vocab: 7}", "- permute: {dims: [1, 0]}\n"
                                                   "- embedding: {num: 7, dim: 3}"),  # moves ids
    ],
    "transpose": [
        ("[3, 4, 5]", "- transpose: {dims: [0, 2]}"),
        ("[4, 5]", "- transpose: {dims: [-1, -2]}"),
    ],
    "slice": [
        ("[6, 5]", "- slice: {dim: 0, start: 1, end: 4}"),
        ("[3, 9, 4]", "- slice: {dim: 1, start: -7, step: 3}"),
        ("[6, 5]", "- slice: {dim: -1, end: -2}"),
        (IDS, "- slice: {dim: 0, start: 2}\n- embedding: {num: 11, dim: 4}"),
    ],
    "select": [
        ("[6, 5]", "- select: {dim: 0, index: 0}"),
        ("[3, 4, 5]", "- select: {dim: -1, index: -2}"),
        ("[6, 5]", "- select: {dim: 1, index: 4}\n- linear: {out: 2}"),
    ],
    "chunk": [
        ("[6, 12]", "- linear: {out: 12, id: qkv}\n- chunk: {chunks: 3, dim: -1, index: 0, from: qkv, id: q}\n"
                    "- chunk: {chunks: 3, dim: -1, index: 2, from: qkv, id: v}\n- add: {from: [q, v]}"),
        ("[7, 5]", "- chunk: {chunks: 3, dim: 0, index: 2}"),  # pieces 3, 3, 1
        ("[3, 6, 4]", "- chunk: {chunks: 4, dim: 1, index: 1}"),  # 3 pieces of 2
    ],
    "split": [
        ("[6, 9]", "- split: {sizes: [2, 3, 4], dim: 1, index: 1}"),
        ("[5, 4]", "- split: {sizes: [1, 4], dim: 0, index: 0, id: first}\n"
                   "- split: {sizes: [1, 4], dim: 0, index: 1, from: input, id: rest}\n"
                   "- mean: {dims: [0], from: rest, keepdims: true}\n- concat: {from: [first, mean_1]}"),
    ],
    "mean": [
        ("[6, 5]", "- mean: {dims: [0]}"),
        ("[3, 4, 5]", "- mean: {dims: [-1, 1], keepdims: true}"),
        ("[3, 4, 5]", "- mean: {dims: [1, 2]}"),
    ],
}
