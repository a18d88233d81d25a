"""``reconcile --watch`` end to end: a real watcher process, real saves, real applies and runs.

Each test starts the watcher on a throwaway project with `process` pools and tiny flows, edits files
the way an editor does, and checks what the store says (``state list``, ``history``, ``runs``) from
another process. Waits are bounded: watchfiles reports a save in ~15 ms, a burst ends 0.4 s after its
last save, a tiny run lasts ~0.1 s.
"""

from __future__ import annotations

import signal
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.state import RunState
from tests.helpers import make_project, run_cli
from tests.watch.watcher import StoreView, Watcher, cli_json, kill_runs, run_pids, save

FLOWS = {
    "flows/hello.py": '''
        def hello(name: str = "world") -> str:
            """Say hello."""
            print(f"hello {name}", flush=True)
            return name
    ''',
    "flows/nap.py": '''
        import time


        def nap(seconds: float = 2.0) -> None:
            """Sleep a little."""
            time.sleep(seconds)
    ''',
}

PROJECT = """
    name: watched
    work_pools:
      - name: local
        type: process
    deployments:
      - name: greet
        entrypoint: flows/hello.py:hello
        parameters: {name: world}
        work_pool: {name: local}
        run_on:
          - watch: {paths: ["data/**"]}
      - name: nap
        entrypoint: flows/nap.py:nap
        parameters: {seconds: 2}
        work_pool: {name: local}
        run_on:
          - watch: {paths: ["naps/*.txt"]}
"""

Start = Callable[..., Watcher]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj", PROJECT, FLOWS)


@pytest.fixture
def start(project: Path) -> Iterator[Start]:
    """Start watchers on ``project``; teardown stops each watcher and every run process, by pid."""
    started: list[Watcher] = []

    def _start(*args: str) -> Watcher:
        watcher = Watcher(project, *args)
        started.append(watcher)
        watcher.expect(r"^Watching ", timeout=20)
        return watcher

    yield _start
    for watcher in started:
        watcher.kill()
    kill_runs(project)


@pytest.fixture
def view(project: Path) -> StoreView:
    return StoreView(project, "watched")


def cli_versions(root: Path) -> dict[str, int]:
    return {o["address"]: o["version"] for o in cli_json(root, "state", "list")["objects"]}


def test_save_plans_and_applies_and_an_invalid_save_keeps_the_last_good_state(
    project: Path, start: Start, view: StoreView
) -> None:
    w = start("--watch")
    assert "Apply complete: 3 created." in w.output
    applied = view.versions()
    assert set(applied) == {"work_pool.local", "deployment.hello/greet", "deployment.nap/nap"}

    good = (project / "prefect.yaml").read_text()
    save(project / "prefect.yaml", good.replace("{name: world}", "{name: [world"))  # mid-edit: broken YAML
    w.expect(r"^prefect\.yaml:\d+:\d+: invalid YAML")
    w.expect(r"^prefect\.yaml is invalid \(1 problem\); keeping the last good state$")
    typo = good.replace("{name: local}", "{name: lcoal}", 1)  # mid-edit: a pool that does not exist
    save(project / "prefect.yaml", typo)
    w.expect(r"^prefect\.yaml:\d+:\d+: unknown work pool 'lcoal' \(did you mean 'local'\?\)")
    w.expect(r"is invalid \(1 problem\); keeping the last good state")
    assert view.versions() == applied
    assert len(view.history()) == 1

    save(project / "prefect.yaml", good.replace("{name: world}", "{name: there}"))
    w.expect(r"^\s+~ deployment\.hello/greet$")
    w.expect(r'~ parameters\.name: "world" -> "there"')
    w.expect(r"^Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 2 unchanged\.$")
    w.expect(r"^Apply complete: 1 updated\.$")

    # the flow name and description come from the entrypoint's source: editing it re-plans too
    hello = project / "flows/hello.py"
    save(hello, hello.read_text().replace('"""Say hello."""', '"""Say hello, politely."""'))
    w.expect(r"^\[\d\d:\d\d:\d\d\] flows/hello\.py changed: planning$")
    w.expect(r'~ description: "Say hello\." -> "Say hello, politely\."')
    w.expect(r"^Apply complete: 1 updated\.$")

    after = cli_versions(project)
    assert after["deployment.hello/greet"] == applied["deployment.hello/greet"] + 2
    assert after["deployment.nap/nap"] == applied["deployment.nap/nap"]
    assert [h["changes"] for h in cli_json(project, "history")][:2] == [["update deployment.hello/greet"]] * 2
    assert w.stop(signal.SIGTERM) == 0
    assert "Traceback" not in w.output


