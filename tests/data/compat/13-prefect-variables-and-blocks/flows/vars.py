from prefect import flow


@flow
def with_vars(threshold: str = "0"):
    return None
