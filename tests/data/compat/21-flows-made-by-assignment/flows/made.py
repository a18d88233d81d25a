from prefect import flow


def extract_rows(limit: int = 10) -> int:
    return limit


@flow(name="base-flow")
def base() -> None:
    return None


wrapped_flow = flow(extract_rows)
renamed_flow = flow(name="Renamed Rows")(extract_rows)
variant = base.with_options(name="base-variant")
alias = base
