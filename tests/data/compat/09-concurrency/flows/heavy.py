from prefect import flow


@flow
def heavy():
    return None
