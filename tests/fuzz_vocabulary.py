"""The words the argument fuzz (test_fuzz_commands.py) builds requests from.

Random bytes alone almost never get past a command's arity and its first
option, so most requests are built from words a command understands: keys
of every type (and missing ones), numbers at and past every edge Redis
checks, each command's option tokens, stream IDs, patterns, scripts, and
some junk. :data:`TOKENS` lists the option tokens of each command, read
from redis-server 7.0's ``COMMAND DOCS`` (every argument's ``token``);
:data:`WORDS` adds the enumerations ``COMMAND DOCS`` spells without one.
"""

from __future__ import annotations

from typing import Final

#: Option tokens by command (``COMMAND DOCS`` of Redis 7.0, ``container|sub`` for subcommands).
TOKENS: Final[dict[str, str]] = {
    "bgsave": "SCHEDULE",
    "blmove": "LEFT RIGHT",
    "blmpop": "COUNT LEFT RIGHT",
    "bzmpop": "COUNT MAX MIN",
    "client|caching": "NO YES",
    "client|kill": "ADDR ID LADDR MASTER NORMAL PUBSUB REPLICA SKIPME SLAVE TYPE USER",
    "client|list": "ID MASTER NORMAL PUBSUB REPLICA TYPE",
    "client|no-evict": "OFF ON",
    "client|pause": "ALL WRITE",
    "client|reply": "OFF ON SKIP",
    "client|tracking": "BCAST NOLOOP OFF ON OPTIN OPTOUT PREFIX REDIRECT",
    "client|unblock": "ERROR TIMEOUT",
    "command|list": "ACLCAT FILTERBY MODULE PATTERN",
    "copy": "DB REPLACE",
    "expire": "GT LT NX XX",
    "expireat": "GT LT NX XX",
    "flushall": "ASYNC SYNC",
    "flushdb": "ASYNC SYNC",
    "function|flush": "ASYNC SYNC",
    "function|list": "LIBRARYNAME WITHCODE",
    "function|load": "REPLACE",
    "function|restore": "APPEND FLUSH REPLACE",
    "getex": "EX EXAT PERSIST PX PXAT",
    "hello": "AUTH SETNAME",
    "hrandfield": "WITHVALUES",
    "hscan": "COUNT MATCH",
    "linsert": "AFTER BEFORE",
    "lmove": "LEFT RIGHT",
    "lmpop": "COUNT LEFT RIGHT",
    "lpos": "COUNT MAXLEN RANK",
    "memory|usage": "SAMPLES",
    "pexpire": "GT LT NX XX",
    "pexpireat": "GT LT NX XX",
    "restore": "ABSTTL FREQ IDLETIME REPLACE",
    "scan": "COUNT MATCH TYPE",
    "script|debug": "NO SYNC YES",
    "script|flush": "ASYNC SYNC",
    "set": "EX EXAT GET KEEPTTL NX PX PXAT XX",
    "shutdown": "ABORT FORCE NOSAVE NOW SAVE",
    "sintercard": "LIMIT",
    "sort": "ALPHA ASC BY DESC GET LIMIT STORE",
    "sort_ro": "ALPHA ASC BY DESC GET LIMIT",
    "sscan": "COUNT MATCH",
    "xadd": "* = LIMIT MAXLEN MINID NOMKSTREAM ~",
    "xinfo|stream": "COUNT FULL",
    "xrange": "COUNT",
    "xread": "BLOCK COUNT STREAMS",
    "xrevrange": "COUNT",
    "xsetid": "ENTRIESADDED MAXDELETEDID",
    "xtrim": "= LIMIT MAXLEN MINID ~",
    "zadd": "CH GT INCR LT NX XX",
    "zdiff": "WITHSCORES",
    "zinter": "AGGREGATE MAX MIN SUM WEIGHTS WITHSCORES",
    "zintercard": "LIMIT",
    "zinterstore": "AGGREGATE MAX MIN SUM WEIGHTS",
    "zmpop": "COUNT MAX MIN",
    "zrandmember": "WITHSCORES",
    "zrange": "BYLEX BYSCORE LIMIT REV WITHSCORES",
    "zrangebylex": "LIMIT",
    "zrangebyscore": "LIMIT WITHSCORES",
    "zrangestore": "BYLEX BYSCORE LIMIT REV",
    "zrevrange": "WITHSCORES",
    "zrevrangebylex": "LIMIT",
    "zrevrangebyscore": "LIMIT WITHSCORES",
    "zscan": "COUNT MATCH",
    "zunion": "AGGREGATE MAX MIN SUM WEIGHTS WITHSCORES",
    "zunionstore": "AGGREGATE MAX MIN SUM WEIGHTS",
}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: Words any command may be given: enumerations, subcommand-like words, settings.
WORDS: Final = _words(
    "LEFT RIGHT BEFORE AFTER MIN MAX ON OFF YES NO SYNC ASYNC WITHSCORES WITHVALUES COUNT "
    "MATCH TYPE LIMIT STORE BY GET NX XX GT LT EX PX KEEPTTL REPLACE ALPHA DESC ASC WEIGHTS "
    "AGGREGATE SUM STREAMS BLOCK MAXLEN MINID ~ = * $ > ID SKIPME USER ADDR LADDR ALL WRITE "
    "HELP help string hash list set zset stream none maxmemory loglevel save appendfsync "
    "notify-keyspace-events dbfilename dir databases lua-time-limit slowlog-max-len "
    "hz timeout bind port requirepass AKE KEA everysec always no debug"
)

#: Numbers at and past the edges Redis checks (64-bit, doubles, counts, indexes).
NUMBERS: Final = _words(
    "0 1 -1 2 3 -2 5 10 100 -100 1000 65536 2147483647 2147483648 -2147483648 4294967296 "
    "9223372036854775807 -9223372036854775808 9223372036854775808 -9223372036854775809 "
    "18446744073709551615 18446744073709551616 99999999999999999999999 1.5 -0.5 0.0 -0.0 "
    "1e3 1e308 1e309 -1e309 2.5e-5 nan NaN -nan inf -inf +inf Infinity 0x10 010 +1 1. .5 "
    "(1 (-inf [a (a - + 1-1 0-0 0-1 5-5 9223372036854775807-1 "
    "18446744073709551615-18446744073709551615 18446744073709551615-0"
)

#: Scripts for EVAL, FUNCTION LOAD and friends: valid, failing, slow-free.
SCRIPTS: Final = (
    "return 1",
    "return {1, 'a', {2}}",
    "return redis.call('get', KEYS[1])",
    "return redis.pcall('incr', KEYS[1])",
    "return redis.error_reply('mine')",
    "return redis.status_reply('fine')",
    "return ARGV[1]",
    "error('raised')",
    "return nil",
    "return 3.99",
    "#!lua name=fuzz\nredis.register_function('f', function(keys, args) return #keys end)",
    "#!lua name=fuzz2 flags=no-writes\nredis.register_function{function_name='g', "
    "callback=function(keys, args) return keys[1] end, flags={'no-writes'}}",
    "#!lua\nreturn 1",
    "#!lua name=bad\nreturn 1",
    "e0e1f9fabfc9d4800c877a703b823ac0578ff8db",  # sha1 of "return 1"
    "ffffffffffffffffffffffffffffffffffffffff",
)
