"""Benchmark the contacts backends against the bars the UI needs.

* SQLite, 100,000 contacts: search-as-you-type must answer in < 20 ms (median),
  so the contact list can refilter on every keystroke.
* TOML, 5,000 contacts: opening the store and listing everything must take well
  under 300 ms (median), so startup stays instant for a big hand-kept book.

Run: ``.venv/bin/python bench/contacts_bench.py [--runs N] [--quick]``.
Data is synthetic and deterministic (fixed seed), with accented names. Exits 1
if a bar is missed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hello_tui.contacts.model import Contact
from hello_tui.contacts.search import fold
from hello_tui.contacts.sqlite_store import SqliteContactStore
from hello_tui.contacts.toml_store import TomlContactStore

SEED = 20240501
SQLITE_N = 100_000
TOML_N = 5_000
SEARCH_BAR_MS = 20.0
LOAD_BAR_MS = 300.0


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "Élodie Zoë José Chloé Anaïs Hélène Jérôme François Noémie Benoît Søren Björn "
    "Małgorzata Łukasz Ágnes Íñigo Thérèse Raphaël Maëlle Gaëtan Cécile Renée André Léa "
    "Inès Zoé Loïc Mathilde Julien Camille Nicolas Sophie Thomas Emma Lucas Manon "
    "Hugo Sarah Louis Jade Nguyễn Đức Ørjan Åsa Jürgen Günther Müge Çağla "
    "Şükrü Ivana Dvořák Mirosław Anna Maria Jean Pierre Marie Paul Ahmed Fatima "
    "Yuki Wei Priya Oluwaseun Siobhán Seán Dóra"
)
LAST = _words(
    "Dupont Martin Bernard Lefèvre Müller Schröder García Núñez Gómez Moreau Fournier Girard "
    "Bonnet Lambert Fontaine Rousseau Vincent Muller Leroy Faure André Mercier Blanc Guérin "
    "Boyer Garnier Chevalier François Legrand Gauthier Perrin Robin Clément Morin Nicolas Henry "
    "Roussel Mathieu Gaillard Brunet Dumont Brun Øster Ångström Kovačević Wójcik Nowak Kowalski "
    "Yılmaz Öztürk Şahin Nguyễn Trần Lê Phạm Svensson Žižek Horváth Szabó"
)
SYLLABLES = _words(
    "ba be bi bo bu da de di do du la le li lo lu ma me mi mo mu ra re ri ro ru sa se"
)
DOMAINS = ("example.org", "mail.example.com", "posteo.example", "exämple.fr", "uni.example.edu")

# What a user types: every prefix of these (names, then e-mail fragments).
TYPED = ("élodie", "müller", "françois", "zoë", "ngu", "kovač", "xavier")
FRAGMENTS = ("posteo", "@uni", "dupont1", "martin4", "qz")


def synthetic_contacts(n: int, seed: int = SEED) -> list[Contact]:
    """``n`` deterministic contacts: accented names, 1-2 e-mails, some favourites."""
    rng = random.Random(seed)
    contacts = []
    for i in range(n):
        first = rng.choice(FIRST)
        if rng.random() < 0.5:
            last = rng.choice(LAST)
        else:
            last = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).title()
        local = f"{fold(first)}.{fold(last)}".replace(" ", "")
        emails = [f"{local}{i}@{rng.choice(DOMAINS)}"]
        if rng.random() < 0.2:
            emails.append(f"{fold(last)}{rng.randint(1, 999)}@{rng.choice(DOMAINS)}")
        contacts.append(
            Contact(
                name=f"{first} {last}",
                emails=emails,
                phones=[f"+33 6 {rng.randint(10_000_000, 99_999_999)}"] if i % 3 else [],
                id=f"{rng.getrandbits(128):032x}",
                favourite=rng.random() < 0.02,
                blocked=rng.random() < 0.01,
                notes="met at a conference" if i % 17 == 0 else "",
                created=1_700_000_000.0 + i,
                updated=1_700_000_000.0 + i + (86_400 * (i % 2)),
            )
        )
    return contacts


def typed_queries() -> list[str]:
    """Every prefix of each typed word, as a search box sees them."""
    return [word[:end] for word in (*TYPED, *FRAGMENTS) for end in range(1, len(word) + 1)]


@dataclass
class Row:
    what: str
    n: int
    samples_ms: list[float]
    bar_ms: float | None

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def verdict(self) -> str:
        if self.bar_ms is None:
            return "info"
        return "pass" if self.median < self.bar_ms else "FAIL"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def bench_sqlite(directory: Path, runs: int) -> Iterator[Row]:
    contacts = synthetic_contacts(SQLITE_N)
    path = directory / "contacts.sqlite3"
    with SqliteContactStore(path) as store:
        yield Row(
            "sqlite: save_many (one transaction)",
            SQLITE_N,
            [timed(lambda: store.save_many(contacts))],
            None,
        )
    queries = typed_queries()
    samples: list[float] = []
    slowest: dict[str, float] = {}
    with SqliteContactStore(path) as store:
        store.search("warm up")
        for _ in range(runs):
            for query in queries:
                ms = timed(lambda q=query: store.search(q))
                samples.append(ms)
                slowest[query] = max(slowest.get(query, 0.0), ms)
    yield Row(
        f"sqlite: search as you type ({len(queries)} prefixes)", SQLITE_N, samples, SEARCH_BAR_MS
    )
    worst = sorted(slowest.items(), key=lambda item: -item[1])[:3]
    print("slowest queries: " + ", ".join(f"{q!r} {ms:.1f} ms" for q, ms in worst))


def bench_toml(directory: Path, runs: int) -> Iterator[Row]:
    contacts = synthetic_contacts(TOML_N, seed=SEED + 1)
    path = directory / "contacts.toml"
    write_ms = timed(lambda: TomlContactStore(path).save_many(contacts))
    yield Row("toml: save_many (one write)", TOML_N, [write_ms], None)
    loads = [timed(lambda: TomlContactStore(path).all()) for _ in range(runs)]
    yield Row("toml: open + all()", TOML_N, loads, LOAD_BAR_MS)


def bar(row: Row) -> str:
    return "-" if row.bar_ms is None else f"< {row.bar_ms:g} ms median"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="repetitions per measurement")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    args = parser.parse_args(argv)
    runs = args.runs or (2 if args.quick else 5)

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="contacts-bench-") as tmp:
        rows.extend(bench_sqlite(Path(tmp), runs))
        rows.extend(bench_toml(Path(tmp), max(runs, 3)))

    header = f"{'what':<44} {'n':>7} {'median ms':>10} {'p95 ms':>8}  {'bar':<18} result"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.what:<44} {row.n:>7} {row.median:>10.2f} {row.p95:>8.2f}  "
            f"{bar(row):<18} {row.verdict}"
        )
    return 1 if any(row.verdict == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
