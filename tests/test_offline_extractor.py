"""The offline extractor (``MemoryManager(model=None)``): explicit English statements, no model.

What it covers, one pattern family per sentence:
- profile: name ("my name is ...", "call me ...", and "I'm ..." / "this is ..." only after a greeting or in an
  introduction like "I'm Marco, a backend engineer": alone, "I'm X" reads the same as "I'm Nigerian"),
  role and company ("I work as a ... at ...", "I'm a ... at ...", with a job title as the last word),
  location ("I live in ...", "I moved to ...", "I'm based in ..."), spoken human languages ("I speak German
  and English").
- policies: answer length ("keep answers short", "be concise", "I prefer detailed answers"), answer
  language ("answer in Spanish", human languages only, as a request), standing rules ("please always
  <verb> ...", "never <verb> ...", "don't <verb> ...", with a verb that instructs the assistant),
  preferences ("I prefer X over Y").
- knowledge: projects and goals ("I'm working on / building / learning ...", "my goal is ...").
- feedback: plain reactions to the previous answer ("that was perfect", "that didn't help"), with the
  assistant turn they react to as the target.

What it does not cover (a model does): paraphrase, indirect statements, tone, format, expertise, facts
about other people, negated or withdrawn statements, questions and hypotheticals ("what if I moved to
...?"), anything inferred. When a sentence matches no
pattern nothing is extracted from it, and the assistant's words are never read as the user's.

Rows marked xfail are library bugs: sentences the extractor gets wrong today.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from agentmem import MemoryManager
from agentmem.extraction.offline import extract_offline
from agentmem.records import LearnResult


@pytest.fixture
def backend() -> str:
    """SQLite only: what the offline extractor reads from text; the store plays no part."""
    return "sqlite"


USER = "sarah"


def bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}")


def values(row: Any) -> tuple[Any, ...]:
    """A table row's values, whether a plain tuple or a pytest.param."""
    return tuple(row.values) if hasattr(row, "values") else tuple(row)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def remembered(mem: MemoryManager, user_id: str = USER) -> dict[str, Any]:
    """The user's live memory in the tables' shape; empty layers left out."""
    state = mem.get(user_id=user_id)
    shape: dict[str, Any] = {
        "profile": {k: v for k, v in dataclasses.asdict(state.profile).items() if v not in (None, [])},
        "policies": {k: v for k, v in dataclasses.asdict(state.policies).items() if v not in (None, [])},
        "knowledge": [item.text for item in state.knowledge],
        "feedback": [(item.data.text, item.data.sentiment, item.data.target) for item in state.feedback],
    }
    return {layer: value for layer, value in shape.items() if value}


def assert_changes_match_memory(mem: MemoryManager, result: LearnResult) -> None:
    """For a fresh user: every change is an add, and names exactly the items get() returns."""
    assert {c.op for c in result.all_changes} <= {"add"}
    items = mem.get(user_id=USER).items
    assert sorted((c.layer, c.item_id) for c in result.all_changes) == sorted((i.layer, i.id) for i in items)
    assert result.usage.extractor == "offline"
    assert result.usage.model_calls == 0


# ---- what is extracted, exactly ------------------------------------------------------------------

