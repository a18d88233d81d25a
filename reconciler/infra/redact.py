"""Credentials out of every URL the tool prints or stores: one rule for state URLs, errors and plans.

A state URL is operator configuration that often carries a credential, and the plan it appears in is
posted where every reader of a pull request sees it. :func:`redact_url` masks

* the password of the userinfo (``scheme://user:PASSWORD@host``; the user name stays, it says which
  role is used). A password holding ``@`` (RFC 3986: the userinfo ends at the authority's last
  ``@``) or ``/`` (and, in a database URL, ``?`` or ``#``: SQLAlchemy reads those so) is masked
  whole;
* the value of every query or fragment parameter whose name, percent-decoded and case-folded,
  contains one of :data:`CREDENTIAL_WORDS` (``?password=``, ``?sslpassword=``, ``?api_key=``,
  ``?X-Amz-Signature=``, Azure's ``?sig=``, ``#access_token=``...). Substring matching over-masks a
  harmless ``?monkey=1`` rather than let a new spelling through.

:func:`redact_urls` applies the same rule to every URL inside a free text (a driver's error message).
Both are idempotent: a redacted URL redacts to itself.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"

#: A parameter whose name contains any of these (case-insensitive) holds a credential.
CREDENTIAL_WORDS: tuple[str, ...] = (
    "password",
    "passwd",
    "pass",
    "pwd",
    "key",
    "token",
    "secret",
    "sig",  # sig, signature (Azure SAS, AWS presigned URLs)
    "auth",  # auth, authorization, oauth
    "credential",
    "sas",
    "session",
    "cookie",
    "bearer",
    "jwt",
    "private",
    "security",
)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# A URL inside free text: a scheme, then everything up to whitespace or a closing quote/bracket.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")


def is_credential_name(name: str) -> bool:
    """Whether a parameter name suggests a credential (percent-decoded, case-insensitive substring)."""
    folded = unquote(name).casefold()
    return any(word in folded for word in CREDENTIAL_WORDS)


def redact_url(url: str) -> str:
    """``url`` with its userinfo password and credential-like parameter values replaced by ``***``.

    Text that is not ``scheme://...`` is returned as is (there is no userinfo or query to find).
    """
    match = _SCHEME.match(url)
    if match is None:
        return url
    scheme, rest = url[: match.end()], url[match.end() :]
    user_info, after = _split_userinfo(rest, database="http" not in scheme.lower())
    if user_info is not None:
        user, colon, _password = user_info.partition(":")
        scheme += f"{user}{colon}{MASK if colon else ''}@"
    after, hash_sign, fragment = after.partition("#")
    after, question, query = after.partition("?")
    if question:
        query = _mask_parameters(query)
    if hash_sign and "=" in fragment:
        fragment = _mask_parameters(fragment)
    return f"{scheme}{after}{question}{query}{hash_sign}{fragment}"


def _split_userinfo(rest: str, *, database: bool) -> tuple[str | None, str]:
    """``(userinfo, the rest after its @)``, or ``(None, rest)``.

    Readings differ, and the widest wins so that no reader's password is left partly in clear:
    RFC 3986 ends the authority at the first ``/?#`` and the userinfo at its last ``@``; SQLAlchemy
    reads ``user:password@`` with a password running to the first ``@``, through ``/?#``; a lax
    HTTP parser may read a ``/`` into the password. Outside database URLs the query and fragment
    are never part of a password (``?email=a@b`` stays as it is).
    """
    ends: list[int] = []
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        ends.append(authority.rindex("@"))
    scope = rest if database else re.split(r"[?#]", rest, maxsplit=1)[0]
    user, colon, tail = scope.partition(":")
    if colon and "/" not in user and "@" not in user and "@" in tail:
        ends.append(len(user) + 1 + tail.index("@"))
    if not ends:
        return None, rest
    end = max(ends)
    return rest[:end], rest[end + 1 :]


def redact_urls(text: str) -> str:
    """Every ``scheme://...`` URL inside ``text`` redacted by :func:`redact_url`."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def _mask_parameters(query: str) -> str:
    parts = re.split(r"([&;])", query)  # keep the separators exactly as written
    for index in range(0, len(parts), 2):
        name, equals, _value = parts[index].partition("=")
        if equals and is_credential_name(name):
            parts[index] = f"{name}={MASK}"
    return "".join(parts)
