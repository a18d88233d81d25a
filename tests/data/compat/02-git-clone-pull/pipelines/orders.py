from prefect import flow


@flow
def load_orders(batch_size: int = 100, tables: list[str] | None = None):
    return None
