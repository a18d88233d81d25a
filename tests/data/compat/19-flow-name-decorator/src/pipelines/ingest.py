from prefect import flow


@flow(name="Ingest Raw Data")
def ingest_raw_data():
    return None
