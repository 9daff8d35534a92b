"""The studio's routes without a training child: lists and their summaries (as ``makemore train`` reads
them), validation, ids that never become paths, upload limits, the queue's records, favourites."""

from __future__ import annotations

import itertools
import re
from collections import Counter

import pytest

from conftest import make_tiny_words, run_cli
from makemore import api
from makemore.errors import MakemoreError
from makemore.studio import Studio, core
from makemore.studio.workspace import Workspace
from tests.studio.conftest import add_list, queue_run, words_text

ID = re.compile(r"[0-9a-f]{12}")


def test_state_lists_models_times_and_limits(client, studio):
    state = client.get("/api/studio/state").json()
    assert state["workspace"] == str(studio.ws.root) and state["token_required"] is False
    assert (state["lists"], state["runs"], state["jobs"]) == ([], [], [])
    assert state["time"] == {"least": 30, "most": 1800, "default": 120}
    assert state["limits"] == {"upload_bytes": 20 * 1024 * 1024, "upload_lines": 1_000_000}
    names = [m["name"] for m in state["models"]]
    assert names[0] == "auto" and "default" in names and "best" in names and "bigram" in names and "lstm" in names


def test_a_pasted_list_is_stored_as_given_with_its_summary(client, studio):
    words = make_tiny_words()
    record = add_list(client)
    assert ID.fullmatch(record["id"]) and record["name"] == "tiny" and record["format"] == "lines"
    assert studio.ws.items_path(record["id"]).read_bytes() == words_text().encode()
    lengths = Counter(len(w) for w in words)
    assert record["summary"] == {
        "items": 300,
        "distinct": len(set(words)),
        "duplicates": 300 - len(set(words)),
        "alphabet": "".join(sorted(set("".join(words)))),
        "lengths": {
            "min": min(lengths),
            "max": max(lengths),
            "mean": round(sum(map(len, words)) / 300, 3),
            "counts": [lengths.get(n, 0) for n in range(1, max(lengths) + 1)],
        },
        "labels": None,
        "columns": None,
        "refused": [],
        "trainable": True,
        "error": None,
    }
    assert client.get("/api/studio/state").json()["lists"] == [record]


def test_the_refused_lines_are_those_train_refuses_with_its_messages(client, studio, tmp_path, capsys):
    good = make_tiny_words(20)
    raw = "\n".join(good[:5]).encode() + b"\nbad\xff\n" + b"x" * 300 + b"\nnul\x00\n" + "\n".join(good[5:]).encode()
    r = client.post("/api/studio/lists/upload", files={"file": ("l.txt", raw)}, data={"name": "bad", "format": "lines"})
    assert r.status_code == 201, r.text
    summary = r.json()["list"]["summary"]
    assert summary["refused"] == [
        {"line": 6, "reason": "invalid UTF-8 (byte 0xff)"},
        {"line": 7, "reason": "item is 300 characters long, more than --max-item-len (256)"},
        {"line": 8, "reason": "contains a NUL byte (is this a binary or UTF-16 file?)"},
    ]
    assert summary["trainable"] is False and summary["items"] == 20
    path = studio.ws.items_path(r.json()["list"]["id"])
    code, _, err = run_cli(capsys, "train", "-i", path, "-o", tmp_path / "run", "--model", "bigram", "--steps", "1")
    assert code == 2 and err == f"makemore: error: {path}:8: contains a NUL byte (is this a binary or UTF-16 file?)\n"
    # the file without the NUL line: train names the next refused line
    fixed = tmp_path / "fixed.txt"
    fixed.write_bytes(raw.replace(b"nul\x00", b""))
    code, _, err = run_cli(capsys, "train", "-i", fixed, "-o", tmp_path / "run", "--model", "bigram", "--steps", "1")
    assert err == f"makemore: error: {fixed}:6: invalid UTF-8 (byte 0xff)\n"
    # the items counted are the ones train reads once the refused lines are gone
    clean = tmp_path / "clean.txt"
    clean.write_bytes(b"\n".join(line for i, line in enumerate(raw.split(b"\n"), 1) if i not in (6, 7, 8)))
    data = api.load_data(api.DataConfig(input=str(clean)))
    assert (summary["items"], summary["alphabet"]) == (data.num_items, "".join(data.vocab.chars))


