"""Damaging a packet as a network or an attacker might: byte flips, cuts and junk appended."""

from __future__ import annotations

import random


def mangle(packet: bytes, rng: random.Random, edits: int) -> bytes:
    """`packet` after `edits` random edits, each a flipped byte, a cut tail or up to 12 bytes added."""
    data = bytearray(packet)
    for _ in range(edits):
        roll = rng.random()
        if roll < 0.5 and data:
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        elif roll < 0.75:
            del data[rng.randrange(len(data) + 1):]
        else:
            data += rng.randbytes(rng.randint(1, 12))
    return bytes(data)
