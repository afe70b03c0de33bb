"""Protected mode, as Redis 7.0's ``clientAcceptHandler`` (networking.c).

While ``protected-mode`` is on and the default user needs no password, a
client whose address is not 127.0.0.1 or ::1 gets :data:`DENIED` and is
closed before any request is read. It guards against a server opened
beyond loopback by mistake; with a password it stands aside. Redis 7.0
compares the peer's address text with exactly those two, so 127.0.0.2 is
refused too (7.2 widened it to 127.0.0.0/8); this follows 7.0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from snapkv.server.acl import default_user_nopass

if TYPE_CHECKING:
    from snapkv.server.state import ServerState

__all__ = ["DENIED", "refused"]

#: Redis 7.0's protected-mode refusal, byte for byte (networking.c), as clients match it.
DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
    b"password is set for the default user. In this mode connections are only accepted from "
    b"the loopback interface. If you want to connect from external computers to Redis you "
    b"may adopt one of the following solutions: 1) Just disable protected mode sending the "
    b"command 'CONFIG SET protected-mode no' from the loopback interface by connecting to "
    b"Redis from the same host the server is running, however MAKE SURE Redis is not "
    b"publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change "
    b"permanent. 2) Alternatively you can just disable the protected mode by editing the "
    b"Redis configuration file, and setting the protected mode option to 'no', and then "
    b"restarting the server. 3) If you started the server manually just for testing, restart "
    b"it with the '--protected-mode no' option. 4) Setup a an authentication password for "
    b"the default user. NOTE: You only need to do one of the above things in order for the "
    b"server to start accepting connections from the outside.\r\n"
)
#: The peers protected mode lets in: Redis 7.0 compares the address text with
#: exactly these two (so 127.0.0.2 is refused there too).
LOCAL_PEERS = frozenset({"127.0.0.1", "::1"})


def refused(state: ServerState, peer: Any) -> bool:
    """Whether a client from ``peer`` (a socket's peer name) gets DENIED now."""
    if not state.config.protected_mode or not default_user_nopass(state):
        return False
    return not (isinstance(peer, tuple) and peer[0] in LOCAL_PEERS)