EXTRACTED = [
    # name
    ("Hi, I'm Sarah.", {"profile": {"name": "Sarah"}}),
    ("Hi! I'm Sarah.", {"profile": {"name": "Sarah"}}),
    ("Good morning, I'm Sarah Connor.", {"profile": {"name": "Sarah Connor"}}),
    ("Hi, this is Tom.", {"profile": {"name": "Tom"}}),
    ("Thanks, I'm Sarah by the way.", {"profile": {"name": "Sarah"}}),
    ("My name is Sarah Connor.", {"profile": {"name": "Sarah Connor"}}),
    ("Hello! My name is Aiko.", {"profile": {"name": "Aiko"}}),
    ("Call me Sam.", {"profile": {"name": "Sam"}}),
    ("Hi, I'm Sarah, can you help me?", {"profile": {"name": "Sarah"}}),  # the question is a later clause
    # role and company
    (
        "I work as a data scientist at Acme.",
        {"profile": {"role": "data scientist", "company": "Acme"}},
    ),
    ("I'm a software engineer at Google.", {"profile": {"role": "software engineer", "company": "Google"}}),
    ("I'm an AI researcher at DeepMind", {"profile": {"role": "AI researcher", "company": "DeepMind"}}),
    ("I work for Acme Corp.", {"profile": {"company": "Acme Corp"}}),
    (
        "I'm Sarah, a data scientist at Acme.",
        {"profile": {"name": "Sarah", "role": "data scientist", "company": "Acme"}},
    ),
    (
        "Hi, I'm Sarah, a data scientist at Acme",
        {"profile": {"name": "Sarah", "role": "data scientist", "company": "Acme"}},
    ),
    (
        "I'm Marco, a backend engineer at Finly.",
        {"profile": {"name": "Marco", "role": "backend engineer", "company": "Finly"}},
    ),
    ("I'm a nurse.", {"profile": {"role": "nurse"}}),
    ("I’m a teacher.", {"profile": {"role": "teacher"}}),  # a typographic apostrophe
    ("I am a software developer.", {"profile": {"role": "software developer"}}),
    ("I'm a Python developer.", {"profile": {"role": "Python developer"}}),
    ("I'm a high-school teacher.", {"profile": {"role": "high-school teacher"}}),
    ("I'm a PhD student.", {"profile": {"role": "PhD student"}}),
    ("I'm a cardiologist.", {"profile": {"role": "cardiologist"}}),
    ("I'm a product manager at Spotify.", {"profile": {"role": "product manager", "company": "Spotify"}}),
    ("I'm working at Google.", {"profile": {"company": "Google"}}),
    # location
    ("I live in Berlin.", {"profile": {"location": "Berlin"}}),
    ("I'm based in New York.", {"profile": {"location": "New York"}}),
    ("I moved to Munich.", {"profile": {"location": "Munich"}}),
    ("I live in Berlin, I'm a nurse.", {"profile": {"location": "Berlin", "role": "nurse"}}),
    ("I live in Berlin, what's the weather like?", {"profile": {"location": "Berlin"}}),
    # languages
    ("I speak German and English.", {"profile": {"languages": ["German", "English"]}}),
    ("I speak English, French and Spanish.", {"profile": {"languages": ["English", "French", "Spanish"]}}),
    ("I speak fluent German and some French.", {"profile": {"languages": ["German", "French"]}}),
    ("I speak German and JavaScript.", {"profile": {"languages": ["German"]}}),
    # explicit preferences and rules
    ("Keep answers short.", {"policies": {"response_style": "concise"}}),
    ("Please keep your answers brief.", {"policies": {"response_style": "concise"}}),
    ("I prefer detailed answers.", {"policies": {"response_style": "detailed"}}),
    ("please always use bullet points", {"policies": {"rules": ["always use bullet points"]}}),
    ("Never use emojis.", {"policies": {"rules": ["never use emojis"]}}),
    ("Don't use jargon.", {"policies": {"rules": ["don't use jargon"]}}),
    ("please always use type hints", {"policies": {"rules": ["always use type hints"]}}),
    (
        "Please always include tests in code examples.",
        {"policies": {"rules": ["always include tests in code examples"]}},
    ),
    (
        "Always number review comments, most severe first.",
        {"policies": {"rules": ["always number review comments, most severe first"]}},
    ),
    ("Also, never use emojis, please.", {"policies": {"rules": ["never use emojis"]}}),
    ("Never apologize.", {"policies": {"rules": ["never apologize"]}}),
    ("Don't be so verbose.", {"policies": {"rules": ["don't be so verbose"]}}),
    ("Always answer in Markdown.", {"policies": {"rules": ["always answer in Markdown"]}}),
    ("Don't call me Sam.", {"policies": {"rules": ["don't call me Sam"]}}),
    ("I prefer Python over Java.", {"policies": {"rules": ["prefer Python over Java"]}}),
    ("I prefer tabs to spaces.", {"policies": {"rules": ["prefer tabs over spaces"]}}),
    ("I prefer C over Rust.", {"policies": {"rules": ["prefer C over Rust"]}}),
    ("Answer in Spanish.", {"policies": {"language": "Spanish"}}),
    ("Please respond in German.", {"policies": {"language": "German"}}),
    ("Write in Spanish.", {"policies": {"language": "Spanish"}}),
    ("I would like you to answer in Spanish.", {"policies": {"language": "Spanish"}}),
    ("Be brief.", {"policies": {"response_style": "concise"}}),
    (
        "Never answer in French, answer in English.",
        {"policies": {"language": "English", "rules": ["never answer in French, answer in English"]}},
    ),
    (
        "Please always answer in Spanish.",
        {"policies": {"language": "Spanish", "rules": ["always answer in Spanish"]}},
    ),
    (
        "Please keep your answers brief and answer in German.",
        {"policies": {"response_style": "concise", "language": "German"}},
    ),
    # projects and goals
    ("I'm working on a churn model.", {"knowledge": ["Is working on a churn model"]}),
    ("I'm building a chatbot.", {"knowledge": ["Is building a chatbot"]}),
    ("I'm learning Rust.", {"knowledge": ["Is learning Rust"]}),
    ("My goal is to run a marathon.", {"knowledge": ["Goal: to run a marathon"]}),
    # several statements in one message
    (
        "Hi! I'm Sarah. I work as a data scientist at Acme and I live in Berlin. Keep answers short.",
        {
            "profile": {"name": "Sarah", "role": "data scientist", "company": "Acme", "location": "Berlin"},
            "policies": {"response_style": "concise"},
        },
    ),
    # feedback without an assistant turn: no target
    ("That was perfect!", {"feedback": [("That was perfect", "positive", None)]}),
    ("That helped a lot!", {"feedback": [("That helped a lot", "positive", None)]}),
    ("That wasn't helpful.", {"feedback": [("That wasn't helpful", "negative", None)]}),
    ("That isn't helpful", {"feedback": [("That isn't helpful", "negative", None)]}),
    ("That's not what I asked.", {"feedback": [("That's not what I asked", "negative", None)]}),
    # a negated instruction is a rule, never the opposite preference
    ("Don't answer in French.", {"policies": {"rules": ["don't answer in French"]}}),
    ("Don't keep answers short.", {"policies": {"rules": ["don't keep answers short"]}}),
    # one-letter options
    ("I prefer Python over R.", {"policies": {"rules": ["prefer Python over R"]}}),
]


