"""Article spinners and same-event rewrites: fixtures for the spin-robust verification stage.

Content farms run stolen articles through spinners: common words swapped for synonyms, the
headline rewritten, quotes turned into reported speech, adjacent sentences swapped, a paragraph
dropped. Three spinners with different word lists and different choices are defined here (SPINNER_A
to tune on, SPINNER_B held out; SPINNER_C, HarshSpinner, a third with its own table and rules, harsher,
tuned to the issue's held-out spinner's figures: median word 4-gram Jaccard 0.27, containment 0.44),
so that a stage tuned to one is checked on the others.

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
        return swap_words(text, self.synonyms, self.swap_rate if rate is None else rate, rng)

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


def swap_words(text: str, synonyms: Mapping[str, Sequence[str]], rate: float, rng: random.Random) -> str:
    """Each word with a synonym in the table replaced by one of them with probability `rate`,
    capitalised as the word was (names are not in the tables)."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        choices = synonyms.get(word.lower())
        if not choices or rng.random() >= rate:
            return word
        new = rng.choice(choices)
        return new[0].upper() + new[1:] if word[0].isupper() else new

    return _WORD.sub(swap, text)


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


# ---------------------------------------------------------------- spinner C (harsher, other rules)

# Spinner C's thesaurus, written apart from A's and B's (other choices, more words, verb forms and
# some function words): "word: choice | choice; ...".
_THESAURUS_C = """
said: indicated | pointed out | observed; says: indicates | points out | observes; say: indicate | assert;
saying: indicating | asserting; told: let know | briefed; tell: inform; asked: urged | pressed;
ask: urge; added: went on to say | further noted; talks: parleys | consultations; talk: discuss;
president: commander-in-chief | head of the nation; government: regime | cabinet; officials: administrators | office-holders;
official: administrator; people: persons | residents | inhabitants; person: individual; country: homeland | land;
countries: nations | states; city: town | municipality; company: outfit | concern; companies: outfits | concerns;
firm: business; big: massive | hefty; small: compact | modest-sized; new: recent | fresh; old: former | earlier;
year: calendar year; years: years' time | many years; week: seven-day period; weeks: several weeks;
month: calendar month; months: many months; day: twenty-four hours; today: this day;
make: generate | bring about; makes: generates; made: generated | brought about; making: generating;
take: seize | adopt; takes: seizes; took: seized | adopted; taken: seized; taking: adopting;
give: offer up | hand over; gave: handed over; given: handed over; get: secure | land; got: secured | landed;
go: travel | proceed; goes: travels; went: traveled | proceeded; going: proceeding | travelling;
come: arrive; came: arrived; coming: arriving; see: witness | spot; saw: witnessed | spotted; seen: witnessed;
know: be aware; knew: was aware; known: recognized; think: contend | figure; thought: contended | figured;
look: glance; looked: glanced; looking: seeking; want: crave | seek; wanted: sought; wants: seeks;
use: apply | harness; used: applied | harnessed; uses: applies; using: applying | harnessing;
find: locate | come across; found: located | came across; work: toil | employment; worked: toiled;
working: toiling; works: functions; call: phone | dub; called: phoned | labeled; calls: demands;
try: attempt | endeavor; tried: attempted; trying: attempting | endeavoring; need: call for | necessitate;
needed: necessitated; needs: necessitates; feel: sense; felt: sensed; become: develop into; became: developed into;
leave: exit | quit; left: exited | quit; put: position | set down; mean: signify; means: signifies; meant: signified;
keep: preserve; kept: preserved; let: permit; begin: initiate; began: initiated; begun: initiated;
seem: appear; seemed: appeared; seems: appears; help: aid | lend a hand; helped: aided; helping: aiding;
show: exhibit | display; showed: exhibited; shown: exhibited; shows: exhibits; hear: listen to; heard: listened to;
play: compete; played: competed; playing: competing; run: sprint | direct; ran: directed; running: directing;
move: relocate | shift; moved: relocated | shifted; moving: relocating; live: dwell; lived: dwelt; living: dwelling;
believe: trust | hold; believed: held; believes: holds; bring: carry; brought: carried; happen: transpire;
happened: transpired | took place; write: pen; wrote: penned; written: penned; provide: furnish; provided: furnished;
provides: furnishes; stand: remain standing; lose: forfeit; losing: forfeiting; pay: remunerate; paid: remunerated;
meet: encounter | convene; met: encountered | convened; include: incorporate; includes: incorporates;
included: incorporated; including: incorporating | together with; continue: persist; continued: persisted;
continues: persists; set: fix; learn: discover; learned: discovered; change: modify | alter; changed: modified | altered;
lead: head up; led: headed up; leading: heading up; understand: grasp; watch: observe; watched: observed;
follow: pursue; followed: pursued; stop: halt | end; stopped: halted; create: forge; created: forged;
speak: converse; spoke: conversed; read: peruse; allow: enable; allowed: enabled; add: tack on; spend: expend;
spent: expended; grow: expand; grew: expanded; growing: expanding; open: unlock; opened: unlocked;
win: capture | secure; won: captured | secured; offer: extend; offered: extended; remember: recall;
consider: weigh; considered: weighed; appear: emerge; appeared: emerged; buy: snap up; bought: snapped up;
wait: hold on; serve: function; served: functioned; die: perish; died: perished; send: forward; sent: forwarded;
expect: anticipate | foresee; expected: anticipated | foreseen; expects: anticipates; build: put up; built: put up;
stay: linger; fall: drop | plunge; fell: dropped | plunged; cut: slash | trim; reach: get to; reached: got to;
kill: slay; killed: slew | murdered; remain: persist; remained: persisted; suggest: propose; suggested: proposed;
raise: elevate; raised: elevated; pass: go by; passed: went by; sell: market; sold: marketed; require: demand;
required: demanded; report: bulletin | dispatch; reported: relayed | conveyed; decide: settle; decided: settled;
announce: proclaim; announced: proclaimed | made public; released: issued; release: issue; claimed: maintained;
warned: cautioned; agreed: assented; confirmed: verified; noted: remarked; explained: clarified; described: characterized;
planned: intended; plans: intends | intentions; plan: blueprint | intention; hope: aspiration; hopes: aspirations;
time: moment | occasion; times: instances; way: manner | fashion; ways: manners; man: male | fellow; men: males;
woman: lady | female; women: ladies; thing: item; things: items | matters; life: lifetime; child: youngster;
children: youngsters | minors; world: earth | globe; school: academy; state: province; family: kin | clan;
student: learner; students: learners; group: cluster | collective; problem: snag | setback; problems: snags | setbacks;
hand: palm; part: segment | section; place: spot | venue; case: matter; week's: the week's; system: structure;
program: scheme; question: inquiry; questions: inquiries; number: amount | tally; night: evening; point: juncture;
home: dwelling; water: liquid; area: zone | region; money: finances | cash; story: narrative; fact: truth;
lot: bunch; right: correct; study: survey | investigation; job: post; word: term; business: enterprise;
issue: topic | concern; side: flank; kind: type; head: chief; house: dwelling; service: assistance; friend: companion;
power: might; hour: sixty minutes; hours: many hours; game: bout; line: row; end: finish; member: affiliate;
members: affiliates; law: rule; car: auto; community: locality; team: unit | crew; minute: moment; idea: thought;
body: figure; information: intelligence | data; parent: guardian; face: countenance; level: tier; office: bureau;
health: well-being; war: warfare | hostilities; history: annals; party: faction; result: upshot; results: findings;
reason: grounds; research: studies; moment: instant; force: might; forces: troops | personnel; police: officers;
attack: offensive | onslaught; attacks: onslaughts; deal: arrangement | bargain; price: value; prices: values;
market: exchange; economy: economic system; crisis: predicament; election: ballot; vote: poll; support: assistance;
security: safety; court: bench; leader: head honcho | figurehead; leaders: heads of state | figureheads; plan's: the plan's;
country's: the nation's; decision: determination; statement: pronouncement; meeting: assembly; agreement: treaty;
percent: per cent; million: mln; billion: bn; good: fine | decent; great: terrific; first: opening | initial;
last: previous | final; long: lengthy | prolonged; little: slight; own: personal; other: alternative | additional;
different: dissimilar; large: giant | hefty; next: subsequent | coming; early: premature; young: juvenile;
important: key | notable; few: couple of | small number of; public: communal; bad: dreadful; able: in a position;
high: lofty; low: meager; major: principal; recent: current; former: ex-; local: nearby; national: nationwide;
political: policy; real: actual; strong: sturdy; clear: obvious; possible: conceivable; likely: apt;
final: concluding; whole: complete; full: entire; free: gratis; hard: tricky; difficult: challenging;
also: as well; however: even so | that said; still: yet; just: merely; now: presently | at the moment;
then: at that point; only: solely; even: indeed; already: by this time; very: exceedingly; really: truly;
about: roughly | some; because: considering that; but: however; while: whereas; although: though;
many: plenty of; several: multiple; most: nearly all; more: additional; again: once more;
often: regularly; never: at no time; always: invariably; around: approximately; against: in opposition to;
before: earlier than; after: subsequent to; during: in the course of; among: amid; between: amongst;
without: lacking; within: inside; across: all over; according: as stated | in line; despite: notwithstanding;
under: underneath; since: ever since; until: up until; toward: towards; towards: in the direction of;
like: similar to | such as; online: on the internet | on-line; back: rear; much: a great deal; well: effectively;
air: atmosphere; every: each and every; best: greatest | top-notch; better: superior | finer; another: one more;
games: matches; performance: showing | display; something: a thing; top: highest | uppermost; campaign: push | drive;
pollution: contamination; lack: shortage | absence; trade: commerce; enough: ample; points: factors; minutes: mins;
later: afterward; design: layout; stage: phase; future: days ahead; key: pivotal; industry: sector; media: press;
days: days' time; start: onset | kick off; role: function; less: not as much; sense: feeling; data: figures | statistics;
earlier: previously; available: accessible; potential: possible; focus: emphasis; goal: target; past: bygone;
news: reports | tidings; risk: peril; second: next; far: considerably; ever: at any time; order: sequence;
getting: securing; control: command; comes: arrives; quality: standard; launch: roll out; third: next;
range: array | spectrum; season: campaign; experience: encounter; enter: go into; done: completed; current: ongoing;
fight: battle | struggle; love: adore; lower: reduced; away: off; agency: body | bureau; space: room; solution: fix | answer;
reduce: cut down; friends: pals | companions; similar: alike | akin; approach: method | tactic; technology: tech;
bit: tad; food: meals | cuisine; features: characteristics; products: goods | merchandise; music: tunes; front: forefront;
instead: in its place; version: edition; vehicle: automobile; along: alongside; streaming: online viewing;
rate: pace; someone: somebody; held: staged | hosted; share: portion; policy: guideline; success: triumph;
video: footage | clip; audience: viewers; longer: lengthier; model: version; almost: all but | virtually;
light: illumination; higher: greater; worth: valued at; list: roster; growth: expansion | development; ago: back;
phone: handset; offering: providing; hit: struck | strike; accounts: profiles; easy: simple | effortless;
soon: before long; human: person; half: fifty percent; prison: jail | penitentiary; least: minimum; hearing: session;
anything: something; course: path; systems: structures; recently: of late | just lately; email: e-mail message;
based: located | headquartered; social: communal; following: after; appearance: look; close: near; nearly: almost;
either: each; room: chamber; machine: device; lost: misplaced | forfeited; issues: topics; investigation: probe | inquiry;
series: string | sequence; users: customers; revenue: income | takings; services: offerings; sure: certain;
published: issued; together: collectively; feeling: sensation; symptoms: signs; care: treatment; single: lone;
sales: revenues; previous: prior; cost: price; latest: newest; levels: degrees; article: piece; base: foundation;
access: entry; physical: bodily; scored: netted; goods: wares; content: material; building: structure;
death: passing; display: screen; standard: regular; charge: fee; matter: subject; staff: workforce | personnel;
form: shape; offers: provides; reports: accounts; teams: squads; evidence: proof; heart: core; mobile: cell;
devices: gadgets; testing: trials; cases: instances; amount: quantity; personal: private; late: delayed;
turned: became; employees: workers | staffers; initial: first; certain: particular; financial: monetary | fiscal;
total: sum; launched: introduced | rolled out; claim: contention; forward: ahead; test: trial; ones: those;
account: profile; smaller: tinier; combined: joint; management: leadership; multiple: numerous; officers: agents;
special: unique; song: track | tune; post: message; short: brief; focused: concentrated; opportunity: chance;
production: output; increased: boosted | raised; others: other people; platform: service; deliver: supply;
strategy: game plan; additional: extra; probably: most likely; alarming: worrying; unique: distinctive;
level: standard; feature: element; major: big; foreign: overseas; ready: set; similar: comparable; pure: clean;
month's: the month's; high-profile: prominent; process: procedure; project: scheme; region: area; increase: hike;
nation: country; according: as reported; following: in the wake of; recent: latest; believe: feel; involved: concerned;
big-name: high-profile; increase: surge | uptick; decline: dip | slump; rise: growth | gain; help's: the help's;
"""

