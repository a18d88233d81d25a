"""The Prefect Store: a Prefect server (OSS or Cloud) holds the project's state and runs its flow runs.

The objects are the server's own work pools, deployments (with their schedules), block documents,
work queues, Variables, global concurrency limits and automations, where the UI shows them; what
the server cannot say (ownership, versions, the hash of what we last wrote, secret fingerprints) is
the inventory in Prefect Variables (``inventory.py``). Ownership is also visible on the server: our
deployments and inventory Variables carry the tag ``managed-by:prefect-reconciler/<project>``; every
other kind has an ownership record (``owners.py``), and prune only ever touches inventoried objects.
The tool's own bookkeeping on the server is never a project's object (``bookkeeping.py``).

``read_all`` is a handful of paged filter calls whatever the number of objects; a write sends only
what differs from the server's object (nothing when nothing differs) and then records one inventory
shard. Every inventory update happens under the server-side lease (``lock.py``): ``write`` and
``delete`` called without it take it for themselves, so the shard they read is still current when
they write it back. ``requests_made`` counts every HTTP request (``requests_by_method`` splits it).
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from graphlib import TopologicalSorter
from typing import Any

import httpx

from reconciler.desired import variables as desired_variables
from reconciler.errors import StaleVersion, StateError
from reconciler.objects import Address, Claim, Kind, LiveState, Resource, StoredObject, keep_unset
from reconciler.state.base import Admission, HistoryEntry, JobRuntime, Limit, LockInfo, RunRecord, WaveWrite
from reconciler.state.prefect import history as prefect_history
from reconciler.state.prefect import lock as prefect_lock
from reconciler.state.prefect import runs as prefect_runs
from reconciler.state.prefect import unmanaged, values, workspace, workspace_writers
from reconciler.state.prefect import writers as prefect_writers
from reconciler.state.prefect.bookkeeping import is_bookkeeping_address, refusal
from reconciler.state.prefect.client import PrefectClient, api_url_from
from reconciler.state.prefect.inventory import (
    Entry,
    Head,
    Names,
    Shard,
    apply_overlay,
    compute_overlay,
    digest,
    shard_index,
)
from reconciler.state.prefect.objects import ServerObjects
from reconciler.state.prefect.owners import RECORDED, OwnerRecords
from reconciler.state.prefect.variables import InventoryVariables

log = logging.getLogger(__name__)
_KINDS = {kind.value: kind for kind in Kind}
_MARK = "managed-by:prefect-reconciler/"  # a project's tag on its deployments and Variables


class PrefectStore:
    """The state of one ``project`` on the Prefect server at ``url`` (``prefect+http(s)://HOST/api``)."""

    job_runtime = JobRuntime.PREFECT  # jobs run Prefect's engine, which reports to this server

    def __init__(
        self,
        url: str,
        *,
        project: str,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        lease_policy: prefect_lock.LeasePolicy = prefect_lock.DEFAULT_POLICY,
        write_lock_timeout: float = 60.0,
    ) -> None:
        if not project:
            raise StateError("a project name is required")
        self.project = project
        self._environ = dict(os.environ) if environ is None else dict(environ)
        self.api_url = api_url_from(url, self._environ)
        self._client = PrefectClient(self.api_url, environ=self._environ, transport=transport)
        self.url = self._client.display
        self._names = Names(project)
        self._objects = ServerObjects(self._client, marker=self._names.marker)
        self._owners = OwnerRecords(self._client, project=project, marker=self._names.marker)
        self._unmanaged: set[Address] = set()  # found by claims(): exists, managed by no project
        self._looked_up: set[Address] = set()  # asked about by claims(): what exists there is known
        self._lease_policy = lease_policy
        self._write_lock_timeout = write_lock_timeout
        self._mutex = threading.RLock()
        self._held = 0  # depth of the lease this store holds (lock() and self-locked writes)
        self._inventory = InventoryVariables(self._client, self._names)
        self._runs = prefect_runs.FlowRuns(
            self._client,
            self._objects,
            project=project,
            key=self._head_key,
            parameter_secrets=self._parameter_secrets,
        )
        self._entries: dict[Address, Entry] = {}
        self._live: dict[Address, Mapping[str, Any]] = {}

    def __repr__(self) -> str:
        return f"PrefectStore({self.url!r}, project={self.project!r})"

    @property
    def requests_made(self) -> int:
        """HTTP requests this store sent (retries included)."""
        return self._client.requests_made

    @property
    def requests_by_method(self) -> dict[str, int]:
        return dict(self._client.by_method)

    @property
    def requests_retried(self) -> int:
        return self._client.retried

    # -- objects -------------------------------------------------------------------------------------

    def read_all(self) -> LiveState:
        head, shards = self._inventory.read()
        serial = (head.base if head else 0) + sum(s.writes for s in shards)
        entries = {_address(a): e for s in shards for a, e in s.entries.items()}
        self._entries = dict(entries)
        self._objects.fresh = False
        objects: dict[Address, StoredObject] = {}
        if entries:
            key = self.fingerprint_key()
            for address, (server, raw) in self._objects.read(entries).items():
                objects[address] = self._stored(key, address, entries[address], server, raw)
        self._objects.fresh = self._held > 0
        if self._held:  # an apply: pools and blocks managed before ownership records get theirs
            self._backfill_owners([a for a in objects if a.kind in RECORDED])
        self._live = {a: o.resource.body for a, o in objects.items()}
        return LiveState(
            url=self.url, serial=serial, objects=objects, last_commit=head.last_commit if head else None
        )

    def fingerprint_key(self) -> bytes:
        return bytes.fromhex(self._inventory.head(create=True).key)  # type: ignore[union-attr]

    def lineage(self) -> str | None:
        head = self._inventory.head(create=False)  # reading never writes: no head yet, no lineage
        return str(head.lineage) if head is not None else None

    def claims(self, addresses: Collection[Address]) -> dict[Address, Claim]:
        """What exists on the server at ``addresses`` outside this project's inventory: deployments
        with another project's tag, pools and blocks with another project's ownership record (both an
        error at plan), and objects no project manages (adopted with consent)."""
        reserved = sorted(str(a) for a in addresses if is_bookkeeping_address(a))
        if reserved:
            raise StateError(refusal(Address.parse(reserved[0])))
        wanted = [a for a in addresses if a not in self._entries]
        found = self._objects.claims(wanted, self._owners.owners(wanted))
        self._looked_up.update(wanted)
        self._unmanaged.difference_update(wanted)
        self._unmanaged.update(a for a, c in found.items() if c.owner is None)
        return {a: c for a, c in found.items() if c.owner != self.project}

    def write(self, resource: Resource, *, expected_version: int | None) -> int:
        version = self.write_wave([WaveWrite(resource.address, expected_version, resource)], parallelism=1)[0]
        assert version is not None
        return version

    def delete(self, address: Address, *, expected_version: int) -> None:
        self.write_wave([WaveWrite(address, expected_version)], parallelism=1)

    def write_wave(self, writes: Sequence[WaveWrite], *, parallelism: int) -> list[int | None]:
        """The server objects side by side (``parallelism`` at once), then each inventory shard they
        touch read and saved once: one write per changed object instead of three requests each."""
        with self._self_locked("write"):
            head = self._inventory.head(create=True)
            assert head is not None
            shards: dict[str, Shard] = {}
            entries: list[Entry | None] = []
            for item in writes:  # every version checked before anything is written
                shard = self._shard_of(head, item.address, shards)
                entry = shard.entries.get(str(item.address))
                entries.append(entry)
                actual = entry.version if entry else None
                if (
                    entry is not None
                    and item.expected_version is None
                    and not self._still_there(item.address)
                ):
                    actual = None  # deleted (or untagged) on the server: a create makes it ours again
                if actual != item.expected_version:
                    raise StaleVersion(str(item.address), item.expected_version, actual)
            creates = [w.address for w, e in zip(writes, entries, strict=True) if w.resource and e is None]
            unknown = [a for a in creates if a not in self._looked_up]
            foreign = {a: c.owner for a, c in self.claims(unknown).items() if c.owner} if unknown else {}
            if foreign:  # a saved plan made before another project took them: nothing is written
                listed = ", ".join(f"{a} (project {o!r})" for a, o in sorted(foreign.items()))
                raise StateError(f"managed by another project, nothing was written: {listed}")
            for address in creates:  # pools and blocks: recorded as ours, or refused
                self._owners.claim(address)
            key = bytes.fromhex(head.key)
            outcomes: dict[int, Entry | BaseException | None] = {}

            def run(job: list[int]) -> None:
                for index in job:  # a job's writes one after another; a failure stops the rest
                    try:
                        outcomes[index] = self._write_one(key, writes[index], entries[index])
                    except BaseException as exc:  # re-raised below, after what succeeded is recorded
                        outcomes[index] = exc
                        return

            jobs = sequenced(writes)
            with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(jobs)))) as pool:
                for future in [pool.submit(run, job) for job in jobs]:
                    future.result()
            versions: list[int | None] = []
            failure: BaseException | None = None
            recorded: list[tuple[WaveWrite, Entry | None]] = []
            for index, item in enumerate(writes):
                new = outcomes.get(index)
                if index not in outcomes:
                    continue  # not attempted: an earlier write of its job failed
                if isinstance(new, BaseException):
                    failure = failure or new
                    continue
                recorded.append((item, new))
                versions.append(new.version if new is not None else None)
            self._record(head, shards, recorded)
            if failure is not None:
                raise failure
            return versions

    def _with_variables(self, raw: dict[str, Any], *, what: str) -> dict[str, Any]:
        """``raw`` with ``{{ prefect.variables.NAME }}`` replaced by the server's values, as
        ``prefect deploy`` does when it deploys: Prefect's engine runs a flow with the parameters the
        server holds (and refuses a placeholder where the parameter schema wants a number). The
        inventory's overlay keeps the file's placeholder, so the plan reads the file's text back
        while the server still holds the value written (a run this tool creates reads the variable
        anew; see launch.runs.create)."""
        wanted = desired_variables.names(raw)
        if not wanted:
            return raw
        found: dict[str, Any] = {}
        for name in wanted:
            response = self._client.get(f"/variables/name/{workspace.segment(name)}", allow=(404,))
            if response.status_code == 404:
                raise StateError(f"{what} reads variable {name!r}, which is not on the Prefect server")
            found[name] = response.json().get("value")
        return dict(desired_variables.resolve(raw, found.__getitem__))

    def _shard_of(self, head: Head, address: Address, shards: dict[str, Shard]) -> Shard:
        """The shard of ``address``, read from the server once per wave."""
        name = self._names.shard(head.generation, shard_index(str(address), head.shards))
        if name not in shards:
            shards[name] = self._inventory.shard(head, address)
        return shards[name]

    def _write_one(self, key: bytes, item: WaveWrite, entry: Entry | None) -> Entry | None:
        """Write one server object; the inventory entry that records it (None after a delete)."""
        address = item.address
        if item.resource is None:
            if address.kind in workspace_writers.KINDS:
                workspace_writers.delete(self._objects, address, entry)
            else:
                prefect_writers.delete(self._objects, address, entry)
            self._owners.release(address)
            return None
        body = item.resource.body
        raw, secret_values = values.resolve(body, self._environ, what=str(address))
        if address.kind is Kind.DEPLOYMENT:
            raw = self._with_variables(raw, what=str(address))
        existing = self._adopting(address, entry)
        if existing is not None:  # never clobber what the file leaves unset on an adopted object
            raw = keep_unset(existing, raw)
            if address.kind is Kind.WORK_QUEUE and body.get("priority") is None:
                raw = {**raw, "priority": None}  # not managed: never written, never read back
        server, mapped, names, originals = self._write_object(address, raw, entry, secret_values)
        records = values.secret_records(key, body, mapped)
        readable = values.restore_secrets(key, mapped, records)
        new = Entry(
            version=(item.expected_version or 0) + 1,
            hash=digest(key, readable),
            depends=tuple(str(a) for a in item.resource.depends_on),
            secrets=records,
            overlay=compute_overlay(key, body, readable),
            names=names,
            originals=originals,
            triggers=bool(body.get("triggers")) if address.kind is Kind.DEPLOYMENT else False,
            adopted=existing is not None,
            id=str(server["id"]) if address.kind is Kind.AUTOMATION else None,
        )
        if new.overlay:
            log.debug("%s: kept by the server differently at %s", address, [o.path for o in new.overlay])
        return new

    def _record(
        self, head: Head, shards: dict[str, Shard], done: list[tuple[WaveWrite, Entry | None]]
    ) -> None:
        """Save what the wave wrote: each touched shard once. A shard that outgrows its Variable is
        resharded by ``save_shard``; what is left to save is then recorded in the new layout."""
        by_shard: dict[str, list[tuple[WaveWrite, Entry | None]]] = {}
        for item, new in done:
            name = self._names.shard(head.generation, shard_index(str(item.address), head.shards))
            by_shard.setdefault(name, []).append((item, new))
            if new is None:
                self._entries.pop(item.address, None)
                self._live.pop(item.address, None)
            else:
                assert item.resource is not None
                self._entries[item.address] = new
                self._live[item.address] = item.resource.body
        while by_shard:
            name = min(by_shard)
            _put(shards[name], by_shard.pop(name))
            self._inventory.save_shard(head, shards[name])
            current = self._inventory.head(create=True)
            assert current is not None
            if current.generation != head.generation:  # resharded: the rest goes to the new layout
                head, shards = current, {}
                rest = [pair for pairs in by_shard.values() for pair in pairs]
                by_shard = {}
                for item, new in rest:
                    shard = self._shard_of(head, item.address, shards)
                    by_shard.setdefault(shard.name, []).append((item, new))

    def set_last_commit(self, commit: str | None) -> None:
        with self._self_locked("record the commit"):  # the head also holds the shard layout
            head = self._inventory.head(create=True, fresh=True)
            assert head is not None
            if head.last_commit != commit:
                self._inventory.save_head(head.evolve(last_commit=commit))

    # -- lock ----------------------------------------------------------------------------------------

    @contextmanager
    def lock(self, *, timeout: float, info: LockInfo) -> Iterator[None]:
        """The project's apply lease on the server (see ``lock.py``)."""
        with prefect_lock.hold(
            self._client, name=self._names.lock, info=info, timeout=timeout, policy=self._lease_policy
        ):
            self._enter_lease()
            try:
                yield
            finally:
                self._leave_lease()

    @contextmanager
    def _self_locked(self, purpose: str) -> Iterator[None]:
        """Hold the lease for one write unless this store already holds it."""
        with self._mutex:
            if self._held:
                yield
                return
            info = _who(purpose)
            with prefect_lock.hold(
                self._client,
                name=self._names.lock,
                info=info,
                timeout=self._write_lock_timeout,
                policy=self._lease_policy,
            ):
                self._enter_lease()
                try:
                    yield
                finally:
                    self._leave_lease()

    def _enter_lease(self) -> None:
        with self._mutex:
            self._held += 1
            self._inventory.forget_head()
            self._objects.fresh = False

    def _leave_lease(self) -> None:
        with self._mutex:
            self._held -= 1
            self._objects.fresh = False

    # -- history -------------------------------------------------------------------------------------

    def record_apply(self, entry: HistoryEntry) -> None:
        prefect_history.record(self._client, key=self._names.history_key, project=self.project, entry=entry)

    def history(self, *, limit: int = 50) -> list[HistoryEntry]:
        return prefect_history.read(self._client, key=self._names.history_key, limit=limit)

    # -- runs ----------------------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> RunRecord:
        return self._runs.create(run)

    def update_run(self, run: RunRecord) -> RunRecord:
        return self._runs.update(run)

    def claim_run(self, run: RunRecord, limits: Sequence[Limit], *, claimed: RunRecord) -> Admission:
        """Concurrency slots by lease on the server's global concurrency limits, then the PENDING
        proposal (``runs.FlowRuns.claim``; ``admission.py`` names the limits)."""
        return self._runs.claim(run, limits, claimed=claimed)

    def settle_runs(self, runs: Sequence[RunRecord]) -> None:
        self._runs.settle(runs)

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def list_runs(self, *, deployment: str | None = None, limit: int = 100) -> list[RunRecord]:
        return self._runs.list(deployment=deployment, limit=limit)

    def due_runs(self, pool: str, *, before: datetime, limit: int = 100) -> list[RunRecord]:
        """The server's scheduled runs of our deployments on ``pool`` that are due (for ``serve``)."""
        return self._runs.due(pool, before=before, limit=limit)

    def read_unmanaged(self) -> dict[Address, Mapping[str, Any]]:
        """Pools, deployments and blocks (of our block types), and the workspace kinds (``unmanaged``)
        on the server that no project of ours manages, as canonical bodies (for ``import``). Secret block fields read as Prefect shows them
        (``********``), never as values; deployments carrying another project's tag, and pools and
        blocks with another project's ownership record, are left out."""
        managed = {_address(a) for s in self._inventory.read()[1] for a in s.entries}
        found = self._objects.discover(exclude=managed)
        found.update(unmanaged.discover(self._client, exclude=managed))  # the workspace kinds
        owned = self._owners.owners(found)  # pools and blocks another project records as its own
        return {a: b for a, b in found.items() if a not in owned}

    def projects(self) -> dict[str, int]:
        """Every project with an inventory on this server (its head Variable), with how many objects
        it manages: one paged filter call over the reconciler's Variables."""
        criteria = {"variables": {"name": {"like_": "reconciler__"}}}
        found = list(self._client.paged("/variables/filter", criteria))
        heads: dict[str, Head] = {}
        for variable in found:
            for tag in variable.get("tags") or ():
                project = tag.removeprefix(_MARK)
                if tag.startswith(_MARK) and variable["name"] == Names(project).head:
                    heads[project] = Head.from_variable(variable)
        counts: dict[str, int] = {}
        for project, head in heads.items():
            names = Names(project)
            shards = {names.shard(head.generation, i) for i in range(head.shards)}
            counts[project] = sum(len(Shard.from_variable(v).entries) for v in found if v["name"] in shards)
        return dict(sorted(counts.items()))

    def move_project(self, old: str, new: str) -> int:
        """Not on a Prefect server: the project's name is in its Variables' names, its deployments' tags
        and its ownership records, which no single request renames."""
        raise StateError(
            f"a Prefect server cannot move project {old!r} to {new!r}: keep `name: {old}` in the file, "
            f"or point `--project {old}` at it"
        )

    def job_environment(self, run: RunRecord) -> dict[str, str]:
        """Prefect's own contract for the job: the API to report to, the run, and the credentials."""
        env = {"PREFECT_API_URL": self.api_url, "PREFECT__FLOW_RUN_ID": run.id}
        for name in ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"):
            if self._environ.get(name):
                env[name] = self._environ[name]
        return env

    def close(self) -> None:
        self._client.close()

    # -- objects (helpers) ---------------------------------------------------------------------------

    def _write_object(
        self, address: Address, raw: Mapping[str, Any], entry: Entry | None, secret_values: list[str]
    ) -> tuple[Any, Any, tuple[str, ...] | None, Any]:
        if address.kind is Kind.WORK_POOL:
            server, body, names, originals = prefect_writers.write_pool(
                self._objects, address.name, raw, secrets=secret_values
            )
            return server, body, names, originals
        if address.kind is Kind.DEPLOYMENT:
            live = self._live.get(address)
            server, body = prefect_writers.write_deployment(
                self._objects,
                address,
                raw,
                secrets=secret_values,
                live_triggers=live.get("triggers") if live is not None else None,
                had_triggers=bool(entry and entry.triggers),
            )
            return server, body, None, None
        if address.kind in workspace_writers.KINDS:
            server, body = workspace_writers.write(self._objects, address, raw, secrets=secret_values)
            names = workspace.managed_fields(raw) if address.kind is Kind.WORK_QUEUE else None
            return server, body, names, None
        server, body = prefect_writers.write_block(self._objects, address, raw, secrets=secret_values)
        return server, body, None, None

    def _stored(self, key: bytes, address: Address, entry: Entry, server: Any, raw: Any) -> StoredObject:
        readable = values.restore_secrets(key, raw, entry.secrets)
        drifted = digest(key, readable) != entry.hash
        body = apply_overlay(key, readable, entry.overlay)
        updated = str(server.get("updated") or "")
        by = server.get("updated_by") or {}
        return StoredObject(
            Resource(address, body, tuple(Address.parse(d) for d in entry.depends)),
            entry.version,
            updated_at=_when(updated),
            updated_by=str(by.get("display_value", "")) if isinstance(by, Mapping) else "",
            drifted_at=updated if drifted else None,
        )

    def _backfill_owners(self, addresses: list[Address]) -> None:
        """Record this project as the owner of its pools and blocks that have no record yet (one
        filter call when all have one). A record of another project's is left alone and logged."""
        if not addresses:
            return
        recorded = self._owners.owners(addresses)
        for address in addresses:
            owner = recorded.get(address)
            if owner is None:
                self._owners.claim(address)
            elif owner != self.project:
                log.warning("%s is recorded as managed by project %r too", address, owner)

    def _adopting(self, address: Address, entry: Entry | None) -> Any:
        """The raw body of the existing object a write takes over (a create over an object no project
        manages, found by :meth:`claims`) or keeps adopted (an adopted entry); None otherwise. Blocks
        are read again, with their secret values (claims saw only the UI's ``********``)."""
        if entry is not None:
            if not entry.adopted:
                return None
            self._objects.before_write(address)
        elif address not in self._unmanaged:
            return None
        elif address.kind is Kind.BLOCK:
            self._objects.current(address)
        mapped = self._objects.map(address, entry)
        return mapped[1] if mapped is not None else None

    def _still_there(self, address: Address) -> bool:
        """Whether an inventoried object is still on the server as read_all would show it."""
        return self._objects.visible(address, self._objects.current(address))

    def _head_key(self) -> bytes | None:
        head = self._inventory.head(create=False)
        return bytes.fromhex(head.key) if head else None

    def _parameter_secrets(self, deployment: str) -> dict[str, str]:
        entry = self._entries.get(Address(Kind.DEPLOYMENT, deployment))
        if entry is None:
            return {}
        return {
            str(s.path[1]): s.template
            for s in entry.secrets
            if len(s.path) == 2 and s.path[0] == "parameters"
        }


