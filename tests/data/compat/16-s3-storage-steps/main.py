from prefect import flow


@flow(name="main")
def main_flow():
    return None
