# ruff: noqa: UP006, UP007, UP035, UP037, UP042, UP045, B006, I001  (the forms users write are the test)
"""Flow functions for the parameter-schema test: each one is read from source by us and imported by
Prefect, and the two schemas must be equal. Kept free of side effects (the test imports it)."""

from __future__ import annotations

import datetime
import enum
import typing
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, IntEnum
from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Optional, Tuple, Union
from uuid import UUID

import pydantic
from typing_extensions import TypedDict  # pydantic refuses typing.TypedDict before 3.12
from pydantic import BaseModel, Field, SecretStr

DEFAULT_ROWS = 1000
Mode = Literal["fast", "slow"]
Numbers = list[int]


class Color(str, Enum):
    """A colour."""

    RED = "red"
    GREEN = "green"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Plain(enum.Enum):
    A = enum.auto()
    B = enum.auto()


class Source(BaseModel):
    """Where rows come from."""

    url: str
    rows: int = 10
    tags: list[str] = []
    color: Color = Color.RED


class Nested(BaseModel):
    source: Source
    backup: Optional[Source] = None
    weights: dict[str, float] = {}


class Described(BaseModel):
    name: str = Field(default="x", description="the name")
    count: int = Field(default=1, ge=0, le=10)


@dataclass
class Window:
    """A time window."""

    start: datetime.date
    days: int = 7


class Options(TypedDict):
    verbose: bool
    depth: int


class Opaque:
    """Not a model: Prefect gives it an empty schema."""


def no_params():
    pass


def scalars(name: str, times: int = 1, ratio: float = 0.5, flag: bool = False, raw: bytes = b"x"):
    pass


def documented(name: str = "world", times: int = 1) -> str:
    """Greet someone.

    Args:
        name: who to greet
        times: how many times, at
            least one
    """
    return name


def untyped(a, b=2, c=None, *args, d, e="e", **kwargs):
    pass


def containers(
    items: list[int],
    mapping: dict[str, int] | None = None,
    pair: tuple[int, str] = (1, "a"),
    legacy: List[str] = [],
    legacy_map: Dict[str, Any] = {},
    legacy_tuple: Tuple[int, ...] = (),
    unique: set[str] = set(),
    nums: Numbers = [1, 2],
):
    pass


def optionals(
    a: Optional[int] = None,
    b: Union[int, str] = 1,
    c: int | None = None,
    d: "Optional[str]" = None,
    e: typing.Optional[float] = 1.5,
):
    pass


def literals(mode: Literal["a", "b"] = "a", alias: Mode = "fast", level: Literal[1, 2, 3] = 2):
    pass


def enums(color: Color = Color.GREEN, level: Level = Level.HIGH, plain: Plain = Plain.A, c2: Color = "red"):
    pass


def models(source: Source, nested: Optional[Nested] = None, described: Described = Described()):
    pass


def stdlib(
    when: datetime.datetime,
    day: datetime.date = datetime.date(2024, 1, 2),
    delay: datetime.timedelta = datetime.timedelta(seconds=30),
    ident: UUID | None = None,
    path: Path = Path("/tmp"),
    amount: Decimal = Decimal("1.5"),
):
    pass


def constants(rows: int = DEFAULT_ROWS, neg: int = -1, names: list[str] = ["a", "b"]):
    pass


def fields(
    a: int = Field(default=3, description="from Field"),
    b: Annotated[int, Field(ge=1)] = 2,
    c: Annotated[str, "meta"] = "x",
    secret: SecretStr | None = None,
    positive: pydantic.PositiveInt = 1,
):
    pass


def other_classes(window: Window, options: Options, opaque: Opaque, maybe: Optional[Opaque] = None):
    pass


def reserved_names(schema: str = "s", copy: int = 1, json: bool = False, model_config: str = ""):
    pass


async def asynchronous(x: int, *, y: str = "y"):
    pass


def any_typed(x: Any, y: object = None, z: typing.Any = 1):
    pass


def positional_only(a: int, /, b: int = 2, *, c: int = 3):
    pass


def other_section_titles(a: int = 1, b: str = "b"):
    """Run.

    Parameters:
        a: the first
        b: the second

    Returns:
        nothing
    """


def no_parameter_section(a: int = 1):
    """Run with A. Args are described elsewhere: args: not a section."""
