"""The sereal_<k> decoder against blobs from the real Sereal::Encoder (Debian's libsereal-perl)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from queueengine.dispatch.sereal import SerealError, decode

from .perl_fixtures import PerlStack, perl  # noqa: F401

ENCODE = r"""
use strict; use warnings; use Sereal::Encoder qw(SRL_ZLIB);
my ($version, $compress) = @ARGV;
my $e = Sereal::Encoder->new({ protocol_version => $version,
                               ($compress ? (compress => SRL_ZLIB, compress_threshold => 0) : ()) });
my $shared = [7, 8];
my @values = (
    [1, 'two', 3, undef, -1, -16, -17, 15, 16, 300, -1000, 1099511627776, -4611686018427387904, 0.1, 2.5, 1e300],
    { rows => [{ k => 1, name => 'a' }, { k => 2, name => 'b' }, { k => 3, name => 'c' }] },
    { same => [$shared, $shared], deep => { x => { y => { z => ['end'] } } } },
    { latin => "caf\x{e9}", wide => "\x{263a} smile", empty => '', num_str => '5' },
    [ ('x' x 40), ('y' x 200) ],
    [],
    {},
);
print join("\n", map { unpack('H*', $e->encode($_)) } @values), "\n";
"""

EXPECTED: list[Any] = [
    [1, "two", 3, None, -1, -16, -17, 15, 16, 300, -1000, 2**40, -(2**62), 0.1, 2.5, 1e300],
    {"rows": [{"k": 1, "name": "a"}, {"k": 2, "name": "b"}, {"k": 3, "name": "c"}]},
    {"same": [[7, 8], [7, 8]], "deep": {"x": {"y": {"z": ["end"]}}}},
    {"latin": "café", "wide": "☺ smile", "empty": "", "num_str": "5"},
    ["x" * 40, "y" * 200],
    [],
    {},
]


@pytest.mark.parametrize(("version", "compress"), [(1, False), (2, False), (3, False), (4, False), (5, False),
                                                   (3, True), (5, True)])
def test_real_sereal_documents_decode(perl: PerlStack, version: int, compress: bool) -> None:  # noqa: F811
    run = perl.script(ENCODE, str(version), "1" if compress else "")
    assert run.returncode == 0, run.stderr
    blobs = [bytes.fromhex(line) for line in run.stdout.split()]
    assert len(blobs) == len(EXPECTED)
    for blob, expected in zip(blobs, EXPECTED, strict=True):
        got = decode(blob)
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
        assert got == expected


def test_a_shared_reference_decodes_to_one_object(perl: PerlStack) -> None:  # noqa: F811
    run = perl.script(r"use Sereal::Encoder; my $s = [1]; print unpack('H*', Sereal::Encoder->new->encode([$s, $s]))")
    value = decode(bytes.fromhex(run.stdout))
    assert value == [[1], [1]] and value[0] is value[1]


@pytest.mark.parametrize(("perl_value", "message"), [
    ("bless({ a => 1 }, 'My::Class')", "blessed object of class 'My::Class'"),
    ("[1, qr/ab+c/i]", "blessed object of class 'Regexp'"),
    ("do { my $a = []; push @$a, $a; $a }", "cyclic"),
])
def test_values_that_are_not_plain_data_are_refused(perl: PerlStack, perl_value: str, message: str) -> None:  # noqa: F811
    run = perl.script(f"use Sereal::Encoder; print unpack('H*', Sereal::Encoder->new->encode({perl_value}))")
    assert run.returncode == 0, run.stderr
    with pytest.raises(SerealError, match=message):
        decode(bytes.fromhex(run.stdout))


@pytest.mark.parametrize(("blob", "message"), [
    (b"not sereal", "magic"),
    (b"=\xf3rl\x05\x00\x2b\x03\x01", "truncated"),
    (b"=\xf3rl\x25\x00\x01", "Snappy"),
    (b"=\xf3rl\x45\x00\x01", "Zstandard"),
    (b"=\xf3rl\x09\x00\x01", "version 9"),
    (b"=\xf3rl\x05\x00\x01\x02", "trailing"),
    (b"=\xf3rl\x05\x00\x2f\x05", "COPY offset"),
    (b"=\xf3rl\x05\x00\x51\x01\x02", "hash key is not a string"),
])
def test_malformed_documents_are_refused(blob: bytes, message: str) -> None:
    with pytest.raises(SerealError, match=message):
        decode(blob)


def test_nesting_is_bounded() -> None:
    with pytest.raises(SerealError, match="nesting"):
        decode(b"=\xf3rl\x05\x00" + b"\x41" * 1000 + b"\x01")
