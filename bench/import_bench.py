"""Benchmark contact import: a 10,000-card vCard file into a fresh store.

The bar: importing 10,000 cards (about 10% with an inline photo) takes under
10 s (median) into either backend, as ONE store write. The file is synthetic
and deterministic (fixed seed): accented names, vCard 3.0 and 4.0 cards, folded
lines, JPEG and PNG photos, cards without e-mail, and ~5% duplicates that must
be merged rather than added.

Run: ``.venv/bin/python bench/import_bench.py [--runs N] [--cards N]``.
Exits 1 if a bar is missed or an import's counts are wrong.
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hello_tui.contacts.importer import ImportReport, export_file, import_file
from hello_tui.contacts.sqlite_store import SqliteContactStore
from hello_tui.contacts.store import ContactStore
from hello_tui.contacts.toml_store import TomlContactStore
from hello_tui.contacts.vcard import parse_vcards

SEED = 20240502
CARDS = 10_000
IMPORT_BAR_S = 10.0
PHOTO_SHARE = 0.10
DUPLICATE_SHARE = 0.05
NO_EMAIL_SHARE = 0.03

# A real 8x8 baseline JPEG (204 bytes).
JPEG = base64.b64decode(
    "/9j//gAQTGF2YzYyLjI4LjEwMgD/2wBDAAgEBAQEBAUFBQUFBQYGBgYGBgYGBgYGBgYHBwcICAgHBwcGBgcH"
    "CAgICAkJCQgICAgJCQoKCgwMCwsODg4RERT/xABLAAEBAAAAAAAAAAAAAAAAAAAABwEBAAAAAAAAAAAAAAAA"
    "AAAAABABAAAAAAAAAAAAAAAAAAAAABEBAAAAAAAAAAAAAAAAAAAAAP/AABEIAAgACAMBIgACEQADEQD/2gAM"
    "AwEAAhEDEQA/AKQAD//Z"
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "Élodie Zoë José Chloé Anaïs Hélène Jérôme François Noémie Benoît Søren Björn Małgorzata "
    "Łukasz Ágnes Íñigo Thérèse Raphaël Maëlle Gaëtan Cécile Renée André Léa Inès Loïc "
    "Mathilde Julien Camille Nicolas Sophie Thomas Emma Lucas Manon Hugo Sarah Louis Jade "
    "Nguyễn Đức Ørjan Åsa Jürgen Günther Müge Çağla Şükrü Ivana Mirosław Anna Maria Yuki"
)
LAST = _words(
    "Dupont Martin Bernard Lefèvre Müller Schröder García Núñez Gómez Moreau Fournier Girard "
    "Bonnet Lambert Fontaine Rousseau Vincent Leroy Faure Mercier Blanc Guérin Boyer Garnier "
    "Øster Ångström Kovačević Wójcik Nowak Yılmaz Öztürk Şahin Trần Phạm Svensson Horváth"
)
DOMAINS = ("example.org", "mail.example.com", "posteo.example", "uni.example.edu")


def tiny_png(seed: int) -> bytes:
    """A valid 2x2 RGB PNG whose pixels depend on ``seed`` (so photos differ)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    pixel = bytes([seed % 256, (seed * 7) % 256, (seed * 13) % 256])
    raw = b"".join(b"\x00" + pixel * 2 for _ in range(2))
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def fold(line: str) -> str:
    """Fold at 75 characters like most writers (good enough for ASCII-heavy lines)."""
    if len(line) <= 75:
        return line
    return "\r\n ".join([line[:75]] + [line[i : i + 74] for i in range(75, len(line), 74)])


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,").replace(";", "\\;")


@dataclass
class Synthetic:
    text: str
    cards: int
    unique: int  # contacts the import must end up with
    photos: int


def synthetic_vcf(n: int, seed: int = SEED) -> Synthetic:
    """``n`` cards; duplicates re-use an earlier card's e-mail (case changed)."""
    rng = random.Random(seed)
    out: list[str] = []
    earlier: list[tuple[str, str]] = []  # (name, e-mail) of cards with an e-mail
    unique = photos = 0
    for i in range(n):
        v4 = i % 4 == 0
        lines = ["BEGIN:VCARD", f"VERSION:{'4.0' if v4 else '3.0'}"]
        roll = rng.random()
        if roll < DUPLICATE_SHARE and earlier:
            name, email = rng.choice(earlier)
            lines += [f"FN:{escape(name)}", f"EMAIL:{email.upper()}", f"TEL:+33 1 {i:08d}"]
        else:
            unique += 1
            first, last = rng.choice(FIRST), rng.choice(LAST)
            name = f"{first} {last}"
            lines += [f"FN:{escape(name)}", f"N:{escape(last)};{escape(first)};;;"]
            if roll >= DUPLICATE_SHARE + NO_EMAIL_SHARE:
                email = f"{first[:3].lower()}.{i}@{rng.choice(DOMAINS)}"
                earlier.append((name, email))
                lines.append(f"EMAIL;TYPE=INTERNET:{email}" if not v4 else f"EMAIL:{email}")
                if rng.random() < 0.2:
                    lines.append(f"EMAIL:alt{i}@{rng.choice(DOMAINS)}")
            lines.append(f"TEL;TYPE=CELL:+33 6 {rng.randint(10_000_000, 99_999_999)}")
            if i % 7 == 0:
                note = f"Rencontré à la conférence n°{i}, près du café; à rappeler\nbientôt"
                lines.append(f"NOTE:{escape(note)}")
            if rng.random() < PHOTO_SHARE:
                photos += 1
                photo = JPEG if i % 2 else tiny_png(i)
                mime, kind = ("image/jpeg", "JPEG") if photo is JPEG else ("image/png", "PNG")
                data = base64.b64encode(photo).decode()
                if v4:
                    lines.append(f"PHOTO:data:{mime};base64,{data}")
                else:
                    lines.append(f"PHOTO;ENCODING=b;TYPE={kind}:{data}")
            if i % 50 == 0:
                lines.append("CATEGORIES:starred")
        lines.append("END:VCARD")
        out.extend(fold(line) for line in lines)
    return Synthetic("\r\n".join(out) + "\r\n", n, unique, photos)


