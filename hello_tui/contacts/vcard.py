"""vCard import and export (3.0 and 4.0; 2.1-style quoted-printable is read too).

Parsing is forgiving because address-book exports are messy: the text is first
cut into one chunk per ``BEGIN:VCARD`` … ``END:VCARD`` so that a broken card is
skipped with a reason and the next card is read normally. Each chunk is then
parsed by :func:`vobject.readComponents`, which does the real work (line
unfolding, parameters, quoted-printable, charsets). A single line vobject cannot
parse is dropped with a warning and the card re-read, so one garbled line does
not cost the whole contact.

One twist: vobject's vCard 3.0 behaviour decodes every value as a comma-separated
list and keeps only the first item, which truncates vCard 4.0 ``data:`` photo URIs
(``data:image/jpeg;base64,…``) and notes with an unescaped comma. So each chunk is
handed to vobject under a neutral component name (no behaviour attached, values
left raw) and the values are unescaped here, per property.

Nothing here touches the network: a photo given as an http(s) URL is skipped with
a warning; only local files (``file:`` URIs or paths relative to the vCard) are read.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import vobject
from vobject.base import ContentLine, ParseError, VObjectError

from hello_tui.contacts.model import Contact, ContactError, image_mime, normalize_email

__all__ = [
    "MAX_PHOTO_BYTES",
    "ParseResult",
    "Skip",
    "decode_text",
    "export_vcards",
    "parse_vcards",
    "phone_key",
    "split_name",
    "unique_phones",
    "valid_email",
]

# A contact photo is a thumbnail; anything bigger is a mistake (or /dev/zero).
MAX_PHOTO_BYTES = 10 * 1024 * 1024

_RAW_NAME = "HELLO-RAW-VCARD"  # component name vobject has no behaviour for
_BEGIN_RE = re.compile(r"BEGIN\s*:\s*VCARD\s*", re.IGNORECASE)
_END_RE = re.compile(r"END\s*:\s*VCARD\s*", re.IGNORECASE)
_LINE_SPLIT_RE = re.compile(r"\r\n|\r|\n")
_MAX_BAD_LINES = 20
_BASE64_LINE_RE = re.compile(r"[A-Za-z0-9+/=]+\s*")
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_URI_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FAVOURITE_CATEGORIES = frozenset(
    {"favorite", "favorites", "favourite", "favourites", "starred", "* starred"}
)


@dataclass(slots=True, frozen=True)
class Skip:
    """One card (or CSV row) that was not imported, and why.

    ``index`` is the 1-based card number (vCard) or the spreadsheet row number
    (CSV, where the header is row 1); ``line`` is the line it starts on, when known.
    """

    index: int
    reason: str
    line: int | None = None
    name: str | None = None
    kind: str = "card"

    def __str__(self) -> str:
        where = f"{self.kind} {self.index}"
        if self.line is not None and not (self.kind == "row" and self.line == self.index):
            where += f" (line {self.line})"
        if self.name:
            where += f" {self.name!r}"
        return f"{where}: {self.reason}"


@dataclass(slots=True)
class ParseResult:
    """What a file yielded: valid contacts, skipped entries and non-fatal warnings."""

    source: str
    contacts: list[Contact] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def decode_text(data: bytes | str, *, source: str, warnings: list[str] | None = None) -> str:
    """Bytes → text: BOM first (UTF-8/UTF-16), then UTF-8, then cp1252, then latin-1.

    Old phones and Outlook write cp1252/latin-1; latin-1 never fails, so the last
    resort always yields *something* and the fallback is reported as a warning.
    """
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace").removeprefix("\ufeff")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if warnings is not None:
            warnings.append(f"{source}: not valid UTF-8, read as {encoding}")
        return text
    raise AssertionError("latin-1 decodes any byte string")  # pragma: no cover


# --------------------------------------------------------------------------- parsing


@dataclass(slots=True)
class _Chunk:
    index: int  # 1-based card number
    line: int  # 1-based line of BEGIN:VCARD
    lines: list[str]
    complete: bool  # END:VCARD seen


def _split_cards(text: str, source: str, warnings: list[str]) -> Iterator[_Chunk]:
    """Cut the text at BEGIN/END:VCARD lines; a BEGIN inside a card ends that card
    as broken (missing END) so parsing resyncs on the new one."""
    current: _Chunk | None = None
    stray_from: int | None = None
    stray_to = 0
    index = 0
    for number, line in enumerate(_LINE_SPLIT_RE.split(text), start=1):
        folded = line[:1] in (" ", "\t")
        if not folded and _BEGIN_RE.fullmatch(line):
            if stray_from is not None:
                warnings.append(_stray_warning(source, stray_from, stray_to))
                stray_from = None
            if current is not None:
                yield current
            index += 1
            current = _Chunk(index, number, [line], complete=False)
        elif current is not None:
            current.lines.append(line)
            if not folded and _END_RE.fullmatch(line):
                current.complete = True
                yield current
                current = None
        elif line.strip():
            if stray_from is None:
                stray_from = number
            stray_to = number
    if stray_from is not None:
        warnings.append(_stray_warning(source, stray_from, stray_to))
    if current is not None:
        yield current


def _stray_warning(source: str, first: int, last: int) -> str:
    lines = f"line {first}" if first == last else f"lines {first}-{last}"
    return f"{source}: {lines}: text outside any vCard ignored"


# Progress of a long import: (phase, done, total), e.g. ("reading", 120, 5000).
Progress = Callable[[str, int, int], None]
_BEGIN = re.compile(r"^BEGIN:VCARD", re.IGNORECASE | re.MULTILINE)


def parse_vcards(
    data: bytes | str,
    *,
    source: str,
    base_dir: Path | None = None,
    progress: Progress | None = None,
) -> ParseResult:
    """Parse every card in ``data``; bad cards are skipped, never fatal.

    ``base_dir`` resolves relative PHOTO paths (the vCard file's folder).
    ``progress("reading", done, total)`` is called after each card.
    Raises :class:`ContactError` only when the input holds no vCard at all.
    """
    result = ParseResult(source=source)
    text = decode_text(data, source=source, warnings=result.warnings)
    found = False
    total = len(_BEGIN.findall(text)) if progress is not None else 0
    for done, chunk in enumerate(_split_cards(text, source, result.warnings), 1):
        found = True
        _parse_chunk(chunk, base_dir, result)
        if progress is not None:
            progress("reading", done, max(total, done))
    if not found and text.strip():
        raise ContactError(f"{source}: no vCard found (no BEGIN:VCARD line)")
    return result


def _parse_chunk(chunk: _Chunk, base_dir: Path | None, result: ParseResult) -> None:
    guessed_name = _guess_name(chunk.lines)

    def skip(reason: str, name: str | None = guessed_name) -> None:
        result.skipped.append(Skip(chunk.index, reason, line=chunk.line, name=name or None))

    if not chunk.complete:
        skip("missing END:VCARD")
        return
    label = f"{result.source}: card {chunk.index}"
    warnings: list[str] = []
    try:
        lines = _read_lines(chunk, warnings)
    except _CardError as exc:
        skip(str(exc))
        return
    try:
        contact = _to_contact(lines, base_dir, warnings)
    except ContactError as exc:
        skip(str(exc))
        return
    if contact is None:
        skip("no name and no e-mail")
        return
    result.warnings.extend(f"{label} {contact.name!r}: {w}" for w in warnings)
    result.contacts.append(contact)


class _CardError(Exception):
    """This card cannot be read; the message is the reason shown to the user."""


def _read_lines(chunk: _Chunk, warnings: list[str]) -> list[ContentLine]:
    """Parse one card with vobject; a line vobject cannot parse is dropped with a
    warning and the card re-read, so one garbled line does not lose the card."""
    # Blank lines mean nothing inside a card, and vobject's line counting
    # (which locates a bad line) is only exact without them.
    body: list[str] = []
    numbers: list[int] = []
    in_base64 = False
    for offset, line in enumerate(chunk.lines[1:-1], start=1):
        if not line.strip():
            in_base64 = False
            continue
        if line[:1] in (" ", "\t") and not body:
            # A continuation of nothing would fold into our own BEGIN line and
            # lose the whole card: it is one unreadable line, dropped as such.
            quoted = line[:60]
            warnings.append(f"line {chunk.line + offset}: unreadable line ignored: {quoted!r}")
            continue
        if line[:1] not in (" ", "\t"):
            if in_base64 and _BASE64_LINE_RE.fullmatch(line):
                # vCard 2.1 writers often leave base64 continuation lines unindented.
                line = " " + line
            else:
                params = line.split(":", 1)[0].upper()
                in_base64 = "BASE64" in params or "ENCODING=B" in params
        body.append(line)
        numbers.append(chunk.line + offset)
    for _attempt in range(_MAX_BAD_LINES + 1):
        text = "\n".join([f"BEGIN:{_RAW_NAME}", *body, f"END:{_RAW_NAME}", ""])
        try:
            # allowQP=True: reads 2.1 quoted-printable, and its line reader is
            # both faster on long folded photos and exact about line numbers.
            components = list(vobject.readComponents(text, transform=False, allowQP=True))
        except ParseError as exc:
            index = (exc.lineNumber or 0) - 2  # text line 1 is BEGIN
            if not 0 <= index < len(body):
                raise _CardError(f"unreadable card ({_one_line(exc)})") from None
            end = index + 1
            while end < len(body) and body[end][:1] in (" ", "\t"):
                end += 1  # the bad line's folded continuation lines go with it
            warnings.append(f"line {numbers[index]}: unreadable line ignored: {body[index][:60]!r}")
            del body[index:end], numbers[index:end]
            continue
        except (VObjectError, ValueError, LookupError) as exc:
            # Bad quoted-printable, unknown CHARSET, unbalanced BEGIN/END inside.
            raise _CardError(f"unreadable card ({_one_line(exc)})") from None
        if len(components) != 1:
            raise _CardError("unreadable card (not one card between BEGIN and END)")
        return [c for c in components[0].getChildren() if isinstance(c, ContentLine)]
    raise _CardError(f"unreadable card (more than {_MAX_BAD_LINES} unreadable lines)")


def _guess_name(lines: list[str]) -> str:
    """A best-effort FN for skip messages, read before (or without) vobject."""
    for line in lines:
        if line[:3].upper() in ("FN:", "FN;"):
            value = line.split(":", 1)[1] if ":" in line else ""
            return _unescape(value).strip()[:80]
    return ""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _unescape(value: str) -> str:
    """vCard text unescaping: ``\\n`` → newline, ``\\,`` ``\\;`` ``\\\\`` ``\\:`` →
    the character; an unknown escape keeps its backslash (nothing is lost)."""
    if "\\" not in value:
        return value

    def repl(m: re.Match[str]) -> str:
        char = m.group(1)
        if char in "nN":
            return "\n"
        if char in ",;:\\":
            return char
        return m.group(0)

    return _ESCAPE_RE.sub(repl, value)


def _split_unescaped(value: str, sep: str) -> list[str]:
    """Split raw text at ``sep`` characters that are not backslash-escaped."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _clean_name(value: str) -> str:
    return " ".join(value.split())


def _param_values(line: ContentLine, name: str) -> list[str]:
    return [v.upper() for v in line.params.get(name, [])]


def _to_contact(
    lines: list[ContentLine], base_dir: Path | None, warnings: list[str]
) -> Contact | None:
    """Build a Contact from raw vobject content lines; ``None`` if unnameable."""
    props: dict[str, list[ContentLine]] = {}
    for line in lines:
        props.setdefault(line.name, []).append(line)
    kinds = props.get("KIND", []) + props.get("X-ADDRESSBOOKSERVER-KIND", [])
    if any(line.value.strip().lower() == "group" for line in kinds):
        raise ContactError("a contact group, not a contact")

    emails: list[str] = []
    seen_emails: set[str] = set()
    for line in props.get("EMAIL", []):
        address = _unescape(line.value).strip()
        if address[:7].lower() == "mailto:":
            address = address[7:].strip()
        if not address:
            continue
        if not valid_email(address):
            warnings.append(f"invalid e-mail address {address!r} dropped")
            continue
        key = normalize_email(address)
        if key not in seen_emails:
            seen_emails.add(key)
            emails.append(address)

    phones = unique_phones(_strip_tel(_unescape(line.value)) for line in props.get("TEL", []))

    name = ""
    for line in props.get("FN", []):
        name = _clean_name(_unescape(line.value))
        if name:
            break
    if not name:
        for line in props.get("N", []):
            # family;given;additional;prefix;suffix, each possibly a comma list
            parts = [
                " ".join(_unescape(v) for v in _split_unescaped(part, ","))
                for part in _split_unescaped(line.value, ";")
            ]
            parts += [""] * (5 - len(parts))
            family, given, additional, prefix, suffix = parts[:5]
            name = _clean_name(" ".join((prefix, given, additional, family, suffix)))
            if name:
                break
    if not name:
        for line in props.get("ORG", []):
            name = _clean_name(_unescape(_split_unescaped(line.value, ";")[0]))
            if name:
                break
    if not name and emails:
        name = emails[0]
    if not name:
        return None

    notes = "\n".join(
        n for n in (_unescape(line.value) for line in props.get("NOTE", [])) if n.strip()
    ).replace("\r\n", "\n")

    favourite = any(_truthy(line.value) for line in props.get("X-HELLO-FAVORITE", []))
    for line in props.get("CATEGORIES", []):
        categories = {_unescape(c).strip().casefold() for c in _split_unescaped(line.value, ",")}
        if categories & _FAVOURITE_CATEGORIES:
            favourite = True
    blocked = any(_truthy(line.value) for line in props.get("X-HELLO-BLOCKED", []))

    photo: bytes | None = None
    for line in props.get("PHOTO", []):
        photo = _photo(line, base_dir, warnings)
        if photo is not None:
            break

    contact = Contact(
        name=name,
        emails=emails,
        phones=phones,
        notes=notes,
        photo=photo,
        favourite=favourite,
        blocked=blocked,
    )
    return contact.validate()


def valid_email(address: str) -> bool:
    """Whether the model accepts ``address`` (same rule as :meth:`Contact.validate`)."""
    try:
        Contact(name="-", emails=[address]).validate()
    except ContactError:
        return False
    return True


def _strip_tel(value: str) -> str:
    value = value.strip()
    return value[4:].strip() if value[:4].lower() == "tel:" else value


def phone_key(phone: str) -> str:
    """Duplicate-detection key for a phone: its digits (and a leading +)."""
    digits = re.sub(r"[^\d+]", "", phone)
    return digits or phone.strip().casefold()


def unique_phones(phones: Iterable[str]) -> list[str]:
    """Non-empty phones in order, without numbers that differ only in punctuation."""
    out: list[str] = []
    seen: set[str] = set()
    for phone in phones:
        phone = phone.strip()
        if not phone:
            continue
        key = phone_key(phone)
        if key not in seen:
            seen.add(key)
            out.append(phone)
    return out


def _truthy(value: str) -> bool:
    return value.strip().lower() in _TRUE


def _photo(line: ContentLine, base_dir: Path | None, warnings: list[str]) -> bytes | None:
    """Photo bytes from an inline (base64 / data: URI) or local-file PHOTO, else None."""
    value: str = line.value.strip()
    singletons = [s.upper() for s in line.singletonparams]
    encoding = _param_values(line, "ENCODING")
    data: bytes | None
    if any(e in ("B", "BASE64") for e in encoding) or "BASE64" in singletons:
        data = _b64(value, warnings)
    else:
        uri = re.sub(r"\\([,;:])", r"\1", value)
        scheme_match = _URI_SCHEME_RE.match(uri)
        scheme = scheme_match.group(1).lower() if scheme_match else ""
        if scheme == "data":
            header, _, payload = uri[5:].partition(",")
            if header.lower().endswith(";base64"):
                data = _b64(payload, warnings)
            else:
                data = urllib.parse.unquote_to_bytes(payload)
        elif scheme == "file":
            parsed = urllib.parse.urlparse(uri)
            if parsed.netloc not in ("", "localhost"):
                warnings.append(f"photo on another host ({uri[:80]}) not read")
                return None
            # POSIX: a file URI's path is the percent-encoded absolute path.
            path = Path(urllib.parse.unquote(parsed.path))
            data = _read_photo_file(path, base_dir, warnings)
        elif scheme:
            warnings.append(f"photo at {uri[:80]} not fetched (only local files are read)")
            return None
        elif len(uri) > 255 and _BASE64_LINE_RE.fullmatch(uri):
            data = _b64(uri, warnings)  # inline data missing its ENCODING parameter
        elif uri:
            data = _read_photo_file(Path(uri), base_dir, warnings)
        else:
            return None
    if data is None:
        return None
    if len(data) > MAX_PHOTO_BYTES:
        warnings.append(f"photo larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MiB dropped")
        return None
    if image_mime(data) is None:
        warnings.append("photo is not a PNG or JPEG image; dropped")
        return None
    return data


def _b64(value: str, warnings: list[str]) -> bytes | None:
    compact = "".join(value.split())
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=False)
    except (binascii.Error, ValueError):
        warnings.append("photo is not valid base64; dropped")
        return None


