from prefect import flow


@flow
def versioned_flow():
    return None
