"""Write the lecture notebooks of examples/ (one per lecture), stored without outputs.

Usage:
    python scripts/make_notebooks.py [OUT_DIR]    (default: examples/ next to this script)

Each notebook is built from its cells here (Markdown and code), so that a change to the API
is one edit and the stored notebooks stay clean (nbformat v4, no outputs, no execution
counts). tests/examples/test_notebooks.py checks the stored files against this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SETUP = '''\
import tempfile
import warnings

import torch
from IPython.display import Image, display

with warnings.catch_warnings():  # tqdm's note that it cannot draw widgets: the progress bars are off here
    warnings.filterwarnings("ignore", message="IProgress not found")
    from makemore import api, plots

torch.set_num_threads(1)  # models this small train fastest on one core (api.train picks its own count)
# every run this notebook trains goes into a temporary directory, removed in the last cell
workdir = tempfile.TemporaryDirectory(prefix="makemore-notebook-")
runs = workdir.name
data = api.load_data(api.DataConfig())  # the built-in names corpus, split 80/10/10 as in the lectures


def show(plot):
    """Draw a makemore plot here, as a PNG (the same in Jupyter, VS Code and nbclient)."""
    display(Image(plots.png_bytes(plot.figure)))'''

CLEANUP = "workdir.cleanup()  # the runs of this notebook go away with it"


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


def setup(title: str, intro: str) -> list:
    return [
        md(f"# {title}\n\n{intro.strip()}"),
        md(
            "Everything below runs through makemore's Python API (`from makemore import api`) and its plots "
            "(`makemore.plots`) on the built-in names corpus, in well under a minute on a laptop CPU. Runs are "
            "written to a temporary directory."
        ),
        code(SETUP),
    ]


BIGRAM = [
    *setup(
        "Lecture 1: bigram counts and the neural bigram",
        "The simplest character model: predict the next character from the one before it. First by counting, "
        "then with a one-layer neural network that learns the same table by gradient descent.",
    ),
    md("""
## The corpus

Each item is read as a sequence of tokens. Token 0 is the **boundary**: it stands before the first
character (the model reads it as "an item starts here") and after the last one (the model predicts it
to say "the item ends here"). The characters follow in sorted order, so `a` is token 1.
"""),
    code("""
print(f"{data.num_items} names; train/dev/test: {data.split_sizes}")
print("tokens:", data.vocab.labels())
print("first names of the training split:", data.split.train[:5])
"""),
    md("""
## The count matrix N

`api.count_bigrams(data)` counts, over the training split, how often token *j* follows token *i*:
`N[i, j]`. Row 0 holds the first characters of the names, column 0 their last ones.
"""),
    code("""
N = api.count_bigrams(data)
labels = data.vocab.labels()
print(N.shape, "pairs counted:", int(N.sum()))
top = torch.topk(N.flatten(), 5)
for count, flat in zip(top.values.tolist(), top.indices.tolist()):
    i, j = divmod(flat, N.shape[1])
    print(f"{labels[i]}{labels[j]}: {count}")
show(plots.plot_bigram_counts(N, labels))
"""),
    md("""
## From counts to probabilities, and sampling by hand

Normalising each row gives P, the distribution of the next character after each one. Adding a pseudo
count `k` to every cell first (add-k smoothing) keeps any pair from having probability 0.
Sampling a name is then: start at the boundary, draw the next token from its row, repeat until the
boundary comes back.
"""),
    code("""
P = api.bigram_probs(N, k=1.0)
print("every row sums to 1:", torch.allclose(P.sum(1), torch.ones(P.shape[0])))

g = torch.Generator().manual_seed(2147483647)
for _ in range(5):
    token, name = 0, []
    while True:
        token = int(torch.multinomial(P[token], 1, generator=g))
        if token == 0:
            break
        name.append(labels[token])
    print("".join(name))
"""),
    md("""
## How good is P? The negative log-likelihood

