from prefect import flow


@flow
def a():
    return None
