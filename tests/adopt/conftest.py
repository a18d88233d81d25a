"""The Prefect server tests here use the same plain HTTP client fixture as tests/prefect."""

from tests.prefect.conftest import api  # noqa: F401  (a fixture, found by pytest through this import)
