"""The one process sampler (psutil): CPU and memory of a process, the listener on a port."""

import os
import socket
import time

from tools import sampler


def test_sample_reads_cpu_and_memory_of_a_process():
    taken = sampler.sample(os.getpid())
    assert taken is not None
    assert taken.cpu_seconds > 0
    assert taken.rss_bytes > 0
    assert sampler.rss_kb(os.getpid()) > 0
    assert sampler.sample(2**22 + 1) is None
    assert sampler.cpu_seconds(2**22 + 1) == 0.0


def test_the_listener_on_a_port_is_found():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert sampler.find_listener(port) == os.getpid()
    assert sampler.find_listener(port) is None


def busy(seconds: float) -> None:
    until = time.process_time() + seconds
    while time.process_time() < until:
        sum(i * i for i in range(10_000))


def test_server_watch_reports_cpu_share_between_marks():
    watch = sampler.ServerWatch(os.getpid())
    watch.mark("start")
    busy(0.1)
    watch.mark("end")
    report = watch.report({"publish": ("start", "end"), "connect": ("start", "missing")})
    assert report["available"] is True
    assert report["cpu_percent"]["publish"] > 0
    assert report["cpu_percent"]["connect"] is None
    assert report["peak_rss_mb"] >= report["rss_mb"] > 0
    assert sampler.ServerWatch(None, "remote").report({})["reason"] == "remote"


def test_peak_rss_is_at_least_the_memory_before_and_after():
    with sampler.PeakRss(os.getpid(), interval=0.01) as peak:
        grown = bytearray(32 * 2**20)
        time.sleep(0.05)
    assert peak.kb >= sampler.rss_kb(os.getpid()) - 1024
    del grown
