"""A contact's photo drawn with half-block cells (``▀``: top pixel as the
foreground, bottom pixel as the background), or their initials.

Images are decoded with PyAV (already a dependency: FFmpeg's PNG and JPEG
decoders) and scaled by its swscale, so no image library is needed.
"""

from __future__ import annotations

import io
from functools import lru_cache

from rich.style import Style
from rich.text import Text
from textual.content import Content
from textual.widgets import Static

from hello_tui.util.display import printable


@lru_cache(maxsize=64)
def decode_cells(data: bytes, cols: int, rows: int) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """RGB pixels (``rows*2`` lines of ``<= cols`` pixels), aspect kept; raises on bad data."""
    import av

    with av.open(io.BytesIO(data), mode="r") as container:
        frame = next(container.decode(video=0))
    w, h = frame.width, frame.height
    scale = min(cols / w, (rows * 2) / h)
    pw, ph = max(1, int(w * scale)), max(2, int(h * scale) // 2 * 2)
    rgb = frame.reformat(width=pw, height=ph, format="rgb24").to_ndarray()
    return tuple(tuple(tuple(int(v) for v in px) for px in line) for line in rgb)


def half_blocks(pixels: tuple[tuple[tuple[int, ...], ...], ...]) -> Text:
    text = Text(no_wrap=True, overflow="crop")
    for y in range(0, len(pixels) - 1, 2):
        top, bottom = pixels[y], pixels[y + 1]
        for (r1, g1, b1), (r2, g2, b2) in zip(top, bottom, strict=False):
            text.append("▀", Style(color=f"rgb({r1},{g1},{b1})", bgcolor=f"rgb({r2},{g2},{b2})"))
        if y + 2 < len(pixels) - 1:
            text.append("\n")
    return text


def initials(name: str) -> str:
    """Two letters for a face: of the display name, or of an address's local
    part (alice.martin@example.org: AM, not the domain's AO)."""
    if "@" in name and " " not in name.strip():
        name = name.strip().split("@", 1)[0]
    words = [w for w in name.replace(".", " ").replace("_", " ").split() if w[:1].isalnum()]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].upper()
    return (words[0][0] + words[-1][0]).upper()


class Photo(Static):
    """The photo of a contact (or their initials) in ``cols``×``rows`` cells."""

    DEFAULT_CSS = """
    Photo { width: 16; height: 8; content-align: center middle; text-style: bold; }
    Photo.initials { background: $primary-darken-2; color: $text; }
    """

    def __init__(
        self, cols: int = 16, rows: int = 8, *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__("", id=id, classes=classes)
        self.cols, self.rows = cols, rows

    def show(self, name: str, photo: bytes | None) -> None:
        if photo:
            try:
                self.remove_class("initials")
                self.update(half_blocks(decode_cells(photo, self.cols, self.rows)))
                return
            except Exception:  # an undecodable picture: fall back to initials
                pass
        self.add_class("initials")
        self.update(Content(printable(initials(name or "?"))))  # a name is never markup
