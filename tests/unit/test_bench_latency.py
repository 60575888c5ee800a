"""The latency proxy's accounting: when each byte may go on to the server."""

import pytest

from objsync.bench.latency import DelayLine, Latency, loopback_http

RTT = 0.020


def test_a_new_connection_pays_its_handshakes_before_its_first_request():
    lat = Latency(RTT, handshake_rtts=2)
    # Sent at once on a fresh connection: TCP and TLS take two round trips, then the request one more.
    assert lat.due(arrival=10.0, opened=10.0) == pytest.approx(10.060)
    # Sent after the handshakes would have finished: one round trip, like any later request.
    assert lat.due(arrival=10.5, opened=10.0) == pytest.approx(10.520)
    assert Latency(RTT, handshake_rtts=0).due(10.0, 10.0) == pytest.approx(10.020)


def test_every_request_on_a_keep_alive_connection_pays_one_round_trip():
    line = DelayLine(Latency(RTT, 0), opened=0.0)
    # Request 2 is sent when response 1 is back (at 0.020 plus the server's 5 ms), and so on.
    sent = [0.0, 0.025, 0.050]
    assert [line.push(t, b"GET") - t for t in sent] == pytest.approx([RTT] * 3)


def test_pipelined_requests_overlap_instead_of_queueing_behind_each_other():
    line = DelayLine(Latency(RTT, 0), opened=0.0)
    for i, t in enumerate((1.000, 1.001, 1.002)):
        line.push(t, b"GET /%d " % i)
    assert line.next_due() == pytest.approx(1.020)
    assert line.pop_due(1.0195) == b""  # nothing is early
    assert line.pop_due(1.0205) == b"GET /0 "
    # The third is due 20 ms after it was sent, not 60 ms: the delays do not add up.
    assert line.pop_due(1.0225) == b"GET /1 GET /2 "
    assert len(line) == 0 and line.pending == 0 and line.next_due() is None


def test_a_body_in_many_chunks_is_delayed_once_and_kept_in_order():
    line = DelayLine(Latency(RTT, 0), opened=0.0)
    chunks = [b"PUT /k HTTP/1.1\r\n\r\n", b"a" * 100, b"b" * 100]
    for i, c in enumerate(chunks):
        line.push(2.0 + i * 0.001, c)
    assert line.pending == sum(map(len, chunks))
    assert line.pop_due(2.0 + 0.002 + RTT) == b"".join(chunks)
    assert line.pending == 0


def test_the_proxy_sits_in_front_of_plain_http_on_loopback_only():
    assert loopback_http("http://127.0.0.1:8333") and loopback_http("http://localhost:9000/")
    assert not loopback_http("https://127.0.0.1:8333")  # it does not speak TLS
    assert not loopback_http("http://s3.example.com") and not loopback_http(None)


def test_describe_names_the_round_trip_and_the_handshakes():
    text = Latency(0.02).describe()
    assert text.startswith("20 ms round trip per request") and "first waits 2 more" in text
