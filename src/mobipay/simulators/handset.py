"""SIMULATOR of subscribers' handsets, speaking Kannel's fake-SMSC line protocol.

The far side of the SMS channel that no one can run here is the operator's SMSC and the
phones behind it; Kannel's ``smsc = fake`` stands in for the SMSC, and this client stands
in for the phones (Kannel's own ``fakesmsc`` binary polls stdin once a second and splits
long lines). One line per message, both ways:

    FROM TO text <text>                    GSM 7-bit text as typed
    FROM TO ucs2 <url-encoded UTF-16BE>    anything else (Chinese, emoji)
    FROM TO ucs-2 <url-encoded UTF-16BE>   a message to a handset, UCS-2
    FROM TO udh <url-encoded UDH> data <url-encoded bytes>   one part of a long message

Parts of a long message are put back together by their concatenation header, as a phone
does. Usage for a person: ``python -m mobipay.simulators.handset --port 10000 --from
13800138000`` then type messages; replies are printed as they arrive.
"""

from __future__ import annotations

import argparse
import queue
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes

GSM_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:;!?+-*/()#@'\"&%=<>")


@dataclass
class Received:
    """A message as the handset shows it (all parts joined)."""

    sender: str
    to: str
    text: str
    coding: str  # "text" (GSM) or "ucs-2"
    raw: bytes  # the message bytes as they came over the air (UTF-16BE for UCS-2)
    parts: int = 1


@dataclass
class _Partial:
    total: int
    pieces: dict[int, bytes] = field(default_factory=dict)


class Handsets:
    """Phones connected to the fake SMSC: send from any number, collect what arrives."""

    def __init__(self, port: int, host: str = "127.0.0.1", connect_timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + connect_timeout_s
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(0.2)
        self.inbox: queue.Queue[Received] = queue.Queue()
        self._partials: dict[tuple[str, str, int], _Partial] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True, name="handsets")
        self._reader.start()

    def send(self, sender: str, text: str, to: str = "10658888", *, coding: str | None = None) -> None:
        """Text ``text`` from ``sender``: as GSM text when it can be, else UCS-2 (or as ``coding`` says)."""
        kind = coding or ("text" if text and all(ch in GSM_SAFE for ch in text) else "ucs2")
        body = text if kind == "text" else quote(text.encode("utf-16-be"), safe="")
        with self._lock:
            self.sock.sendall(f"{sender} {to} {kind} {body}\n".encode())

    def receive(self, to: str | None = None, timeout_s: float = 15.0) -> Received:
        """The next message that arrives (for ``to``, if given); TimeoutError if none does."""
        deadline = time.monotonic() + timeout_s
        skipped: list[Received] = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no SMS to {to or 'any handset'} within {timeout_s} s")
                try:
                    msg = self.inbox.get(timeout=left)
                except queue.Empty:
                    continue
                if to is None or msg.to.lstrip("+").removeprefix("86") == to.lstrip("+").removeprefix("86"):
                    return msg
                skipped.append(msg)
        finally:
            for msg in skipped:
                self.inbox.put(msg)

    def drain(self, quiet_s: float = 1.0) -> list[Received]:
        """Everything that arrives until nothing has for ``quiet_s``."""
        out = []
        while True:
            try:
                out.append(self.inbox.get(timeout=quiet_s))
            except queue.Empty:
                return out

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._reader.join(timeout=2)

    def _read(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    self._line(line.decode("latin-1").rstrip("\r"))

    def _line(self, line: str) -> None:
        sender, to, kind, rest = [*line.split(" ", 3), "", "", "", ""][:4]
        if kind == "text":
            self.inbox.put(Received(sender, to, rest, "text", rest.encode("latin-1")))
        elif kind in ("ucs-2", "ucs2"):
            raw = _bytes(rest)
            self.inbox.put(Received(sender, to, raw.decode("utf-16-be", "replace"), "ucs-2", raw))
        elif kind == "udh":
            udh_text, _, data = rest.partition(" ")
            data_kind, _, payload = data.partition(" ")
            udh, raw = _bytes(udh_text), _bytes(payload)
            if data_kind == "text":
                raw = payload.encode("latin-1")
            # 05 00 03 ref total seq: the 8-bit concatenation header
            if len(udh) >= 6 and udh[1] == 0:
                ref, total, seq = udh[3], udh[4], udh[5]
                partial = self._partials.setdefault((sender, to, ref), _Partial(total))
                partial.pieces[seq] = raw
                if len(partial.pieces) == partial.total:
                    del self._partials[(sender, to, ref)]
                    joined = b"".join(partial.pieces[i] for i in sorted(partial.pieces))
                    text, coding = _decode(joined, data_kind)
                    self.inbox.put(Received(sender, to, text, coding, joined, partial.total))


def _bytes(field: str) -> bytes:
    """A URL-encoded field as Kannel writes it (``+`` is a space, as in a query string)."""
    return unquote_to_bytes(field.replace("+", " "))


def _decode(raw: bytes, kind: str) -> tuple[str, str]:
    if kind == "text":
        return raw.decode("latin-1"), "text"
    try:
        return raw.decode("utf-16-be"), "ucs-2"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "text"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SIMULATOR: a phone texting mobipay through Kannel's fake SMSC. "
                                     "Example: python -m mobipay.simulators.handset --port 10000 --from 13800138000")
    parser.add_argument("--port", type=int, default=10000, help="The fake SMSC port of the Kannel configuration")
    parser.add_argument("--from", dest="sender", default="13800138000", help="The phone's number")
    parser.add_argument("--to", default="10658888", help="The service number")
    args = parser.parse_args(argv)
    phones = Handsets(args.port)

    def show() -> None:
        while True:
            msg = phones.inbox.get()
            print(f"\n<< {msg.sender} → {msg.to} ({msg.coding}, {msg.parts} part(s)): {msg.text}\n>> ", end="",
                  flush=True)

    threading.Thread(target=show, daemon=True).start()
    print(f"connected; texting as {args.sender} to {args.sender and args.to}. Try: YE, ZZ 13900139000 5, BZ")
    try:
        for line in sys.stdin:
            if line.strip():
                phones.send(args.sender, line.rstrip("\n"), args.to)
    except KeyboardInterrupt:
        pass
    finally:
        phones.close()


if __name__ == "__main__":
    main()
