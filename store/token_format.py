"""The case token's written form: one a person can read aloud, copy by hand and type on a phone.

A new token is 140 random bits written as 28 characters of Crockford's base32 in seven groups of
four (`7KQ2-M9XD-...`). The alphabet has no I, L, O or U, so nothing in it looks like anything
else in it (0 and 1 are there; O and I/L are not), and no word can be spelt by accident.

What a person types back is normalised before the keyed verifier sees it (`canonical_case_token`):
case, dashes and spaces do not matter, and the look-alikes a person may read in place of 0 and 1
(O, I, L) count as them, as Crockford's decoding rule says. The verifier is always the one of the
canonical 28-character form, so every way of typing a token opens the case.

Tokens issued before this format (43 characters of URL-safe base64, case-sensitive) keep working:
text of exactly that shape is passed through untouched, before any normalisation could alter it.
"""
from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
TOKEN_CHARS = 28  # 28 x 5 = 140 bits: above the 128 the design asks for, in whole groups of 4
GROUP = 4
TOKEN_BITS = TOKEN_CHARS * 5

# The shape of every token issued before (secrets.token_urlsafe(32)): checked first, so that an
# old token containing '-' is never stripped or upper-cased into something else.
_LEGACY = re.compile(r"[A-Za-z0-9_-]{43}")
_CANONICAL = re.compile(f"[{ALPHABET}]{{{TOKEN_CHARS}}}")
# Spaces and dashes. (An HTTP header carries only Latin-1, so full-width characters and the
# typographic dashes a phone keyboard may give are folded by the client: hashing/cli.py.)
_SEPARATORS = re.compile(r"[\s\-]+")
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_case_token() -> str:
    """A fresh token in its written form (grouped, with dashes): what the person is shown."""
    return format_token("".join(secrets.choice(ALPHABET) for _ in range(TOKEN_CHARS)))


def format_token(canonical: str) -> str:
    """`canonical` (28 characters) in groups of four joined by dashes."""
    return "-".join(canonical[i:i + GROUP] for i in range(0, len(canonical), GROUP))


def canonical_case_token(text: str) -> str:
    """The form the verifier is computed over. A legacy token comes back unchanged; text that is
    a new token however it was typed comes back as its 28 characters; anything else comes back
    stripped, and opens nothing (it is still verified, so every failure costs the same)."""
    text = text.strip()
    if _LEGACY.fullmatch(text):
        return text
    folded = _SEPARATORS.sub("", text).upper().translate(_LOOK_ALIKES)
    return folded if _CANONICAL.fullmatch(folded) else text
