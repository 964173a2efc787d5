"""Request bodies of `fastfn invoke`: -d DATA, -d @FILE, -d @-, and stdin when it is not a
terminal (as `faas-cli invoke` reads it), streamed while the answer is read."""

from __future__ import annotations

import os
import select
import socket
import stat
import sys
import threading
from typing import IO, Iterable, Optional

from fastfn_cli.errors import CliError
from fastfn_cli.exits import EXIT_NOINPUT

PIECE = 1 << 16


def stdin_kind(mode: int) -> Optional[str]:
    """What a stdin of this st_mode gives as a body: "file" (a regular file: its size is known),
    "stream" (a pipe or a socket: read until its end), or None: a terminal, /dev/null and the
    other devices are no body, so a command run by a script, a test or CI (stdin /dev/null) sends
    none."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "stream"
    return None


def read_piece(stream: IO[bytes], size: int = PIECE) -> bytes:
    """The next bytes of `stream`, b"" at its end; a stdin left non-blocking by our parent is
    waited for instead of read as an end."""
    while True:
        try:
            piece = stream.read1(size) if hasattr(stream, "read1") else stream.read(size)
        except BlockingIOError:
            piece = None
        if piece is not None:
            return piece
        select.select([stream.fileno()], [], [])


class BodySource:
    """The request body: literal bytes, or a file / stdin streamed (chunked when its size is
    unknown). `head` holds bytes already read from the stream (stdin's first piece)."""

    INLINE = 64 * 1024

    def __init__(self, spec: Optional[str]):
        self.data: Optional[bytes] = None
        self.stream: Optional[IO[bytes]] = None
        self.length: Optional[int] = None
        self.head = b""
        if spec is None:
            return
        if spec.startswith("@"):
            name = spec[1:]
            if name == "-":
                if sys.stdin is None:
                    raise CliError("-d @-: stdin is closed", EXIT_NOINPUT)
                self.stream = sys.stdin.buffer
            else:
                try:
                    self.stream = open(name, "rb")
                except OSError as exc:
                    raise CliError(f"-d @{name}: {exc.strerror or exc}", EXIT_NOINPUT) from None
            try:
                info = os.fstat(self.stream.fileno())
                if stat.S_ISREG(info.st_mode):
                    self.length = max(0, info.st_size - self.stream.tell())
            except (OSError, ValueError):
                pass
        else:
            self.data = os.fsencode(spec)
            self.length = len(self.data)

    @classmethod
    def from_stdin(cls) -> "BodySource":
        """Stdin as the body when it is a file or a pipe with at least one byte; else no body (a
        terminal, /dev/null, a closed or unreadable stdin, an empty file or pipe). A pipe is read
        until its first byte or its end before the request goes out: an empty one is no body."""
        body = cls(None)
        try:
            kind = stdin_kind(os.fstat(0).st_mode)
        except OSError:  # closed
            return body
        if kind is None:
            return body
        stream = open(0, "rb", buffering=0, closefd=False)
        try:
            if kind == "file":
                left = os.fstat(0).st_size - os.lseek(0, 0, os.SEEK_CUR)
                if left > 0:
                    body.stream, body.length = stream, left
                return body
            first = read_piece(stream)
        except OSError:  # EISDIR, EIO...: unreadable, so no body
            return body
        if first:
            body.stream, body.head = stream, first
        return body

    @property
    def present(self) -> bool:
        return self.data is not None or self.stream is not None

    def inline(self) -> Optional[bytes]:
        if self.data is not None and len(self.data) <= self.INLINE:
            return self.data
        return None

    def pieces(self) -> Iterable[bytes]:
        if self.data is not None:
            for i in range(0, len(self.data), 1 << 20):
                yield self.data[i:i + (1 << 20)]
            return
        assert self.stream is not None
        if self.head:
            yield self.head
        while True:
            piece = read_piece(self.stream)
            if not piece:
                return
            yield piece


class BodySender(threading.Thread):
    """Sends the request body while the main thread reads the response: a function that echoes a
    long input cannot deadlock with us, and an early answer (413) is read at once."""

    def __init__(self, sock: socket.socket, source: BodySource, chunked: bool):
        super().__init__(daemon=True)
        self.sock, self.source, self.chunked = sock, source, chunked
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            for piece in self.source.pieces():
                if self.chunked:
                    self.sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                else:
                    self.sock.sendall(piece)
            if self.chunked:
                self.sock.sendall(b"0\r\n\r\n")
        except (OSError, ValueError) as exc:  # the server answered early or hung up; the answer says why
            self.error = exc
