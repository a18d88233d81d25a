import prefect as pf
from prefect import flow
from prefect import flow as prefect_flow

TEAM = "billing"
FLOW_NAME = "invoices-daily"
PREFIX: str = TEAM + "-"


@flow(name=FLOW_NAME)
def by_constant() -> None:
    return None


@flow(name=f"{TEAM}-reconcile", log_prints=True)
def by_fstring() -> None:
    return None


@flow(name=PREFIX + "refunds")
def by_concatenation() -> None:
    return None


@prefect_flow(name="aliased-decorator")
def by_alias() -> None:
    return None


@pf.flow(name=TEAM + "-module-alias")
def by_module_alias() -> None:
    return None
