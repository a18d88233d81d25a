from prefect import flow


@flow
def sync(full: bool = False):
    return None
