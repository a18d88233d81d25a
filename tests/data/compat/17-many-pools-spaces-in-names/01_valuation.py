from prefect import flow


@flow
def get_wallet_valuation():
    return None
