"""Generate examples/session-cache.jsonl and examples/session-cache.expected.json.

The workload is a web application's session cache, 20,000 operations long:

* logins set ``session:<token>`` to a small JSON document and ``csrf:<token>``
  to a token; requests get hot sessions (most recent logins), and now and then
  a cold or forged one (a miss, ``null``);
* per-client rate limiting under keys such as ``rate|203.0.113.7:28930115``;
* user preferences under ``user:<id>|prefs``; keys and values with accents,
  CJK, emoji, ``:`` and ``|``, the empty key and value, values with a newline,
  U+2028 or NUL;
* a few keys and values with lone surrogates (``\\ud800``), as legacy imports
  produce them; they are written as JSON escapes;
* about every 2,000 operations, a deploy: ``shutdown``, a few gets while the
  cache is down (all misses), then ``restore``; twice, a crash: ``restore``
  without a ``shutdown``, so the writes since the last snapshot are lost.

The operations are deterministic (fixed seed, no clock). The expected output
is computed by running the operations through snapkv itself. Regenerate both
files from the repository root with::

    python examples/make_workload.py

and check the result with ``snapkv run examples/session-cache.jsonl``.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import snapkv

SEED = 20_240_611
OPERATIONS = 20_000
DEPLOY_EVERY = 2_000
CRASHES_AFTER = (7_300, 15_100)  # operation counts after which the cache crashes

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "session-cache.jsonl"
EXPECTED = HERE / "session-cache.expected.json"

ROLES = ("reader", "reader", "reader", "editor", "admin")
NAMES = ("Ada", "Zoë", "José", "Łukasz", "Søren", "李雷", "Даша", "Aïcha", "O'Brien", "Nguyễn")
LANGS = ("en-GB", "fr-CA", "de-CH", "ja-JP", "pt-BR")
TIMEZONES = ("Europe/Zürich", "America/Montréal", "Asia/Tokyo", "UTC")
UNICODE_KEYS = (
    "café:menu",
    "user:Zoë|cart",
    "用户:42:设置",
    "😀:reactions:1337",
    "emoji:🍕|🍺",
    "path:/a|b/c:d",
    "",
    "tab\tand\nnewline",
)
UNICODE_VALUES = (
    "",
    "ok",
    "v1|v2:ok",
    "line one\nline two",
    "paragraph\u2028separator",
    "👍🏽 x3",
    "naïve café",
    "nul\x00byte",
    '{"items": ["🍕", "🍺"], "total": "12.50 €"}',
)
LONE_SURROGATE_KEYS = ("legacy:\ud800", "import:\udfff:orphan", "\ud800")
LONE_SURROGATE_VALUES = ("bad\ud800data", "\udfff", "ok")

# Characters written as \\u escapes: lone surrogates cannot be encoded in UTF-8
# at all, and U+0085, U+2028, U+2029 are line breaks to some line splitters.
_ESCAPED = re.compile("[\u0085\u2028\u2029\ud800-\udfff]")


def dumps(document: object) -> str:
    """JSON text, readable (no escaping of non-ASCII) but always valid UTF-8 on one line."""
    text = json.dumps(document, ensure_ascii=False)
    return _ESCAPED.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class Workload:
    """The application side: what it writes and reads, and what it believes is cached."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.ops: list[list[str]] = []
        self.sessions: list[str] = []  # tokens, oldest first
        self.counters: dict[str, int] = {}
        self.minute = 28_930_115  # minutes since the epoch, advanced as requests come

    def token(self, size: int = 16) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        return "".join(self.rng.choice(alphabet) for _ in range(size))

    def login(self) -> None:
        rng = self.rng
        token = self.token()
        uid = rng.randrange(1, 50_000)
        session = {
            "uid": uid,
            "name": rng.choice(NAMES),
            "role": rng.choice(ROLES),
            "exp": (self.minute + 60) * 60,  # in an hour
        }
        self.ops.append(["set", f"session:{token}", json.dumps(session, ensure_ascii=False)])
        if rng.random() < 0.5:
            self.ops.append(["set", f"csrf:{token}", self.token(12)])
        self.sessions.append(token)

    def request(self) -> None:
        rng = self.rng
        if self.sessions and rng.random() < 0.9:
            # Hot keys: most requests come from the most recent logins.
            window = self.sessions[-300:]
            age = min(int(rng.expovariate(1 / 40)), len(window) - 1)
            token = window[-1 - age]
        elif self.sessions and rng.random() < 0.5:
            token = rng.choice(self.sessions)  # a cold session, maybe lost in a crash
        else:
            token = self.token()  # forged or long expired: a miss
        self.ops.append(["get", f"session:{token}"])
        if rng.random() < 0.1:
            self.ops.append(["get", f"csrf:{token}"])

    def rate_limit(self) -> None:
        ip = f"203.0.113.{self.rng.randrange(1, 40)}"
        if self.rng.random() < 0.3:
            self.minute += 1
        key = f"rate|{ip}:{self.minute}"
        self.ops.append(["get", key])
        self.counters[key] = self.counters.get(key, 0) + 1
        self.ops.append(["set", key, str(self.counters[key])])

    def preferences(self) -> None:
        rng = self.rng
        key = f"user:{rng.randrange(1, 200)}|prefs"
        if rng.random() < 0.4:
            prefs = {
                "theme": rng.choice(("dark", "light")),
                "lang": rng.choice(LANGS),
                "tz": rng.choice(TIMEZONES),
            }
            self.ops.append(["set", key, json.dumps(prefs, ensure_ascii=False)])
        else:
            self.ops.append(["get", key])

    def unusual(self) -> None:
        rng = self.rng
        if rng.random() < 0.1:
            key = rng.choice(LONE_SURROGATE_KEYS)
            values = LONE_SURROGATE_VALUES
        else:
            key = rng.choice(UNICODE_KEYS)
            values = UNICODE_VALUES
        if rng.random() < 0.5:
            self.ops.append(["set", key, rng.choice(values)])
        else:
            self.ops.append(["get", key])

    def logout(self) -> None:
        if self.sessions:
            token = self.rng.choice(self.sessions[-300:])
            self.ops.append(["set", f"session:{token}", ""])  # revoked: an empty value

    def deploy(self) -> None:
        self.ops.append(["shutdown"])
        for _ in range(self.rng.randrange(0, 4)):
            self.request()  # the cache is down and empty: every get is a miss
        self.ops.append(["restore"])

    def crash(self) -> None:
        self.ops.append(["restore"])  # the restarted cache has only the last snapshot