def test_labelled_and_csv_lists_read_as_train_reads_them(client):
    pairs = [("lo", "abc"), ("hi", "xyz"), ("lo", "abd"), ("lo", "bad"), ("hi", "zzy"), ("hi", "yzx"), ("lo", "abc")]
    tsv = "".join(f"{label}\t{item}\n" for label, item in pairs)
    summary = add_list(client, tsv, format="labelled")["summary"]
    assert summary["labels"] == {"lo": 4, "hi": 3} and (summary["items"], summary["duplicates"]) == (7, 1)
    csv = "name;kind\n" + "".join(f"{item};{label}\n" for label, item in pairs) + "only-a-name\n"
    r = client.post("/api/studio/lists", json={"name": "c", "text": csv, "format": "csv", "item_column": "name",
                                               "label_column": "kind"})  # fmt: skip
    summary = r.json()["list"]["summary"]
    assert summary["columns"] == ["name", "kind"] and summary["items"] == 7
    assert summary["refused"] == [{"line": 9, "reason": "1 fields, column 2 is missing"}]
    r = client.post("/api/studio/lists", json={"name": "c", "text": csv, "format": "csv", "item_column": "nom"})
    assert r.status_code == 400
    assert (
        r.json()["error"]
        == "text: no item can be read: --item-column: no column 'nom' (the header has 2: 'name', 'kind')"
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"text": "a\n"}, "name: must be a string, got NoneType"),
        ({"name": " ", "text": "a\n"}, "name: must be 1 to 100 characters, got 0"),
        ({"name": "x" * 101, "text": "a\n"}, "name: must be 1 to 100 characters, got 101"),
        ({"name": "a\x00b", "text": "a\n"}, "name: holds a character that cannot be shown"),
        ({"name": "n", "text": 3}, "text: must be a string (the list, one item per line), got int"),
        ({"name": "n", "text": "a\n", "format": "xml"}, "format: must be one of lines, labelled, csv, tsv, got 'xml'"),
        ({"name": "n", "text": "a\n", "format": "csv"}, "item_column: a csv list needs the column of its items"),
        ({"name": "n", "text": "a\n", "item_column": "x"}, "item_column: only a csv or tsv list has columns"),
        ({"name": "n", "text": "a\n", "path": "/etc/passwd"}, "path: unknown field"),
        ({"name": "n", "text": "\n\n"}, "text: no item can be read: contains no items (empty or blank lines only)"),
    ],
)
def test_bad_lists_are_400s_naming_the_field_and_keep_nothing(client, studio, body, error):
    r = client.post("/api/studio/lists", json=body)
    assert r.status_code == 400 and r.json()["error"].startswith(error)
    assert list((studio.ws.root / "lists").iterdir()) == []


def test_bad_trainings_are_400s_naming_the_field(client):
    list_id = add_list(client)["id"]
    untrainable = add_list(client, "a\nb\n")["id"]
    for body, error in [
        ({"list": list_id, "time": 29}, "time: must be whole seconds from 30 to 1800, got 29"),
        ({"list": list_id, "time": 1801}, "time: must be whole seconds from 30 to 1800, got 1801"),
        ({"list": list_id, "time": "60"}, "time: must be whole seconds from 30 to 1800, got '60'"),
        ({"list": list_id, "time": True}, "time: must be whole seconds from 30 to 1800, got True"),
        ({"list": list_id, "model": "gpt-9"}, "model: unknown model 'gpt-9'"),
        ({"list": list_id, "name": ""}, "name: must be 1 to 100 characters, got 0"),
        ({"list": untrainable}, "list: makemore train refuses it (too few items to split 80/10/10"),
    ]:
        r = client.post("/api/studio/train", json=body)
        assert r.status_code == 400 and r.json()["error"].startswith(error), (body, r.json())
    assert client.get("/api/studio/runs").json() == []


