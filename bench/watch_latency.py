"""Watch latency: from saving prefect.yaml to the plan printed by `reconcile --watch`, 50 deployments.

A real watcher process (`python -m reconciler -C DIR --watch`), its stdout read by a thread that stamps
every line as it arrives. Each save changes one deployment's parameter, so every plan has one update;
the clock starts just before the write and stops when that plan's `Plan: 0 to create, 1 to update`
line arrives (and, in apply mode, when `Apply complete` arrives). Saves are spaced so each is its own
burst. In the same run, as a baseline, the wall time of one `reconcile plan` process on the same file
and state (what a user who re-runs plan by hand waits for).

    python bench/watch_latency.py [--deployments 50] [--saves 20] [--gap 0.3]
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOW = '''
def etl_{i}(rows: int = 10, source: str = "s3://bucket") -> int:
    """Move some rows."""
    return rows
'''


def generate(root: Path, n: int, *, rows_of_first: int = 0) -> str:
    """A realistic file: one process pool, N deployments over 5 flow files, schedules and tags."""
    (root / "flows").mkdir(parents=True, exist_ok=True)
    for i in range(5):
        (root / "flows" / f"etl_{i}.py").write_text(FLOW.format(i=i))
    lines = ["name: watchbench", "work_pools:", "  - name: pool", "    type: process", "deployments:"]
    for i in range(n):
        rows = rows_of_first if i == 0 else i
        lines += [
            f"  - name: dep-{i:03d}",
            f"    entrypoint: flows/etl_{i % 5}.py:etl_{i % 5}",
            f"    tags: [team-{i % 7}, generated]",
            f'    parameters: {{rows: {rows}, source: "s3://bucket/path/{i}"}}',
            f'    schedules: [{{cron: "{i % 60} {i % 24} * * *", timezone: UTC, slug: daily}}]',
            "    work_pool: {name: pool, job_variables: {env: {STAGE: bench}}}",
        ]
    return "\n".join(lines) + "\n"


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    out["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), out.get("PYTHONPATH"))))
    out["NO_COLOR"] = "1"
    return out


def cli(root: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "reconciler", "-C", str(root), *args],
        env=env(),
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


class Watcher:
    """The watcher process; ``lines`` receives ``(arrival time, line)`` for every line it prints."""

    def __init__(self, root: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "-C", str(root), "--watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env(),
        )
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.perf_counter(), line.rstrip("\n")))

    def wait_for(self, prefix: str, timeout: float = 20.0) -> float:
        deadline = time.monotonic() + timeout
        while True:
            try:
                when, line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"no line starting {prefix!r} from the watcher within {timeout}s") from None
            if line.startswith(prefix):
                return when

    def drain(self) -> None:
        """Forget lines already printed (a save split over two batches prints a second, empty plan)."""
        while not self.lines.empty():
            self.lines.get_nowait()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def measure(root: Path, n: int, saves: int, gap: float, *args: str) -> dict[str, list[float]]:
    """Per save: ms to the plan line, and (applying) ms to `Apply complete`."""
    results: dict[str, list[float]] = {"plan": [], "applied": []}
    watcher = Watcher(root, *args)
    try:
        watcher.wait_for("Watching ")
        for k in range(1, saves + 1):
            time.sleep(gap)
            watcher.drain()
            text = generate(root, n, rows_of_first=1000 + k + (100_000 if args else 0))
            start = time.perf_counter()
            (root / "prefect.yaml").write_text(text)
            results["plan"].append((watcher.wait_for("Plan: 0 to create, 1 to update") - start) * 1000)
            if not args:
                results["applied"].append((watcher.wait_for("Apply complete") - start) * 1000)
    finally:
        code = watcher.stop()
    if code != 0:
        raise SystemExit(f"the watcher exited {code}")
    return results


def row(name: str, values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return (
        f"| {name} | {len(values)} | {values[0]:.1f} | {statistics.median(values):.1f} | {p95:.1f} "
        f"| {values[-1]:.1f} |"
    )


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--deployments", type=int, default=50)
    parser.add_argument("--saves", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between saves")
    parser.add_argument("--baseline-runs", type=int, default=5)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="watchbench-") as tmp:
        root = Path(tmp)
        (root / "prefect.yaml").write_text(generate(root, opts.deployments))
        cli(root, "apply", "--yes")
        baseline = [cli(root, "plan") * 1000 for _ in range(opts.baseline_runs)]
        applying = measure(root, opts.deployments, opts.saves, opts.gap)
        planning = measure(root, opts.deployments, opts.saves, opts.gap, "--plan-only")
    load = os.getloadavg()[0]
    print(f"{opts.deployments} deployments, {opts.saves} saves {opts.gap:g} s apart; ms (load {load:.1f})")
    print("| measurement | n | min | median | p95 | max |")
    print("|---|---|---|---|---|---|")
    print(row("`--watch`: save -> plan printed", applying["plan"]))
    print(row("`--watch`: save -> apply complete", applying["applied"]))
    print(row("`--watch --plan-only`: save -> plan printed", planning["plan"]))
    print(row("baseline: one `reconcile plan` process", baseline))


if __name__ == "__main__":
    main()
