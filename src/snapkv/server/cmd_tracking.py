"""CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO (Redis's ``clientCommand`` branches).

The options are parsed and checked exactly as Redis 7.0 does, in its order
and with its texts; what tracking then does is :mod:`snapkv.server.tracking`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snapkv.server.resp.writer import OK, bulk, integer
from snapkv.server.table import ERR_SYNTAX, CommandError, command, parse_int
from snapkv.server.tracking import Tracking, table

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

_CONN = "connection"
_SUB = "noscript loading stale"


@command("client|tracking", -3, _SUB, group=_CONN)
def client_tracking(client: Client, argv: list[str]) -> bytes:
    """CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP]."""
    redirect = 0
    bcast = optin = optout = noloop = False
    prefixes: list[str] = []
    i = 3
    while i < len(argv):
        option = argv[i].lower()
        more = i + 1 < len(argv)
        if option == "redirect" and more:
            i += 1
            if redirect:
                raise CommandError("ERR A client can only redirect to a single other client")
            redirect = parse_int(argv[i])
            if redirect not in client.server.clients:
                raise CommandError("ERR The client ID you want redirect to does not exist")
        elif option == "bcast":
            bcast = True
        elif option == "optin":
            optin = True
        elif option == "optout":
            optout = True
        elif option == "noloop":
            noloop = True
        elif option == "prefix" and more:
            i += 1
            prefixes.append(argv[i])
        else:
            raise CommandError(ERR_SYNTAX)
        i += 1
    switch = argv[2].lower()
    current = client.tracking
    if switch == "off":
        if current is not None:
            current.disable(client)
        return OK
    if switch != "on":
        raise CommandError(ERR_SYNTAX)
    if prefixes and not bcast:
        raise CommandError("ERR PREFIX option requires BCAST mode to be enabled")
    if current is not None and current.bcast != bcast:
        raise CommandError(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this "
            "client, and then re-enabling it with a different mode."
        )
    if bcast and (optin or optout):
        raise CommandError("ERR OPTIN and OPTOUT are not compatible with BCAST")
    if optin and optout:
        raise CommandError("ERR You can't specify both OPTIN mode and OPTOUT mode")
    if current is not None and ((optin and current.optout) or (optout and current.optin)):
        raise CommandError(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this "
            "client, and then re-enabling it with a different mode."
        )
    if bcast:
        _check_prefixes(current.prefixes if current is not None else set(), prefixes)
    _enable(
        client,
        redirect=redirect,
        bcast=bcast,
        optin=optin,
        optout=optout,
        noloop=noloop,
        prefixes=prefixes,
    )
    return OK


def _check_prefixes(existing: set[str], prefixes: list[str]) -> None:
    """Redis's ``checkPrefixCollisionsOrReply``: one client's prefixes never overlap."""
    for i, prefix in enumerate(prefixes):
        for old in sorted(existing, key=_raw):
            if old.startswith(prefix) or prefix.startswith(old):
                raise CommandError(
                    f"ERR Prefix '{prefix}' overlaps with an existing prefix '{old}'. "
                    "Prefixes for a single client must not overlap."
                )
        for other in prefixes[i + 1 :]:
            if other.startswith(prefix) or prefix.startswith(other):
                raise CommandError(
                    f"ERR Prefix '{prefix}' overlaps with another provided prefix '{other}'. "
                    "Prefixes for a single client must not overlap."
                )


def _enable(
    client: Client,
    *,
    redirect: int,
    bcast: bool,
    optin: bool,
    optout: bool,
    noloop: bool,
    prefixes: list[str],
) -> None:
    """Redis's ``enableTracking``: the flags are replaced, BCAST prefixes added to the old."""
    tracked = table(client.server)
    state = client.tracking if client.tracking is not None else Tracking(client)
    state.redirect = redirect
    state.broken = False
    state.bcast, state.optin, state.optout, state.noloop = bcast, optin, optout, noloop
    if bcast:
        for prefix in prefixes or [""]:
            state.prefixes.add(prefix)
            tracked.prefixes.setdefault(prefix, set()).add(client.id)
    if client.tracking is None:
        tracked.add(client)
    client.tracking = state
    client.update_plain()


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@command("client|caching", 3, _SUB, group=_CONN)
def client_caching(client: Client, argv: list[str]) -> bytes:
    """CLIENT CACHING YES|NO: whether the next command's keys are tracked (OPTIN / OPTOUT)."""
    state = client.tracking
    if state is None:
        raise CommandError(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode "
            "with OPTIN or OPTOUT mode enabled"
        )
    choice = argv[2].lower()
    if choice == "yes":
        if not state.optin:
            raise CommandError(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
            )
    elif choice == "no":
        if not state.optout:
            raise CommandError(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
            )
    else:
        raise CommandError(ERR_SYNTAX)
    state.caching = True
    return OK


@command("client|getredir", 2, _SUB, group=_CONN)
def client_getredir(client: Client, argv: list[str]) -> bytes:
    """The id invalidations go to: 0 for the client itself, -1 when not tracking."""
    state = client.tracking
    return integer(-1 if state is None else state.redirect)


@command("client|trackinginfo", 2, _SUB, group=_CONN)
def client_trackinginfo(client: Client, argv: list[str]) -> bytes:
    """The client's tracking flags (a set, in Redis's order), redirect and BCAST prefixes."""
    state = client.tracking
    flags = ["off"] if state is None else ["on"]
    redirect, prefixes = -1, []
    if state is not None:
        redirect, prefixes = state.redirect, sorted(state.prefixes, key=_raw)
        if state.bcast:
            flags.append("bcast")
        if state.optin:
            flags += ["optin", "caching-yes"] if state.caching else ["optin"]
        if state.optout:
            flags += ["optout", "caching-no"] if state.caching else ["optout"]
        if state.noloop:
            flags.append("noloop")
        if state.broken:
            flags.append("broken_redirect")
    resp3 = client.resp == 3
    # The flags are a RESP3 set whose order is Redis's, which a Python set
    # would not keep: written here rather than through encode().
    return b"".join(
        [
            b"%3\r\n" if resp3 else b"*6\r\n",
            bulk("flags"),
            (b"~%d\r\n" if resp3 else b"*%d\r\n") % len(flags),
            *[bulk(flag) for flag in flags],
            bulk("redirect"),
            integer(redirect),
            bulk("prefixes"),
            client.encode(prefixes),
        ]
    )
