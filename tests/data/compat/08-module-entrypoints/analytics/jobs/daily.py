from prefect import flow


@flow(name="daily-analytics")
def daily_job():
    return None