The quality of a model is the average negative log probability it gives to each next character of
real names (lower is better; a uniform guess over 27 tokens gives ln 27 ≈ 3.30). `api.bigram_nll`
computes it for every pair of a split at once from the split's counts.
"""),
    code("""
counts = {split: api.count_bigrams(data, split) for split in ("train", "dev", "test")}
ours = {split: api.bigram_nll(P, c) for split, c in counts.items()}
for split, nll in ours.items():
    print(f"{split:5s} NLL {nll:.4f}")
"""),
    md("""
The library's count model is the same table: an n-gram of order 2 with add-k smoothing. Trained and
evaluated through the API, it gives the same numbers.
"""),
    code("""
ngram = api.RunConfig(model="ngram", model_config=api.make_config("ngram", {"order": 2, "k": 1.0}))
api.train(ngram, f"{runs}/bigram-counts", progress=False)
library = api.evaluate(api.load_run(f"{runs}/bigram-counts"))
for split in ours:
    print(f"{split:5s} ours {ours[split]:.6f}  ngram run {library[split]:.6f}")
assert all(abs(ours[s] - library[s]) < 1e-5 for s in ours)
"""),
    md("""
## The neural bigram

The neural bigram keeps a (27, 27) weight matrix `W`: the row of the previous token is the vector of
logits of the next one, and softmax turns it into probabilities (`exp`, then normalise: the logits are
log-counts). So if `W = log P`, the network *is* the count model, to the last digit:
"""),
    code("""
exact = api.RunConfig(model="bigram", model_config=api.make_config("bigram", {"reg": 0.0}))
model = api.new_model(exact, data)
print(f"random W:  train NLL {api.split_nll(model, data, 'train'):.4f}")
with torch.no_grad():
    model.W.copy_(P.log())
print(f"W = log P: train NLL {api.split_nll(model, data, 'train'):.6f}  (counts: {ours['train']:.6f})")
"""),
    md("""
Gradient descent finds that table on its own. Without smoothing on either side (`reg = 0` for the network,
`k = 0` for the counts) the best the network can do is the maximum-likelihood table, `bigram_probs(N, k=0)`.
Below, the learner's own loop: `api.new_trainer` gives the library's batches (2048 random training pairs a
step), optimizer and schedule; each `trainer.step()` is one batch, forward, backward and update. (The
lecture uses the whole training split in every step, as the `bigram` family's defaults do: 1000 steps of SGD
at a learning rate of 50, each far slower than these.)
"""),
    code("""
config = api.RunConfig(
    model="bigram",
    model_config=api.make_config("bigram", {"reg": 0.0}),
    train=api.default_train_config(
        "bigram", {"batch_size": 2048, "optimizer": "adamw", "lr": 0.2, "schedule": "cosine", "steps": 300}
    ),
)
model = api.new_model(config, data)
trainer = api.new_trainer(config, model, data)
losses = [trainer.step() for _ in range(config.train.steps)]
mle = api.bigram_nll(api.bigram_probs(N, k=0.0), N)
neural = api.split_nll(model, data, "train")
print(f"after {trainer.state.step} steps: neural bigram train NLL {neural:.4f}; counts (k=0) {mle:.4f}")
print(f"difference: {neural - mle:.4f}")
"""),
    md("""
The network's `reg` (an L2 penalty pulling `W` towards 0, i.e. towards uniform rows) plays the part of the
counts' `k`: both trade a little training likelihood for never being certain.
"""),
    code(CLEANUP),
]

MLP = [
    *setup(
        "Lecture 2: the MLP (Bengio et al. 2003)",
        "Several characters of context, each turned into a learned vector (an embedding), concatenated and "
        "fed through a hidden tanh layer to the next character's logits.",
    ),
    md("""
## The examples: windows of context

With `block_size = 3` each training example is the three tokens before a character (boundary-padded at
the start of a name) and the character itself.
"""),
    code("""
X, Y = data.corpus("train").windows(3)
labels = data.vocab.labels()
print("X", tuple(X.shape), "Y", tuple(Y.shape))
for x, y in zip(X[:6].tolist(), Y[:6].tolist()):
    print("".join(labels[t] for t in x), "->", labels[y])
