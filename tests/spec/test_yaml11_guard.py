"""The YAML 1.1 guard's patterns are written for speed (a rare first character, then a look behind
for the separator); each must find exactly what its plain reading finds, on any text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.desired import yamlfile

BOOL11 = rb"(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)"
SEP = rb"[ \t\[{,\n]"
# The plain readings: a separator, then the scalar.
PLAIN = (
    re.compile(SEP + rb"[-+]?(?:0[0-9box_]|\.[0-9_]|_[0-9_])"),
    re.compile(SEP + rb"(?:=|" + BOOL11 + rb")[ \t]*(?:$|[,\]}:#])", re.M),
    re.compile(
        rb"[0-9](?:_[0-9]|[eE][-+]?[0-9]|:[0-5]?[0-9](?::[0-5]?[0-9])*(?:\.[0-9]*)?[ \t]*(?:$|[,\]}#]))", re.M
    ),
    re.compile(rb"^" + BOOL11 + rb"[ \t]*:", re.M),
    re.compile(SEP + rb"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"),
)
# Characters the patterns care about, and a few they do not.
ALPHABET = list(b" \t[{,\n\r-+0123456789box_.=yesYESnNoOfF:#]}eEa|")
TEXT = st.lists(
    st.one_of(
        st.sampled_from(ALPHABET).map(lambda byte: bytes([byte])),
        st.sampled_from(
            [b"yes", b"Off", b"ON", b"NO", b"2024-1-02", b"1:20", b"0o7", b"-.5", b"1e3", b" = "]
        ),
    ),
    max_size=30,
).map(b"".join)


def _found(patterns: tuple[re.Pattern[bytes], ...], data: bytes) -> bool:
    return any(pattern.search(data) for pattern in patterns)


@settings(max_examples=1000, deadline=None)
@given(TEXT)
def test_the_fast_patterns_find_what_the_plain_ones_find(text: bytes) -> None:
    data = b"\n" + text.replace(b"\r", b"\n")  # as needs_yaml11 prepares it
    assert _found(yamlfile._YAML11_RISKS, data) == _found(PLAIN, data)


def test_each_risk_is_still_found() -> None:
    for scalar in ("0755", "-0x_1", ".5", "_1", "yes", "OFF", "=", "1_000", "1e3", "1:20", "2024-01-02"):
        assert yamlfile.needs_yaml11(f"key: {scalar}\n"), scalar
        assert yamlfile.needs_yaml11(f"key: [a, {scalar}]\n"), scalar
    assert yamlfile.needs_yaml11("on: 1\n")
    for plain in ("key: 1.5", "key: yesterday", "key: noon", "key: 2024", "key: v0.1", "key: a_b"):
        assert not yamlfile.needs_yaml11(plain + "\n"), plain
