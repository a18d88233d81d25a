from prefect import flow


@flow
def n() -> None:
    return None
