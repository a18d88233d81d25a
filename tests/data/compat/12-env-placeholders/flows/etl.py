from prefect import flow


@flow
def etl(bucket: str, rows: int = 10):
    return None