@dataclass
class Row:
    what: str
    n: int
    samples_s: list[float]
    bar_s: float | None
    ok: bool = True  # correctness check (counts) passed

    @property
    def median(self) -> float:
        return statistics.median(self.samples_s)

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "FAIL (wrong counts)"
        if self.bar_s is None:
            return "info"
        return "pass" if self.median < self.bar_s else "FAIL"


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


class CountingToml(TomlContactStore):
    writes = 0

    def save_many(self, contacts):  # type: ignore[no-untyped-def]
        self.writes += 1
        super().save_many(contacts)


class CountingSqlite(SqliteContactStore):
    writes = 0

    def save_many(self, contacts):  # type: ignore[no-untyped-def]
        self.writes += 1
        super().save_many(contacts)


def bench_import(
    kind: str, factory: Callable[[Path], ContactStore], vcf: Path, data: Synthetic, runs: int
) -> Row:
    samples: list[float] = []
    ok = True
    for run in range(runs):
        directory = vcf.parent / f"{kind}-{run}"
        directory.mkdir()
        with factory(directory) as store:
            seconds, report = timed(lambda store=store: import_file(store, vcf))
            assert isinstance(report, ImportReport)
            samples.append(seconds)
            counted = report.added + report.merged + report.unchanged + len(report.skipped)
            good = (
                counted == data.cards
                and report.added == data.unique
                and store.count() == data.unique
                and getattr(store, "writes", 1) == 1
                and not report.skipped
            )
            if not good:
                print(f"{kind} run {run}: {report.summary()}, store has {store.count()}")
            ok &= good
            if run == 0:
                print(f"{kind}: {report.summary()}")
    return Row(f"import_file → fresh {kind} store", data.cards, samples, IMPORT_BAR_S, ok)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions per measurement")
    parser.add_argument("--cards", type=int, default=CARDS, help="cards in the file")
    args = parser.parse_args(argv)

    seconds, made = timed(lambda: synthetic_vcf(args.cards))
    assert isinstance(made, Synthetic)
    data = made
    print(
        f"generated {data.cards} cards ({data.unique} distinct, {data.photos} photos, "
        f"{len(data.text.encode()) / 1e6:.1f} MB) in {seconds:.2f} s"
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        vcf = Path(tmp) / "contacts.vcf"
        vcf.write_text(data.text, encoding="utf-8")
        parse_samples = [
            timed(lambda: parse_vcards(vcf.read_bytes(), source=str(vcf), base_dir=vcf.parent))[0]
            for _ in range(args.runs)
        ]
        rows.append(Row("parse_vcards (no store)", data.cards, parse_samples, None))
        rows.append(
            bench_import(
                "toml",
                lambda d: CountingToml(d / "contacts.toml"),
                vcf,
                data,
                args.runs,
            )
        )
        rows.append(
            bench_import(
                "sqlite",
                lambda d: CountingSqlite(d / "contacts.sqlite3"),
                vcf,
                data,
                args.runs,
            )
        )
        with SqliteContactStore(Path(tmp) / "sqlite-0" / "contacts.sqlite3") as store:
            out = Path(tmp) / "export.vcf"
            export_samples = [timed(lambda: export_file(store, out))[0] for _ in range(args.runs)]
        rows.append(Row("export_file vCard 3.0 (from sqlite)", data.unique, export_samples, None))

    header = f"{'what':<38} {'n':>7} {'median s':>9}  {'bar':<10} result"
    print(header)
    print("-" * len(header))
    for row in rows:
        bar = "-" if row.bar_s is None else f"< {row.bar_s:g} s"
        print(f"{row.what:<38} {row.n:>7} {row.median:>9.2f}  {bar:<10} {row.verdict}")
    return 1 if any(row.verdict.startswith("FAIL") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
