"""Plan at scale: a no-op plan of 2 (quickstart-sized), 1,000 and 10,000 deployments on the SQLite store.

Side by side in one run (ratios matter, this machine is noisy): the `reconcile plan` wall time (a real
CLI process, imports included) and its peak RSS, the in-process plan time, the time PyYAML's C loader
takes merely to parse the same file, and the time of the fastest YAML parsers on the package index
(yaml-rs, rapidyaml). Also: apply of N new deployments, and the error path (one bad value at the end
of the file, reported as path:line:col).

    python bench/plan_scale.py [--sizes 1000 10000] [--repeat 3]
    python bench/plan_scale.py --before /tmp/base --sizes 2 10000 --repeat 7

``--before DIR`` (a worktree of an earlier commit: ``git worktree add /tmp/base <commit>``) measures
the no-op plan of that tree and of this one alternately, in the same run, each on its own applied
state: CPU time (user + system of the process, less sensitive to load than wall time), wall time and
peak RSS, medians.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
FLOW = '''
def etl(rows: int = 10, source: str = "s3://bucket", flag: bool = True, ratio: float = 0.5):
    """Move some rows."""
    return rows
'''


def generate(root: Path, n: int) -> Path:
    """A realistic project: one process pool, N deployments over 10 flow files, ~300 bytes each."""
    (root / "flows").mkdir(parents=True, exist_ok=True)
    for i in range(10):
        (root / "flows" / f"etl_{i}.py").write_text(FLOW.replace("def etl", f"def etl_{i}"))
    lines = [
        "name: scale",
        "work_pools:",
        "  - name: pool",
        "    type: process",
        "    job_variables: {env: {STAGE: prod}}",
        "deployments:",
    ]
    for i in range(n):
        lines += [
            f"  - name: dep-{i:05d}",
            f"    entrypoint: flows/etl_{i % 10}.py:etl_{i % 10}",
            f"    tags: [team-{i % 7}, generated]",
            f'    parameters: {{rows: {i}, source: "s3://bucket/path/{i}"}}',
            f'    schedules: [{{cron: "{i % 60} {i % 24} * * *", timezone: UTC, slug: daily}}]',
            "    work_pool:",
            "      name: pool",
            f'      job_variables: {{env: {{INDEX: "{i}"}}}}',
        ]
    path = root / "prefect.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(project: Path, *args: str, repo: Path = REPO) -> tuple[float, int, subprocess.CompletedProcess[str]]:
    """Wall seconds and peak RSS (KiB) of one `reconcile` process, read from that process's own
    rusage (``os.wait4``): RUSAGE_CHILDREN would be the largest of every child so far."""
    wall, usage, done = run_reconcile(project, *args, repo=repo)
    return wall, usage.ru_maxrss, done


def compiled(repo: Path) -> None:
    """Byte-compile ``repo``'s package first, as an install does: where PYTHONDONTWRITEBYTECODE is
    set (this machine's environment), each process would otherwise compile ~40 modules again."""
    compileall.compile_dir(repo / "reconciler", quiet=1)


def run_reconcile(
    project: Path, *args: str, repo: Path = REPO
) -> tuple[float, Any, subprocess.CompletedProcess[str]]:
    """Wall seconds and the rusage of one `reconcile` process running the code in ``repo``."""
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(repo)}
    command = [sys.executable, "-m", "reconciler", "-C", str(project), *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        # cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env, cwd=repo)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(command, process.returncode, out.read(), err.read())
    return wall, usage, done


def in_process_plan(project: Path) -> float:
    """Plan time without interpreter start-up and imports (the work itself)."""
    sys.path.insert(0, str(REPO))
    from reconciler import desired as desired_state
    from reconciler import plan, state

    store = state.open_store(f"sqlite:///{project / '.reconcile' / 'state.db'}", project="scale")
    start = time.perf_counter()
    desired = desired_state.load(
        desired_state.WorkingTree(project), environ=os.environ, fingerprint_key=store.fingerprint_key()
    )
    result = plan.diff(desired, store.read_all())
    elapsed = time.perf_counter() - start
    assert not result.has_changes, result.summary
    store.close()
    return elapsed


def time_parse(text: str) -> dict[str, float]:
    import ryml
    import yaml_rs

    timings = {}
    start = time.perf_counter()
    yaml.load(text, Loader=yaml.CSafeLoader)
    timings["pyyaml_c"] = time.perf_counter() - start
    start = time.perf_counter()
    yaml_rs.loads(text)
    timings["yaml_rs"] = time.perf_counter() - start
    data = text.encode()
    start = time.perf_counter()
    ryml.parse_in_arena(data)
    timings["rapidyaml"] = time.perf_counter() - start
    return timings


def compare(before: Path, sizes: list[int], repeat: int) -> None:
    """The no-op plan of ``before``'s tree and of this one, alternately; prints a Markdown table."""
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            projects = {}
            for label, repo in (("before", before), ("after", REPO)):
                projects[label] = (generate(Path(tmp) / label / "scale", n), repo)
                _, _, applied = cli(projects[label][0].parent, "apply", "--yes", repo=repo)
                assert applied.returncode == 0, applied.stderr[-2000:]
            samples: dict[str, list[tuple[float, float, int]]] = {"before": [], "after": []}
            for _ in range(repeat):
                for label, (path, repo) in projects.items():
                    wall, usage, done = run_reconcile(path.parent, "plan", "--detailed-exitcode", repo=repo)
                    assert done.returncode == 0, done.stdout[-500:] + done.stderr[-2000:]
                    samples[label].append((usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss))
            med = {
                label: [statistics.median(s[i] for s in runs) for i in range(3)]
                for label, runs in samples.items()
            }
            rows.append((n, med["before"], med["after"]))
    print(f"before = {before}, after = {REPO}; {repeat} plans each, alternating, medians")
    print()
    print(
        "| no-op plan | before: CPU | after: CPU | before: wall | after: wall | before: peak RSS | after: peak RSS |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n, b, a in rows:
        print(
            f"| {n:,} deployments | {b[0]:.3f} s | {a[0]:.3f} s | {b[1]:.3f} s | {a[1]:.3f} s "
            f"| {b[2] / 1024:.1f} MB | {a[2] / 1024:.1f} MB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, default=None, help="an earlier tree to compare the plan with")
    args = parser.parse_args()
    compiled(REPO)
    if args.before is not None:
        compiled(args.before.resolve())
        compare(args.before.resolve(), args.sizes, args.repeat)
        return
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp) / "scale"
            path = generate(project, n)
            size_mb = path.stat().st_size / 1e6
            apply_wall, _, applied = cli(project, "apply", "--yes")
            assert applied.returncode == 0, applied.stderr[-2000:]
            plan_walls, rsses = [], []
            for _ in range(args.repeat):
                wall, rss, done = cli(project, "plan", "--detailed-exitcode")
                assert done.returncode == 0, done.stdout[-500:] + done.stderr[-2000:]
                plan_walls.append(wall)
                rsses.append(rss)
            inproc = statistics.median(in_process_plan(project) for _ in range(args.repeat))
            parses = [time_parse(path.read_text()) for _ in range(args.repeat)]
            parse = {k: statistics.median(p[k] for p in parses) for k in parses[0]}
            text = path.read_text()
            path.write_text(text + "  - name: broken\n    entrypoint: flows/etl_0.py:etl_0\n    tags: 7\n")
            err_wall, _, err = cli(project, "validate")
            assert err.returncode == 1 and err.stderr.startswith("prefect.yaml:"), err.stderr[-500:]
            rows.append(
                {
                    "deployments": n,
                    "file_mb": round(size_mb, 2),
                    "apply_new_s": round(apply_wall, 2),
                    "plan_cli_s": round(statistics.median(plan_walls), 3),
                    "plan_in_process_s": round(inproc, 3),
                    "pyyaml_c_parse_s": round(parse["pyyaml_c"], 3),
                    "yaml_rs_parse_s": round(parse["yaml_rs"], 3),
                    "rapidyaml_parse_s": round(parse["rapidyaml"], 3),
                    "plan_vs_pyyaml": round(parse["pyyaml_c"] / statistics.median(plan_walls), 2),
                    "peak_rss_mb": round(max(rsses) / 1024, 1),
                    "error_path_s": round(err_wall, 3),
                    "error_line": err.stderr.splitlines()[0][:80],
                }
            )
    print(json.dumps(rows, indent=2))
    print()
    print(
        "| deployments | file | apply (new) | no-op plan (CLI) | plan in-process | PyYAML C parse "
        "| yaml-rs parse | rapidyaml parse | PyYAML parse / plan | peak RSS | error path |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['deployments']:,} | {r['file_mb']} MB | {r['apply_new_s']} s | {r['plan_cli_s']} s "
            f"| {r['plan_in_process_s']} s | {r['pyyaml_c_parse_s']} s | {r['yaml_rs_parse_s']} s "
            f"| {r['rapidyaml_parse_s']} s | {r['plan_vs_pyyaml']}x | {r['peak_rss_mb']} MB "
            f"| {r['error_path_s']} s |"
        )


if __name__ == "__main__":
    main()
