"""Requests for the argument fuzz (test_fuzz_commands.py), built from Redis 7.0's own grammar.

Words drawn at random rarely get past a command's first argument (a
ZUNION with a random ``numkeys`` is refused before it reads a key), so most
requests follow the command's arguments as redis-server 7.0 documents them
(``COMMAND DOCS``, saved in ``redis70_arguments.json``: each argument's
type, token, and whether it is optional, repeated or one of several): keys
of the right kind, integers and doubles where numbers go, ``numkeys``
matching the keys that follow, tokens where options go. Then a request is
often mutated (an argument replaced, dropped, or a word added) so that the
error paths are reached from deep inside the grammar too. Commands Redis
7.0 does not document get vocabulary words only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from hypothesis import strategies as st

from fuzz_vocabulary import NUMBERS, SCRIPTS, TOKENS, WORDS

#: Argument specs by command: ``[type, {"n": name, "t": token, "o": optional, "m": multiple,
#: "a": nested arguments}]`` (``container|sub`` for subcommands).
GRAMMAR: Final[dict[str, list[Any]]] = json.loads(
    (Path(__file__).parent / "redis70_arguments.json").read_text()
)

#: The keys the fuzz seeds (every type, a number, a float, a key with a time to live).
KEYS: Final = ("str", "num", "float", "hash", "list", "set", "iset", "zset", "stream", "vol")
MISSING: Final = ("missing", "", "{str}", "new")
#: Elements the seeded containers hold, and a few they do not.
MEMBERS: Final = ("a", "b", "c", "f", "g", "h", "1", "2", "lo", "hi", "x", "v", "zz")
IDS: Final = ("1-1", "2-0", "0-0", "0", "*", "$", ">", "+", "-", "1-*", "3", "0-1", "(1-1")
SMALL_INTS: Final = st.integers(-3, 12).map(str)
#: Settings for CONFIG GET and SET (some refused at runtime, one unknown).
SETTINGS: Final = [
    "maxmemory",
    "appendfsync",
    "save",
    "loglevel",
    "notify-keyspace-events",
    "slowlog-max-len",
    "slowlog-log-slower-than",
    "hz",
    "timeout",
    "dir",
    "dbfilename",
    "databases",
    "port",
    "bind",
    "requirepass",
    "maxclients",
    "lua-time-limit",
    "busy-reply-threshold",
    "appendonly",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "tcp-keepalive",
    "nosuch",
    "*",
]
GLOBAL_TOKENS: Final = sorted({token for tokens in TOKENS.values() for token in tokens.split()})

JUNK: Final = st.one_of(
    st.binary(max_size=12).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.text(max_size=8),
    st.sampled_from(["\0", "\r\n", " ", "a b", "\xff\xfe", "*", "[", "\\", "h*", "[a-"]),
)
NUMBER: Final = st.one_of(SMALL_INTS, SMALL_INTS, st.sampled_from(NUMBERS))
DOUBLE: Final = st.one_of(
    SMALL_INTS,
    st.sampled_from(["1.5", "-2.5", "inf", "-inf", "+inf", "0.1", "1e2", "nan", "(1", "1e400"]),
    st.sampled_from(NUMBERS),
)
KEY: Final = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), st.sampled_from(MISSING))
STRING: Final = st.one_of(
    st.sampled_from(MEMBERS),
    st.sampled_from(MEMBERS),
    KEY,
    st.sampled_from(IDS),
    NUMBER,
    JUNK,
)
PATTERN: Final = st.sampled_from(["*", "h*", "*a*", "[a-c]*", "?", "\\*", "[", "x[^a]", ""])
#: What goes where an argument of each ``COMMAND DOCS`` type goes.
BY_TYPE: Final[dict[str, st.SearchStrategy[str]]] = {
    "key": KEY,
    "integer": NUMBER,
    "double": DOUBLE,
    "unix-time": st.one_of(SMALL_INTS, st.sampled_from(["1700000000", "4102444800", "-1"])),
    "pattern": PATTERN,
    "string": STRING,
}
#: Names of string arguments that want a particular kind of word.
BY_NAME: Final[dict[str, st.SearchStrategy[str]]] = {
    "script": st.sampled_from(SCRIPTS),
    "function-code": st.sampled_from(SCRIPTS),
    "sha1": st.sampled_from(SCRIPTS),
    "function": st.sampled_from(["f", "g", "nosuch"]),
    "library-name": st.sampled_from(["fuzz", "fuzz2", "nosuch"]),
    "id": st.sampled_from(IDS),
    "start": st.one_of(st.sampled_from(IDS), NUMBER),
    "end": st.one_of(st.sampled_from(IDS), NUMBER),
    "min": st.one_of(DOUBLE, st.sampled_from(["[a", "(b", "-", "+"])),
    "max": st.one_of(DOUBLE, st.sampled_from(["[c", "(b", "-", "+"])),
    "parameter": st.sampled_from(SETTINGS),
    "serialized-value": st.sampled_from(["\x00\x03abc\t\x00", "junk", ""]),
}


def word(full_name: str) -> st.SearchStrategy[str]:
    """Any word a request for ``full_name`` might hold, from the whole vocabulary."""
    own = TOKENS.get(full_name, "").split()
    choices = [KEY, NUMBER, STRING, st.sampled_from(WORDS), st.sampled_from(GLOBAL_TOKENS)]
    choices.append(st.sampled_from(SCRIPTS))
    choices.append(JUNK)
    if own:
        choices = [st.sampled_from(own), st.sampled_from(own), *choices]
    return st.one_of(choices)


def _value(draw: st.DrawFn, kind: str, spec: dict[str, Any]) -> list[str]:
    """One occurrence of an argument (its token, if any, then its value)."""
    out = [spec["t"]] if "t" in spec else []
    if kind == "tok":
        return out
    if kind == "oneof":
        choice = draw(st.sampled_from(spec["a"]))
        return out + _value(draw, choice[0], choice[1])
    if kind == "block":
        return out + _arguments(draw, spec["a"])
    name = spec.get("n", "")
    strategy = BY_NAME[name] if name in BY_NAME else BY_TYPE.get(kind, STRING)
    return [*out, draw(strategy)]


def _arguments(draw: st.DrawFn, specs: list[Any]) -> list[str]:
    """The arguments ``specs`` describe, with ``numkeys`` mostly matching the keys after it."""
    out: list[str] = []
    numkeys_at = None
    for kind, spec in specs:
        if spec.get("o") and draw(st.integers(0, 2)) == 0:
            continue
        times = draw(st.integers(1, 3)) if spec.get("m") else 1
        start = len(out)
        for _ in range(times):
            out.extend(_value(draw, kind, spec))
        if spec.get("n") == "numkeys":
            numkeys_at = start
        elif numkeys_at is not None and kind == "key" and spec.get("m"):
            if draw(st.integers(0, 4)):
                out[numkeys_at] = str(times)
            numkeys_at = None
    return out


@st.composite
def requests(draw: st.DrawFn, full_name: str, arity: int) -> list[str]:
    """A request for the command ``full_name`` (``container|sub`` for a subcommand)."""
    head = full_name.split("|")
    head = [draw(st.sampled_from([n, n.upper()])) for n in head]
    specs = GRAMMAR.get(full_name)
    if specs is not None and draw(st.integers(0, 4)):
        args = _arguments(draw, specs)
    else:
        fixed = arity - len(head) if arity > 0 else None
        if fixed is not None and draw(st.integers(0, 4)):
            count = fixed
        else:
            count = draw(st.integers(max(0, abs(arity) - len(head)), abs(arity) + 6))
        args = draw(st.lists(word(full_name), min_size=count, max_size=count))
    for _ in range(draw(st.integers(0, 2)) if draw(st.booleans()) else 0):
        how = draw(st.integers(0, 2))
        where = draw(st.integers(0, len(args)))
        if how == 0 and where < len(args):
            args[where] = draw(word(full_name))
        elif how == 1 and where < len(args):
            del args[where]
        else:
            args.insert(where, draw(word(full_name)))
    return head + args