def test_a_burst_of_20_saves_launches_one_run(project: Path, start: Start, view: StoreView) -> None:
    w = start("--watch")
    data = project / "data" / "in.csv"
    for i in range(20):  # 20 saves, 15 ms apart: watchfiles sees many batches, the burst is one
        save(data, f"row,{i}\n")
        time.sleep(0.015)
    w.expect(r"^\[\d\d:\d\d:\d\d\] data/in\.csv changed: a run of hello/greet is queued$")
    launched = w.expect(r"^Launched run (\S+) of hello/greet \(watch: data/in\.csv\): ")
    w.absent(r"Launched run|queued", within=1.0)  # nothing more from that burst
    listed = cli_json(project, "runs")
    assert [(r["id"], r["deployment"], r["reason"]) for r in listed] == [
        (launched.group(1), "hello/greet", "watch: data/in.csv")
    ]

    # editor scratch files and paths outside the rules launch nothing
    for scratch in ("data/.in.csv.swp", "data/4913", "data/in.csv~", "data/.#in.csv", "other/in.csv"):
        save(project / scratch, "x")
    (project / "data" / "4913").unlink()
    w.absent(r"Launched run|queued|planning", within=1.0)

    save(data, "row,next\n")  # a new burst: a new run
    w.expect(r"^Launched run \S+ of hello/greet \(watch: data/in\.csv\): ")
    assert len(view.runs()) == 2
    assert w.stop() == 0


def test_a_burst_that_changes_the_file_and_a_watched_path_applies_before_it_launches(
    project: Path, start: Start, view: StoreView
) -> None:
    w = start("watch")  # the subcommand form
    save(project / "data" / "in.csv", "row\n")
    text = (project / "prefect.yaml").read_text()
    save(project / "prefect.yaml", text.replace("{name: world}", "{name: new}"))
    w.expect(r"^Apply complete: 1 updated\.$")
    w.expect(r"^Launched run \S+ of hello/greet \(watch: data/in\.csv\): ")
    (run,) = view.runs()
    assert run.parameters == {"name": "new"}  # the run launched what was just applied
    assert w.stop() == 0


def test_a_run_still_going_is_not_started_twice(project: Path, start: Start, view: StoreView) -> None:
    w = start("--watch")
    save(project / "naps" / "a.txt", "1")
    first = w.expect(r"^Launched run (\S+) of nap/nap \(watch: naps/a\.txt\): ").group(1)
    save(project / "naps" / "b.txt", "2")
    w.expect(rf"^Run {first} of nap/nap is still (PENDING|RUNNING): the next run starts when it ends")
    save(project / "naps" / "c.txt", "3")  # a third burst while the first still runs: still one queued
    second = w.expect(r"^Launched run (\S+) of nap/nap \(watch: naps/c\.txt\): ", timeout=10).group(1)
    runs = {r.id: r for r in view.runs()}
    assert set(runs) == {first, second}
    assert runs[first].state is RunState.COMPLETED
    assert runs[first].ended_at is not None and runs[second].created_at is not None
    assert runs[second].created_at >= runs[first].ended_at
    assert w.stop() == 0


def test_allow_overlap_and_ctrl_c_leaves_runs_running(project: Path, start: Start, view: StoreView) -> None:
    w = start("watch", "--allow-overlap")
    save(project / "naps" / "a.txt", "1")
    first = w.expect(r"^Launched run (\S+) of nap/nap \(watch: naps/a\.txt\): ").group(1)
    save(project / "naps" / "b.txt", "2")
    second = w.expect(r"^Launched run (\S+) of nap/nap \(watch: naps/b\.txt\): ").group(1)
    save(project / "data" / "in.csv", "queued, never launched")
    w.expect(r"a run of hello/greet is queued")
    assert w.stop(signal.SIGINT) == 0  # within the burst window: the greet run is not launched
    w.expect(r"^Not launched: a run of hello/greet \(watch: data/in\.csv\)$")
    w.expect(r"^Runs still in flight \(left running\):$")
    left = {w.expect(r"^  (\S+)  nap/nap  (PENDING|RUNNING)  process:").group(1) for _ in range(2)}
    assert left == {first, second}
    assert len(run_pids(project)) == 2  # the runs outlive the watcher
    assert {r.id for r in view.runs()} == {first, second}


