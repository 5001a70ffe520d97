"""Unicode and typography folding, and tokenisation of article text."""

from __future__ import annotations

import re
import unicodedata

# Characters that different publishers typeset differently for the same text.
_TYPOGRAPHY = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
        "\u0060": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u00ab": '"', "\u00bb": '"', "\u2039": "'", "\u203a": "'",
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
        "\u2212": "-", "\u2026": "...",
        "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u2009": " ", "\u200a": " ", "\u3000": " ",
        "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "", "\u00ad": "",
    }
)
_SPECIAL_CHARS = tuple((chr(code), str(value or "")) for code, value in _TYPOGRAPHY.items())
_SPECIAL = re.compile("[" + "".join(chr(c) for c in _TYPOGRAPHY) + "]")
# For ASCII text: letters and digits lower-cased, every other byte a separator.
_ASCII_WORDS = bytes(
    (c + 32 if 65 <= c <= 90 else c) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122) else 32
    for c in range(128)
)
_UTF8_WORDS = _ASCII_WORDS + bytes(range(128, 256))


def fold(text: str) -> str:
    """Fold typography (quotes, dashes, odd spaces, soft hyphens) and compatibility forms."""
    if text.isascii():
        return text
    if _SPECIAL.search(text):
        for char, replacement in _SPECIAL_CHARS:
            if char in text:
                text = text.replace(char, replacement)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY)
    return text


def tidy(text: str) -> str:
    """Folded text with runs of spaces collapsed and blank lines squeezed, paragraphs kept."""
    lines = []
    for line in fold(text).splitlines():
        line = line.strip()
        if "  " in line or "\t" in line:
            line = " ".join(line.split())
        if line:
            lines.append(line)
    return "\n".join(lines)


# Scripts written without spaces between words: each character is a token, so that word shingles
# become character shingles there.
_UNSPACED = re.compile(
    "([\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f])"
)


_NON_WORD = re.compile(r"[^\w\s'.]")


def tokens(text: str, folded: bool = False) -> list[bytes]:
    """Case-folded UTF-8 word tokens; punctuation, quotes and dashes carry no weight."""
    if not folded:
        text = fold(text)
    # "U.S." and "US", "don't" and "dont" should shingle alike, hence the deleted ' and .
    if text.isascii():
        return text.encode("ascii").translate(_UTF8_WORDS, b"'.").split()
    if _UNSPACED.search(text):
        text = _UNSPACED.sub(r" \1 ", _NON_WORD.sub(" ", text))
    # Non-ASCII letters stay whole: every byte >= 0x80 counts as part of a word ...
    data = text.casefold().encode("utf-8", "surrogatepass").translate(_UTF8_WORDS, b"'.")
    # ... and the few words holding non-ASCII punctuation or symbols are split at them.
    if any(lead in data for lead in _SYMBOL_LEAD_BYTES):
        data = _NON_ASCII_WORD.sub(_split_symbols, data)
    return data.split()


# UTF-8 lead bytes of the blocks that hold most non-ASCII punctuation and symbols (Latin-1
# symbols, general punctuation, currency, arrows and shapes, CJK punctuation, fullwidth forms):
# a byte search tells cheaply whether the slow per-word split is needed at all.
_SYMBOL_LEAD_BYTES = (b"\xc2", b"\xc3\x97", b"\xc3\xb7", b"\xe2", b"\xe3\x80", b"\xef\xbc", b"\xef\xbd")

_NON_ASCII_WORD = re.compile(rb"[^ \t\n\r\f\v]*[\x80-\xff][^ \t\n\r\f\v]*")


def _split_symbols(match: re.Match[bytes]) -> bytes:
    word = match.group(0).decode("utf-8", "surrogatepass")
    return _NON_WORD.sub(" ", word).encode("utf-8", "surrogatepass")
