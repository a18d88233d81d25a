"""``state list`` and ``history``."""

from __future__ import annotations

import click
import orjson

from reconciler.cli.app import App, pass_app


@click.group("state")
def state_group() -> None:
    """Inspect the stored state."""


@state_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def state_list_cmd(app: App, as_json: bool) -> int:
    """Objects this project manages, with their versions."""
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
            f"{s.get(k, 0)} {k}" for k in ("create", "update", "replace", "delete") if s.get(k)
        )
        commit = f" commit {e.commit[:12]}" if e.commit else ""
        app.out(
            f"#{e.serial:<5} {e.applied_at:%Y-%m-%d %H:%M:%S} {e.user}@{e.host}{commit}: {counts or 'no-op'}"
        )
    return 0


COMMANDS = [state_group, history_cmd]
