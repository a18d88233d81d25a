from prefect import flow

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
