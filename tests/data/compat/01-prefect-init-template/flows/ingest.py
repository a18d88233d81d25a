from prefect import flow


@flow
def ingest(day: str = "today"):
    return None