def generate(seed: int = SEED, count: int = OPERATIONS) -> list[list[str]]:
    """The workload: exactly ``count`` operations, ending with a deploy and a get."""
    rng = random.Random(seed)
    app = Workload(rng)
    actions = (app.login, app.request, app.rate_limit, app.preferences, app.unusual, app.logout)
    weights = (20, 55, 12, 6, 5, 2)
    next_deploy = DEPLOY_EVERY
    crashes = list(CRASHES_AFTER)
    while len(app.ops) < count - 3:
        rng.choices(actions, weights)[0]()
        if len(app.ops) >= next_deploy:
            app.deploy()
            next_deploy += rng.randrange(DEPLOY_EVERY - 200, DEPLOY_EVERY + 200)
        if crashes and len(app.ops) >= crashes[0]:
            app.crash()
            crashes.pop(0)
    ops = app.ops[: count - 3]
    ops += [["shutdown"], ["restore"], ["get", f"session:{app.sessions[-1]}"]]
    return ops


def main() -> None:
    ops = generate()
    results = snapkv.run_operations(ops)
    with WORKLOAD.open("w", encoding="utf-8", newline="\n") as out:
        out.writelines(dumps(op) + "\n" for op in ops)
    with EXPECTED.open("w", encoding="utf-8", newline="\n") as out:
        out.write("[\n" + ",\n".join(dumps(result) for result in results) + "\n]\n")
    hits = sum(result is not None for result in results)
    print(
        f"{WORKLOAD.name}: {len(ops):,} operations, {WORKLOAD.stat().st_size:,} bytes; "
        f"{EXPECTED.name}: {len(results):,} gets, {hits:,} hits"
    )


if __name__ == "__main__":
    main()
