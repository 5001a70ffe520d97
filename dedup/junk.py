"""Strip syndication junk: scrape dates, related-link blocks, source lines, ads, datelines, credits."""

from __future__ import annotations

import re

from dedup.normalize import tidy

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAY = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|sday|nesday|urday)?\.?"
_TIME = r"(?:\d{1,2}[:.]\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?(?:\s*[a-z]{2,5})?)"
_DATE_WORDS = (
    rf"(?:{_WEEKDAY}|{_MONTH}|{_TIME}|\d{{1,4}}(?:st|nd|rd|th)?|at|on|of|the|[ap]\.?m\.?|"
    r"gmt|utc|[a-z]{2,4}t|\+\d{2}:?\d{2}|\d{4}-\d{2}-\d{2}(?:t[\d:.]+z?)?|[/,.|-])"
)
_DATE_ONLY = re.compile(
    rf"^(?:(?:published|updated|posted|last updated|modified|date|first published)(?: on| at)?:?\s*)?"
    rf"(?:{_DATE_WORDS}\s*){{2,14}}$",
    re.IGNORECASE,
)
_HAS_DIGIT = re.compile(r"\d")

# Whole short lines that are navigation, promotion or credits rather than article text.
_JUNK_LINE = re.compile(
    r"^(?:"
    r"related(?: stories| posts| articles| news| content| coverage| reading| links)?\s*:?"
    r"|you (?:may|might) (?:also )?(?:like|be interested in)\b.*"
    r"|recommended(?: for you| stories| reading)?\s*:?|more (?:stories|news|from|on)\b.*"
    r"|trending(?: now| stories)?\s*:?|(?:most|popular) (?:read|viewed|popular|posts)\b.*"
    r"|what to read next\b.*|read next\b.*|up next\b.*|top stories\s*:?"
    r"|advertisement\s*:?|advertising|ad|sponsored(?: content| post| links)?\s*:?"
    r"|(?:scroll|story|article|content) continues? (?:below|after)\b.*"
    r"|continue reading (?:below|the main story)\b.*"
    r"|(?:also read|read also|see also|read more|must read|don't miss|watch|listen|also see)\s*:.*"
    r"|read more|see more|show more|load more|click here\b.*|tap here\b.*"
    r"|share (?:this|on|via|the|article|story)\b.*|share\s*:?.*|shares?"
    r"|(?:follow|like) us\b.*|follow @.*"
    r"|subscribe(?: now| to| for| today)?\b.*|sign up\b.*|join (?:us|our)\b.*|get (?:the latest|our)\b.*"
    r"|download (?:our|the) app\b.*|newsletter\b.*"
    r"|source\s*:.*|sources?\s*:?\s*read (?:the )?full (?:article|story)\b.*"
    r"|read (?:the )?(?:full|original|complete|entire) (?:article|story|post|report)\b.*"
    r"|continue reading\b.*|read (?:it |more )?(?:at|on)\s+\S+.*|view (?:the )?original\b.*"
    r"|(?:this|the) (?:article|story|post|report) (?:was )?(?:originally |first )?(?:appeared|published|posted)\b.*"
    r"|originally (?:published|posted|appeared)\b.*|(?:first|originally) appeared (?:on|in|at)\b.*"
    r"|\(?(?:reporting|additional reporting|writing|editing|compiled|edited|reported) by\b.*"
    r"|.*\bcontributed (?:to )?(?:this|the) (?:report|story|article)\.?"
    r"|(?:copyright|\(c\)|©).*|all rights reserved\.?.*"
    r"|(?:photo|image|picture|video|caption|credit|file photo|photograph)s?\s*:.*"
    r"|tags?\s*:.*|filed under\b.*|posted in\b.*|categories?\s*:.*|topics?\s*:.*"
    r"|\d*\s*comments?\b.*|leave a (?:comment|reply)\b.*|(?:previous|next|older|newer) (?:article|post|story)\b.*"
    r"|about the author\b.*|by\s+[\w.'-]+(?:\s+[\w.'-]+){0,4}(?:\s*(?:,|\||and|&)\s*[\w.' -]+)?"
    r"|(?:reuters|afp|ap|bloomberg|the associated press|associated press|agence france-presse|dpa|xinhua"
    r"|pti|ians|ani|upi)(?: staff)?\s*\.?"
    r"|(?:more|read more|get more|find more|see more) .{0,80}\bhere\.?"
    r"|(?:facebook|twitter|x|linkedin|whatsapp|email|e-mail|print|reddit|pinterest|telegram|copy link"
    r"|messenger|tumblr|flipboard)(?:[\s|,/·•]+(?:facebook|twitter|x|linkedin|whatsapp|email|e-mail|print"
    r"|reddit|pinterest|telegram|copy link|messenger|tumblr|flipboard))*"
    r")$",
    re.IGNORECASE,
)
# Headings after which the rest of the page is a list of other links.
_TAIL_MARKER = re.compile(
    r"^(?:related(?: stories| posts| articles| news| content| coverage| reading| links)?"
    r"|you (?:may|might) (?:also )?like|recommended(?: for you| stories)?|more stories"
    r"|trending(?: now)?|popular posts|most read|read next|what to read next"
    r"|source\s*:?\s*read (?:the )?full (?:article|story)|read (?:the )?full (?:article|story))\b",
    re.IGNORECASE,
)
# "WASHINGTON (Reuters) -", "NEW YORK, Oct 31 (AP) —", "LONDON:", "Paris, France (AFP) --".
_DATELINE = re.compile(
    r"^(?:[A-Z][A-Za-z.'’-]*(?:[ ,]+[A-Z][A-Za-z.'’-]*){0,4}"
    rf"(?:,?\s+(?i:{_MONTH})\s+\d{{1,2}}(?:,?\s+\d{{4}})?)?\s*"
    r"(?:\((?:[A-Za-z&.,' /-]{2,60})\)\s*)?[-—–:]+\s*"
    r"|\((?:[A-Za-z&.,' /-]{2,60})\)\s*[-—–:]+\s*)"
)
_DATELINE_CITY_UPPER = re.compile(r"^[A-Z][A-Z.'’ -]{1,40}\b")
# An excerpt's last line often ends in its link back: "... Read Full Article", "[…] Continue reading".
_LINK_PHRASE = re.compile(
    r"\b(?:read (?:the )?(?:full|more|original|complete|entire|rest)\b|read more\b|continue reading\b"
    r"|keep reading\b|full (?:story|article)\b|more at\b|via\b)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_LEAD_IN = " .\u2026[](){}:-\u2013\u2014|>\u00bb"
_MAX_JUNK_WORDS = 30
_MAX_JUNK_CHARS = 240


def _is_date_line(line: str) -> bool:
    return len(line) <= 80 and bool(_HAS_DIGIT.search(line)) and bool(_DATE_ONLY.match(line))


# Cheap screen before the big pattern: the first word of every kind of junk line.
_JUNK_FIRST_WORDS = frozenset(
    """related you recommended more trending most popular what read up top advertisement advertising
    ad sponsored scroll story article content continue also see must don't watch listen show load
    click tap share shares follow like subscribe sign join get download newsletter source sources
    view this the originally first reporting additional writing editing compiled edited reported
    copyright (c) © all photo photos image images picture pictures video videos caption credit
    credits file photograph tags tag filed posted categories category topics topic comments comment
    leave previous next older newer about by reuters afp ap bloomberg associated agence dpa xinhua
    pti ians ani upi find facebook twitter x linkedin whatsapp email e-mail print reddit pinterest
    telegram copy messenger tumblr flipboard""".split()
)
_FIRST_WORD = re.compile(r"[(©]?[\w'@-]*", re.UNICODE)


def _is_junk_line(line: str) -> bool:
    if not line:
        return True
    if len(line) > _MAX_JUNK_CHARS or line.count(" ") >= _MAX_JUNK_WORDS:
        return False
    if line[0].isdigit() or "contributed" in line:
        return _is_date_line(line) or bool(_JUNK_LINE.match(line))
    first = _FIRST_WORD.match(line.lower())
    word = first.group(0).lstrip("(") if first else ""
    if word not in _JUNK_FIRST_WORDS and line[0] not in "(©":
        return _is_date_line(line) if _HAS_DIGIT.search(line) else False
    return _is_date_line(line) or bool(_JUNK_LINE.match(line))


def _strip_dateline(line: str) -> str:
    """Remove a wire dateline from the start of the first paragraph."""
    match = _DATELINE.match(line)
    if not match:
        return line
    head = match.group(0)
    # A plain "Word:" or "Word -" opening must look like a dateline: upper-case city or agency credit.
    if "(" not in head and not _DATELINE_CITY_UPPER.match(head):
        return line
    rest = line[match.end():]
    return rest if len(rest.split()) >= 5 else line


def _trailing_link_at(line: str) -> int | None:
    """Where a closing link-back phrase starts in the line, or None."""
    tail_start = max(0, len(line) - 200)
    last = None
    for match in _LINK_PHRASE.finditer(line, tail_start):
        last = match
    if last is None:
        return None
    rest = line[last.end():].rstrip(" .)]")
    if len(rest) > 80 or _SENTENCE_END.search(rest):
        return None
    return last.start()


def _strip_trailing_link(line: str) -> str:
    """The line without a closing "Read Full Article" / "Continue reading" link text."""
    cut = _trailing_link_at(line)
    if cut is None:
        return line.rstrip()
    head = line[:cut].rstrip(_LEAD_IN + " ")
    if head.lower().endswith("source:") or head.lower().endswith("source"):
        head = head[: head.lower().rfind("source")].rstrip(_LEAD_IN + " ")
    return head


def strip_junk(text: str, title: str = "") -> str:
    """The article text without syndication junk, typography folded, one paragraph per line."""
    lines = tidy(text).split("\n")
    folded_title = tidy(title).casefold() if title else ""
    # Cut a trailing block of related links once its heading appears in the last part of the text.
    total = sum(len(line) for line in lines) or 1
    seen = 0
    for index, line in enumerate(lines):
        if seen > 0.3 * total and len(line.split()) <= 8 and _TAIL_MARKER.match(line):
            lines = lines[:index]
            break
        seen += len(line)
    kept = [
        line for line in lines
        if not _is_junk_line(line) and not (folded_title and line.casefold() == folded_title)
    ]
    # The dateline opens the first real paragraph, which may follow a headline line.
    for index in range(min(2, len(kept))):
        stripped = _strip_dateline(kept[index])
        if stripped != kept[index]:
            kept[index] = stripped
            break
    if kept:
        last = _strip_trailing_link(kept[-1])
        if last:
            kept[-1] = last
        else:
            kept.pop()
    return "\n".join(kept)


_SYNDICATION_MARK = re.compile(
    r"^\s*(?:source\s*:|sources?\s*:?\s*read (?:the )?full|read (?:the )?(?:full|original) (?:article|story)"
    r"|continue reading (?:at|on)|originally (?:published|posted|appeared)"
    r"|(?:this|the) (?:article|story|post) (?:was )?(?:originally |first )?(?:appeared|published))",
    re.IGNORECASE | re.MULTILINE,
)


def looks_syndicated(text: str) -> bool:
    """True when the text carries a republisher's line ("Source: ...", "Read Full Article")."""
    tail = text[-1500:]
    lowered = tail.lower()
    if not any(word in lowered for word in ("source", "read", "continu", "original", "appeared", "published")):
        return False
    if _SYNDICATION_MARK.search(tail):
        return True
    last_line = tail.rstrip().rsplit("\n", 1)[-1]
    return _trailing_link_at(last_line[-120:]) is not None
