"""Latency of ``makemore serve``: generate (n=100) and score requests from a local client.

Starts ``makemore serve RUN --port 0 --quiet`` as a subprocess (the server as users run it), then
sends ``--requests`` generate requests (``n`` items each, a different seed each) and as many score
requests (items the model made), first one at a time, then from ``--clients`` concurrent clients
(each on its own keep-alive connection, the requests split between them). Reported: the median
and 95th percentile of the request latencies in milliseconds, and requests per second.

With ``--baseline SRC`` it compares two servers instead: the ``makemore`` package under SRC (another
checkout's ``src``, e.g. the standard-library server of before Starlette:
``git archive 9ec6600 src | tar -x -C /tmp/old``) against this one, both started, taking turns:
``--rounds`` rounds of ``--requests`` POST /api/generate n=1 on one keep-alive connection each, the
order of the two alternating from round to round. Reported per server: the median over rounds of
requests per second, and the median and 95th percentile latency of all its requests.

Usage:
    python benchmarks/bench_serve.py --run runs/default [--requests 200] [--n 100] [--clients 4]
    python benchmarks/bench_serve.py --run RUN --baseline /tmp/old/src [--rounds 10] [--requests 200]

Prints a table and writes JSON (default benchmarks/results/serve.json; serve-vs-baseline.json).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import run_info, write_json  # benchmarks/benchlib.py

SERVING = re.compile(r"^serving .* at http://(\S+):(\d+)/\s*$")


def ctrl_c_stops() -> None:
    """In the server's process before it starts: SIGINT at its default, so that the SIGINT this
    script sends stops it like Ctrl-C even when this script was started in the background
    (a non-interactive shell's ``&`` ignores SIGINT, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_server(run: str, source: str | None = None) -> tuple[subprocess.Popen, int]:
    """``makemore serve RUN --port 0`` (the package under ``source`` when given) and the port it listens on."""
    command = [sys.executable, "-m", "makemore", "serve", run, "--port", "0", "--quiet"]
    env = None if source is None else {**os.environ, "PYTHONPATH": source}
    proc = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_stops,
    )
    for line in proc.stderr:
        match = SERVING.match(line)
        if match:
            return proc, int(match.group(2))
        if line.startswith("makemore: error"):
            break
    proc.kill()
    raise SystemExit(f"makemore serve did not start: {line.strip()}")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def timed_requests(port: int, path: str, bodies: list[dict]) -> list[float]:
    """Milliseconds of each request, sent in order on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out = []
    try:
        for body in bodies:
            data = json.dumps(body)
            started = time.perf_counter()
            connection.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            out.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise SystemExit(f"{path} {body}: HTTP {response.status} {payload[:200]!r}")
    finally:
        connection.close()
    return out


def measure(port: int, path: str, bodies: list[dict], clients: int) -> dict:
    """Latencies of ``bodies`` sent by ``clients`` concurrent clients (1: one after another)."""
    started = time.perf_counter()
    if clients == 1:
        latencies = timed_requests(port, path, bodies)
    else:
        shares = [bodies[i::clients] for i in range(clients)]
        with ThreadPoolExecutor(clients) as pool:
            latencies = [ms for part in pool.map(lambda b: timed_requests(port, path, b), shares) for ms in part]
    seconds = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "median_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 95),
        "max_ms": max(latencies),
        "requests_per_s": len(latencies) / seconds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a trained run directory (e.g. runs/default)")
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind per measurement")
    parser.add_argument("--n", type=int, default=100, help="items per generate request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the second measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests of each kind first")
    parser.add_argument("--out", type=Path, default=None, help="the JSON written (default in benchmarks/results/)")
    parser.add_argument("--baseline", help="src directory of another makemore: compare its server with this one")
    parser.add_argument("--rounds", type=int, default=10, help="--baseline: rounds of the two servers' turns")
    args = parser.parse_args(argv)
    if args.baseline:
        return compare(args)
    args.out = args.out or Path("benchmarks/results/serve.json")

    proc, port = start_server(args.run)
    try:
        made = json.loads(_post(port, "/api/generate", {"n": 200, "seed": 0, "unique": True, "min_len": 1}))
        words = [r["item"] for r in made["items"]]
        generate = [{"n": args.n, "seed": i} for i in range(args.requests)]
        score = [{"text": words[i % len(words)]} for i in range(args.requests)]
        timed_requests(port, "/api/generate", generate[: args.warmup])
        timed_requests(port, "/api/score", score[: args.warmup])
        info = json.loads(_get(port, "/api/runs"))["runs"][0]
        result = {**run_info("serve", args), "model": info["model"], "parameters": info["parameters"], "rows": {}}
        for clients in (1, args.clients):
            for name, path, bodies in (("generate", "/api/generate", generate), ("score", "/api/score", score)):
                label = f"{name} n={args.n}" if name == "generate" else name
                result["rows"][f"{label}, {clients} client{'s' if clients > 1 else ''}"] = measure(
                    port, path, bodies, clients
                )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    print(f"\n{info['model']} ({info['parameters']:,} parameters), {args.requests} requests per row")
    print(f"{'requests':<28} {'median ms':>10} {'p95 ms':>9} {'max ms':>9} {'req/s':>8}")
    for name, row in result["rows"].items():
        print(
            f"{name:<28} {row['median_ms']:>10.1f} {row['p95_ms']:>9.1f} {row['max_ms']:>9.1f} "
            f"{row['requests_per_s']:>8.1f}"
        )
    write_json(args.out, result)


def compare(args: argparse.Namespace) -> None:
    """This server against the one under ``args.baseline``, taking turns (see the module's docstring)."""
    servers = {"baseline": start_server(args.run, args.baseline), "this": start_server(args.run)}
    names = list(servers)
    per_s: dict[str, list[float]] = {name: [] for name in names}
    latencies: dict[str, list[float]] = {name: [] for name in names}
    try:
        for name in names:  # warm both up: first requests load lazily
            timed_requests(servers[name][1], "/api/generate", [{"n": 1, "seed": i} for i in range(args.warmup)])
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                bodies = [{"n": 1, "seed": r * args.requests + i} for i in range(args.requests)]
                started = time.perf_counter()
                ms = timed_requests(servers[name][1], "/api/generate", bodies)
                per_s[name].append(len(ms) / (time.perf_counter() - started))
                latencies[name] += ms
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    result = {**run_info("serve-vs-baseline", args), "rows": {}}
    print(f"\nPOST /api/generate n=1, {args.rounds} rounds of {args.requests} requests, taking turns")
    print(f"{'server':<10} {'req/s (median)':>15} {'min':>8} {'max':>8} {'median ms':>10} {'p95 ms':>8}")
    for name in names:
        row = {
            "requests_per_s": statistics.median(per_s[name]),
            "rounds_per_s": per_s[name],
            "median_ms": statistics.median(latencies[name]),
            "p95_ms": percentile(latencies[name], 95),
        }
        result["rows"][name] = row
        print(
            f"{name:<10} {row['requests_per_s']:>15.1f} {min(per_s[name]):>8.1f} {max(per_s[name]):>8.1f} "
            f"{row['median_ms']:>10.2f} {row['p95_ms']:>8.2f}"
        )
    write_json(args.out or Path("benchmarks/results/serve-vs-baseline.json"), result)


def _post(port: int, path: str, body: dict) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        return connection.getresponse().read()
    finally:
        connection.close()


def _get(port: int, path: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path)
        return connection.getresponse().read()
    finally:
        connection.close()


if __name__ == "__main__":
    main()
