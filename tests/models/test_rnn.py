"""RNN / GRU / LSTM: the cells, their dropouts, the packed and padded paths, the cached state.

Shapes, the initial loss, causality, loss masking, the state dict and the rest of every
family's contract: test_contract.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from makemore.errors import MakemoreError
from makemore.models.configs import GRUConfig, LSTMConfig, RNNConfig
from makemore.models.rnn import RNNModel
from sequence_helpers import assert_packed_pass_matches_padded, padded_batch

V = 27
CONFIGS = {"rnn": RNNConfig, "gru": GRUConfig, "lstm": LSTMConfig}
CELLS = list(CONFIGS)


pytestmark = pytest.mark.usefixtures("one_thread")


def make(cell: str, seed: int = 0, **overrides) -> RNNModel:
    torch.manual_seed(seed)
    return RNNModel(CONFIGS[cell](**overrides), V)


def test_config_defaults():
    assert RNNConfig() == RNNConfig(n_embd=64, n_hidden=256, n_layers=1, dropout=0.2, block_size=0, cell="rnn")
    assert GRUConfig().cell == "gru" and LSTMConfig().cell == "lstm"
    assert GRUConfig(n_hidden=32).n_hidden == 32
    assert isinstance(GRUConfig(), RNNConfig) and isinstance(LSTMConfig(), RNNConfig)


@pytest.mark.parametrize("cell, module", [("rnn", nn.RNN), ("gru", nn.GRU), ("lstm", nn.LSTM)])
def test_cell_type(cell, module):
    model = make(cell, n_layers=2)
    assert len(model.rnn) == 2  # one single-layer module per layer
    for layer, input_size in zip(model.rnn, (64, 256)):
        assert type(layer) is module and layer.num_layers == 1 and layer.batch_first
        assert (layer.input_size, layer.hidden_size) == (input_size, 256)
        if cell == "rnn":
            assert layer.nonlinearity == "tanh"
    assert model.input_kind == "sequence" and model.vocab_size == V
    assert not model.has_position_limit  # sampling may run past block_size


def test_bad_config_is_an_error():
    with pytest.raises(MakemoreError, match="unknown rnn cell 'elman'"):
        RNNModel(RNNConfig(cell="elman"), V)
    with pytest.raises(MakemoreError):
        RNNModel(RNNConfig(n_hidden=0), V)
    with pytest.raises(MakemoreError):
        RNNModel(RNNConfig(dropout=1.0), V)
    with pytest.raises(MakemoreError, match="weight_dropout"):
        RNNModel(RNNConfig(weight_dropout=-0.1), V)


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # printed by mkldnn.flags
@pytest.mark.parametrize("cell", CELLS)
def test_packed_training_pass_without_onednn_matches_the_padded_one(cell):
    """On CPU the LSTM runs the padded batch through oneDNN and packs its output (the default,
    checked for every cell in test_contract.py); without oneDNN it, like the other cells, runs
    a packed sequence: loss and gradients are still those of the full padded computation."""
    items = [[3, 1, 4, 1, 5, 9], [2, 6], [5, 3, 5, 8]]
    idx, targets = padded_batch(items)
    targets[2, 1] = -1  # an ignored target before a real one: that position still runs
    needed = RNNModel.needed_mask(targets)
    with torch.backends.mkldnn.flags(enabled=False):
        assert not make("lstm", n_embd=8, n_hidden=16).runs_padded(torch.zeros(3, 7, 8), needed)
        assert_packed_pass_matches_padded(
            lambda: make(cell, n_embd=8, n_hidden=16, n_layers=2, dropout=0.0), idx, targets, needed
        )


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("n_layers", [1, 2])
def test_the_cache_feeds_only_the_new_tokens(cell, n_layers):
    """The hidden state carries the prefix: the prefix is run once and every later step feeds one
    token (that the logits equal a full recomputation is in test_contract.py)."""
    model = make(cell, n_embd=8, n_hidden=16, n_layers=n_layers).eval()
    fed = []
    model.rnn[0].register_forward_pre_hook(lambda m, args: fed.append(args[0].size(1)))
    g = torch.Generator().manual_seed(3)
    idx = torch.cat([torch.zeros(5, 1, dtype=torch.long), torch.randint(1, V, (5, 2), generator=g)], dim=1)
    cache = None
    for _ in range(6):
        logits, cache = model.next_token_logits(idx, cache)
        with torch.no_grad():
            full = model(idx)[0][:, -1, :]
        torch.testing.assert_close(logits, full, atol=1e-5, rtol=0)
        nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    # the prefix is run once; every later step feeds one token (full recomputations alternate)
    assert fed[0::2] == [3, 1, 1, 1, 1, 1]


def _between_layers(model: RNNModel) -> tuple[list, list]:
    """Lists that fill with the first layer's outputs and the second layer's inputs."""
    outputs, inputs = [], []
    model.rnn[0].register_forward_hook(lambda m, args, out: outputs.append(out[0]))
    model.rnn[1].register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    return outputs, inputs


@pytest.mark.parametrize("cell", CELLS)
def test_dropout_between_layers(cell):
    """The second layer reads the first layer's output with about half of it zeroed and the
    rest doubled (p = 0.5) in training, and reads it unchanged in eval."""
    model = make(cell, n_embd=8, n_hidden=16, n_layers=2, dropout=0.5)
    idx = torch.randint(0, V, (4, 6))
    outputs, inputs = _between_layers(model)
    with torch.no_grad():
        model(idx)
        first, second = outputs[-1], inputs[-1]
        kept = second != 0
        assert 0.35 < kept.float().mean() < 0.65
        torch.testing.assert_close(second[kept], 2 * first[kept], atol=0, rtol=0)
        model.eval()
        model(idx)
        assert torch.equal(inputs[-1], outputs[-1])


@pytest.mark.parametrize("cell", CELLS)
def test_weight_dropout_masks_hidden_to_hidden_weights_in_training_only(cell):
    model = make(cell, n_embd=8, n_hidden=16, n_layers=2, dropout=0.0, weight_dropout=0.5)
    idx, targets = padded_batch([[3, 1, 4, 1, 5], [9, 2, 6]])
    torch.manual_seed(0)
    _, loss = model(idx, targets)
    loss.backward()
    for layer in model.rnn:
        grad = layer.weight_hh_l0.grad
        dropped = grad == 0  # a dropped weight gets no gradient
        assert 0.3 < dropped.float().mean() < 0.7
        assert layer.weight_ih_l0.grad.ne(0).float().mean() > 0.9  # input weights are not dropped
    assert not torch.allclose(model(idx)[0], model(idx)[0])  # a new mask every call
    model.eval()
    plain = make(cell, n_embd=8, n_hidden=16, n_layers=2, dropout=0.0).eval()
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(idx)[0], plain(idx)[0], atol=0, rtol=0)  # eval: no dropout


@pytest.mark.parametrize("cell", CELLS)
def test_locked_dropout_keeps_one_mask_per_item_at_every_position(cell):
    model = make(cell, n_embd=8, n_hidden=16, n_layers=2, dropout=0.5, locked_dropout=True)
    idx = torch.randint(0, V, (4, 6))
    outputs, inputs = _between_layers(model)
    with torch.no_grad():
        model(idx)
    first, second = outputs[-1], inputs[-1]  # (B, T, H)
    kept = second != 0
    assert torch.equal(kept, kept[:, :1, :].expand_as(kept))  # the same units at every position
    assert not torch.equal(kept[0], kept[1])  # each item its own mask
    torch.testing.assert_close(second[kept], 2 * first[kept], atol=0, rtol=0)


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
@pytest.mark.parametrize("cell", CELLS)
def test_locked_dropout_is_the_same_on_the_packed_and_the_padded_path(cell):
    """Both paths draw one (B, C) mask per dropout site in the same order, so with the same
    RNG state they compute the same loss: the packed rows find their item's mask."""
    items = [[3, 1, 4, 1, 5, 9], [2, 6], [5, 3, 5, 8]]
    idx, targets = padded_batch(items)
    losses = []
    for padded in (True, False):
        model = make(cell, n_embd=8, n_hidden=16, n_layers=2, dropout=0.4, locked_dropout=True)
        model.runs_padded = lambda x, needed=None, padded=padded: padded
        torch.manual_seed(5)
        losses.append(model(idx, targets)[1])
    torch.testing.assert_close(losses[0], losses[1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_embedding_dropout_drops_whole_characters_in_training_only(cell):
    model = make(cell, n_embd=8, n_hidden=16, dropout=0.0, embed_dropout=0.5)
    seen = []
    model.rnn[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    idx = torch.arange(V).repeat(3, 1)  # every character, three times
    with torch.no_grad():
        model(idx)
        x = seen[-1]  # (3, V, n_embd)
        dropped = (x == 0).all(-1)  # (3, V): a character's whole vector is zero or kept
        assert torch.equal(dropped, dropped[:1].expand_as(dropped))  # one draw per character per batch
        assert 0 < dropped[0].sum() < V
        kept = ~dropped[0]
        torch.testing.assert_close(x[0, kept], 2 * model.wte.weight[kept], atol=0, rtol=0)
        model.eval()
        model(idx)
        assert torch.equal(seen[-1][0], model.wte.weight)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")
def test_the_lstm_runs_padded_unless_the_batch_is_mostly_padding():
    model = make("lstm", n_embd=8, n_hidden=16)
    x = torch.zeros(4, 10, 8)
    needed = torch.zeros(4, 10, dtype=torch.bool)
    needed[:, :5] = True  # half padding: oneDNN over the whole batch is faster
    assert model.runs_padded(x, needed)
    needed[:, 3:] = False  # 70% padding: the packed loop is
    assert not model.runs_padded(x, needed)
    assert not make("gru", n_embd=8, n_hidden=16).runs_padded(x, torch.ones(4, 10, dtype=torch.bool))
