from prefect import flow


@flow
def react(key: str = ""):
    return None