"""),
    md("""
## The model and a learning-rate sweep

The lecture's network with 2-dimensional embeddings (so that they can be drawn as they are), 100 hidden
units and the plain random initialisation. `api.lr_find` takes one training step per learning rate,
growing it exponentially; the loss falls until the rate is too high. `plots.suggest_lr` picks a rate on
the steep part of the descent.
"""),
    code("""
config = api.RunConfig(
    model="mlp",
    model_config=api.make_config("mlp", {"block_size": 3, "n_embd": 2, "n_hidden": 100, "init": "naive"}),
    train=api.default_train_config("mlp", {"batch_size": 32, "optimizer": "sgd", "weight_decay": 0.0}),
)
lrs, sweep = api.lr_find(config, start=1e-3, end=1.0, steps=300, progress=False)
suggestion = plots.suggest_lr(lrs, sweep)
print(f"suggested learning rate: {suggestion:.3g} (the lecture settles on 0.1)")
show(plots.plot_lr_find(lrs, sweep, suggestion=suggestion))
"""),
    md("""
## Training in your own loop

`api.new_model` builds the model a run would start from, and its batcher draws the library's minibatches
of 32 windows. The loop is the lecture's: forward, zero the gradients, backward, step against the gradient
(0.1, then 0.01 for the last quarter).
"""),
    code("""
model = api.new_model(config, data)
batcher = model.batcher(data.corpus("train"))
g = torch.Generator().manual_seed(2147483647)
steps, log_losses = 4000, []
for i in range(steps):
    x, y = batcher.sample(32, g)
    _, loss = model(x, y)
    for p in model.parameters():
        p.grad = None
    loss.backward()
    lr = 0.1 if i < 3 * steps // 4 else 0.01
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    log_losses.append(loss.log10().item())
print(f"train NLL {api.split_nll(model, data, 'train'):.4f}  dev NLL {api.split_nll(model, data, 'dev'):.4f}")
"""),
    code("""
from matplotlib.figure import Figure

fig = Figure(figsize=(8, 3.5), layout="constrained")
ax = fig.add_subplot()
per_100 = torch.tensor(log_losses).view(-1, 100).mean(1)  # the mean of every 100 steps, as in the lecture
ax.plot(range(100, steps + 1, 100), per_100.tolist())
ax.set_xlabel("step")
ax.set_ylabel("log10 loss (mean of 100 steps)")
show(plots.Plot(fig))
"""),
    md("""
## What the embedding learned

Each token's 2-dimensional vector, drawn where it lies: the vowels gather, and the boundary sits apart.
"""),
    code("""
show(plots.plot_embedding(model.char_embedding(), labels))
"""),
    md("""
## The same network through `api.train`

