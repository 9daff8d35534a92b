"""A run's description, parsed once into typed values (the schema of a checkpoint's header)."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from makemore import api
from makemore.errors import MakemoreError
from makemore.store.checkpoint import read_meta
from makemore.store.description import RunDescription


@pytest.fixture(scope="module")
def meta(trained_run):
    return read_meta(trained_run.out_dir / "best.safetensors")


def test_a_description_holds_the_header_as_typed_values(meta, trained_run):
    description = RunDescription.parse(meta)
    assert description.model.kind == "mlp" and description.model.parameters == meta["model"]["parameters"] > 0
    assert description.data.split_sizes == (240, 30, 30) and description.data.items == len(trained_run.words)
    assert description.data.longest_item == max(map(len, trained_run.words))
    assert description.data.casefolded is True and description.data.label_counts == {}
    assert description.step == meta["state"]["step"] and description.metrics == meta["metrics"]
    assert description.config == api.load_run(trained_run.out_dir).config
    assert description.vocab.chars == tuple(meta["vocab"]["chars"])
    assert description.run_id == meta["run_id"] and description.time_budget is None and description.processes is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        description.step = 0  # parsed once: nobody changes it afterwards


def test_a_run_reads_its_description(trained_run):
    run = api.load_run(trained_run.out_dir)
    assert run.description.data.sha256 == run.meta["data"]["sha256"]
    assert run.vocab is run.description.vocab and run.config is run.description.config


def test_an_older_header_without_new_fields_still_parses(meta):
    older = copy.deepcopy(meta)
    for key in ("run_id",):
        older.pop(key)
    older["data"].pop("casefolded")
    description = RunDescription.parse(older)
    assert description.run_id is None and description.data.casefolded is True  # read from the vocabulary


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda m: m["model"].update(parameters=-1), "model.parameters"),
        (lambda m: m.update(processes=0), "processes"),
        (lambda m: m.update(time_budget=[1]), "time_budget"),
        (lambda m: m["data"].update(casefolded="yes"), "data.casefolded"),
        (lambda m: m.update(run_id="xyz"), "run_id"),
        (lambda m: m["data"].update(split_sizes=[1, 2]), "data.split_sizes"),
    ],
)
def test_a_field_of_the_wrong_kind_is_named(meta, edit, field):
    bad = copy.deepcopy(meta)
    edit(bad)
    with pytest.raises(MakemoreError, match=rf"^{field}: "):
        RunDescription.parse(bad)
