"""`prefect deploy` versus `reconcile apply` on one Prefect server: 200 deployments, three situations.

Side by side in one run, against the same freshly started Prefect 3.9.1 server (SQLite), each tool on
its own 200 deployments (same flows, same schedules, same pool type):

  (a) first apply         every deployment is new
  (b) no-change re-apply  the file did not change
  (c) one changed         one deployment's parameters changed

For each: wall time of the CLI process (imports included) and the HTTP requests it sent, counted by a
small counting proxy on 127.0.0.1 in front of the server (both tools talk to the server through it).
For (b) and (c) also the *scheduled runs dropped for unchanged deployments*: the server deletes a
deployment's future scheduled runs on every write to it, so the future runs of the deployments the
situation did not change are listed before and after; a run id that disappeared was dropped.

    python bench/prefect_deploy_vs_apply.py [--deployments 200] [--out results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
FLOW = '''
from prefect import flow


@flow(name="etl-{i}")
def etl_{i}(rows: int = 10, source: str = "s3://bucket") -> int:
    """Move some rows."""
    return rows
'''
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length", "host"}


# -- the counting proxy ------------------------------------------------------------------------------


class CountingProxy:
    """Forwards every request to the server and counts it (by method) until reset."""

    def __init__(self, upstream: str) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        client = httpx.Client(base_url=upstream, timeout=120)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with proxy._lock:
                    proxy.counts[self.command] += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                response = client.request(self.command, self.path, content=body, headers=headers)
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() not in _HOP:
                        self.send_header(key, value)
                self.send_header("content-length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def take(self) -> dict[str, int]:
        with self._lock:
            counts, self.counts = dict(self.counts), Counter()
        return counts

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# -- the server --------------------------------------------------------------------------------------


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """A fresh server; its scheduler keeps 3 future runs per deployment (enough to see drops)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home / "server"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS="3",
        PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS="3",
    )
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed below
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise SystemExit("the Prefect server did not start; see server.log")
        yield api
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the two projects --------------------------------------------------------------------------------


def write_project(root: Path, *, prefix: str, pool: str, n: int, changed: bool, ours: bool) -> None:
    (root / "flows").mkdir(parents=True, exist_ok=True)
    for i in range(10):
        (root / "flows" / f"etl_{i}.py").write_text(FLOW.format(i=i))
    lines = [f"name: bench-{prefix}", "prefect-version: 3.9.1"]
    if ours:
        lines += ["work_pools:", f"  - {{name: {pool}, type: process}}"]
    else:
        lines += ["pull:", "  - prefect.deployments.steps.set_working_directory:", f"      directory: {root}"]
    lines.append("deployments:")
    for i in range(n):
        rows = i + 1 if (changed and i == 0) else i
        lines += [
            f"  - name: {prefix}-{i:03d}",
            f"    entrypoint: flows/etl_{i % 10}.py:etl_{i % 10}",
            f"    tags: [team-{i % 7}, bench]",
            f'    parameters: {{rows: {rows}, source: "s3://bucket/{i}"}}',
            f'    schedules: [{{cron: "{i % 60} {i % 24} * * *", timezone: UTC, slug: daily}}]',
            f"    work_pool: {{name: {pool}}}",
        ]
    (root / "prefect.yaml").write_text("\n".join(lines) + "\n")


def prefect_deploy(root: Path, api: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_API_URL=api, PREFECT_HOME=str(home / "client"), PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=3600)


def reconcile_apply(root: Path, api: str, home: Path, code: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``reconcile apply`` of the code at ``code`` (this checkout, or a worktree of an earlier commit)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RECONCILE_"))}
    env.update(PREFECT_HOME=str(home / "client"), PYTHONPATH=str(code), NO_COLOR="1")
    command = [
        sys.executable,
        "-m",
        "reconciler",
        "-C",
        str(root),
        "--state",
        f"prefect+{api}",
        "apply",
        "--yes",
    ]
    # cwd is the code: ``python -m`` puts the working directory first on sys.path
    return subprocess.run(command, cwd=code, env=env, capture_output=True, text=True, timeout=3600)


# -- scheduled runs ----------------------------------------------------------------------------------


def future_runs(api: str, prefix: str) -> dict[str, set[str]]:
    """Future SCHEDULED run ids per deployment name (of one tool's deployments)."""
    runs: dict[str, set[str]] = {}
    with httpx.Client(base_url=api + "/", timeout=60) as client:
        offset = 0
        while True:
            criteria = {
                "deployments": {"name": {"like_": f"{prefix}-"}},
                "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
                "limit": 200,
                "offset": offset,
            }
            page = client.post("flow_runs/filter", json=criteria).json()
            for run in page:
                runs.setdefault(str(run["deployment_id"]), set()).add(run["id"])
            if len(page) < 200:
                break
            offset += 200
    return runs


def wait_for_schedules(api: str, prefix: str, n: int, timeout: float = 300) -> dict[str, set[str]]:
    deadline = time.monotonic() + timeout
    while True:
        runs = future_runs(api, prefix)
        if len(runs) >= n and all(len(v) >= 3 for v in runs.values()):
            return runs
        if time.monotonic() > deadline:
            return runs
        time.sleep(2)


def deployment_ids(api: str, prefix: str, names: list[str]) -> set[str]:
    with httpx.Client(base_url=api + "/", timeout=60) as client:
        found = client.post("deployments/filter", json={"deployments": {"name": {"any_": names}}}).json()
    return {str(d["id"]) for d in found if d["name"].startswith(prefix)}


def dropped(before: dict[str, set[str]], after: dict[str, set[str]], skip: set[str]) -> int:
    return sum(len(ids - after.get(dep, set())) for dep, ids in before.items() if dep not in skip)


# -- main --------------------------------------------------------------------------------------------


@contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """The repository's code at ``ref`` in a temporary git worktree (removed afterwards)."""
    where = Path(tempfile.mkdtemp(prefix="bench-ref-")) / "code"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(where), ref], cwd=REPO, check=True)
    try:
        yield where
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=REPO, check=False)


