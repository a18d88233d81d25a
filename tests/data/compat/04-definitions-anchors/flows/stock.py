from prefect import flow


@flow
def stock(env: str = "dev"):
    return None