@pytest.mark.parametrize(("said", "expected"), EXTRACTED, ids=[values(row)[0] for row in EXTRACTED])
def test_explicit_statements_are_extracted_exactly(
    mem: MemoryManager, said: str, expected: dict[str, Any]
) -> None:
    result = mem.learn(user(said), user_id=USER)

    assert remembered(mem) == expected
    assert_changes_match_memory(mem, result)


# ---- what must extract nothing -------------------------------------------------------------------

NOTHING = [
    "I'm a bit tired today",
    "I'm a big fan of jazz",
    "I'm French",
    "I'm Brazilian.",
    "I'm not sure",
    "I'm happy",
    "Thanks, I'm good",
    "What is Python?",
    "my friend lives in Paris",
    "My sister lives in Paris and works at Google.",
    "The assistant said I should use Rust",
    "He is a data scientist at Google",
    "Keep in mind the deadline",
    "I never said that",
    "I'm not a developer.",
    "I used to live in Paris.",
    "I'm in Berlin this week.",
    "I'm no longer working on the churn model.",
    "I'm a customer of yours.",
    "Call me when you're done.",
    # "always/never/don't" without an instruction to the assistant
    "Never mind.",
    "Don't worry about it.",
    "Never heard of it",
    "Always happy to help",
    "Don't give up.",
    "Don't ask me why.",
    "Don't mention it.",
    "Don't be silly.",
    "Never use emojis?",
    # answer language: only a request, only a human language
    "I write in Python.",
    "Answer in Markdown.",
    "I read and answer in German.",
    "Can you answer in Spanish?",
    "Answer in Spanish if I write in Spanish.",
    # a possessive, a nationality, a belief or a thing is not a name
    "I am Anna's brother.",
    "Hi, I'm Anna's brother.",
    "I'm Sarah",  # bare "I'm X" reads the same as the next rows: a name only after a greeting or in an intro
    "I'm Nigerian.",
    "I'm Austrian.",
    "I'm Catholic.",
    "I'm Jewish.",
    "Hi, I'm Nigerian.",
    "This is Django code.",
    "Hi, this is Django code.",
    "Call me Monday.",
    # a diet, a belief or a fandom is not a job
    "I am a vegetarian.",
    "I'm a vegan.",
    "I'm a Buddhist.",
    "I'm a big believer in tests.",
    "I'm a fan of the developer.",
    # questions and hypotheticals state nothing
    "What if I moved to Berlin?",
    "If I moved to Berlin, would I need a visa?",
    "Suppose I live in Berlin.",
    "I moved to Berlin?",
    "If I'm learning Rust, should I read the book first?",
    # someone else's words
    "He said I'm a developer.",
    "My boss thinks I'm a good manager.",
    # programming languages are not spoken ones
    "I speak Python and JavaScript.",
    # general remarks are not feedback on the answer
    "It's wrong to assume that.",
    "It's perfect weather today.",
    "That's great news for the team.",
    "It's useful to know.",
    "It doesn't help that the docs are bad.",
    # the user talking about themselves, not asking for a style
    "I'll keep it short.",
    "I'll be brief.",
    "No need to keep answers short.",
    # an infinitive is not a second option
    "I prefer not to say.",
    "I prefer it to be short.",
    # no project named, no employer
    "I'm working on it.",
    "I'm writing to ask about my invoice.",
    "I'm learning a lot from you.",
    "I work on a plugin for Figma.",
]