UNSAFE = ["..%2Fx", "..", "%2Fetc%2Fpasswd", "a%00b", "0" * 200, "ABCDEF012345", "0123456789ab"]


def test_unknown_or_unsafe_ids_are_404s(client):
    for bad_id, (method, path) in itertools.product(
        UNSAFE,
        [
            ("post", "/api/studio/lists/{bad_id}/delete"),
            ("post", "/api/studio/jobs/{bad_id}/cancel"),
            ("post", "/api/studio/runs/{bad_id}/resume"),
            ("get", "/api/studio/runs/{bad_id}/favourites"),
            ("get", "/api/studio/runs/{bad_id}/favourites.txt"),
        ],
    ):
        path = path.format(bad_id=bad_id)
        r = client.post(path, json={}) if method == "post" else client.get(path)
        assert r.status_code == 404 and set(r.json()) == {"error"}, (path, r.text)
    for bad_id in UNSAFE:
        r = client.post("/api/studio/train", json={"list": bad_id, "time": 30})
        assert r.status_code == 404


def test_names_from_users_never_become_paths(client, studio):
    names = ["../x", "/etc/passwd", "a" * 100, "..", "C:\\windows", "名前 ✓"]
    for name in names:
        list_id = add_list(client, name=name)["id"]
        queue_run(client, list_id, name=name)
    kept = {p.relative_to(studio.ws.root).as_posix() for p in studio.ws.root.rglob("*")}
    pattern = r"studio\.json|jobs\.json|lists|runs|favourites|logs|lists/ID|lists/ID/items\.txt|lists/ID/list\.json|runs/ID\.json"
    assert all(re.fullmatch(pattern.replace("ID", "[0-9a-f]{12}"), p) for p in kept), kept
    assert sorted(r["name"] for r in client.get("/api/studio/runs").json()) == sorted(names)


def test_uploads_over_the_size_or_line_limit_are_413s(client, studio, monkeypatch):
    big = b"ab\n" * (7 * 1024 * 1024 + 1)  # over 20 MiB: refused on its Content-Length, unread
    r = client.post("/api/studio/lists/upload", files={"file": ("big.txt", big)}, data={"name": "big"})
    assert r.status_code == 413 and "the body is 22,020,356 bytes" in r.json()["error"]
    monkeypatch.setattr(core, "UPLOAD_MAX_BYTES", 100)  # the file alone, past the form's own bytes
    r = client.post("/api/studio/lists/upload", files={"file": ("l.txt", b"ab\n" * 50)}, data={"name": "l"})
    assert r.status_code == 413 and r.json()["error"] == "file: 150 bytes; at most 100"
    monkeypatch.undo()
    monkeypatch.setattr(core, "UPLOAD_MAX_LINES", 10)
    r = client.post("/api/studio/lists/upload", files={"file": ("l.txt", b"a\n" * 11)}, data={"name": "l"})
    assert r.status_code == 413 and r.json()["error"] == "file: 11 lines; at most 10"
    r = client.post("/api/studio/lists", json={"name": "l", "text": "a\n" * 10 + "b"})
    assert r.status_code == 413 and r.json()["error"] == "text: 11 lines; at most 10"
    r = client.post("/api/studio/lists/upload", files={"other": ("l.txt", b"a\n")}, data={"name": "no file"})
    assert r.status_code == 400 and r.json()["error"].startswith("file: missing")
    assert list((studio.ws.root / "lists").iterdir()) == []


