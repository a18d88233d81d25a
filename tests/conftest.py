pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.prefect_server"]