A run with 10-dimensional embeddings and 200 hidden units (the lecture's second network), trained with the
same schedule but a few thousand steps only, evaluated on every split, and sampled. Its plain initialisation
spends the first steps undoing overconfident guesses (lecture 3 shows why and fixes it), so it is still behind
the small network above. The `lecture2` preset (`api.preset_config("lecture2")`) trains it for 200,000 steps,
where the lecture reports a dev NLL of about 2.17.
"""),
    code("""
import dataclasses

config = api.preset_config("lecture2")
config.train = dataclasses.replace(config.train, steps=4000, eval_interval=1000, log_interval=100)
metrics = api.train(config, f"{runs}/mlp", progress=False)
run = api.load_run(f"{runs}/mlp")
print({split: round(nll, 4) for split, nll in api.evaluate(run).items()})
show(plots.plot_loss_curves(api.training_curve(f"{runs}/mlp"), smooth=5))
print(api.sample(run, api.SampleConfig(num=10, seed=1)))
"""),
    code(CLEANUP),
]

BATCHNORM = [
    *setup(
        "Lecture 3: activations, gradients and BatchNorm",
        "Why a deep tanh network trains badly from a careless initialisation, how to see it (activation and "
        "gradient histograms, update:data ratios) and what fixes it: a scaled initialisation, then BatchNorm.",
    ),
    md("""
## The loss at initialisation

Before training, a network that knows nothing should give every one of the 27 tokens the same
probability: a loss of ln 27. The plain random initialisation is far more confident than that, and
wrong; `init="kaiming"` (weights scaled by gain/√fan_in, a small last layer) starts where it should.
"""),
    code("""
import math

print(f"uniform guess: {math.log(data.vocab.num_chars):.4f}")
shape = {"block_size": 3, "n_embd": 10, "n_hidden": 100, "n_layers": 4}
initial = {}
for init in ("naive", "kaiming"):
    config = api.RunConfig(model="mlp", model_config=api.make_config("mlp", {**shape, "init": init}))
    initial[init] = api.new_model(config, data)
    print(f"{init:8s} dev NLL at initialisation {api.split_nll(initial[init], data, 'dev'):.4f}")
"""),
    md("""
## Saturated tanh units

`plots.collect_activation_stats` runs one training batch forward and backward and keeps every tanh
layer's outputs and their gradients. With the plain initialisation most outputs sit at ±1, where tanh is
flat and passes almost no gradient back; with the scaled one they spread over the whole range.
"""),
    code("""
x, y = initial["naive"].batcher(data.corpus("train")).sample(256, torch.Generator().manual_seed(0))
for init, model in initial.items():
    stats = plots.collect_activation_stats(model, x, y)
    saturated = [float((t.abs() > 0.97).float().mean()) for _, t in stats["activations"]]
    print(f"{init:8s} saturated share per layer:", [f"{s:.0%}" for s in saturated])
    show(plots.plot_activations(stats))
"""),
    md("""
## BatchNorm, and the update:data ratio

BatchNorm normalises each hidden unit over the batch before the tanh, so the activations keep a healthy
spread whatever the weights' scale. The run below records, every 20 steps, the log10 ratio of each weight
update's size to the weight's own (`track_update_ratio`): about -3 (one thousandth per step) is the
lecture's rule of thumb for a learning rate that is neither too small nor too large.
"""),
    code("""
sgd = {"steps": 1000, "batch_size": 32, "optimizer": "sgd", "lr": 0.1, "schedule": "constant", "weight_decay": 0.0}
config = api.RunConfig(
    model="bn-mlp",
    model_config=api.make_config("bn-mlp", shape),
    train=api.default_train_config("bn-mlp", {**sgd, "eval_interval": 500, "track_update_ratio": 20}),
)
api.train(config, f"{runs}/bn-mlp", progress=False)
run = api.load_run(f"{runs}/bn-mlp")
ratios, ratio_steps = api.update_ratios(f"{runs}/bn-mlp")
stats = api.activation_stats(run)
show(plots.plot_activations(stats, update_ratios=ratios, ratio_steps=ratio_steps, ratios_are_log10=True))
"""),
    md("""
## Does it matter? The same steps from each start

The same 1000 steps of SGD for the MLP from each initialisation and for the BatchNorm MLP above.
Longer runs (the `lecture3` preset: 200,000 steps) widen what you see here into the lecture's numbers.
"""),
    code("""
results = {"bn-mlp": api.evaluate(run, splits=("dev",))["dev"]}
for init in ("naive", "kaiming"):
    mlp = api.RunConfig(model="mlp", model_config=api.make_config("mlp", {**shape, "init": init}), train=config.train)
    api.train(mlp, f"{runs}/mlp-{init}", progress=False)
    results[f"mlp ({init})"] = api.evaluate(api.load_run(f"{runs}/mlp-{init}"), splits=("dev",))["dev"]
for name, nll in results.items():
    print(f"{name:14s} dev NLL {nll:.4f}")
"""),
    code(CLEANUP),
]

BACKPROP = [
    *setup(
        "Lecture 4: the backward pass by hand",
        "The BatchNorm MLP's gradients written out tensor by tensor (cross-entropy, BatchNorm, tanh, the "
        "embedding lookup), checked against autograd, then used to train.",
    ),
    md("""
## The gradient comparison table

`api.gradcheck` runs the network broken into its small steps on one random batch, computes every
intermediate's gradient by hand, and compares each with autograd's: exactly equal, equal within
`torch.allclose`, and the largest difference. In float64 the hand-written pass agrees to rounding.
"""),
    code("""
rows = api.gradcheck()
print(api.format_gradcheck(rows))
print("all close:", all(row.approx for row in rows))
"""),
    md("""
The lecture's second exercise replaces the step-by-step backward of the loss and of BatchNorm by their
closed forms (one expression each): `fused=True` checks those. In float32 the differences are larger but
still rounding.
"""),
    code("""
fused = api.gradcheck(fused=True, dtype=torch.float32)
print(api.format_gradcheck(fused))
print("largest difference:", max(row.maxdiff for row in fused))
"""),
    md("""
## Training with the hand-written backward

The library's `bn-mlp` takes `backward="manual"`: every training step then fills the gradients with the
fused hand-written pass, no autograd. From the same seed, a few hundred steps with each backward end at
the same dev NLL, up to float32 rounding.
"""),
    code("""
dev = {}
for backward in ("manual", "autograd"):
    config = api.RunConfig(
        model="bn-mlp",
        model_config=api.make_config("bn-mlp", {"block_size": 3, "n_embd": 10, "n_hidden": 64}),
        train=api.default_train_config(
            "bn-mlp", {"steps": 400, "batch_size": 32, "eval_interval": 400, "backward": backward}
        ),
    )
    api.train(config, f"{runs}/{backward}", progress=False)
    dev[backward] = api.evaluate(api.load_run(f"{runs}/{backward}"), splits=("dev",))["dev"]
    print(f"{backward:8s} dev NLL {dev[backward]:.6f}")
print(f"difference {abs(dev['manual'] - dev['autograd']):.2e}")
"""),
    code(CLEANUP),
]

WAVENET = [
    *setup(
        "Lecture 5: WaveNet",
        "A longer context (8 characters), read hierarchically: pairs of neighbouring characters are fused "
        "first, then pairs of pairs, so the context is squeezed in small steps instead of at once.",
    ),
    md("""
## The hierarchy, shape by shape

`api.layer_shapes` sends a batch through the model and records each layer's output shape. A batch of 4
windows of 8 tokens is embedded to (4, 8, 24); each level joins neighbours two by two (8 → 4 → 2 → 1
positions) through Linear, BatchNorm and tanh, down to (4, 27) logits.
"""),
    code("""
config = api.preset_config("lecture5")
model = api.new_model(config, data)
x, _ = model.batcher(data.corpus("train")).sample(4, torch.Generator().manual_seed(0))
for name, kind, shape in api.layer_shapes(model, x):
    print(f"{name:10s} {kind:20s} {shape}")
print("parameters:", sum(p.numel() for p in model.parameters()))
"""),
    md("""
## Flat or hierarchical: the same context, a few thousand steps

An MLP that concatenates the 8 embeddings at once against the WaveNet, both trained by `api.train` for the
same steps (the lecture's SGD, cut short). The `lecture5` preset trains 200,000 steps, where the lecture
reports a dev NLL of about 1.99.
"""),
    code("""
import dataclasses
import time

short = dataclasses.replace(config.train, steps=1000, eval_interval=500, log_interval=50)
flat = api.make_config("mlp", {"block_size": 8, "n_embd": 24, "n_hidden": 128})
rivals = {
    "mlp (flat)": api.RunConfig(model="mlp", model_config=flat, train=short),
    "wavenet": api.RunConfig(model="wavenet", model_config=config.model_config, train=short),
}
for name, rival in rivals.items():
    started = time.perf_counter()
    api.train(rival, f"{runs}/{name.split()[0]}", progress=False)
    run = api.load_run(f"{runs}/{name.split()[0]}")
    dev = api.evaluate(run, splits=("dev",))["dev"]
    size = sum(p.numel() for p in run.model.parameters())
    print(f"{name:11s} {size:6d} parameters, dev NLL {dev:.4f}, {time.perf_counter() - started:.1f} s")
"""),
    code("""
show(plots.plot_loss_curves(api.training_curve(f"{runs}/wavenet"), smooth=3))
print(api.sample(api.load_run(f"{runs}/wavenet"), api.SampleConfig(num=10, seed=1)))
"""),
    code(CLEANUP),
]

SEQUENCES = [
    *setup(
        "Sequence models: RNN, GRU, LSTM and Transformer",
        "Models that read a whole name at once and predict every next character from everything before it: "
        "recurrent networks carry a state from character to character; the Transformer attends to all "
        "earlier positions.",
    ),
    md("""
## Four families, the same budget

Each family is trained by `api.train` for the same few hundred steps at a small size, then evaluated on the
dev split. They are far from trained: the library's own defaults (`makemore models`) train for thousands of
steps, where the LSTM and the GRU reach a dev NLL near 1.9 on this corpus.
"""),
    code("""
import time

small = {
    "rnn": {"n_embd": 32, "n_hidden": 64},
    "gru": {"n_embd": 32, "n_hidden": 64},
    "lstm": {"n_embd": 32, "n_hidden": 64},
    "transformer": {"n_layer": 2, "n_head": 4, "n_embd": 32},
}
results = {}
for family, options in small.items():
    config = api.RunConfig(
        model=family,
        model_config=api.make_config(family, options),
        train=api.default_train_config(
            family, {"steps": 300, "warmup_steps": 30, "eval_interval": 100, "log_interval": 20}
        ),
    )
    started = time.perf_counter()
    api.train(config, f"{runs}/{family}", progress=False)
    run = api.load_run(f"{runs}/{family}")
    results[family] = {
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "dev": api.evaluate(run, splits=("dev",))["dev"],
        "seconds": time.perf_counter() - started,
    }
print(f"{'family':12s} {'parameters':>10s} {'dev NLL':>8s} {'seconds':>8s}")
for family, r in results.items():
    print(f"{family:12s} {r['parameters']:10d} {r['dev']:8.4f} {r['seconds']:8.1f}")
"""),
    md("""
## Their training curves

The dev loss of each run at its evaluations, from the runs' `metrics.jsonl` (`api.training_curve`).
"""),
    code("""
from matplotlib.figure import Figure

fig = Figure(figsize=(8, 4), layout="constrained")
ax = fig.add_subplot()
for family in results:
    rows = [row for row in api.training_curve(f"{runs}/{family}") if "train_loss" in row]
    ax.plot([row["step"] for row in rows], [row["train_loss"] for row in rows], label=family)
ax.set_xlabel("step")
ax.set_ylabel("train loss (mean since the last row)")
ax.legend()
show(plots.Plot(fig))
"""),
    md("""
## What each one makes

Ten samples from each run, from the same seed.
"""),
    code("""
for family in results:
    run = api.load_run(f"{runs}/{family}")
    print(f"{family:12s}", " ".join(api.sample(run, api.SampleConfig(num=10, seed=1))))
"""),
    code(CLEANUP),
]

NOTEBOOKS = {
    "01_bigram.ipynb": BIGRAM,
    "02_mlp.ipynb": MLP,
    "03_activations_batchnorm.ipynb": BATCHNORM,
    "04_manual_backprop.ipynb": BACKPROP,
    "05_wavenet.ipynb": WAVENET,
    "06_sequence_models.ipynb": SEQUENCES,
}


def build(cells: list) -> nbformat.NotebookNode:
    """A clean notebook of ``cells``: no outputs, no execution counts, stable cell ids."""
    nb = new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # the default ids are random: a rerun would change every file
    nbformat.validate(nb)
    return nb


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "examples"
    out.mkdir(parents=True, exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(cells), out / name)
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
