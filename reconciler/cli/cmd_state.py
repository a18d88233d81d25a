"""``state list``, ``state mv-project`` and ``history``.

These read the state of the project named by the file's ``name:`` line even when the file does not
parse (``desired.project_of`` reads that line by itself), and never show an empty project as if its
state were lost: a project that holds nothing in a store that holds other projects is an error that
lists them (pass ``--project``, or move a renamed project's state with ``state mv-project``).
"""

from __future__ import annotations

import click
import orjson

from reconciler.cli.app import App, pass_app
from reconciler.errors import UsageError
from reconciler.state import HoldsProjects


def require_state(app: App) -> None:
    """Refuse to show an empty view of a project that holds nothing while the store holds others."""
    store = app.store()
    if not isinstance(store, HoldsProjects):
        return
    held = store.projects()
    project = store.project
    if not held or project in held:  # held: objects, history or runs
        return
    others = sorted(((n, name) for name, n in held.items() if name != project), key=lambda x: (-x[0], x[1]))
    listed = ", ".join(f"{name!r} ({n} object{'' if n == 1 else 's'})" for n, name in others[:10])
    if len(others) > 10:
        listed += f" and {len(others) - 10} more"
    hint = (
        f"pass --project NAME, or if the project was renamed move its state: "
        f"`reconcile state mv-project OLD {project}`"
    )
    raise UsageError(f"project {project!r} has no objects in {store.url}, which holds {listed}: {hint}")


@click.group("state")
def state_group() -> None:
    """Inspect the stored state."""


@state_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def state_list_cmd(app: App, as_json: bool) -> int:
    """Objects this project manages, with their versions."""
    require_state(app)
    live = app.live()
    objects = sorted(live.objects.values(), key=lambda o: (o.address.kind.rank, o.address.name))
    if as_json:
        doc = {
            "url": live.url,
            "serial": live.serial,
            "last_commit": live.last_commit,
            "objects": [
                {
                    "address": str(o.address),
                    "version": o.version,
                    "updated_at": o.updated_at.isoformat() if o.updated_at else None,
                }
                for o in objects
            ],
        }
        app.out(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return 0
    app.out(f"{live.url} (serial {live.serial}, project {app.project()!r})")
    for obj in objects:
        when = obj.updated_at.strftime("%Y-%m-%d %H:%M:%S") if obj.updated_at else ""
        app.out(f"  {obj.address!s:60}  v{obj.version:<4} {when}")
    if not objects:
        app.out("  (empty)")
    return 0


@click.command("history")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@pass_app
def history_cmd(app: App, as_json: bool, limit: int) -> int:
    """Past applies: when, who, from which commit, what changed."""
    require_state(app)
    entries = app.store().history(limit=limit)
    if as_json:
        doc = [
            {
                "serial": e.serial,
                "applied_at": e.applied_at.isoformat(),
                "user": e.user,
                "host": e.host,
                "commit": e.commit,
                "summary": dict(e.summary),
                "changes": list(e.changes),
            }
            for e in entries
        ]
        app.out(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return 0
    if not entries:
        app.out("No applies yet.")
    for e in entries:
        s = e.summary
        counts = ", ".join(
            f"{s.get(k, 0)} {k}" for k in ("create", "adopt", "update", "replace", "delete") if s.get(k)
        )
        commit = f" commit {e.commit[:12]}" if e.commit else ""
        app.out(
            f"#{e.serial:<5} {e.applied_at:%Y-%m-%d %H:%M:%S} {e.user}@{e.host}{commit}: {counts or 'no-op'}"
        )
    return 0


@state_group.command("mv-project")
@click.argument("old")
@click.argument("new")
@pass_app
def mv_project_cmd(app: App, old: str, new: str) -> int:
    """Give project OLD's state (objects, history, runs) to NEW, e.g. after renaming the project.

    NEW must hold nothing yet. Run it once, then `reconcile plan` shows the renamed project unchanged.
    """
    store = app.store(new)
    if not isinstance(store, HoldsProjects):
        raise UsageError(
            f"the store at {store.url} cannot move a project's state; declare the objects under the old "
            f"name (`name: {old}`) or import them into the new project"
        )
    moved = store.move_project(old, new)
    app.err(f"Moved project {old!r} to {new!r} in {store.url}: {moved} object{'' if moved == 1 else 's'}.")
    return 0


COMMANDS = [state_group, history_cmd]