# Direct to reported speech: pronoun and tense shifts (C's own table).
_REPORTED_C = {
    "i": "he", "me": "him", "my": "his", "mine": "his", "myself": "himself", "we": "they", "us": "them",
    "our": "their", "ours": "theirs", "ourselves": "themselves", "you": "they", "your": "their",
    "am": "was", "is": "was", "are": "were", "was": "had been", "were": "had been", "will": "would",
    "shall": "should", "can": "could", "may": "might", "have": "had", "has": "had", "do": "did",
    "does": "did", "don't": "did not", "doesn't": "did not", "won't": "would not", "can't": "could not",
    "isn't": "was not", "aren't": "were not", "i'm": "he was", "we're": "they were", "i've": "he had",
    "we've": "they had", "it's": "it was", "this": "that", "these": "those", "here": "there",
    "now": "then", "today": "that day", "tonight": "that night", "tomorrow": "the following day",
    "yesterday": "the previous day", "ago": "before", "next": "the following",
}
_SAID_FIRST = re.compile(  # Name said: "quote."   /   Name said, "quote."
    r"^(?P<speaker>[^\"“”]{2,120}?\b(?:said|says|told [\w ]{2,30}?|added|stated|declared|wrote|explained))"
    r"\s*[:,]?\s*[\"“](?P<quote>[^\"“”]{3,})[\"”]\s*\.?$"
)
_QUOTE_FIRST = re.compile(  # "Quote," Name said.  /  "Quote," said Name.  / "Quote," Name said, adding ...
    r"^[\"“](?P<quote>[^\"“”]{3,}?)[,.!?]?[\"”]\s*,?\s*(?P<rest>[^\"“”]{2,160})$"
)
_SAID_VERB = re.compile(r"\b(said|says|added|stated|declared|told|wrote|explained)\b")
_HONORIFIC = re.compile(r"\b(?:Mr|Mrs|Ms|Dr)\.\s+(?=[A-Z])")
_OPENING_PHRASE = re.compile(r"^(?P<phrase>(?:On|In|At|During|After|Before|Last|Earlier|Later|By) [^,]{2,40}), (?P<rest>.+?)(?P<end>[.!?])$")
_CONTRACTIONS_C = {
    "don't": "do not", "doesn't": "does not", "didn't": "did not", "isn't": "is not", "aren't": "are not",
    "wasn't": "was not", "weren't": "were not", "won't": "will not", "can't": "cannot", "it's": "it is",
    "that's": "that is", "there's": "there is", "they're": "they are", "we're": "we are", "he's": "he is",
    "she's": "she is", "haven't": "have not", "hasn't": "has not", "couldn't": "could not",
    "wouldn't": "would not", "shouldn't": "should not",
}
_CONNECTIVES_C = ("Moreover, ", "In addition, ", "Meanwhile, ", "Notably, ", "At the same time, ", "Besides, ")
_HEADLINE_FRAMES_C = (
    "{body}", "{body} - what we know", "What to know: {body}", "{body}, report says", "Here is why {low}",
    "{body} amid growing scrutiny",
)


