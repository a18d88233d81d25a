from prefect import flow


@flow
def sales(env: str = "dev"):
    return None
