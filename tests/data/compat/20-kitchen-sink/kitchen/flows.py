from prefect import flow


@flow
def everything(mode: str = "quick", retries: int = 0):
    """Do everything."""
    return None
