from prefect import flow


@flow
async def weekly():
    return None
