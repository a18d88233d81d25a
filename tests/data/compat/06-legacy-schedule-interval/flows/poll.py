from prefect import flow


@flow
def poll():
    return None
