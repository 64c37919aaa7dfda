"""Display width and line wrapping for the CLI's boxed messages, counted the way a terminal
draws them (glibc's wcwidth): East Asian wide and full-width characters take 2 columns,
combining marks and format characters none, everything else 1.

Not rich's own count: rich gives Devanagari's spacing vowel signs (Mc, e.g. "ा") no width where
terminals give them 1, so a Nepali box drawn by rich.Panel came out wider than the terminal and
broke apart. Wrapping breaks at spaces; Chinese and Japanese, written without spaces, also break
between characters (never before "、。" and the like), and a word longer than a line is split
between characters, never inside a character with its marks: nothing is ever cut off.
"""
from __future__ import annotations

import unicodedata

_NO_LINE_START = set("、。，．,.：:；;！!？?）)」』】〕〉》”’ー〜ゃゅょっャュョッァィゥェォぁぃぅぇぉ・।")
_NO_LINE_END = set("（(「『【〔〈《“‘")
_VIRAMA = {"\u094d"}  # Devanagari: a consonant with virama joins the next one (a conjunct)


def char_width(ch: str) -> int:
    if unicodedata.category(ch) in ("Mn", "Me", "Cf") or ch == "\u200b":
        return 0
    if "\u1160" <= ch <= "\u11ff":  # Hangul medial/final jamo: drawn into the syllable
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


def _clusters(text: str) -> list[str]:
    """Characters with their combining marks (and Devanagari conjuncts) kept together."""
    out: list[str] = []
    for ch in text:
        if out and (char_width(ch) == 0 or out[-1][-1] in _VIRAMA
                    or unicodedata.category(ch) == "Mc"):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _breaks_between(cluster: str) -> bool:
    """Chinese and Japanese break between characters; Korean (Hangul) breaks at spaces."""
    base = cluster[0]
    return (unicodedata.east_asian_width(base) in ("W", "F")
            and not ("\uac00" <= base <= "\ud7a3" or "\u3130" <= base <= "\u318f"))


def _pieces(word: str) -> list[str]:
    pieces: list[str] = []
    for cluster in _clusters(word):
        if (pieces and (_breaks_between(cluster) or _breaks_between(pieces[-1][-1]))
                and cluster[0] not in _NO_LINE_START and pieces[-1][-1] not in _NO_LINE_END):
            pieces.append(cluster)
        elif pieces:
            pieces[-1] += cluster
        else:
            pieces.append(cluster)
    return pieces


def _split_long(piece: str, limit: int) -> list[str]:
    parts, current = [], ""
    for cluster in _clusters(piece):
        if current and width(current + cluster) > limit:
            parts.append(current)
            current = ""
        current += cluster
    return parts + [current]


def wrap(text: str, limit: int) -> list[str]:
    """`text` in lines of at most `limit` columns (its own line breaks kept)."""
    limit = max(limit, 2)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line, used = "", 0
        for word in paragraph.split(" "):
            if not word:
                continue
            for index, piece in enumerate(_pieces(word)):
                gap = 1 if index == 0 and line else 0
                size = width(piece)
                if used + gap + size <= limit:
                    line, used = line + " " * gap + piece, used + gap + size
                    continue
                if line:
                    lines.append(line)
                *whole, piece = _split_long(piece, limit) if size > limit else [piece]
                lines.extend(whole)
                line, used = piece, width(piece)
        lines.append(line)
    return lines
