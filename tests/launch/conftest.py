"""Fixtures shared by the launcher tests: the moto stand-in (one server per session)."""

from tests.fakes.moto_server import moto, moto_server

__all__ = ["moto", "moto_server"]