def test_queue_cancel_resume_rename_and_delete_records(client, studio):
    list_id = add_list(client)["id"]
    job, run = queue_run(client, list_id)
    second, _ = queue_run(client, list_id, name="second")
    assert (job["status"], job["position"], second["position"]) == ("queued", 1, 2)
    assert run["status"] == "queued" and run["serve_id"] is None and run["list_name"] == "tiny"
    for path, body in [
        (f"/api/studio/runs/{run['id']}/delete", {"confirm": run["id"]}),
        (f"/api/studio/lists/{list_id}/delete", None),
    ]:
        r = client.post(path, json=body or {})
        assert r.status_code == 409, path
    r = client.post(f"/api/studio/jobs/{job['id']}/cancel", json={})
    assert r.json()["job"]["status"] == "cancelled"
    assert client.get("/api/studio/jobs").json()[1]["position"] == 1  # the second moved up
    r = client.post(f"/api/studio/runs/{run['id']}/rename", json={"name": "renamed"})
    assert r.json()["run"]["name"] == "renamed" and client.get("/api/studio/jobs").json()[0]["name"] == "renamed"
    r = client.post(f"/api/studio/runs/{run['id']}/resume", json={})  # no checkpoint yet: trains from the start
    assert r.status_code == 202 and r.json()["job"]["status"] == "queued"
    assert studio.jobs.find(r.json()["job"]["id"])["resume"] is False
    client.post(f"/api/studio/jobs/{r.json()['job']['id']}/cancel", json={})
    r = client.post(f"/api/studio/runs/{run['id']}/delete", json={"confirm": "another"})
    assert r.status_code == 400 and r.json()["error"] == "confirm: repeat the run's id to delete it"
    r = client.post(f"/api/studio/runs/{run['id']}/delete", json={"confirm": run["id"]})
    assert r.json() == {"deleted": run["id"]}
    assert [r["name"] for r in client.get("/api/studio/runs").json()] == ["second"]
    assert client.get(f"/api/studio/runs/{run['id']}/favourites").status_code == 404


def test_favourites_round_trip_and_downloads(client, studio):
    _, run = queue_run(client, add_list(client)["id"], name="My run")
    url = f"/api/studio/runs/{run['id']}/favourites"
    assert client.get(url).json() == []
    for item, score, label in [("abe", 1.25, None), ("=cmd", 2, "lo"), ("éda, b", None, None)]:
        client.post(url, json={"item": item, "score": score, "label": label, "starred": True})
    kept = client.post(url, json={"item": "abe", "score": 1.25, "label": None, "starred": False}).json()
    assert kept == [{"item": "=cmd", "score": 2, "label": "lo"}, {"item": "éda, b", "score": None, "label": None}]
    assert client.get(url).json() == kept
    txt = client.get(url + ".txt")
    assert txt.text == "=cmd\néda, b\n" and txt.headers["content-type"] == "text/plain; charset=utf-8"
    assert txt.headers["content-disposition"] == "attachment; filename*=UTF-8''My%20run%20favourites.txt"
    assert client.get(url + ".csv").text == 'item,score,label\n\'=cmd,2,lo\n"éda, b",,\n'
    for body, error in [
        ({"item": "", "starred": True}, "item: must be a string of 1 to 1000"),
        ({"item": "a", "starred": "yes"}, "starred: must be true or false"),
        ({"item": "a", "score": "1", "starred": True}, "score: must be a number or null, got str"),
    ]:
        r = client.post(url, json=body)
        assert r.status_code == 400 and r.json()["error"].startswith(error)


def test_a_workspace_is_not_made_in_a_folder_holding_other_things(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(MakemoreError, match="not empty and not a studio workspace"):
        Workspace(tmp_path)
    (tmp_path / "ws").mkdir()
    Studio(tmp_path / "ws").close()
    assert (tmp_path / "ws" / "studio.json").read_text() == '{\n "format": "makemore-studio",\n "version": 1\n}\n'
