"""Article spinners and same-event rewrites: fixtures for the spin-robust verification stage.

Content farms run stolen articles through spinners: common words swapped for synonyms, the
headline rewritten, quotes turned into reported speech, adjacent sentences swapped, a paragraph
dropped. Two spinners with different word lists and different choices are defined here (SPINNER_A
to tune on, SPINNER_B held out), so that a stage tuned to one is checked on the other.

`same_event_report` writes the hard negative: another outlet's own report of the same event,
sharing the original's names, numbers and quotes in roughly the same order, in other sentences
(taken from a different real article, whose names and numbers are replaced by the original's).

Every function is pure and driven by the random.Random it is given.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Spinner A's thesaurus: common news words and the phrases it swaps in (hand-built).
SYNONYMS_A: Mapping[str, tuple[str, ...]] = {
    "said": ("stated", "declared", "remarked"), "says": ("states", "declares", "remarks"),
    "told": ("informed", "advised"), "talks": ("dialogue", "discussions"), "president": ("head of state",),
    "government": ("administration",), "officials": ("authorities",), "official": ("functionary",),
    "people": ("individuals", "persons"), "country": ("nation",), "city": ("metropolis",),
    "company": ("firm", "enterprise"), "companies": ("firms", "enterprises"), "big": ("large", "huge"),
    "small": ("little", "minor"), "new": ("fresh", "novel"), "old": ("aged", "elderly"),
    "year": ("twelve months",), "years": ("decades",), "week": ("seven days",), "month": ("four weeks",),
    "make": ("create", "produce"), "made": ("created", "produced"), "get": ("obtain", "acquire"),
    "got": ("obtained", "acquired"), "use": ("utilise", "employ"), "used": ("utilised", "employed"),
    "help": ("assist", "aid"), "show": ("demonstrate", "display"), "shows": ("demonstrates", "displays"),
    "start": ("commence", "begin"), "started": ("commenced", "began"), "end": ("conclusion",),
    "ended": ("concluded",), "buy": ("purchase",), "bought": ("purchased",), "need": ("require",),
    "needs": ("requires",), "want": ("desire", "wish"), "wants": ("desires", "wishes"),
    "think": ("believe", "reckon"), "important": ("crucial", "vital"), "problem": ("issue", "difficulty"),
    "problems": ("issues", "difficulties"), "plan": ("scheme", "strategy"), "plans": ("schemes", "strategies"),
    "meeting": ("gathering", "session"), "job": ("position", "role"), "jobs": ("positions", "roles"),
    "money": ("funds", "cash"), "law": ("legislation", "statute"), "report": ("account", "record"),
    "reported": ("recounted", "documented"), "announced": ("revealed", "unveiled"), "leader": ("chief", "head"),
    "leaders": ("chiefs", "heads"), "team": ("squad", "side"), "game": ("match", "contest"),
    "win": ("victory", "triumph"), "won": ("triumphed", "prevailed"), "lost": ("was defeated",),
    "fast": ("rapid", "speedy"), "quickly": ("rapidly", "swiftly"), "also": ("additionally", "furthermore"),
    "however": ("nevertheless", "nonetheless"), "very": ("extremely", "highly"), "many": ("numerous", "several"),
    "most": ("the majority of",), "about": ("approximately", "around"), "because": ("since", "as"),
    "but": ("yet",), "before": ("prior to",), "after": ("following",), "during": ("throughout",),
    "expected": ("anticipated",), "according": ("in accordance",), "including": ("such as",),
    "early": ("initial",), "recent": ("latest",), "recently": ("lately",), "likely": ("probable",),
    "major": ("significant", "key"), "key": ("essential", "central"), "public": ("general public",),
    "house": ("residence", "home"), "home": ("residence",), "car": ("automobile", "vehicle"),
    "cars": ("automobiles", "vehicles"), "children": ("kids", "youngsters"), "family": ("household",),
    "world": ("globe", "planet"), "police": ("law enforcement",), "killed": ("slain",), "died": ("passed away",),
    "attack": ("assault", "strike"), "war": ("conflict",), "deal": ("agreement", "accord"),
    "price": ("cost",), "prices": ("costs",), "market": ("marketplace",), "business": ("commerce", "trade"),
    "working": ("operating",), "work": ("labour", "effort"), "change": ("alteration", "shift"),
    "changes": ("alterations", "shifts"), "increase": ("rise", "boost"), "decrease": ("decline", "drop"),
    "called": ("referred to as", "dubbed"), "asked": ("questioned", "queried"), "added": ("continued",),
    "found": ("discovered", "uncovered"), "find": ("discover", "uncover"), "believe": ("consider",),
    "issue": ("matter",), "support": ("backing", "endorsement"), "against": ("versus",),
}

# More of spinner A's thesaurus, one "word: choice | choice" per entry.
_MORE_A = """
according: as per | in line; across: throughout; action: act | measure; actually: in fact; add: include;
affect: influence; agency: bureau; agreed: concurred; allow: permit; allowed: permitted; almost: nearly;
already: previously; around: roughly; arrested: detained; available: obtainable; become: turn into;
became: turned into; began: commenced; behind: at the rear of; best: finest; better: superior; bill: measure;
billion: thousand million; board: panel; body: physique; book: volume; build: construct; built: constructed;
campaign: crusade; case: instance; cause: trigger; caused: triggered; center: centre | hub; chance: opportunity;
chief: principal; claim: assertion; claimed: asserted; clear: evident; close: near; community: neighbourhood;
concern: worry; concerns: worries; continue: carry on; continued: carried on; control: command; cost: expense;
costs: expenses; could: might; court: tribunal; create: generate; crisis: emergency; current: present;
currently: presently; data: information; day: date; days: times; decided: determined; despite: in spite of;
different: distinct; difficult: hard; director: manager; do: perform; done: performed; economy: financial system;
effort: attempt; efforts: attempts; election: poll; enough: sufficient; even: still; event: occasion;
events: occasions; every: each; evidence: proof; example: instance; experts: specialists; face: confront;
facing: confronting; fact: reality; far: much; feel: sense; few: handful of; field: area; fight: battle;
final: last; finally: ultimately; following: subsequent to; force: pressure; forces: troops; former: previous;
free: totally free; full: complete; further: additional; future: long run; give: provide; given: provided;
goal: objective; going: heading; great: excellent; group: team; groups: teams; growing: expanding; growth: expansion;
happened: occurred; hard: tough; health: wellbeing; held: kept; high: substantial; history: past;
hit: struck; hold: maintain; idea: notion; immediately: instantly; impact: effect; including: which include;
information: details; instead: rather; interview: conversation; investigation: inquiry; keep: retain;
kind: sort; know: realise; known: recognised; large: sizable; later: subsequently; lead: guide; least: minimum;
left: departed; less: fewer; level: degree; life: existence; likely: most likely; little: small; live: reside;
local: regional; long: extended; look: appear; looking: searching; lot: great deal; low: minimal; main: primary;
man: gentleman; matter: concern; may: could; means: indicates; member: participant; members: associates;
might: may; million: mn; minister: secretary; move: step; much: significantly; national: countrywide;
near: close to; nearly: practically; never: not ever; next: following; number: quantity; offer: supply;
office: workplace; often: frequently; open: accessible; order: purchase; part: portion; party: celebration;
past: previous; pay: compensate; percent: per cent; period: time period; place: location; play: perform;
played: performed; point: stage; policy: coverage; political: governmental; position: placement; possible: feasible;
power: energy; pressure: strain; private: personal; process: procedure; program: programme; project: undertaking;
provide: supply; put: place; question: query; questions: queries; rather: instead; reached: attained;
ready: prepared; real: genuine; reason: cause; received: obtained; record: document; released: launched;
remain: stay; remains: stays; result: outcome; results: outcomes; return: come back; right: proper; rights: legal rights;
rise: surge; risk: danger; role: part; rules: regulations; run: operate; school: college; season: period;
second: 2nd; security: protection; see: notice; seen: observed; seems: appears; send: dispatch; sent: dispatched;
series: collection; service: provider; services: solutions; set: established; several: a number of; share: stake;
short: brief; side: aspect; significant: considerable; similar: comparable; since: because; situation: circumstance;
social: societal; some: certain; something: anything; soon: quickly; spokesman: representative; state: condition;
still: nevertheless; stop: cease; story: tale; strong: robust; student: pupil; students: pupils; study: research;
system: method; take: consider; taken: considered; taking: considering; term: phrase; test: examination;
things: issues; third: 3rd; though: although; time: period; times: occasions; together: jointly; top: leading;
total: overall; trade: commerce; trying: attempting; turn: transform; under: beneath; until: till; using: utilizing;
various: assorted; video: clip; view: perspective; vote: ballot; way: method; ways: methods; went: headed;
whether: if; whole: entire; without: devoid of; woman: lady; women: females; words: phrases; worked: laboured;
workers: staff; young: youthful
"""

# Spinner B's thesaurus: other choices, some of them for function words (held out from tuning).
SYNONYMS_B: Mapping[str, tuple[str, ...]] = {
    "said": ("noted", "explained", "commented"), "says": ("notes", "explains"), "told": ("informed",),
    "talks": ("negotiations", "conversations"), "president": ("leader",), "government": ("authorities",),
    "officials": ("representatives", "figures"), "people": ("folks", "citizens"), "country": ("state",),
    "company": ("business", "corporation"), "companies": ("businesses", "corporations"),
    "big": ("major", "sizeable"), "small": ("tiny", "modest"), "new": ("brand-new", "latest"),
    "year": ("annum",), "years": ("yrs",), "week": ("wk",), "make": ("build", "craft"), "made": ("built", "crafted"),
    "get": ("gain", "receive"), "use": ("make use of",), "used": ("made use of",), "help": ("support",),
    "show": ("reveal", "indicate"), "start": ("launch", "kick off"), "started": ("launched", "kicked off"),
    "buy": ("acquire",), "need": ("must have",), "want": ("would like",), "think": ("feel", "suppose"),
    "important": ("significant", "essential"), "problem": ("trouble", "challenge"), "plan": ("proposal",),
    "plans": ("proposals",), "job": ("occupation",), "money": ("capital",), "report": ("study", "document"),
    "announced": ("declared",), "leader": ("boss",), "team": ("club",), "game": ("fixture",),
    "won": ("clinched",), "quickly": ("speedily",), "also": ("too",), "however": ("still",),
    "very": ("really", "quite"), "many": ("a lot of", "lots of"), "about": ("regarding", "concerning"),
    "because": ("due to the fact that",), "but": ("though",), "before": ("ahead of",), "after": ("later than",),
    "while": ("whilst",), "with": ("along with",), "if": ("in case",), "so": ("therefore",),
    "expected": ("projected",), "including": ("among them",), "major": ("main",), "house": ("property",),
    "car": ("motor",), "children": ("little ones",), "world": ("earth",), "police": ("cops",),
    "attack": ("raid",), "deal": ("pact",), "price": ("rate",), "market": ("sector",), "work": ("job",),
    "change": ("modification",), "increase": ("growth",), "called": ("named",), "asked": ("requested",),
    "found": ("located",), "support": ("help",), "against": ("opposed to",), "now": ("at present",),
    "first": ("initial",), "last": ("final",), "good": ("great", "fine"), "bad": ("poor", "awful"),
    "high": ("elevated",), "low": ("reduced",), "long": ("lengthy",), "large": ("big",), "able": ("capable",),
    "begin": ("start",), "often": ("frequently",), "soon": ("shortly",), "around": ("roughly",),
    "show's": ("programme's",), "statement": ("declaration",), "decision": ("ruling", "verdict"),
    "week's": ("weekly",), "group": ("collective", "band"), "members": ("participants",),
    "women": ("ladies",), "men": ("gentlemen",), "money's": ("cash's",), "told reporters": ("informed the press",),
}

# More of spinner B's thesaurus (other choices again).
_MORE_B = """
according: based on; across: over; action: step; actually: really; add: append; agency: office; almost: practically;
already: by now; arrested: apprehended; available: on hand; became: grew to be; behind: beyond; best: top;
better: improved; bill: legislation; board: committee; build: erect; campaign: drive; case: situation;
cause: lead to; caused: led to; chance: possibility; chief: head; claim: allegation; clear: plain; close: shut;
community: neighborhood; concern: anxiety; continue: keep on; continued: kept on; control: management;
cost: price tag; could: can; court: courtroom; crisis: disaster; current: existing; data: figures;
decided: resolved; despite: regardless of; different: various; difficult: tough; director: head;
economy: marketplace; effort: endeavour; election: vote; enough: adequate; event: happening; every: all;
evidence: data; example: illustration; experts: pros; face: deal with; fact: truth; feel: experience;
fight: struggle; final: closing; former: ex; free: no cost; full: whole; future: coming years; give: hand;
goal: aim; going: proceeding; great: wonderful; groups: organisations; growing: rising; happened: took place;
hard: difficult; health: fitness; held: organized; history: background; hit: smashed; hold: carry;
idea: concept; impact: influence; information: info; instead: alternatively; investigation: probe; keep: maintain;
know: understand; known: identified; later: afterwards; lead: direct; left: exited; less: lower;
level: amount; life: living; little: slight; live: stay; local: area; look: seem; main: chief; man: guy;
may: might; means: implies; minister: secretary of state; move: transfer; much: a lot; national: federal;
nearly: virtually; never: by no means; next: upcoming; number: figure; offer: provide; office: bureau;
open: unlock; part: piece; past: former; pay: fork out; percent: pct; place: site; play: participate;
point: issue; policy: plan; political: partisan; possible: achievable; power: authority; private: individual;
process: course of action; project: venture; provide: deliver; put: set; question: concern; reached: hit;
ready: all set; real: actual; reason: justification; received: got; released: published; remain: continue to be;
result: consequence; return: go back; rise: climb; risk: hazard; role: function; rules: guidelines;
run: manage; school: academy; season: term; security: safety; see: view; seen: viewed; seems: looks;
sent: shipped; series: line; service: solution; set: arranged; several: various; share: portion;
short: quick; significant: important; similar: related; situation: scenario; some: a few; spokesman: spokesperson;
still: even so; stop: halt; story: article; strong: powerful; students: learners; study: analysis;
system: framework; take: grab; test: trial; things: stuff; though: even though; time: moment; together: collectively;
top: leading; total: full; trying: seeking; turn: flip; under: below; using: making use of; various: many;
video: footage; view: opinion; vote: election; way: manner; went: went on; whole: total; without: with no;
woman: female; workers: employees; young: younger
"""


def _thesaurus(base: Mapping[str, tuple[str, ...]], more: str) -> dict[str, tuple[str, ...]]:
    """A thesaurus: the base entries and those written as "word: choice | choice; ..."."""
    table = dict(base)
    for entry in more.replace("\n", " ").split(";"):
        if ":" in entry:
            word, choices = entry.split(":", 1)
            table.setdefault(word.strip(), tuple(c.strip() for c in choices.split("|") if c.strip()))
    return table


# Pronoun and tense shifts from direct to reported speech.
_REPORTED = {
    "i": "he", "i'm": "he was", "me": "him", "my": "his", "mine": "his", "we": "they", "we're": "they were",
    "us": "them", "our": "their", "ours": "theirs", "am": "was", "is": "was", "are": "were", "will": "would",
    "can": "could", "have": "had", "has": "had", "don't": "did not", "won't": "would not", "can't": "could not",
    "this": "that", "these": "those", "here": "there", "now": "then", "today": "that day",
    "tomorrow": "the next day", "yesterday": "the day before",
}
_QUOTE = re.compile(r"[\"“”]([^\"“”]{3,}?)[\"“”]")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’)]?\s+(?=[\"“‘(]?[A-Z0-9])")
_ANCHOR = re.compile(r"\b(?:[A-Z][\w'’.-]*|\d[\d,.:%]*)")


def split_sentences(paragraph: str) -> list[str]:
    """Rough sentence split (a capital or digit after an end mark starts a sentence)."""
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(paragraph):
        parts.append(paragraph[start : match.end()].strip())
        start = match.end()
    parts.append(paragraph[start:].strip())
    return [part for part in parts if part]


@dataclass(frozen=True)
class Spinner:
    """One spinner's choices: its thesaurus and how often it applies each rewrite."""

    name: str
    synonyms: Mapping[str, tuple[str, ...]]
    swap_rate: float
    """Share of the words its thesaurus knows that it swaps."""
    sentence_swap_rate: float
    """Chance per adjacent pair of sentences in a paragraph that they swap places."""
    reported_speech: float
    """Chance that a quote becomes reported speech."""
    drop_paragraphs: int
    merge_paragraphs: bool
    """Also join some paragraphs and split long ones (reflows the layout)."""
    spam_lines: tuple[str, ...] = ()

    def spin(self, title: str, paragraphs: Sequence[str], rng: random.Random) -> tuple[str, list[str]]:
        """A spun copy: (headline, paragraphs)."""
        out = [p for p in paragraphs if p.strip()]
        out = self._drop(out, rng)
        spun = []
        for paragraph in out:
            sentences = [self._reported(s, rng) for s in split_sentences(paragraph)]
            sentences = self._swap_sentences(sentences, rng)
            spun.append(" ".join(self._swap_words(s, rng) for s in sentences))
        if self.merge_paragraphs:
            spun = self._reflow(spun, rng)
        for line in self.spam_lines:
            if len(spun) > 2:
                spun.insert(rng.randrange(1, len(spun)), line)
        return self.headline(title, rng), spun

    def headline(self, title: str, rng: random.Random) -> str:
        """The headline rewritten: words swapped and its halves turned around."""
        new = self._swap_words(title, rng, rate=1.0)
        if ":" in new and rng.random() < 0.5:
            head, tail = new.split(":", 1)
            new = f"{tail.strip()}: {head.strip()}"
        elif self.name == "B":
            new = rng.choice(("", "Explained: ", "Update - ")) + new + rng.choice(("", ", sources say"))
        return new[:1].upper() + new[1:]

    def _drop(self, paragraphs: list[str], rng: random.Random) -> list[str]:
        for _ in range(self.drop_paragraphs):
            if len(paragraphs) >= 5:
                # The lead stays: spinners keep what makes the story.
                del paragraphs[rng.randrange(1, len(paragraphs))]
        return paragraphs

    def _swap_sentences(self, sentences: list[str], rng: random.Random) -> list[str]:
        index = 0
        while index < len(sentences) - 1:
            if rng.random() < self.sentence_swap_rate:
                sentences[index], sentences[index + 1] = sentences[index + 1], sentences[index]
                index += 2
            else:
                index += 1
        return sentences

    def _swap_words(self, text: str, rng: random.Random, rate: float | None = None) -> str:
        rate = self.swap_rate if rate is None else rate

        def swap(match: re.Match[str]) -> str:
            word = match.group(0)
            choices = self.synonyms.get(word.lower())
            if not choices or rng.random() >= rate:
                return word
            new = rng.choice(choices)
            if word[0].isupper():
                new = new[0].upper() + new[1:]
            return new

        return _WORD.sub(swap, text)

    def _reported(self, sentence: str, rng: random.Random) -> str:
        """A sentence with a quote put into reported speech (quote marks gone, persons shifted)."""
        match = _QUOTE.search(sentence)
        if not match or rng.random() >= self.reported_speech:
            return sentence
        quoted = match.group(1).strip().rstrip(",.!?")
        shifted = _WORD.sub(lambda m: _shift(m.group(0)), quoted)
        shifted = shifted[:1].lower() + shifted[1:] if not _proper_start(quoted) else shifted
        before = sentence[: match.start()].strip()
        after = sentence[match.end() :].strip().lstrip(",").strip()
        speaker = after.rstrip(".") if after else before.rstrip(":, ")
        if not speaker:
            return f"It was stated that {shifted}."
        verb = "that" if self.name == "A" else ""
        if after and not before:
            # '"Quote," Name said.' -> 'Name said that quote.'
            return f"{speaker[:1].upper() + speaker[1:]} {verb} {shifted}.".replace("  ", " ")
        return f"{speaker} {verb} {shifted}.".replace("  ", " ")

    def _reflow(self, paragraphs: list[str], rng: random.Random) -> list[str]:
        out: list[str] = []
        for paragraph in paragraphs:
            sentences = split_sentences(paragraph)
            if len(sentences) >= 4 and rng.random() < 0.5:
                cut = len(sentences) // 2
                out.extend((" ".join(sentences[:cut]), " ".join(sentences[cut:])))
            elif out and len(out[-1]) < 300 and rng.random() < 0.3:
                out[-1] = out[-1] + " " + paragraph
            else:
                out.append(paragraph)
        return out


