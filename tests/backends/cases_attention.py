"""Op cases of attention, recurrent layers, drop path, layer scale
(merged into OP_CASES of tests/backends/test_torch_ops.py: torch and ONNX check them all).

op -> [(input, layers)]; ``input`` is a shape, or an ``input:`` mapping for token ids."""

CASES: dict[str, list[tuple[str, str]]] = {
    "attention": [
        ("[6, 16]", "- attention: {heads: 4}"),
        ("[5, 12]", "- attention: {heads: 3, causal: true, bias: false}"),
        ("[6, 16]", "- linear: {out: 16, id: memory}\n- reshape: {shape: [3, 32], from: input}\n"
                    "- linear: {out: 16, id: queries}\n- attention: {heads: 2, from: [queries, memory]}"),
        ("[4, 8]", "- linear: {out: 8, id: q}\n- attention: {heads: 2, causal: true, dropout: 0.1, "
                   "from: [q, input]}"),
    ],
    "lstm": [
        ("[7, 5]", "- lstm: {hidden: 6}"),
        ("[7, 5]", "- lstm: {hidden: 4, layers: 2, bidirectional: true, dropout: 0.2}"),
        ("[7, 5]", "- lstm: {hidden: 4, layers: 2, bidirectional: true, output: last, bias: false}"),
        ("[6, 3]", "- lstm: {hidden: 5, output: last}"),
    ],
    "gru": [
        ("[7, 5]", "- gru: {hidden: 6}"),
        ("[7, 5]", "- gru: {hidden: 4, layers: 2, bidirectional: true, dropout: 0.2}"),
        ("[7, 5]", "- gru: {hidden: 4, layers: 2, bidirectional: true, output: last}"),
        ("[6, 3]", "- gru: {hidden: 5, output: last, bias: false}"),
    ],
    "drop_path": [
        ("[3, 6, 6]", "- conv2d: {out: 3, kernel: 3, padding: 1}\n- drop_path: {p: 0.2, id: branch}\n"
                      "- add: {from: [input, branch]}"),
        ("[5, 8]", "- drop_path"),
    ],
    "layer_scale": [
        ("[4, 5, 5]", "- layer_scale"),
        ("[6, 8]", "- layer_scale: {init_value: 0.1}"),
        ("[7]", "- layer_scale: {init_value: 0.5}"),
        ("[4, 9]", "- layer_scale: {dim: 0}"),
        ("[2, 3, 4, 4]", "- layer_scale"),
    ],
}
