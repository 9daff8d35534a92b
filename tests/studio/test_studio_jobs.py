"""The studio's training children (slow: each starts ``makemore train``): a training served when it ends,
the queue, cancel and resume, a killed child, restart recovery; and the event stream (fast)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time

import pytest

from makemore import api
from makemore.studio import Studio, StudioConfig, make_studio
from tests.studio.conftest import TRAIN_ARGS, add_list, queue_run


def wait(predicate, timeout: float = 90.0, every: float = 0.2):
    """``predicate()``'s first true value within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def job_of(client, job_id: str) -> dict:
    return next(j for j in client.get("/api/studio/jobs").json() if j["id"] == job_id)


def ended(client, job_id: str) -> dict | None:
    job = job_of(client, job_id)
    return job if job["status"] not in ("queued", "running") else None


@pytest.mark.slow
def test_a_training_is_queued_runs_and_is_served_with_its_curve(client, studio):
    list_id = add_list(client)["id"]
    first, run = queue_run(client, list_id)
    second, run2 = queue_run(client, list_id, name="second")
    studio.start()
    running = wait(lambda: job_of(client, first["id"])["status"] == "running" and client.get("/api/studio/jobs").json())
    assert [j["position"] for j in running] == [0, 1]  # one child at a time: the second waits
    job = wait(lambda: ended(client, first["id"]))
    assert job["status"] == "finished" and job["step"] == job["steps"] == 1000 and job["error"] is None
    assert [p[0] for p in job["curve"]][:3] == [100, 200, 300] and job["curve"][-1][
        2
    ] is not None  # dev loss at the end
    served = next(r for r in client.get("/api/studio/runs").json() if r["id"] == run["id"])
    assert served["status"] == "finished" and served["serve_id"] is not None and served["dev_nll"] > 0
    r = client.post("/api/generate", json={"run": served["serve_id"], "n": 20, "suffix": "e", "seed": 1})
    assert r.status_code == 200 and len(r.json()["items"]) == 20
    assert all(i["item"].endswith("e") for i in r.json()["items"])
    wait(lambda: ended(client, second["id"]))
    log = (studio.ws.root / "logs" / f"{first['id']}.log").read_text()
    assert log.startswith("train NLL")


@pytest.mark.slow
def test_cancel_keeps_the_last_checkpoint_and_resume_finishes_it(client, studio):
    studio.jobs.train_args = ("--steps", "3000", "--eval-interval", "250", "--log-interval", "100")
    job, run = queue_run(client, add_list(client)["id"])
    studio.start()
    last = api.RunDir(studio.ws.run_dir(run["id"])).checkpoint("last")
    wait(last.is_file, every=0.05)
    client.post(f"/api/studio/jobs/{job['id']}/cancel", json={})
    cancelled = wait(lambda: ended(client, job["id"]))
    assert cancelled["status"] == "cancelled" and 0 < cancelled["step"] < 3000
    listed = next(r for r in client.get("/api/studio/runs").json() if r["id"] == run["id"])
    assert listed["status"] == "cancelled" and listed["serve_id"] is not None  # its best checkpoint is served
    r = client.post(f"/api/studio/runs/{run['id']}/resume", json={})
    assert r.status_code == 202
    resumed = wait(lambda: ended(client, r.json()["job"]["id"]))
    assert resumed["status"] == "finished" and resumed["step"] == 3000
    assert studio.jobs.command(studio.jobs.find(resumed["id"]))[3:5] == ["train", "--resume"]


@pytest.mark.slow
def test_a_killed_child_fails_its_job_and_the_server_goes_on(client, studio):
    studio.jobs.train_args = ("--steps", "100000", "--eval-interval", "500")
    job, run = queue_run(client, add_list(client)["id"])
    studio.start()
    pid = wait(lambda: studio.jobs.find(job["id"])["pid"])
    wait(api.RunDir(studio.ws.run_dir(run["id"])).metrics_path.is_file)
    os.kill(pid, signal.SIGKILL)
    failed = wait(lambda: ended(client, job["id"]))
    assert failed["status"] == "failed" and failed["error"].startswith("killed by signal 9")
    assert client.get("/api/studio/state").status_code == 200
    r = client.post(f"/api/studio/runs/{run['id']}/resume", json={})  # failed runs may be resumed
    assert r.status_code == 202
    client.post(f"/api/studio/jobs/{r.json()['job']['id']}/cancel", json={})


@pytest.mark.slow
def test_after_a_restart_finished_runs_are_served_and_a_lost_child_is_interrupted(tmp_path):
    list_text = "".join(f"{w}\n" for w in ("anna", "bob", "carl", "dora", "emil", "fred", "gus", "hans") * 40)
    first = Studio(tmp_path / "ws", train_args=TRAIN_ARGS)
    list_id = first.add_list({"name": "l", "text": list_text})["list"]["id"]
    done = first.train({"list": list_id, "time": 30, "model": "bigram"})
    first.start()
    wait(lambda: first.jobs.find(done["job"]["id"])["status"] == "finished")
    first.jobs.train_args = ("--steps", "100000", "--eval-interval", "500")
    lost = first.train({"list": list_id, "time": 30, "model": "bigram"})
    last = api.RunDir(first.ws.run_dir(lost["run"]["id"])).checkpoint("last")
    wait(last.is_file, every=0.05)
    pid = first.jobs.find(lost["job"]["id"])["pid"]
    first.jobs._stop.set()  # the server dies: its runner stops, its child is killed, jobs.json still says running
    first.jobs._thread.join()
    os.kill(pid, signal.SIGKILL)
    first.jobs.proc.wait()
    second = Studio(tmp_path / "ws", train_args=TRAIN_ARGS)
    try:
        runs = {r["id"]: r for r in second.runs()}
        assert runs[done["run"]["id"]]["status"] == "finished" and runs[done["run"]["id"]]["serve_id"] is not None
        assert runs[lost["run"]["id"]]["status"] == "interrupted"
        assert second.jobs.find(lost["job"]["id"])["status"] == "interrupted"
        job = second.resume(lost["run"]["id"])["job"]
        assert second.jobs.find(job["id"])["resume"] is True
    finally:
        second.close()


def test_the_event_stream_sends_the_jobs(tmp_path):
    studio, server = make_studio(StudioConfig(workspace=str(tmp_path / "ws"), port=0, quiet=True))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        studio.add_list({"name": "l", "text": "".join(f"w{i}\n" for i in range(50))})
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        conn.request("GET", "/api/studio/events")
        answer = conn.getresponse()
        assert answer.status == 200 and answer.getheader("Content-Type").startswith("text/event-stream")
        assert answer.readline() == b"event: jobs\n"
        assert json.loads(answer.readline().removeprefix(b"data: ")) == []
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
        studio.close()


@pytest.mark.slow
def test_auto_is_the_default_and_the_run_says_what_it_chose(client, studio):
    list_id = add_list(client)["id"]
    r = client.post("/api/studio/train", json={"list": list_id, "time": 30})  # no model: auto
    assert r.status_code == 202, r.text
    job, run = r.json()["job"], r.json()["run"]
    assert run["model"] == "auto"
    studio.start()
    assert wait(lambda: ended(client, job["id"]))["status"] == "finished"
    served = next(r for r in client.get("/api/studio/runs").json() if r["id"] == run["id"])
    recorded = api.load_run(studio.ws.run_dir(run["id"])).description.auto
    assert served["auto"] == {"summary": recorded["summary"], "reason": recorded["reason"]}
    assert "240 training items" in served["auto"]["reason"]