def test_plan_only_never_writes(project: Path, start: Start, view: StoreView) -> None:
    w = start("--watch", "--plan-only")
    assert "Plan: 3 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged." in w.output
    assert "Not applied (--plan-only)." in w.output
    save(project / "prefect.yaml", (project / "prefect.yaml").read_text().replace("seconds: 2", "seconds: 3"))
    w.expect(r"^Plan: 3 to create, ")
    w.expect(r"^Not applied \(--plan-only\)\.$")
    save(project / "data" / "in.csv", "row\n")
    w.expect(r"^Would launch a run of hello/greet \(watch: data/in\.csv\); not launched \(--plan-only\)\.$")
    assert w.stop(signal.SIGTERM) == 0
    assert cli_json(project, "state", "list")["objects"] == []
    assert view.history() == []
    assert view.runs() == []


def test_sandbox_creates_and_runs_only_prefixed_objects(tmp_path: Path) -> None:
    blocks = """
        blocks:
          - type: aws-credentials
            name: shared
            data: {region_name: us-east-1}
    """
    project = make_project(tmp_path / "proj", textwrap.dedent(PROJECT) + textwrap.dedent(blocks), FLOWS)
    assert run_cli("-C", str(project), "apply", "--yes").returncode == 0  # the shared objects
    view = StoreView(project, "watched")
    shared = view.versions()
    w = Watcher(project, "--watch", "--sandbox", "dev")
    try:
        w.expect(r"^Watching ", timeout=20)
        assert "Apply complete: 3 created." in w.output
        assert "+ deployment.hello/dev-greet" in w.output
        mine = {a: v for a, v in view.versions().items() if a not in shared}
        assert set(mine) == {"work_pool.dev-local", "deployment.hello/dev-greet", "deployment.nap/dev-nap"}

        save(project / "data" / "in.csv", "row\n")
        w.expect(r"^Launched run \S+ of hello/dev-greet \(watch: data/in\.csv\): ")
        (run,) = view.runs()
        assert run.pool == "dev-local"

        text = (project / "prefect.yaml").read_text()
        save(project / "prefect.yaml", text.replace("{name: world}", "{name: mine}"))
        w.expect(r"^\s+~ deployment\.hello/dev-greet$")
        w.expect(r"^Apply complete: 1 updated\.$")

        save(project / "prefect.yaml", text.replace("us-east-1", "eu-west-1"))  # a shared block
        w.expect(r"^\s+~ block\.aws-credentials/shared$")
        w.expect(r"^Not applied: the sandbox never writes shared objects \(update block\.aws-credentials/sh")
        assert w.stop(signal.SIGTERM) == 0
    finally:
        w.kill()
        kill_runs(project)
    now = view.versions()
    assert {a: now[a] for a in shared} == shared  # nothing shared was touched
    assert "work_pool.local" in shared and "work_pool.dev-local" in now


def test_bad_usage_is_one_error_line(project: Path) -> None:
    result = run_cli("-C", str(project), "--watch", "--sandbox", "a/b")
    assert result.returncode == 1
    assert result.stderr.startswith("error: sandbox prefix 'a/b' must be")
    assert result.stderr.count("\n") == 1
    result = run_cli("-C", str(project), "--watch", "plan")
    assert result.returncode == 1
    assert "--watch cannot be combined with a command" in result.stderr
    assert not (project / ".reconcile").exists()


def test_apply_changed_rules_launch_after_each_watch_apply(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "proj",
        """
        name: watched
        work_pools: [{name: local, type: process}]
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            parameters: {name: world}
            work_pool: {name: local}
            run_on: [{apply: changed}]
        """,
        {"flows/hello.py": FLOWS["flows/hello.py"]},
    )
    w = Watcher(project, "--watch")
    try:
        w.expect(r"^Launched run \S+ of hello/greet \(apply: changed\): ", timeout=20)
        w.expect(r"^Watching ")
        save(project / "prefect.yaml", (project / "prefect.yaml").read_text().replace("world", "again"))
        w.expect(r"^Apply complete: 1 updated\.$")
        w.expect(r"^Launched run \S+ of hello/greet \(apply: changed\): ")
        assert [r.parameters["name"] for r in StoreView(project, "watched").runs()] == ["world", "again"]
        assert w.stop() == 0
    finally:
        w.kill()
        kill_runs(project)
