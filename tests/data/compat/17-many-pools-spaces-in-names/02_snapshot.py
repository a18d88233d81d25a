from prefect import flow


@flow(name="Weekly Snapshot")
def snapshot():
    return None