@pytest.mark.parametrize("said", NOTHING)
def test_sentences_that_state_nothing_about_the_user_extract_nothing(mem: MemoryManager, said: str) -> None:
    # The extractor itself, so a pass does not hide behind the salience gate ...
    raw = extract_offline(user(said))
    assert raw == {"profile": None, "policies": None, "knowledge": [], "feedback": []}
    # ... and the whole learn path.
    result = mem.learn(user(said), user_id=USER)
    assert result.all_changes == []
    assert mem.get(user_id=USER).items == []


# ---- a value is stored whole or not at all ---------------------------------------------------------

LONG_PROJECT = "a data pipeline that " + "moves the nightly exports into the warehouse and " * 4 + "back"

# (said, where the value goes, the whole value, whether the extractor takes it). A value it does not
# take must leave nothing in that place: never a prefix such as "St", "Yahoo" or "José".
WHOLE_OR_NOTHING = [
    ("I work at Yahoo! Japan.", "company", "Yahoo! Japan", False),
    ("I'm a data scientist at Yahoo! Japan.", "company", "Yahoo! Japan", False),
    ("I went to St. Mary's.", "location", "St. Mary's", False),
    ("I live in St. Mary's.", "location", "St. Mary's", True),
    ("I live in St. Louis.", "location", "St. Louis", True),
    ("My name is José Álvarez.", "name", "José Álvarez", True),
    ("My name is Åsa Ødegård.", "name", "Åsa Ødegård", True),
    ("My name is Łukasz Żółć.", "name", "Łukasz Żółć", True),
    ("My name is María José García López.", "name", "María José García López", True),
    ("Call me Jean-Luc.", "name", "Jean-Luc", True),
    ("Hi, I'm Chloé.", "name", "Chloé", True),
    ("My name is Dr. Lee.", "name", "Dr. Lee", False),
    ("My name is John F. Kennedy.", "name", "John F. Kennedy", False),
    ("My name is José Дмитрий.", "name", "José Дмитрий", False),
    ("My name is Dr. Who.", "name", "Dr. Who", False),
    ("My name is Ngũgĩ wa Thiong'o.", "name", "Ngũgĩ wa Thiong'o", False),
    ("My name is Joan of Arc.", "name", "Joan of Arc", False),
    ("My name is Sarah from Berlin.", "name", "Sarah", True),
    ("I work at AT&T.", "company", "AT&T", True),
    ("I work at O'Reilly Media.", "company", "O'Reilly Media", True),
    ("I work at Procter & Gamble.", "company", "Procter & Gamble", True),
    ("I work for Johnson & Johnson.", "company", "Johnson & Johnson", True),
    ("I work at St. Mary's Hospital.", "company", "St. Mary's Hospital", True),
    ("I work at J.P. Morgan.", "company", "J.P. Morgan", True),
    ("I work at Ziff Davis Inc. in Berlin.", "company", "Ziff Davis Inc", True),
    ("I work at E*Trade.", "company", "E*Trade", False),
    ("I work at Kühne + Nagel.", "company", "Kühne + Nagel", False),
    ('I work at Toys"R"Us.', "company", 'Toys"R"Us', False),
    ("I work at Banco do Brasil.", "company", "Banco do Brasil", False),
    ("I live in Winston-Salem.", "location", "Winston-Salem", True),
    ("I'm from Saint-Étienne.", "location", "Saint-Étienne", False),
    ("I live in Saint-Étienne.", "location", "Saint-Étienne", True),
    ("I live in Washington, D.C.", "location", "Washington, D.C.", True),
    ("I moved to Washington D.C. last year.", "location", "Washington D.C.", True),
    ("I live in Rio de Janeiro.", "location", "Rio de Janeiro", True),
    ("I live in Coeur d'Alene.", "location", "Coeur d'Alene", True),
    ("I'm working on St. Mary's website.", "knowledge", "Is working on St. Mary's website", True),
    (f"I'm working on {LONG_PROJECT}.", "knowledge", f"Is working on {LONG_PROJECT}", False),
    ("Always cite St. Mary's guidelines.", "rules", "always cite St. Mary's guidelines", True),
    ("Don't use jargon, e.g. acronyms.", "rules", "don't use jargon, e.g. acronyms", True),
]


