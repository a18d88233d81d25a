"""Both locators (rapidyaml in place, PyYAML nodes) agree on where things are."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.desired.marks import Marks

TEXT = """name: demo
work_pools:
  - name: local
    type: process
    job_variables: {env: {A: "quoted", B: plain}}
deployments:
  - name: first
    entrypoint: flows/a.py:a
    tags: [x, 'y']
    schedules:
      - {cron: "0 6 * * *", slug: daily}
  - name: "second é"
    parameters:
      rows: 10
      note: |
        multi
        line
"""

PATHS = [
    ("name",),
    ("work_pools", 0, "name"),
    ("work_pools", 0, "job_variables", "env", "A"),
    ("work_pools", 0, "job_variables", "env", "B"),
    ("deployments", 0, "tags"),
    ("deployments", 0, "tags", 1),
    ("deployments", 0, "schedules", 0),
    ("deployments", 0, "schedules", 0, "cron"),
    ("deployments", 1, "name"),
    ("deployments", 1, "parameters", "rows"),
    ("deployments", 1, "parameters", "note"),
    ("deployments", 1),
]


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(PATHS), st.booleans())
def test_fast_and_fallback_locators_agree(path: tuple, key: bool) -> None:
    marks = Marks(TEXT, "f.yaml")
    assert marks.locate(path, key=key) == marks._locate_fallback(path, key=key)


def test_missing_path_points_at_the_nearest_ancestor() -> None:
    marks = Marks(TEXT, "f.yaml")
    assert marks.locate(("deployments", 1, "nope")) == marks.locate(("deployments", 1))
    assert marks.locate(("deployments", 1)) == (12, 5)