def _read_photo_file(path: Path, base_dir: Path | None, warnings: list[str]) -> bytes | None:
    """A local photo file's bytes; only regular files up to MAX_PHOTO_BYTES."""
    shown = repr(str(path)[:120])
    if not path.is_absolute():
        if base_dir is None:
            warnings.append(f"relative photo path {shown} ignored (no base folder)")
            return None
        path = base_dir / path
    try:
        if not path.is_file():
            warnings.append(f"photo file {shown} not found")
            return None
        if path.stat().st_size > MAX_PHOTO_BYTES:
            warnings.append(f"photo file {shown} is too large; dropped")
            return None
        return path.read_bytes()
    except OSError as exc:
        warnings.append(f"photo file {shown} unreadable ({exc.strerror or exc})")
        return None


# --------------------------------------------------------------------------- export


def _escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace("\r\n", "\n")
        .replace("\r", "\n")
        .replace("\n", "\\n")
        .replace(",", "\\,")
        .replace(";", "\\;")
    )


def _fold(line: str) -> str:
    """Fold at 75 octets (RFC 6350 §3.2) without splitting a UTF-8 sequence."""
    if len(line) <= 75 and (line.isascii() or len(line.encode("utf-8")) <= 75):
        return line
    if line.isascii():
        pieces = [line[:75]] + [line[i : i + 74] for i in range(75, len(line), 74)]
        return "\r\n ".join(pieces)
    pieces = []
    current: list[str] = []
    size = 0
    limit = 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            pieces.append("".join(current))
            current, size, limit = [], 0, 74
        current.append(char)
        size += width
    pieces.append("".join(current))
    return "\r\n ".join(pieces)