def stored_at(mem: MemoryManager, place: str) -> list[str]:
    """What the user's memory holds in one place: a profile field, the rules, or the facts."""
    memory = remembered(mem)
    if place == "knowledge":
        return list(memory.get("knowledge", []))
    if place == "rules":
        return list(memory.get("policies", {}).get("rules", []))
    value = memory.get("profile", {}).get(place)
    return [] if value is None else [value]


@pytest.mark.parametrize(
    ("said", "place", "whole", "taken"), WHOLE_OR_NOTHING, ids=[row[0][:50] for row in WHOLE_OR_NOTHING]
)
def test_a_value_is_stored_whole_or_not_at_all(
    mem: MemoryManager, said: str, place: str, whole: str, taken: bool
) -> None:
    mem.learn(user(said), user_id=USER)

    assert stored_at(mem, place) == ([whole] if taken else [])


# ---- context and order -------------------------------------------------------------------------

ANSWER = "Use df.dropna() to drop rows with missing values. It returns a new frame."


@pytest.mark.parametrize(
    ("reaction", "expected"),
    [
        ("that was perfect", ("that was perfect", "positive")),
        ("That was exactly what I needed!", ("That was exactly what I needed", "positive")),
        ("that didn't help", ("that didn't help", "negative")),
        ("Your last answer was too long.", ("Your last answer was too long", "negative")),
    ],
)
def test_feedback_targets_the_assistant_turn_it_reacts_to(
    mem: MemoryManager, reaction: str, expected: tuple[str, str]
) -> None:
    messages = [
        {"role": "user", "content": "How do I clean missing data in pandas?"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": reaction},
    ]

    result = mem.learn(messages, user_id=USER)

    target = "Use df.dropna() to drop rows with missing values"  # the answer's first sentence
    assert remembered(mem) == {"feedback": [(*expected, target)]}
    assert_changes_match_memory(mem, result)


def test_the_assistants_words_never_become_user_facts(mem: MemoryManager) -> None:
    messages = [
        {"role": "assistant", "content": "I'm Claude, an AI assistant at Anthropic. I live in the cloud."},
        {"role": "user", "content": "ok cool"},
    ]

    result = mem.learn(messages, user_id=USER)

    assert result.all_changes == []
    assert mem.get(user_id=USER).items == []


def test_a_move_replaces_the_old_location_and_keeps_it_in_history(mem: MemoryManager) -> None:
    mem.learn(user("I live in Berlin."), user_id=USER)
    berlin = mem.get(user_id=USER).item("profile", "location")
    assert berlin is not None

    result = mem.learn(user("I moved to Munich."), user_id=USER)

    [change] = result.all_changes
    assert (change.op, change.layer, change.item_id, change.old, change.new) == (
        "update",
        "profile",
        berlin.id,
        "Berlin",
        "Munich",
    )
    assert mem.get(user_id=USER).profile.location == "Munich"
    assert [(e.op, e.old, e.new) for e in mem.history(user_id=USER, item_id=berlin.id)] == [
        ("add", None, "Berlin"),
        ("update", "Berlin", "Munich"),
    ]


def test_languages_accumulate_across_conversations(mem: MemoryManager) -> None:
    mem.learn(user("I speak German."), user_id=USER)
    mem.learn(user("I speak English and German."), user_id=USER)

    assert mem.get(user_id=USER).profile.languages == ["German", "English"]


def test_every_user_turn_is_read_and_the_latest_statement_wins(mem: MemoryManager) -> None:
    messages = [
        {"role": "user", "content": "I live in Berlin."},
        {"role": "assistant", "content": "Berlin is lovely."},
        {"role": "user", "content": "Actually, I moved to Hamburg. I'm learning Rust."},
    ]

    mem.learn(messages, user_id=USER)

    assert remembered(mem) == {"profile": {"location": "Hamburg"}, "knowledge": ["Is learning Rust"]}


def test_a_secret_inside_a_statement_is_dropped_and_counted(mem: MemoryManager) -> None:
    result = mem.learn(user("My goal is to ship v2 and my password is hunter2."), user_id=USER)

    assert result.all_changes == []
    assert result.usage.dropped == {"secret": 1}
    assert "hunter2" not in str(mem.export_user(USER))