def _shift(word: str) -> str:
    shifted = _REPORTED.get(word.lower().replace("’", "'"))
    if shifted is None:
        return word
    return shifted[:1].upper() + shifted[1:] if word[0].isupper() and word != "I" else shifted


def _proper_start(text: str) -> bool:
    first = text.split(" ", 1)[0]
    return first == "I" or (len(first) > 1 and first[1:].lower() != first[1:])


SPINNER_A = Spinner(
    name="A", synonyms=_thesaurus(SYNONYMS_A, _MORE_A), swap_rate=1.0, sentence_swap_rate=0.15, reported_speech=0.9,
    drop_paragraphs=1, merge_paragraphs=False,
)
SPINNER_B = Spinner(
    name="B", synonyms=_thesaurus(SYNONYMS_B, _MORE_B), swap_rate=1.0, sentence_swap_rate=0.25, reported_speech=0.7,
    drop_paragraphs=1, merge_paragraphs=True,
    spam_lines=("Get more stories like this one delivered to your inbox every morning.",),
)


def anchors(text: str) -> list[str]:
    """Names and numbers in text order (capitalised words and figures)."""
    return _ANCHOR.findall(text)


def same_event_report(
    title: str, paragraphs: Sequence[str], skeleton: Sequence[str], rng: random.Random, quotes: int = 2
) -> tuple[str, list[str]]:
    """Another outlet's report of the same event: the skeleton article's sentences, its names and
    numbers replaced by the original's in their order, with up to `quotes` of the original's quoted
    sentences inserted verbatim (a real second report quotes the same people)."""
    names = [a for a in anchors(" ".join(paragraphs)) if len(a) > 1]
    if not names:
        return title, list(skeleton)
    position = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal position
        # The first word of a sentence is capitalised for grammar, not a name: keep it.
        if match.start() == 0:
            return match.group(0)
        # Facts come in the original's order, a few skipped or repeated as a writer would.
        position = min(len(names) - 1, position + rng.choice((0, 1, 1, 1, 2)))
        return names[position]

    report = []
    for paragraph in skeleton:
        report.append(" ".join(_ANCHOR.sub(replace, s) for s in split_sentences(paragraph)))
    quoted = [s for p in paragraphs for s in split_sentences(p) if _QUOTE.search(s)]
    for sentence in rng.sample(quoted, min(quotes, len(quoted))):
        report.insert(rng.randrange(1, max(2, len(report))), sentence)
    head = anchors(title)
    new_title = " ".join(head[:4]) + ": " + " ".join(skeleton[0].split()[:6]) if head else title
    return new_title, report