def sequenced(writes: Sequence[WaveWrite]) -> list[list[int]]:
    """A wave's writes (by index) as jobs that may run side by side; a job's writes run in order.

    Two kinds of write depend on each other inside one wave. A queue's priority: Prefect renumbers
    a pool's other queues when one takes a priority, so a pool's queues that set one are written
    lowest first (written in any other order, an earlier write bumps a later one). And automations
    that name each other: the one named is written before the one naming it, so its id exists."""
    jobs: list[list[int]] = []
    queues: dict[str, list[int]] = {}
    automations: dict[Address, int] = {}
    for index, item in enumerate(writes):
        body = item.resource.body if item.resource is not None else None
        if body is not None and item.address.kind is Kind.WORK_QUEUE and body.get("priority") is not None:
            queues.setdefault(str(body.get("pool")), []).append(index)
        elif body is not None and item.address.kind is Kind.AUTOMATION:
            automations[item.address] = index
        else:
            jobs.append([index])
    for indices in queues.values():
        jobs.append(sorted(indices, key=lambda i: _body(writes[i])["priority"]))
    if automations:
        graph = {
            address: [d for d in _depends(writes[i]) if d in automations]
            for address, i in automations.items()
        }
        linked = {a for a, deps in graph.items() if deps} | {d for deps in graph.values() for d in deps}
        jobs.extend([i] for a, i in automations.items() if a not in linked)
        if linked:
            order = TopologicalSorter({a: graph[a] for a in linked}).static_order()
            jobs.append([automations[a] for a in order])
    return jobs


def _body(item: WaveWrite) -> Mapping[str, Any]:
    assert item.resource is not None
    return item.resource.body


def _depends(item: WaveWrite) -> tuple[Address, ...]:
    assert item.resource is not None
    return item.resource.depends_on


def _put(shard: Shard, changes: list[tuple[WaveWrite, Entry | None]]) -> None:
    """Record a wave's writes in a shard: each write counts once toward the serial."""
    for item, new in changes:
        if new is None:
            shard.entries.pop(str(item.address), None)
        else:
            shard.entries[str(item.address)] = new
        shard.writes += 1


def _who(purpose: str) -> LockInfo:
    """This process, as the holder of a lease taken for one write made outside an apply."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER", "unknown")
    host = socket.gethostname()
    return LockInfo(holder=f"{user}@{host}", pid=os.getpid(), host=host, purpose=purpose)


def _address(text: str) -> Address:
    kind, _, name = text.partition(".")
    return Address(_KINDS[kind], name)


def _when(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
