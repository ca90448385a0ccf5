import pytest
from django.test import RequestFactory, override_settings

from audit.ip import client_ip, parse_ip

rf = RequestFactory()


def ip_of(remote, forwarded=None, proxies=()):
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    with override_settings(AUDIT_TRUSTED_PROXIES=list(proxies)):
        return client_ip(rf.get("/", **meta))


@pytest.mark.parametrize(
    ("remote", "forwarded", "proxies", "expected"),
    [
        # no proxy configured: the header is ignored, whatever it says
        ("203.0.113.9", "1.2.3.4", (), "203.0.113.9"),
        # spoofed header from an untrusted peer
        ("203.0.113.9", "10.0.0.1, 1.2.3.4", ("10.0.0.0/8",), "203.0.113.9"),
        # trusted proxy: the right-most hop that is not a trusted proxy
        ("10.0.0.2", "6.6.6.6, 198.51.100.7", ("10.0.0.0/8",), "198.51.100.7"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.5", ("10.0.0.0/8",), "198.51.100.7"),
        ("10.0.0.2", "198.51.100.7:4711", ("10.0.0.2",), "198.51.100.7"),
        ("10.0.0.2", "2001:db8::1", ("10.0.0.2",), "2001:db8::1"),
        ("::1", "[2001:db8::2]:443", ("::1",), "2001:db8::2"),
        # trusted proxy but no header, or only proxies in it: the peer
        ("10.0.0.2", None, ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", "10.0.0.3", ("10.0.0.0/8",), "10.0.0.2"),
        # garbage in the chain before an untrusted hop is found: the peer
        ("10.0.0.2", "1.2.3.4, not-an-ip", ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", "\x00;drop", ("10.0.0.0/8",), "10.0.0.2"),
        # garbage behind the first untrusted hop does not matter
        ("10.0.0.2", "junk, 198.51.100.7", ("10.0.0.0/8",), "198.51.100.7"),
        # a bad proxy entry is skipped, not fatal
        ("10.0.0.2", "198.51.100.7", ("nonsense", "10.0.0.2"), "198.51.100.7"),
        # IPv4-mapped IPv6 peer
        ("::ffff:203.0.113.9", "1.2.3.4", (), "203.0.113.9"),
    ],
)
def test_client_ip(remote, forwarded, proxies, expected):
    assert ip_of(remote, forwarded, proxies) == expected


def test_invalid_remote_addr_gives_none():
    assert ip_of("garbage", "1.2.3.4", ("0.0.0.0/0",)) is None


@pytest.mark.parametrize(("raw", "ip"), [("1.2.3.4", "1.2.3.4"), (" 1.2.3.4 ", "1.2.3.4"), ("1.2.3.4:80", "1.2.3.4"),
                                         ("[::1]:80", "::1"), ("fe80::1%eth0", "fe80::1"), ("", None),
                                         ("999.1.1.1", None), ("unknown", None)])
def test_parse_ip(raw, ip):
    assert parse_ip(raw) == ip
