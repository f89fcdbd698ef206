"""The audit's attack on the check code, at the function level.

A relay in the middle (it carries the SDP) talks to the offerer A as a fake
answerer and to the answerer B as a fake offerer, with fingerprints of its own
(fp_m1 towards A, fp_m2 towards B). It wins if the two codes agree, so the two
people reading them aloud notice nothing.

Old scheme (fingerprints only): it sees fp_a and fp_b before choosing its own,
so it grinds certificates; with two sides to vary a birthday search needs about
a thousand per side. The test finds a match in 100k candidates.

New scheme: before it must answer A it knows fp_a, A's commitment C, fp_b and
B's nonce n_b, never A's nonce n_a. Given even more than that (it may pick its
offer to B after seeing n_b), the same grind only ever *predicts* A's code with
a guessed n_a; once n_a is revealed its "matches" hold with the chance of a
random guess. Each test runs the same harness against an oracle attacker that
knows n_a, i.e. a scheme whose code could be evaluated in advance, and shows it
wins there: the harness does detect grinding. Nonces come from a seeded RNG, so
the outcome is fixed; with fresh random nonces the assertions that expect no
win would fail with probability ~3e-3 (the 100k grind) and ~2e-4 (the calls).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from hello_tui.call.sas import commitment, sas_code

CANDIDATES = 100_000  # the attacker's budget: certificates it may mint per call
Code = Callable[[str, str, bytes, bytes], str]


def old_sas_code(fp_a: str, fp_b: str) -> str:
    """The check code before the commitment (hello-tui sas v1): the reference."""
    text = "hello-tui sas v1\n" + "\n".join(sorted([fp_a, fp_b]))
    number = int.from_bytes(hashlib.sha256(text.encode("ascii")).digest()[:8], "big") % 1_000_000
    return f"{number // 1000:03d} {number % 1000:03d}"


@cache
def pool(label: str, n: int) -> tuple[str, ...]:
    """``n`` distinct fingerprints, standing for certificates the attacker minted."""
    return tuple(
        "sha-256 " + hashlib.sha256(f"{label}{i}".encode()).digest().hex(":").upper()
        for i in range(n)
    )


@dataclass(frozen=True)
class Call:
    """One call's secrets and public values (A offers, B answers)."""

    fp_a: str
    fp_b: str
    n_a: bytes
    n_b: bytes

    @property
    def commit(self) -> bytes:
        return commitment(self.n_a)


def new_call(rng: random.Random, i: int) -> Call:
    fp_a, fp_b = pool(f"victim-{i}-", 2)
    return Call(fp_a, fp_b, rng.randbytes(32), rng.randbytes(32))


@dataclass(frozen=True)
class Choice:
    """What the relay sends: its answer to A (fp_m1, n_m1), its offer to B (fp_m2, n_m2)."""

    fp_m1: str
    n_m1: bytes
    fp_m2: str
    n_m2: bytes


def grind(
    fp_a: str, commit: bytes, fp_b: str, n_b: bytes, n_a_guess: bytes, half: int, label: str
) -> list[Choice]:
    """The birthday grind under the new scheme: ``half`` candidates towards each
    side, B's code exact, A's code predicted with ``n_a_guess``. Every choice
    whose predicted codes agree. (``commit`` is all it has of n_a; a hash it cannot invert.)"""
    del commit
    n_m = hashlib.sha256(label.encode()).digest()  # its own nonce, both ways
    towards_b = {sas_code(fp, fp_b, n_m, n_b): fp for fp in pool(label + "b", half)}
    found = []
    for fp in pool(label + "a", half):
        predicted = sas_code(fp_a, fp, n_a_guess, n_m)
        if predicted in towards_b:
            found.append(Choice(fp, n_m, towards_b[predicted], n_m))
    return found


def wins(call: Call, choice: Choice) -> bool:
    """A and B read the same code. B checks the reveal against the relay's own
    commitment (it reveals n_m2, which it committed to), A reveals n_a."""
    code_a = sas_code(call.fp_a, choice.fp_m1, call.n_a, choice.n_m1)
    code_b = sas_code(choice.fp_m2, call.fp_b, choice.n_m2, call.n_b)
    return code_a == code_b


def test_the_old_code_falls_to_grinding() -> None:
    call = new_call(random.Random(1), 0)
    half = CANDIDATES // 2
    towards_b = {old_sas_code(fp, call.fp_b): fp for fp in pool("old-b", half)}
    matches = [
        (fp, towards_b[code])
        for fp in pool("old-a", half)
        if (code := old_sas_code(call.fp_a, fp)) in towards_b
    ]
    assert len(matches) > 100, "expected ~2,500 matching pairs in 100k certificates"
    fp_m1, fp_m2 = matches[0]
    assert old_sas_code(call.fp_a, fp_m1) == old_sas_code(fp_m2, call.fp_b)  # A and B agree


def test_the_same_grind_cannot_aim_at_the_committed_code() -> None:
    call = new_call(random.Random(2), 0)
    guess = random.Random(3).randbytes(32)  # the attacker's best idea of n_a
    half = CANDIDATES // 2
    predicted = grind(call.fp_a, call.commit, call.fp_b, call.n_b, guess, half, "new-")
    # The grind "works" in the attacker's own eyes: thousands of predicted matches...
    assert len(predicted) > 100
    # ...and none survives the reveal: each is a one-in-a-million guess.
    assert sum(wins(call, c) for c in predicted) == 0
    # The control: an attacker who could evaluate A's code (knew n_a) wins every time.
    oracle = grind(call.fp_a, call.commit, call.fp_b, call.n_b, call.n_a, half, "new-")
    assert len(oracle) > 100 and all(wins(call, c) for c in oracle)


def test_hundreds_of_attacked_calls_give_the_relay_nothing() -> None:
    rng, calls, half = random.Random(4), 200, 500
    label = "pre-minted-"  # one pool of certificates, minted ahead, used on every call
    won = oracle_won = 0
    for i in range(calls):
        call = new_call(rng, i)
        guess = rng.randbytes(32)
        # Its best move: a choice whose predicted codes agree, if it found one.
        tries = grind(call.fp_a, call.commit, call.fp_b, call.n_b, guess, half, label)
        fallback = Choice(pool(label + "a", 1)[0], b"\0" * 32, pool(label + "b", 1)[0], b"\0" * 32)
        won += wins(call, (tries or [fallback])[0])
        knowing = grind(call.fp_a, call.commit, call.fp_b, call.n_b, call.n_a, half, label)
        oracle_won += bool(knowing) and wins(call, knowing[0])
    assert won == 0
    assert oracle_won >= 10  # ~22 % of calls with n_a known: the harness detects it