def run(n: int, *, before_ref: str | None = None, situations: str = "abc") -> list[dict[str, Any]]:
    home = Path(tempfile.mkdtemp(prefix="bench-prefect-"))
    results: list[dict[str, Any]] = []
    try:
        with prefect_server(home) as api, contextlib.ExitStack() as stack:
            proxy = CountingProxy(api.removesuffix("/api"))
            via = f"http://127.0.0.1:{proxy.port}/api"
            httpx.post(f"{api}/work_pools/", json={"name": "bench-pd-pool", "type": "process"}, timeout=30)
            tools: dict[str, tuple[str, str, bool, Any]] = {
                "prefect deploy": ("pd", "bench-pd-pool", False, prefect_deploy),
                "reconcile apply": ("rc", "bench-rc-pool", True, reconcile_apply),
            }
            if before_ref is not None:
                code = stack.enter_context(worktree(before_ref))
                tools[f"reconcile apply @{before_ref}"] = (
                    "rb",
                    "bench-rb-pool",
                    True,
                    lambda root, via, home, code=code: reconcile_apply(root, via, home, code),
                )
            for situation in situations:
                for tool, (prefix, pool, ours, command) in tools.items():
                    root = home / prefix
                    write_project(root, prefix=prefix, pool=pool, n=n, changed=situation == "c", ours=ours)
                    before = wait_for_schedules(api, prefix, n) if situation != "a" else {}
                    skip = deployment_ids(api, prefix, [f"{prefix}-000"]) if situation == "c" else set()
                    proxy.take()
                    started = time.perf_counter()
                    done = command(root, via, home)
                    seconds = time.perf_counter() - started
                    counts = proxy.take()
                    if done.returncode != 0:
                        raise SystemExit(
                            f"{tool} failed in ({situation}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
                        )
                    after = future_runs(api, prefix) if situation != "a" else {}
                    results.append(
                        {
                            "situation": situation,
                            "tool": tool,
                            "seconds": round(seconds, 2),
                            "requests": sum(counts.values()),
                            "by_method": counts,
                            "scheduled_runs_before": sum(len(v) for d, v in before.items() if d not in skip),
                            "dropped_unchanged": dropped(before, after, skip) if situation != "a" else None,
                        }
                    )
                    print(json.dumps(results[-1]), flush=True)
            proxy.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return results


def table(results: list[dict[str, Any]]) -> str:
    names = {"a": "(a) first apply", "b": "(b) no-change re-apply", "c": "(c) one deployment changed"}
    rows = [
        "| situation | tool | wall time | HTTP requests | scheduled runs dropped (unchanged deployments) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in results:
        dropped_text = (
            "-"
            if r["dropped_unchanged"] is None
            else f"{r['dropped_unchanged']} of {r['scheduled_runs_before']}"
        )
        cells = [names[r["situation"]], r["tool"], f"{r['seconds']:.2f} s", str(r["requests"]), dropped_text]
        rows.append("| " + " | ".join(cells) + " |")
    by = {(r["situation"], r["tool"]): r for r in results}
    for situation in dict.fromkeys(r["situation"] for r in results):
        pd, rc = by[(situation, "prefect deploy")], by[(situation, "reconcile apply")]
        rows.append(
            f"| {names[situation]} | ratio | {pd['seconds'] / rc['seconds']:.1f}x less time | "
            f"{pd['requests'] / max(rc['requests'], 1):.1f}x fewer | |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deployments", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--before-ref",
        default=None,
        help="Also apply with the code at this Git ref (a before/after baseline).",
    )
    parser.add_argument("--situations", default="abc", help="Which of a, b, c to run (default: all).")
    args = parser.parse_args()
    results = run(args.deployments, before_ref=args.before_ref, situations=args.situations)
    print()
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
