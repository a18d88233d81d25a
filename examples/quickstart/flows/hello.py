"""A plain Python function works as a flow: no Prefect needed to run it with `reconcile run`."""

import os


def hello(name: str = "world", times: int = 1) -> str:
    """Greet NAME a few times, using the GREETING the work pool's job variables set."""
    greeting = os.environ.get("GREETING", "Hi")
    for i in range(times):
        print(f"{greeting}, {name}! ({i + 1}/{times}, stage {os.environ.get('STAGE', '?')})", flush=True)
    return f"{greeting}, {name}!"