def split_name(name: str) -> tuple[str, str]:
    """(given, family) for vCard N and CSV columns: the last word is the family name."""
    words = name.split()
    if len(words) < 2:
        return (name.strip(), "")
    return (" ".join(words[:-1]), words[-1])


def export_vcards(
    contacts: Iterable[Contact],
    photo_bytes: Callable[[Contact], bytes | None],
    version: str = "3.0",
) -> str:
    """Serialise contacts as vCard ``3.0`` or ``4.0`` with inline photos.

    Written by hand rather than through vobject (which only knows 3.0): the
    output is CRLF, folded at 75 octets, and :func:`parse_vcards` reads it back
    with nothing lost. Favourite/blocked travel as X-HELLO-FAVORITE/X-HELLO-BLOCKED.
    """
    if version not in ("3.0", "4.0"):
        raise ValueError(f"unsupported vCard version {version!r} (expected '3.0' or '4.0')")
    v4 = version == "4.0"
    out: list[str] = []
    for contact in contacts:
        given, family = split_name(contact.name)
        lines = [
            "BEGIN:VCARD",
            f"VERSION:{version}",
            f"UID;VALUE=text:{_escape(contact.id)}" if v4 else f"UID:{_escape(contact.id)}",
            f"FN:{_escape(contact.name)}",
            f"N:{_escape(family)};{_escape(given)};;;",
        ]
        for address in contact.emails:
            lines.append(
                f"EMAIL:{_escape(address)}" if v4 else f"EMAIL;TYPE=INTERNET:{_escape(address)}"
            )
        lines.extend(f"TEL:{_escape(phone)}" for phone in contact.phones)
        if contact.notes:
            lines.append(f"NOTE:{_escape(contact.notes)}")
        photo = photo_bytes(contact)
        mime = image_mime(photo) if photo else None
        if photo and mime:
            encoded = base64.b64encode(photo).decode("ascii")
            if v4:
                lines.append(f"PHOTO:data:{mime};base64,{encoded}")
            else:
                kind = "PNG" if mime == "image/png" else "JPEG"
                lines.append(f"PHOTO;ENCODING=b;TYPE={kind}:{encoded}")
        if contact.favourite:
            lines.append("X-HELLO-FAVORITE:TRUE")
        if contact.blocked:
            lines.append("X-HELLO-BLOCKED:TRUE")
        lines.append("END:VCARD")
        out.extend(_fold(line) for line in lines)
    return "".join(line + "\r\n" for line in out)
