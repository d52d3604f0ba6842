"""WriteNowServer on the installed Twisted: what it sends at once, what it leaves to Twisted's buffer.

Each test drives a real TCP connection on 127.0.0.1 through a reactor that only records what the
connection asks of it, and plays the event loop's part by calling `doWrite` itself. If Twisted
stopped calling `startWriting` when it buffers, or called `stopWriting` with bytes still buffered,
the ordering tests here would fail.
"""

from __future__ import annotations

import contextlib
import socket
from types import SimpleNamespace

import pytest
from twisted.internet import main, protocol
from twisted.python import failure

from realtime.daphne_server import WriteNowServer

BIG = 8 * 1024 * 1024


class RecordingReactor:
    """The part of IReactorFDSet and IReactorTime a TCP connection uses, recording write interest."""

    def __init__(self):
        self.readers: set = set()
        self.writers: set = set()
        self.registrations = 0
        self.later: list = []

    def addReader(self, reader):
        self.readers.add(reader)

    def removeReader(self, reader):
        self.readers.discard(reader)

    def addWriter(self, writer):
        if writer not in self.writers:
            self.registrations += 1
            self.writers.add(writer)

    def removeWriter(self, writer):
        self.writers.discard(writer)

    def callLater(self, delay, function, *args, **kwargs):
        self.later.append((function, args, kwargs))


class Producer:
    def __init__(self):
        self.calls: list[str] = []

    def pauseProducing(self):
        self.calls.append("pause")

    def resumeProducing(self):
        self.calls.append("resume")

    def stopProducing(self):
        self.calls.append("stop")


@pytest.fixture
def connection():
    """(transport, reactor, peer): a WriteNowServer on one end of a TCP connection, a socket on the other."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        peer = socket.socket()
        # A small receive window, so that the kernel's buffers fill after a few hundred KB.
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.connect(listener.getsockname())
        accepted, address = listener.accept()
    reactor = RecordingReactor()
    port = SimpleNamespace(_realPortNumber=0)  # what Server reads of its listening port
    transport = WriteNowServer(accepted, protocol.Protocol(), address, port, 0, reactor)
    transport.protocol.makeConnection(transport)
    peer.settimeout(10)
    yield transport, reactor, peer
    peer.close()
    if transport.connected:
        transport.connectionLost(failure.Failure(main.CONNECTION_DONE))


def pump(transport, reactor, peer, until_eof=False) -> bytes:
    """Read the peer while playing the reactor: doWrite while the connection wants to write."""
    received = bytearray()
    while True:
        if transport in reactor.writers:
            why = transport.doWrite()
            if why:
                transport.connectionLost(failure.Failure(why))
        if not until_eof and transport not in reactor.writers:
            peer.settimeout(0.2)
        try:
            chunk = peer.recv(1 << 20)
        except TimeoutError:
            return bytes(received)
        if not chunk:
            return bytes(received)
        received += chunk


def drain(peer) -> bytes:
    """What the peer can read now, without the connection's help."""
    received = bytearray()
    peer.settimeout(0.2)
    try:
        while chunk := peer.recv(1 << 20):
            received += chunk
    except TimeoutError:
        pass
    peer.settimeout(10)
    return bytes(received)


def test_a_write_with_nothing_buffered_is_sent_at_once_without_asking_for_write_events(connection):
    transport, reactor, peer = connection
    for n in range(50):
        transport.write(b"frame %d;" % n)
    assert reactor.registrations == 0 and not reactor.writers
    assert pump(transport, reactor, peer) == b"".join(b"frame %d;" % n for n in range(50))


def test_what_the_kernel_does_not_take_is_buffered_and_later_writes_wait_behind_it(connection):
    transport, reactor, peer = connection
    big = bytes(range(256)) * (BIG // 256)
    transport.write(big)
    assert transport in reactor.writers, "8 MB went into the kernel: nothing was left to buffer"
    # The peer reads what the kernel holds, so the kernel has room again while Twisted still
    # holds the rest of the 8 MB: a write now must still wait behind it.
    head = drain(peer)
    assert 0 < len(head) < BIG
    transport.write(b"after")
    transport.writeSequence([b"-seq1", b"-seq2"])
    transport.write(b"-last")

    assert head + pump(transport, reactor, peer) == big + b"after-seq1-seq2-last"
    assert not reactor.writers
    # Drained: the next write goes out at once again.
    registrations = reactor.registrations
    transport.write(b"again")
    assert reactor.registrations == registrations
    assert peer.recv(100) == b"again"


def test_a_streaming_producer_is_paused_while_buffered_and_resumed_once_drained(connection):
    transport, reactor, peer = connection
    producer = Producer()
    transport.registerProducer(producer, True)
    transport.write(b"x" * BIG)
    assert producer.calls == ["pause"]
    pump(transport, reactor, peer)
    assert producer.calls == ["pause", "resume"]


def test_a_pull_producer_is_still_asked_for_more_as_the_buffer_drains(connection):
    transport, reactor, peer = connection

    class Chunks(Producer):
        sent = 0

        def resumeProducing(self):
            super().resumeProducing()
            if self.sent < 3:
                self.sent += 1
                transport.write(b"chunk%d;" % self.sent)

    producer = Chunks()
    transport.registerProducer(producer, False)
    assert pump(transport, reactor, peer) == b"chunk1;chunk2;chunk3;"


def test_closing_with_bytes_buffered_sends_them_all_then_closes(connection):
    transport, reactor, peer = connection
    big = b"y" * BIG
    transport.write(big)
    transport.loseConnection()
    transport.write(b"written after loseConnection, still before the close")
    assert pump(transport, reactor, peer, until_eof=True) == big + (
        b"written after loseConnection, still before the close"
    )
    assert not transport.connected


def test_closing_with_nothing_buffered_closes(connection):
    transport, reactor, peer = connection
    transport.write(b"bye")
    transport.loseConnection()
    assert pump(transport, reactor, peer, until_eof=True) == b"bye"


def test_an_aborted_connection_sends_nothing_more(connection):
    transport, reactor, peer = connection
    transport.write(b"before")
    assert peer.recv(100) == b"before"
    transport.abortConnection()
    transport.write(b"after the abort")
    for function, args, kwargs in reactor.later:
        function(*args, **kwargs)
    assert not transport.connected
    # An abort resets the connection: the peer sees the reset (or the end), and no more bytes.
    with contextlib.suppress(ConnectionResetError):
        assert peer.recv(100) == b""


def test_a_write_on_a_broken_connection_is_left_to_twisted_to_find(connection):
    transport, reactor, peer = connection
    # The peer resets the connection (SO_LINGER 0): the next send fails with ECONNRESET/EPIPE.
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    peer.close()
    transport.write(b"into the void")
    transport.write(b"and more")
    assert transport in reactor.writers
    why = transport.doWrite()
    assert why is main.CONNECTION_LOST
