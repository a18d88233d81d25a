from prefect import flow


@flow(name="etl")
def run_etl():
    return None
