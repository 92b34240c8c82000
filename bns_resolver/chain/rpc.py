"""bitcoind JSON-RPC client: every RPC detail (auth, batching, retries, errors) lives here.

Built on python-bitcoinrpc: its `AuthServiceProxy` reads and decodes every reply on our
keep-alive connection (content-type check, floats as `Decimal`).  Requests, single and
batched, are written by this module in JSON-RPC 1.1 form with its own Basic header:
python-bitcoinrpc's `batch_` sends `"jsonrpc": "2.0"`, and Bitcoin Core >= 28 answers
2.0 requests without an `error` member, which `batch_` indexes unconditionally (KeyError
on every success); and its `__call__` takes credentials only from the URL, which breaks
on a rotated cookie and on passwords with URL-special characters.

Transient trouble (connection refused/reset, timeouts, -28 warm-up, non-JSON replies
such as HTTP 503 "work queue depth exceeded") is retried with capped exponential
backoff and rate-limited logging until `retry_for` seconds have passed; everything else
becomes a typed `RpcError`/`ChainError` that says what to fix.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import http.client
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException

from bns_resolver.errors import ChainError, RpcError

log = logging.getLogger(__name__)

RPC_IN_WARMUP = -28
RPC_METHOD_NOT_FOUND = -32601
_NON_JSON = -342  # python-bitcoinrpc's code for a reply that is not application/json
_COOKIE_SUBDIR = {"main": "", "test": "testnet3", "testnet4": "testnet4", "signet": "signet",
                  "regtest": "regtest"}


class RpcAuthError(RpcError):
    """bitcoind rejected the RPC credentials (HTTP 401)."""


class NodeUnreachableError(RpcError):
    """bitcoind could not be reached."""


class NodeWarmingUpError(RpcError):
    """bitcoind is still starting up (RPC -28)."""


class RpcProtocolError(RpcError):
    """bitcoind's reply was not a JSON-RPC reply."""


class RpcForbiddenError(RpcError):
    """bitcoind refused this client's address (HTTP 403, rpcallowip)."""


class BlockPrunedError(RpcError):
    """bitcoind has pruned a block that the index needs."""


class TxIndexRequiredError(RpcError):
    """bitcoind needs -txindex=1 to look up the transactions the index needs."""


class WrongNetworkError(ChainError):
    """bitcoind is on a different chain than configured."""


class _Transient(Exception):
    """A failure worth retrying; `final` is what to raise when retrying stops."""

    def __init__(self, reason: str, final: type[RpcError]) -> None:
        super().__init__(reason)
        self.final = final


