from prefect import flow


@flow
def b():
    return None
