"""The offline extractor: deterministic patterns for explicit English statements, no model.

It reads only the user's turns (the assistant turn names what feedback is about) and extracts only
what a sentence states outright: when a sentence matches no pattern, nothing is extracted from it.
A match is also dropped when it sits in a question, a hypothetical or a negated clause, since those
state nothing about the user. A name, place or company is taken whole ("St. Mary's", "Yahoo! Japan",
"José Álvarez") or, when it may run on past what a pattern reads, not at all: never a truncated
prefix; a rule, preference or project runs to the end of its sentence or is not taken. Its output has
the same shape as a model's and goes through the same validation and merge path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from . import wordlists
from .turns import Turn


def _ci(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# ---- building blocks -----------------------------------------------------------------------------
# Letters of the Latin scripts, as character classes: "José Álvarez", "Łukasz", "Ødegård" are names too.
_LATIN = [chr(c) for c in range(0x250)]
_UP = "".join(c for c in _LATIN if c.isupper())
_LOW = "".join(c for c in _LATIN if c.islower())
_PARTICLE = rf"(?:{'|'.join(sorted(wordlists.NAME_PARTICLES))})"
_NAME_WORD = rf"(?:[{_UP}]')?[{_UP}][{_LOW}]+(?:['-]?[{_UP}]?[{_LOW}]+)*"  # Sarah, O'Brien, McKay, Anna's
_NAME = rf"({_NAME_WORD}(?: (?:{_PARTICLE} )*{_NAME_WORD}){{0,3}})"
_CAPITAL = rf"(?!I\b|I')[{_UP}]"  # a capitalised word that is not the pronoun "I" / "I'm"
# Dots stay inside: "St. Louis", "Washington, D.C."; so do particles: "Rio de Janeiro", "Coeur d'Alene".
_PLACE = rf"({_CAPITAL}[\w'.-]*(?:(?:[ ,]+|(?: {_PARTICLE})+ | d'){_CAPITAL}[\w'.-]*)*)"
_ORG = rf"({_CAPITAL}[\w&.'-]*(?:(?: &)? {_CAPITAL}[\w&.'-]*)*)"  # AT&T, Procter & Gamble, J.P. Morgan
# Right after a name the pattern took: what shows the name goes on beyond it ("Yahoo! Japan", "E*Trade",
# 'Toys"R"Us', "Kühne + Nagel", "Dr. Lee", "Banco do Brasil", a word in a script the patterns do not
# read). A name that may go on is not taken at all: never a truncated prefix.
_RUNS_ON = re.compile(
    rf"[^\s,;:.!?)\]\"”]|[\"”]\w|[.!?]+\w|[.!]\s+\S|\s*[&+]"
    rf"|\s+[\"“]?(?!I\b|I'|[{_LOW}])[^\W\d_]|\s+(?:{_PARTICLE} |d')"
)
# A lowercase word that may join a name ("wa", "ibn", "van") unless it is one that ends it ("from").
_NAME_ENDS = r"(?:from|in|at|and|but|with|near|to|by|for|on|here|now|living|working)\b"
_NAME_JOINED = re.compile(rf"\s+(?!{_NAME_ENDS})[{_LOW}]+\s+{_CAPITAL}")
# Only human languages: "answer in Markdown" and "I speak Python" set none. \b: "JavaScript" is not "Java".
_LANGUAGES = sorted((w.capitalize() for w in wordlists.HUMAN_LANGUAGES), key=len, reverse=True)
_LANGUAGE = rf"({'|'.join(_LANGUAGES)})\b"
_GREETING = (
    r"(?:hi|hello|hey|hiya|heya|howdy|greetings|yo|ciao|hola|bonjour|hallo|salut|good day|"
    r"(?:good )?(?:morning|afternoon|evening))"
)

# ---- guards: what makes a matching sentence state nothing ----------------------------------------
_CLAUSE_BREAK = _ci(r"[,;:()]|\s[-–—]\s|\b(?:and|but)\b")
# "Don't answer in French", "no need to keep answers short": the clause asks for the opposite.
_NEGATION = _ci(r"n't\b|\b(?:not|never|no|nor)\b")
# "What if I moved to Berlin", "suppose I live in ...": a hypothetical, not a fact; "he said I'm ...":
# someone else's words.
_HEDGE = _ci(
    r"\b(?:if|unless|whether|suppose|supposing|imagine|assuming|pretend|hypothetically|let's say|hope|"
    r"wish|might|could(?! you)|would(?! (?:like|love|prefer|appreciate|rather|you)\b)|"
    r"(?<!I )(?:said|says|told|tells|thinks|thought|claims|claimed))\b"
)
# "What if I moved to Berlin?", "I moved to Berlin?": a question asks, it states nothing.
_QUESTION_START = _ci(
    r"^(?:what|why|how|when|where|who|which|do|does|did|is|are|am|was|were|can|could|would|should|will|"
    r"shall|may|have|has)\b"
)
# An instruction starts its clause ("please always answer in ...") or follows "could you / I'd like you to".
_REQUEST_LEAD = _ci(
    r"(?:^|[,;:]\s*|\band\s+|\b(?:I (?:want|need|'d like|would like) you to|(?:can|could|would|will) you))"
    r"(?:\s*\b(?:please|kindly|just|always|also|only|now|from now on)\b,?)*\s*$"
)
_SUBJECT_START = _ci(r"^(?:I|we|you|he|she|they|it|my|our)\b")
# "Answer in Spanish when I write in Spanish": a conditional instruction is no standing preference.
_CONDITION_AFTER = _ci(r"\b(?:if|when|whenever|unless|only for)\b")

# ---- profile -------------------------------------------------------------------------------------
_NAME_GIVEN = re.compile(rf"\b(?i:my name is|my name's|call me)\s+{_NAME}(?=$|[\s,.!;:?)])")
# "I'm X" / "this is X" is a name only after a greeting or in an introduction ("I'm X, a nurse"):
# alone it reads the same as "I'm Nigerian" or "This is Django code".
_NAME_INTRO = re.compile(
    rf"\b(?i:(I'm|I am|this is))\s+{_NAME}(?=\s*(?:$|[,.!;:?)])|\s+(?:and|from|here|again|by the way)\b)"
)
_GREETING_LEAD = _ci(rf"{_GREETING}(?:\s+[\w-]+)?[\s,!.:-]*")
_FILLER_LEAD = _ci(r"(?:(?:so|well|oh|ok|okay|and|also|anyway|thanks|thank you)\b[\s,!.]*)*")
_INTRO_TAIL = re.compile(
    r",?\s*(?:(?:and\s+)?(?:an?|the)\s+\w|(?:and\s+)?I(?:'m| am| work| live)\b|from\s+[A-Z]|by the way|btw)"
)
_ROLE = re.compile(
    rf"\b(?:I work as|I'm|I am)(?: {_NAME_WORD},)? an? ([a-zA-Z -]{{2,40}}?)"
    r"(?= at | for | in |,|\.|!|;|\?| and |$)"
)
_AT_ORG = re.compile(rf"\s+(?:at|for) {_ORG}")
_WORK_AT = re.compile(rf"\bI (?:currently )?work (?:at|for) {_ORG}|\bI(?:'m| am) working (?:at|for) {_ORG}")
_LIVE_IN = re.compile(
    rf"\b(?:I live in|I(?:'m| am) based in|I(?:'ve| have)?(?: just| recently)? moved to) {_PLACE}"
)
_QUALIFIER = r"(?:(?:fluent|native|basic|some|a little|a bit of|conversational|decent|good) )?"
_SPOKEN = rf"{_QUALIFIER}{_LANGUAGE}"
_SPEAK = re.compile(rf"\bI speak ({_SPOKEN}(?:(?:,? and |,? or |, ){_SPOKEN})*)")

# ---- policies ------------------------------------------------------------------------------------
_ANSWERS = r"(?:answers?|responses?|replies|explanations?)"
_SHORT, _LONG = r"(?:short|brief|concise)", r"(?:detailed|long|thorough|in-depth)"
# *_ASK are instructions, so they count only as one: "I'll keep it short" is not.
_CONCISE_ASK = _ci(
    rf"\b(?:keep (?:your |the |all )?(?:{_ANSWERS}|it|them) {_SHORT}|be (?:brief|concise|succinct))\b"
)
_CONCISE_SAY = _ci(rf"\b(?:{_SHORT} {_ANSWERS},? please|I (?:prefer|like|want) {_SHORT} {_ANSWERS})\b")
_DETAILED_ASK = _ci(rf"\bgive me {_LONG} {_ANSWERS}\b")
_DETAILED_SAY = _ci(rf"\bI (?:prefer|like|want) {_LONG} {_ANSWERS}\b")
_ANSWER_IN = re.compile(
    rf"\b(?i:answer|respond|reply|write|talk|speak)(?i: to me)?(?i: only)? in {_LANGUAGE}"
)
# A rule, a preference and a project run to the end of their sentence, or are not taken.
_RULE = _ci(
    r"^(?:(?:please|and|also|so|ok|okay)\b[,:]?\s+)*"
    r"((?:always|never|don't|do not)(?:,? ever)? ([a-z]+(?:-[a-z]+)?)\b(.{0,120}?))[.!?]*$"
)
# "Don't give up", "don't mention it": everyday phrases, not rules for the assistant.
_IDIOMS = _ci(
    r"^(?:give (?:up|in)|show off|ask me (?:why|how)|start with me|keep (?:me waiting|going|it up)|"
    r"mention it|call us|leave me)\b"
)
_PREFER_OVER = _ci(r"\bI prefer ([^.!?]{1,60}?) (over|to|rather than) (.{1,60}?)[.!?]*$")

# ---- knowledge and feedback ----------------------------------------------------------------------
_DOING = r"(working on|building|writing|learning|studying|planning)"
_KNOWLEDGE = (
    (_ci(rf"\bI(?:'m| am) (?:currently )?{_DOING} (.{{3,160}})$"), "Is"),
    (_ci(r"\bmy goal is to (.{3,160})$"), "Goal: to"),
    (_ci(r"\bmy goal is (.{3,160})$"), "Goal:"),
)
# "I'm working on it", "I'm writing to ask ...", "I'm learning a lot": no project named.
_VAGUE_OBJECT = _ci(
    r"^(?:it|that|this|them|something|anything|stuff|things|a lot|lots|so much|much|more|back|"
    r"on|to (?:you|ask|say|tell|let|check|confirm|follow|inform|request))\b"
)
_SUBJECT = r"^(?:that|this|it|your (?:last |previous )?answer)"
# A verdict must end its clause and a "help" must not start a remark: "it's wrong to assume that",
# "it's perfect weather", "it doesn't help that the docs are bad" say nothing about the answer.
_VERDICT = (
    r"\b(?=(?:\s+(?:thanks|thank you|at all|a lot|so much|very much|for me|to me|for us|to us|me|us|"
    r"really|indeed|again|now|though))*\s*(?:$|[^\w\s]|and\b))"
)
_NO_REMARK = r"\b(?!\s+(?:that|to|when|if|how|whether)\b)"
_POSITIVE = _ci(
    rf"{_SUBJECT}(?: was| is|'s)? (?:perfect|great|very helpful|really helpful|helpful|exactly what I needed|"
    rf"spot on|super useful|useful){_VERDICT}|^(?:that|this) helped{_NO_REMARK}"
)
_NEGATIVE = _ci(
    rf"{_SUBJECT}(?: was| is|'s)? (?:not helpful|unhelpful|wrong|confusing|too long|too short|too technical|"
    rf"useless){_VERDICT}|{_SUBJECT}(?: wasn't| isn't|'s not| was not| is not) (?:helpful|useful|right|"
    rf"correct|clear|what I (?:asked|needed|wanted|meant)){_VERDICT}|"
    rf"^(?:that|this|it) (?:didn't|did not|doesn't|does not) help{_NO_REMARK}"
)


_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+")
_LAST_WORD = re.compile(r"([\w.']+)[.!]$")
_NEXT_WORD = re.compile(r"[\w']+")
_INITIALS = re.compile(r"(?:[A-Z]\.){2,}$")  # "J.P.", "D.C."


def _sentences(text: str) -> list[str]:
    text = text.replace("’", "'")
    pieces, start = [], 0
    for gap in _BREAK.finditer(text):
        following = _NEXT_WORD.match(text, gap.end())
        if "\n" in gap.group() or not following or _ends_sentence(text[start : gap.start()], following[0]):
            pieces.append(text[start : gap.start()])
            start = gap.end()
    pieces.append(text[start:])
    return [s.strip(" \t\"'") for s in pieces if s.strip()]


def _ends_sentence(before: str, next_word: str) -> bool:
    """Whether the mark ending ``before`` ends a sentence. After "!", initials or an abbreviation that
    leads into a name, only before a word that opens sentences: "Hi! My name is", but "Yahoo! Japan",
    "St. Mary's", "J.P. Morgan". After "Inc." or "Jr.", unless a lowercase word follows."""
    last = _LAST_WORD.search(before)
    if last is None:
        return True
    word = last.group(1)
    if (
        before.endswith("!")
        or word.lower() in wordlists.LEADING_ABBREVIATIONS
        or _INITIALS.search(word + ".")
    ):
        return next_word.lower() in wordlists.SENTENCE_OPENERS
    if word.lower() in wordlists.CLOSING_ABBREVIATIONS:
        return not next_word.islower() or next_word in wordlists.SENTENCE_OPENERS
    return True


def _clean(phrase: str) -> str:
    phrase = re.sub(r"\s+", " ", phrase).strip(" ,;:!?")
    # A final period ends the sentence, unless it ends initials: "Washington, D.C.".
    return phrase if _INITIALS.search(phrase) else phrase.strip(" ,.;:!?")


def _whole(sentence: str, match: re.Match[str], group: int) -> str | None:
    """A name-like group of a match, cleaned, or None when the name may go on past it."""
    value = match.group(group)
    if value is None or _RUNS_ON.match(sentence, match.end(group)):
        return None
    value = _clean(value)
    # "Dr", "St": a leading abbreviation ends no name; the sentence split cut what followed ("Dr. Who").
    return None if value.split()[-1].lower() in wordlists.LEADING_ABBREVIATIONS else value


def _in_question(sentence: str, end: int) -> bool:
    """Whether a match ending at ``end`` is part of a question ("What if I moved to Berlin?")."""
    if not sentence.rstrip().endswith("?"):
        return False
    # "Hi, I'm Sarah, can you help?": the question is a later clause, the introduction still stands.
    return bool(_QUESTION_START.match(sentence)) or not _CLAUSE_BREAK.search(sentence, end)


def _negated(sentence: str, start: int) -> bool:
    clause_start = max((b.end() for b in _CLAUSE_BREAK.finditer(sentence, 0, start)), default=0)
    return bool(_NEGATION.search(sentence, clause_start, start))


def _stated(sentence: str, match: re.Match[str]) -> bool:
    """Whether a match is a plain statement: not in a question, a hypothetical or a negated clause."""
    start, end = match.span()
    return not (_in_question(sentence, end) or _HEDGE.search(sentence, 0, start) or _negated(sentence, start))


def _imperative(sentence: str, match: re.Match[str]) -> bool:
    lead = sentence[: match.start()]
    # After "and" only when the sentence itself is an instruction: "I read and answer in German" is not.
    if re.search(r"\band\s+$", lead) and _SUBJECT_START.match(sentence):
        return False
    return bool(_REQUEST_LEAD.search(lead))


def _says(pattern: re.Pattern[str], sentence: str, *, asked: bool = False) -> re.Match[str] | None:
    """The first stated match of ``pattern``; with ``asked``, only an instruction counts."""
    for match in pattern.finditer(sentence):
        if _stated(sentence, match) and (
            not asked or (_imperative(sentence, match) and not _CONDITION_AFTER.search(sentence, match.end()))
        ):
            return match
    return None


def _introduces(sentence: str, intro: re.Match[str], greeted: bool) -> bool:
    """Whether "I'm X" / "this is X" introduces the user: right after a greeting, or as "I'm X, a nurse"."""
    lead = sentence[: intro.start()]
    if _GREETING_LEAD.fullmatch(lead) or (greeted and not lead.strip()):
        return True
    tail = _INTRO_TAIL.match(sentence, intro.end())
    return intro.group(1).lower() != "this is" and bool(_FILLER_LEAD.fullmatch(lead) and tail)


def _name(sentence: str, greeted: bool) -> str | None:
    given, intro = _says(_NAME_GIVEN, sentence), _says(_NAME_INTRO, sentence)
    if given:
        found, group = given, 1
    elif intro and _introduces(sentence, intro, greeted):
        found, group = intro, 2
    else:
        return None
    name = _whole(sentence, found, group)
    # "Hi, I'm French", "I am Anna's brother": a nationality or a possessive is not a name.
    if not name or name.split()[0].lower() in wordlists.NOT_NAMES or re.search(r"'s\b", name):
        return None
    # "Ngũgĩ wa Thiong'o", "Ali ibn Sina": a lowercase word before a capitalised one may join the name.
    return None if _NAME_JOINED.match(sentence, found.end(group)) else name


def _role(phrase: str) -> str | None:
    words = phrase.lower().split()
    if not words or len(words) > 4 or wordlists.FUNCTION_WORDS & set(words[:-1]):  # "a fan of the developer"
        return None
    # The last word must be a job title: "a vegetarian", "a big believer" are not roles.
    head = words[-1]
    job = head in wordlists.ROLE_HEADS or head.endswith(wordlists.ROLE_SUFFIXES)
    return _clean(phrase) if job and head not in wordlists.NOT_ROLES else None


def _profile(sentence: str, out: dict[str, Any], greeted: bool) -> None:
    if name := _name(sentence, greeted):
        out["name"] = name
    role = _says(_ROLE, sentence)
    if role and (found := _role(role.group(1))):
        out["role"] = found
        if (company := _AT_ORG.match(sentence, role.end(1))) and (org := _whole(sentence, company, 1)):
            out["company"] = org
    if (work := _says(_WORK_AT, sentence)) and (org := _whole(sentence, work, 1 if work.group(1) else 2)):
        out["company"] = org
    if (place := _says(_LIVE_IN, sentence)) and (location := _whole(sentence, place, 1)):
        out["location"] = location
    if spoken := _says(_SPEAK, sentence):
        out.setdefault("languages", []).extend(re.findall(_LANGUAGE, spoken.group(1)))


def _instruction(verb: str, rest: str) -> bool:
    """Whether "always/never/don't <verb> <rest>" tells the assistant what to do."""
    if verb == "be":  # "don't be so verbose" is a rule, "don't be silly" is not
        words = re.sub(r"^(?:too|so|overly|more|less|very|extra) ", "", rest.lower()).split()
        return bool(words) and words[0].strip(",") in wordlists.STYLE_ADJECTIVES
    if verb not in wordlists.RULE_VERBS or _IDIOMS.match(f"{verb} {rest}"):  # "never mind", "don't give up"
        return False
    return bool(rest) or verb in wordlists.INTRANSITIVE_RULE_VERBS  # "don't start" alone is not a rule


def _rule(sentence: str) -> str | None:
    rule = _says(_RULE, sentence)
    if not rule or not _instruction(rule.group(2).lower(), rule.group(3).strip()):
        return None
    text = re.sub(r",? please$", "", _clean(rule.group(1)), flags=re.IGNORECASE)
    return text[0].lower() + text[1:]


def _preference(sentence: str) -> str | None:
    prefer = _says(_PREFER_OVER, sentence)
    if not prefer:
        return None
    first, separator, second = (_clean(g) for g in prefer.groups())
    # "I prefer not to say", "I prefer it to be short": an infinitive, not a second option.
    if not (first and second) or first.split()[0].lower() in wordlists.NOT_AN_OPTION:
        return None
    if separator == "to" and second.split()[0].lower() in wordlists.INFINITIVES:  # "people to call me Sam"
        return None
    return f"prefer {first} over {second}"


def _policies(sentence: str, out: dict[str, Any]) -> None:
    concise = _says(_CONCISE_ASK, sentence, asked=True) or _says(_CONCISE_SAY, sentence)
    detailed = _says(_DETAILED_ASK, sentence, asked=True) or _says(_DETAILED_SAY, sentence)
    if concise:
        out["response_style"] = "concise"
    elif detailed:
        out["response_style"] = "detailed"
    if language := _says(_ANSWER_IN, sentence, asked=True):
        out["language"] = language.group(1)
    if rule := _rule(sentence):
        out.setdefault("rules", []).append(rule)
    if not (concise or detailed) and (preference := _preference(sentence)):
        out.setdefault("rules", []).append(preference)


def _knowledge(sentence: str) -> str | None:
    for pattern, lead in _KNOWLEDGE:
        match = _says(pattern, sentence)
        if match and not _VAGUE_OBJECT.match(match.groups()[-1]):
            return f"{lead} {' '.join(_clean(g) for g in match.groups())}"
    return None


def _about(context: str | None) -> str | None:
    if not context:
        return None
    first = _sentences(context)[0] if _sentences(context) else context
    return first[:80].rstrip(" ,.:;") or None


def extract_offline(turns: Sequence[Turn]) -> dict[str, Any]:
    """Explicit statements in the user's turns, shaped like the extraction output."""
    profile: dict[str, Any] = {}
    policies: dict[str, Any] = {}
    knowledge: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    context: str | None = None
    for turn in turns:
        if turn["role"] == "assistant":
            context = turn["content"]
            continue
        greeted = False  # the previous sentence was a bare greeting: "Hi! I'm Sarah."
        for sentence in _sentences(turn["content"]):
            _profile(sentence, profile, greeted)
            _policies(sentence, policies)
            if fact := _knowledge(sentence):
                knowledge.append({"text": fact})
            for sentiment, pattern in (("positive", _POSITIVE), ("negative", _NEGATIVE)):
                if pattern.search(sentence):
                    feedback.append(
                        {"text": _clean(sentence), "sentiment": sentiment, "target": _about(context)}
                    )
            greeted = bool(_GREETING_LEAD.fullmatch(sentence))
    return {
        "profile": profile or None,
        "policies": {"set": policies, "remove": []} if policies else None,
        "knowledge": knowledge,
        "feedback": feedback,
    }
