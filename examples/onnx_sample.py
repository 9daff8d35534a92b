"""Sample items from a makemore ONNX file with onnxruntime and numpy only (no torch, no makemore).

    makemore export runs/default -o names.onnx
    python examples/onnx_sample.py names.onnx -n 10 --seed 1 --temperature 0.8

Everything it needs is in the file's metadata (key "makemore"; docs/export-onnx.md).
"""

import argparse
import json

import numpy as np
import onnxruntime as ort

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("path", help="an .onnx file written by makemore export")
parser.add_argument("-n", type=int, default=10, help="how many items")
parser.add_argument("--seed", type=int, default=None, help="random seed (same seed, same items)")
parser.add_argument("--temperature", type=float, default=1.0, help="> 1: more surprising, < 1: safer")
parser.add_argument("--label", default=None, help="a labelled model: the label of every item")
args = parser.parse_args()
if args.n < 1 or args.temperature <= 0:
    parser.error("-n must be at least 1 and --temperature above 0")

session = ort.InferenceSession(args.path, providers=["CPUExecutionProvider"])
meta = json.loads(session.get_modelmeta().custom_metadata_map["makemore"])
chars, labels, num_chars = meta["vocab"]["chars"], meta["vocab"]["labels"], meta["num_chars"]
outputs = [o["name"] for o in meta["outputs"]]
rng, n = np.random.default_rng(args.seed), args.n

# The token each item is read after: the boundary (0), or its label's token, drawn from the
# labels' training frequencies unless --label names one.
if args.label is not None and args.label not in labels:
    parser.error(f"unknown label {args.label!r} (labels: {', '.join(labels) or 'none'})")
if labels:
    names = list(labels)
    counts = np.array([meta["label_counts"][name] for name in names], dtype=float)
    picked = [args.label] * n if args.label else rng.choice(names, size=n, p=counts / counts.sum())
    token = np.array([labels[name] for name in picked], dtype=np.int64)
else:
    token = np.zeros(n, dtype=np.int64)

context = np.zeros((n, meta["block_size"]), dtype=np.int64)  # window models: the last block_size tokens
# recurrent state or KV cache, zeros at first (a cache of 0 tokens): shapes from the metadata
state = {s["input"]: np.zeros([n if a == "batch" else a for a in s["shape"]], "f4") for s in meta["state"]}
tokens, running = np.zeros((n, meta["max_length"]), dtype=np.int64), np.ones(n, dtype=bool)
for step in range(meta["max_length"]):
    if meta["kind"] == "window":
        context = np.concatenate([context[:, 1:], token[:, None]], axis=1)
        feeds = {"context": context}
    else:  # recurrent state or KV cache: feed the newest token only
        feeds = {"token": token, **state}
    out = dict(zip(outputs, session.run(outputs, feeds)))
    state = {s["input"]: out[s["output"]] for s in meta["state"]}
    logits = out["logprobs"][:, :num_chars] / args.temperature  # label tokens are never drawn
    if step == 0:
        logits[:, 0] = -np.inf  # no empty items
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    token = np.minimum((cdf < rng.random((n, 1))).sum(axis=1), num_chars - 1).astype(np.int64)
    running &= token != 0  # id 0: the item ends
    tokens[:, step] = np.where(running, token, 0)
    if not running.any():
        break
print("\n".join("".join(chars[t - 1] for t in row if t) for row in tokens))  # id i is chars[i - 1]
