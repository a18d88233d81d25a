"""Hypothesis strategies shared by the property tests.

``st.from_regex`` is convenient but slow to draw from (it was ~80% of the diff-property tests' time);
words built from character classes generate the same strings several times faster.
"""

from __future__ import annotations

import operator

from hypothesis import strategies as st


def word(first: str, rest: str, max_rest: int, *, last: str = "") -> st.SearchStrategy[str]:
    """A string matching ``[first][rest]{0,max_rest}`` (then ``[last]`` when given)."""
    head = st.builds(operator.add, st.sampled_from(first), st.text(alphabet=rest, max_size=max_rest))
    if not last:
        return head
    return st.builds(operator.add, head, st.sampled_from(last))