@dataclass(frozen=True)
class HarshSpinner:
    """Spinner C: its own thesaurus and rules, harsher than A and B (held out from tuning).

    Besides synonyms, it turns quotes into reported speech ("X said: '...'" -> "X said that ...",
    persons and tenses shifted, quote marks gone), moves an opening phrase to the end of its
    sentence, expands contractions, drops honorifics, starts some sentences with a connective,
    swaps adjacent sentences, drops a paragraph and reframes the headline."""

    name: str
    synonyms: Mapping[str, tuple[str, ...]]
    swap_rate: float = 1.0
    sentence_swap_rate: float = 0.25
    reported_speech: float = 1.0
    opening_move_rate: float = 0.6
    connective_rate: float = 0.12
    drop_paragraphs: int = 1

    def spin(self, title: str, paragraphs: Sequence[str], rng: random.Random) -> tuple[str, list[str]]:
        """A spun copy: (headline, paragraphs)."""
        out = [p for p in paragraphs if p.strip()]
        for _ in range(self.drop_paragraphs):
            if len(out) >= 5:
                del out[rng.randrange(1, len(out))]
        spun = []
        for paragraph in out:
            sentences = [self._rewrite(s, rng) for s in split_sentences(paragraph)]
            index = 0
            while index < len(sentences) - 1:
                if rng.random() < self.sentence_swap_rate:
                    sentences[index], sentences[index + 1] = sentences[index + 1], sentences[index]
                    index += 2
                else:
                    index += 1
            spun.append(" ".join(sentences))
        return self.headline(title, rng), spun

    def headline(self, title: str, rng: random.Random) -> str:
        """The headline reframed and every known word swapped."""
        body = self._swap_words(_HONORIFIC.sub("", title.strip().rstrip(".")), rng, rate=1.0)
        if ":" in body and rng.random() < 0.7:
            head, tail = body.split(":", 1)
            body = f"{tail.strip()} ({head.strip()})"
        low = body[:1].lower() + body[1:] if not _proper_start(body) else body
        new = rng.choice(_HEADLINE_FRAMES_C).format(body=body, low=low)
        return new[:1].upper() + new[1:]

    def _rewrite(self, sentence: str, rng: random.Random) -> str:
        sentence = _HONORIFIC.sub("", sentence)
        reported = self._reported(sentence, rng)
        if reported is None:
            sentence = _contractions(sentence)
            moved = _OPENING_PHRASE.match(sentence)
            if moved and rng.random() < self.opening_move_rate:
                rest = moved.group("rest")
                rest = rest[:1].upper() + rest[1:]
                sentence = f"{rest} {moved.group('phrase')[:1].lower()}{moved.group('phrase')[1:]}{moved.group('end')}"
            sentence = self._swap_words(sentence, rng)
        else:
            sentence = reported
        if rng.random() < self.connective_rate and sentence[:1].isupper() and not _proper_start(sentence):
            sentence = rng.choice(_CONNECTIVES_C) + sentence[:1].lower() + sentence[1:]
        return sentence

    def _reported(self, sentence: str, rng: random.Random) -> str | None:
        """The sentence in reported speech when it is a quote with a speaker (None otherwise)."""
        if rng.random() >= self.reported_speech:
            return None
        speaker = quote = None
        match = _SAID_FIRST.match(sentence.strip())
        if match:
            speaker, quote = match.group("speaker"), match.group("quote")
        else:
            match = _QUOTE_FIRST.match(sentence.strip())
            if match and _SAID_VERB.search(match.group("rest")):
                quote = match.group("quote")
                rest = match.group("rest").rstrip(". ")
                verb = _SAID_VERB.search(rest)
                assert verb is not None
                if verb.start() == 0:  # "said Name, ..." -> "Name said"
                    who = rest[verb.end():].strip(" ,")
                    speaker = f"{who} {verb.group(1)}"
                else:
                    speaker = rest
        if speaker is None or quote is None:
            return None
        speaker = speaker.replace(" says", " said").strip()
        quote = quote.strip().rstrip(",.!?")
        shifted = _WORD.sub(lambda m: _shift_c(m.group(0)), _contractions(quote))
        if not _proper_start(quote):
            shifted = shifted[:1].lower() + shifted[1:]
        speaker = self._swap_words(speaker, rng)
        return f"{speaker[:1].upper()}{speaker[1:]} that {self._swap_words(shifted, rng)}."

    def _swap_words(self, text: str, rng: random.Random, rate: float | None = None) -> str:
        return swap_words(text, self.synonyms, self.swap_rate if rate is None else rate, rng)


def _shift_c(word: str) -> str:
    shifted = _REPORTED_C.get(word.lower().replace("’", "'"))
    if shifted is None:
        return word
    return shifted[:1].upper() + shifted[1:] if word[0].isupper() and word != "I" else shifted


def _contractions(text: str) -> str:
    def expand(match: re.Match[str]) -> str:
        word = match.group(0)
        full = _CONTRACTIONS_C.get(word.lower().replace("’", "'"))
        if full is None:
            return word
        return full[:1].upper() + full[1:] if word[0].isupper() else full

    return _WORD.sub(expand, text)


SPINNER_C = HarshSpinner(name="C", synonyms=_thesaurus({}, _THESAURUS_C), swap_rate=0.77)
"""Tuned to the issue's held-out spinner: median word 4-gram Jaccard to the original 0.27, containment 0.44
(benchmarks/spin.py, seeds 11 and 12)."""
SPINNERS: dict[str, Spinner | HarshSpinner] = {"A": SPINNER_A, "B": SPINNER_B, "C": SPINNER_C}
"""Every spinner by name (make_corpus.py --spinners, benchmarks/spin.py)."""
