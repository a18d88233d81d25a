from prefect import flow


@flow
def train(
    epochs: int, learning_rate: float = 0.01, layers: list[int] | None = None, options: dict | None = None
):
    return None
