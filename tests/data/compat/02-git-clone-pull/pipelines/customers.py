from prefect import flow


@flow
def load_customers():
    """Load customers."""
    return None
