"""What on a Prefect server is the reconciler's own bookkeeping, never a user's object.

The store keeps what the server cannot say in objects of the server's own kinds: the inventory
(Variables named ``reconciler__<project>…``: head, shards, the apply lease), ownership records
(Variables named ``reconciler_owner__…``), and ``serve``'s admission (``admission.py``): the global
concurrency limits it admits runs through (``reconcile-admission:…``) and the Variables that make
one release of a slot win (``reconcile_admission_release_…``). They are objects of the kinds a file may now declare
(``variables:``, ``concurrency_limits:``), so one predicate, :func:`is_bookkeeping`, decides that they
are never shown, read as a project's objects, imported, adopted or pruned, and that a file naming
one is refused before anything is written.
"""

from __future__ import annotations

from reconciler.objects import Address, Kind
from reconciler.state.prefect.admission import PREFIX as ADMISSION_PREFIX
from reconciler.state.prefect.admission import RELEASE_PREFIX
from reconciler.state.prefect.inventory import VARIABLE_PREFIX
from reconciler.state.prefect.owners import PREFIX as OWNER_PREFIX

_VARIABLE_PREFIXES = (VARIABLE_PREFIX, OWNER_PREFIX, RELEASE_PREFIX)


def is_bookkeeping(kind: Kind, name: str) -> bool:
    """Whether the server object of ``kind`` named ``name`` is the reconciler's own bookkeeping.

    Decided by name alone, whatever the object's tags say: a lease or a record written by an older
    version (or stripped of its tags in the UI) is still ours and still never a user's object."""
    if kind is Kind.VARIABLE:
        return name.startswith(_VARIABLE_PREFIXES)
    if kind is Kind.CONCURRENCY_LIMIT:
        return name.startswith(ADMISSION_PREFIX)
    return False


def is_bookkeeping_address(address: Address) -> bool:
    """:func:`is_bookkeeping` for an address (``variable.reconciler__x``)."""
    return is_bookkeeping(address.kind, address.name)


def refusal(address: Address) -> str:
    """Why a file may not declare ``address`` (a name the reconciler keeps for itself)."""
    prefix = ADMISSION_PREFIX if address.kind is Kind.CONCURRENCY_LIMIT else ", ".join(_VARIABLE_PREFIXES)
    return (
        f"{address}: {address.kind.label} names starting with {prefix} are the reconciler's own "
        "bookkeeping on the Prefect server: choose another name"
    )
