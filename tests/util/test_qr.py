"""QR codes drawn in the terminal (util/qr.py): the drawn text is the library's
matrix, and a real decoder (OpenCV's) reads the URL back from it."""

from __future__ import annotations

import numpy as np
import pytest

from hello_tui.util.qr import matrix_of_lines, qr_lines, qr_matrix

URL = "https://hello.example.org/r/3kq9VfX2pLm8Ab#k=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"


@pytest.mark.parametrize("invert", [True, False])
def test_the_drawn_text_is_the_matrix_two_rows_a_line(invert: bool) -> None:
    matrix = qr_matrix(URL)
    lines = qr_lines(URL, invert=invert)
    assert len(lines) == (len(matrix) + 1) // 2
    assert {len(line) for line in lines} == {len(matrix[0])}
    assert set("".join(lines)) <= {" ", "▀", "▄", "█"}
    assert matrix_of_lines(lines, invert=invert)[: len(matrix)] == matrix
    # The quiet zone is light: blocks when inverted (a dark terminal), spaces otherwise.
    assert lines[0] == ("█" if invert else " ") * len(matrix[0])


def test_a_decoder_reads_the_url_back_from_the_drawn_text() -> None:
    cv2 = pytest.importorskip("cv2")
    modules = np.array(matrix_of_lines(qr_lines(URL)), dtype=bool)
    image = np.where(modules, 0, 255).astype(np.uint8)  # dark modules black, as printed
    image = np.kron(image, np.ones((8, 8), dtype=np.uint8))  # 8 px a module
    text, points, _ = cv2.QRCodeDetector().detectAndDecode(image)
    assert points is not None and text == URL
