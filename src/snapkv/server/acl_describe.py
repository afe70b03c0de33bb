"""ACL rules back to text, as Redis 7.0 prints them (ACL LIST, ACL GETUSER, ACL SAVE).

Redis keeps no rule text: it describes the bit masks again each time
(``ACLDescribeUser``). So does this module, with Redis's algorithm, so that
``ACL SETUSER u +@all -get +get`` lists as ``+@all`` and a mask that
almost matches a category prints as that category and its exceptions.
"""

from __future__ import annotations

from snapkv.server.acl_rules import READ, USER_FLAGS, WRITE, Catalog, Selector, User
from snapkv.server.commandmeta import CATEGORIES

__all__ = [
    "describe_commands",
    "describe_selector",
    "describe_user",
    "key_pattern_text",
]

_ALL_PERMISSION = READ | WRITE


def describe_commands(selector: Selector, catalog: Catalog) -> str:
    """Redis's ``ACLDescribeSelectorCommandRules``: the shortest rules for the mask.

    Starts from ``+@all`` (when the future bit is set) or ``-@all``, then
    applies, greedily, the category with the fewest differences that has
    more commands in common than not, and ends with the single commands
    (and first arguments) that still differ.
    """
    additive = not selector.allowed & catalog.future
    rules = ["-@all" if additive else "+@all"]
    fake = catalog.everything if not additive else 0
    temp = selector.allowed
    applied: set[str] = set()
    while True:
        best = ""
        min_diff, max_same = 1 << 62, 0
        for name in CATEGORIES:
            if name in applied:
                continue
            mask = catalog.categories[name]
            on = (temp & mask).bit_count()
            off = mask.bit_count() - on
            diff, same = (off, on) if additive else (on, off)
            if same > diff and (diff < min_diff or (diff == min_diff and same > max_same)):
                best, min_diff, max_same = name, diff, same
        if not best:
            break
        mask = catalog.categories[best]
        fake = _category_bits(fake, catalog, mask, additive)
        temp = _category_bits(temp, catalog, mask, not additive)
        rules.append(("+@" if additive else "-@") + best)
        applied.add(best)
    for top, subs in catalog.order:
        for cmd in (top, *subs):
            user_bit = selector.allowed >> cmd & 1
            if user_bit != fake >> cmd & 1:
                rules.append(("+" if user_bit else "-") + catalog.names[cmd])
                family = catalog.family[cmd]
                fake = fake | family if user_bit else fake & ~family
            if cmd == top and not user_bit:
                rules.extend(f"+{catalog.names[cmd]}|{a}" for a in selector.firstargs.get(cmd, ()))
    return " ".join(rules)


def _category_bits(bits: int, catalog: Catalog, mask: int, allow: bool) -> int:
    for top, subs in catalog.order:
        for cmd in (top, *subs):
            if mask >> cmd & 1:
                family = catalog.family[cmd]
                bits = bits | family if allow else bits & ~family
    return bits


def key_pattern_text(pattern: str, flags: int) -> str:
    """Redis's ``sdsCatPatternString``: ``~p``, ``%R~p`` or ``%W~p``."""
    prefix = {_ALL_PERMISSION: "~", READ: "%R~", WRITE: "%W~"}[flags]
    return prefix + pattern


def describe_selector(selector: Selector, catalog: Catalog) -> str:
    """Redis's ``ACLDescribeSelector``: keys, channels, then command rules."""
    parts = []
    if selector.allkeys:
        parts.append("~*")
    else:
        parts.extend(key_pattern_text(p, f) for p, f in selector.keys.items())
    if selector.allchannels:
        parts.append("&*")
    else:
        parts.append("resetchannels")
        parts.extend("&" + c for c in selector.channels)
    parts.append(describe_commands(selector, catalog))
    return " ".join(parts)


def describe_user(user: User, catalog: Catalog) -> str:
    """Redis's ``ACLDescribeUser``: flags, ``#hash``es, the root selector, ``(selectors)``."""
    parts = [flag for flag in USER_FLAGS if flag in user.flags]
    parts.extend("#" + digest for digest in user.passwords)
    text = " ".join([*parts, describe_selector(user.root, catalog)])
    for selector in user.selectors[1:]:
        text += f" ({describe_selector(selector, catalog)})"
    return text
