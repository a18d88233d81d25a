"""A Prefect flow that also runs without Prefect: `prefect deploy` and `reconcile run` both take it.

With Prefect installed, ``@flow`` makes it a Prefect flow (named ``hello``, after the function), so
``prefect deploy`` accepts this file and Prefect's worker runs it; without Prefect the decorator is a
no-op and ``reconcile run`` calls the plain function.
"""

import os

try:
    from prefect import flow
except ImportError:  # without Prefect the decorator is a no-op and the function runs as is

    def flow(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)


@flow
def hello(name: str = "world", times: int = 1) -> str:
    """Greet NAME a few times, using the GREETING the work pool's job variables set.

    Args:
        name: who to greet
        times: how many greetings to print
    """
    greeting = os.environ.get("GREETING", "Hi")
    for i in range(times):
        print(f"{greeting}, {name}! ({i + 1}/{times}, stage {os.environ.get('STAGE', '?')})", flush=True)
    return f"{greeting}, {name}!"