def cookie_path(datadir: str | Path, network: str) -> Path:
    """Where bitcoind writes its auth cookie for `network` (main, test, testnet4, signet, regtest)."""
    sub = _COOKIE_SUBDIR.get(network)
    if sub is None:
        raise ValueError(f"unknown network {network!r}")
    return Path(datadir) / sub / ".cookie" if sub else Path(datadir) / ".cookie"


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Decoding a multi-MB verbosity-3 reply builds millions of containers and no cycles;
    the cyclic collector's passes during it roughly doubled the decode time (bench/RESULTS.md)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class BitcoindRPC:
    """A thin bitcoind client. Public methods are named after the RPCs they call.

    Safe to share between threads: exchanges on the keep-alive connection are serialised.
    """

    def __init__(
        self,
        url: str,
        *,
        cookie_file: str | Path | None = None,
        timeout: float = 30.0,
        retry_for: float = 60.0,
        backoff: tuple[float, float] = (0.25, 4.0),
        log_every: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 8332
        self._path = parts.path or "/"
        self._userinfo = ""
        if parts.username is not None:
            user, password = (urllib.parse.unquote(p or "") for p in (parts.username, parts.password))
            self._userinfo = f"{user}:{password}"
        self.cookie_file = Path(cookie_file) if cookie_file else None
        if not self._userinfo and self.cookie_file is None:
            raise ValueError("bitcoind RPC needs user:password in the URL or a cookie file")
        self.timeout, self.retry_for = timeout, retry_for
        self._backoff, self._log_every = backoff, log_every
        self._sleep, self._clock = sleep, clock
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._credentials: str | None = self._userinfo or None  # a cookie is read on first use
        self._last_log = float("-inf")
        self._failing = False

    @property
    def endpoint(self) -> str:
        """host:port, safe to log (no credentials)."""
        return f"{self._host}:{self._port}"

    # -- RPCs: one line each over _call / _call_batch ------------------------------------
    def getblockchaininfo(self) -> dict[str, Any]:
        return self._call("getblockchaininfo")

    def getnetworkinfo(self) -> dict[str, Any]:
        return self._call("getnetworkinfo")

    def getblockcount(self) -> int:
        return self._call("getblockcount")

    def getbestblockhash(self) -> str:
        return self._call("getbestblockhash")

    def getblockhash(self, height: int) -> str:
        return self._call("getblockhash", height)

    def getblockhashes(self, heights: Sequence[int]) -> list[str]:
        return self._call_batch([("getblockhash", h) for h in heights])

    def getblockheader(self, block_hash: str) -> dict[str, Any]:
        return self._call("getblockheader", block_hash, True)

    def getblock(self, block_hash: str, verbosity: int = 3, *, timeout: float | None = None) -> Any:
        return self._call("getblock", block_hash, verbosity, timeout=timeout)

    def getblocks(self, block_hashes: Sequence[str], verbosity: int = 3, *,
                  timeout: float | None = None) -> list[Any]:
        return self._call_batch([("getblock", h, verbosity) for h in block_hashes], timeout=timeout)

    def getrawtransactions(self, txids: Sequence[str]) -> list[dict[str, Any]]:
        """Verbose transactions by txid (batched); needs -txindex for confirmed txs."""
        return self._call_batch([("getrawtransaction", txid, 1) for txid in txids])

    def getrawtransactions_in_block(self, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """(txid, block hash) -> tx with prevouts and fee (getrawtransaction verbosity 2, Core >= 25)."""
        return self._call_batch([("getrawtransaction", txid, 2, block_hash) for txid, block_hash in pairs])

    def uptime(self) -> int:
        return self._call("uptime")

    def check_network(self, expected: str) -> dict[str, Any]:
        """getblockchaininfo, raising WrongNetworkError unless `chain` is `expected`."""
        info = self.getblockchaininfo()
        if info.get("chain") != expected:
            raise WrongNetworkError(
                f"bitcoind at {self.endpoint} is on chain {info.get('chain')!r}, but bns-resolver is "
                f"configured for {expected!r}: point the RPC URL at a {expected} node or change the "
                f"configured network")
        return info

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- plumbing ---------------------------------------------------------------------------
    def _call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        return self._with_retries(method, lambda: self._send_one(method, params, timeout))

    def _call_batch(self, calls: Sequence[tuple[Any, ...]], *,
                    timeout: float | None = None) -> list[Any]:
        if not calls:
            return []
        what = f"{calls[0][0]} x{len(calls)}"
        return self._with_retries(what, lambda: self._send_batch(calls, timeout))

    def _with_retries(self, what: str, attempt: Callable[[], Any]) -> Any:
        started, delay, tries = self._clock(), self._backoff[0], 0
        while True:
            tries += 1
            try:
                with self._lock:  # one HTTP exchange at a time on the shared connection
                    result = attempt()
            except _Transient as exc:
                self.close()
                elapsed = self._clock() - started
                if elapsed >= self.retry_for:
                    raise self._give_up(exc, what, tries, elapsed) from None
                self._log_failure(what, exc)
                self._sleep(min(delay, max(self.retry_for - elapsed, 0.0)))
                delay = min(delay * 2, self._backoff[1])
                continue
            if self._failing:
                log.info("bitcoind at %s answers again (%s)", self.endpoint, what)
                self._failing = False
            return result

    def _send_one(self, method: str, params: Sequence[Any], timeout: float | None) -> Any:
        reply = self._post({"version": "1.1", "method": method, "params": list(params), "id": 0}, timeout)
        if not isinstance(reply, dict):
            raise _Transient(f"a {type(reply).__name__} instead of a reply object", RpcProtocolError)
        if reply.get("error"):
            self._fail(method, reply["error"], params)
        return reply.get("result")

    def _send_batch(self, calls: Sequence[tuple[Any, ...]], timeout: float | None) -> list[Any]:
        payload = [{"version": "1.1", "method": c[0], "params": list(c[1:]), "id": i}
                   for i, c in enumerate(calls)]
        replies = self._post(payload, timeout)
        if not isinstance(replies, list):  # Core answers a malformed batch with one error object
            self._fail(str(calls[0][0]), replies.get("error") or {}, ())
        by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
        results = []
        for i, call in enumerate(calls):
            reply = by_id.get(i)
            if reply is None:
                raise _Transient(f"no reply for {call[0]} in a batch", RpcProtocolError)
            if reply.get("error"):
                self._fail(call[0], reply["error"], call[1:])
            results.append(reply.get("result"))
        return results

    def _post(self, payload: Any, timeout: float | None) -> Any:
        """One HTTP exchange; python-bitcoinrpc decodes the reply (floats as Decimal)."""
        body = json.dumps(payload)
        method = payload[0]["method"] if isinstance(payload, list) else payload["method"]

        def exchange() -> Any:
            conn = self._connection(timeout)
            conn.request("POST", self._path, body, self._headers())
            proxy = AuthServiceProxy(self._proxy_url, None, timeout or self.timeout, conn)
            with _gc_paused():
                return proxy._get_response()

        return self._guard(exchange, method)

    def _guard(self, send: Callable[[], Any], method: str) -> Any:
        """Run one HTTP exchange, turning transport trouble into _Transient or typed errors."""
        try:
            return send()
        except JSONRPCException as exc:
            if exc.code == _NON_JSON:
                return self._non_json(exc.message or "", send, method)
            raise RpcProtocolError(f"bitcoind at {self.endpoint}: {exc}", code=exc.code) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}", NodeUnreachableError) from None
        except ValueError as exc:  # JSON that does not parse
            raise _Transient(f"unparseable reply: {exc}", RpcProtocolError) from None

    def _non_json(self, message: str, send: Callable[[], Any], method: str) -> Any:
        match = re.search(r"'(\d{3}) ", message)
        status = match.group(1) if match else None
        self.close()
        if status == "403":
            raise RpcForbiddenError(
                f"bitcoind at {self.endpoint} refused this client (HTTP 403): allow its address with "
                f"rpcallowip= (and listen on it with rpcbind=) in bitcoin.conf", code=403)
        if status != "401":
            raise _Transient(message, RpcProtocolError)
        if self.cookie_file is not None:  # bitcoind writes a new cookie on every start
            fresh = self._read_cookie()
            if fresh != self._credentials:
                self._credentials = fresh
                return self._guard(send, method)
        source = (f"the cookie file {self.cookie_file}" if self.cookie_file
                  else "rpcuser/rpcpassword in the URL")
        raise RpcAuthError(
            f"bitcoind at {self.endpoint} rejected the RPC credentials (HTTP 401) for {method}: "
            f"check {source} against bitcoind's rpcuser/rpcpassword/rpcauth settings", code=401)

    def _fail(self, method: str, error: dict[str, Any], params: Sequence[Any]) -> NoReturn:
        code, message = error.get("code"), error.get("message")
        if code == RPC_IN_WARMUP:
            raise _Transient(f"warming up: {message}", NodeWarmingUpError)
        raise self._rpc_error(method, code, message, params)

    def _rpc_error(self, method: str, code: int | None, message: str | None,
                   params: Sequence[Any]) -> RpcError:
        message = message or "no message"
        if code == -1 and "pruned" in message:
            return BlockPrunedError(
                f"bitcoind at {self.endpoint} has pruned block {params[0] if params else '?'} "
                f"({message}): the BNS index needs every block from its first block on; run bitcoind "
                f"without -prune, or resync it", code=code)
        if code == -5 and "txindex" in message:
            return TxIndexRequiredError(
                f"bitcoind at {self.endpoint} cannot look up transaction {params[0] if params else '?'} "
                f"({message}): this node has no getblock verbosity 3, so restart bitcoind with "
                f"-txindex=1 (or upgrade it to a version whose getblock returns prevouts)", code=code)
        if code == RPC_METHOD_NOT_FOUND:
            return RpcError(f"bitcoind at {self.endpoint} does not know the RPC {method!r}", code=code)
        return RpcError(f"bitcoind at {self.endpoint}: {method} failed: {message} (code {code})",
                        code=code)

    def _give_up(self, exc: _Transient, what: str, tries: int, elapsed: float) -> RpcError:
        hint = {
            NodeUnreachableError: "is bitcoind running, and do the RPC host/port, rpcbind and "
                                  "rpcallowip settings match?",
            NodeWarmingUpError: "wait for bitcoind to finish starting, then retry",
            RpcProtocolError: "is this URL really bitcoind's RPC port?",
        }.get(exc.final, "")
        return exc.final(f"bitcoind at {self.endpoint} failed {what} {tries} times over "
                         f"{elapsed:.1f} s ({exc}); {hint}")

    def _log_failure(self, what: str, exc: _Transient) -> None:
        now = self._clock()
        if not self._failing or now - self._last_log >= self._log_every:
            log.warning("bitcoind at %s: %s failed (%s); retrying", self.endpoint, what, exc)
            self._last_log = now
        self._failing = True

    @property
    def _proxy_url(self) -> str:
        # Only used for the proxy's bookkeeping: we send the Authorization header ourselves.
        return f"http://rpc:rpc@{self._host}:{self._port}{self._path}"

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        self._conn.timeout = timeout or self.timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(self._conn.timeout)
        return self._conn

    def _headers(self) -> dict[str, str]:
        if self._credentials is None:
            self._credentials = self._read_cookie()
        auth = base64.b64encode(self._credentials.encode()).decode()
        return {"Host": self._host, "User-Agent": "bns-resolver", "Authorization": f"Basic {auth}",
                "Content-Type": "application/json"}

    def _read_cookie(self) -> str:
        assert self.cookie_file is not None
        try:
            return self.cookie_file.read_text().strip()
        except FileNotFoundError:  # bitcoind removes it on shutdown and writes a new one at start
            raise _Transient(f"no cookie file {self.cookie_file} (bitcoind not running?)",
                             NodeUnreachableError) from None
        except OSError as exc:
            raise RpcAuthError(
                f"cannot read bitcoind's cookie file {self.cookie_file} ({exc.strerror}): may this "
                f"user read it? (bitcoind's -rpccookieperms, or run as bitcoind's group)") from None
