from prefect import flow


@flow
def report():
    return None
