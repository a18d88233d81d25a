import prefect


@prefect.flow(log_prints=True)
def other():
    print("hi")
