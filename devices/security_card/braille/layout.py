"""Fixed-size braille pages: line wrapping, pagination, BRF, preview and SVG.

A :class:`BrailleDocument` is pages of lines of Unicode-braille cells that all
fit the :class:`LayoutSpec` (cells per line, lines per page).  It is written
as BRF (Braille ASCII lines ended by CR LF, every page ended by a form feed),
previewed as Unicode braille for a sighted reader, or drawn as SVG dots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from devices.errors import BadRequest
from devices.security_card.braille.cells import (
    BLANK,
    FORM_FEED,
    LINE_END,
    dots_of,
    from_brf,
    to_brf,
)

MIN_CELLS_PER_LINE = 12
MAX_CELLS_PER_LINE = 80
MIN_LINES_PER_PAGE = 4
MAX_LINES_PER_PAGE = 60

# (page number, page count) -> the cells of the page label
PageLabel = Callable[[int, int], str]


@dataclass(frozen=True)
class LayoutSpec:
    """The embossable area: ``cells_per_line`` cells on each of ``lines_per_page`` lines."""

    name: str
    cells_per_line: int
    lines_per_page: int

    def __post_init__(self) -> None:
        if not MIN_CELLS_PER_LINE <= self.cells_per_line <= MAX_CELLS_PER_LINE:
            raise BadRequest(
                f"cells per line must be between {MIN_CELLS_PER_LINE} and {MAX_CELLS_PER_LINE}"
            )
        if not MIN_LINES_PER_PAGE <= self.lines_per_page <= MAX_LINES_PER_PAGE:
            raise BadRequest(
                f"lines per page must be between {MIN_LINES_PER_PAGE} and {MAX_LINES_PER_PAGE}"
            )


# A card-sized sheet (about 150 x 100 mm at 6.2 mm per cell and 10 mm per line).
CARD_LAYOUT = LayoutSpec("card", cells_per_line=24, lines_per_page=10)
# A braille page (11 x 11.5 inch paper, the common embosser default).
PAGE_LAYOUT = LayoutSpec("page", cells_per_line=40, lines_per_page=25)
LAYOUTS = {CARD_LAYOUT.name: CARD_LAYOUT, PAGE_LAYOUT.name: PAGE_LAYOUT}


def wrap(cells: str, width: int) -> list[str]:
    """Break a run of cells into lines of at most ``width`` cells at blank cells.

    A word longer than a line is cut (it cannot be kept whole).
    """
    lines: list[str] = []
    current = ""
    for word in cells.split(BLANK):
        if not word:
            continue
        while len(word) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current = current + BLANK + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def right_align(left: str, right: str, width: int) -> str:
    """``left`` and ``right`` on one line of ``width`` cells with blanks between."""
    gap = width - len(left) - len(right)
    if gap < 1:
        raise BadRequest("line content does not fit")
    return left + BLANK * gap + right


@dataclass(frozen=True)
class BrailleDocument:
    spec: LayoutSpec
    pages: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        if not self.pages:
            raise BadRequest("a braille document has at least one page")
        for page in self.pages:
            if len(page) > self.spec.lines_per_page:
                raise BadRequest("page has more lines than the layout allows")
            for line in page:
                if len(line) > self.spec.cells_per_line:
                    raise BadRequest("line has more cells than the layout allows")
                for cell in line:
                    if dots_of(cell) > 0x3F:
                        raise BadRequest("embossed braille is six-dot")

    @property
    def page_count(self) -> int:
        return len(self.pages)

    def to_brf(self) -> bytes:
        """BRF: Braille ASCII lines ended by CR LF, each page ended by a form feed."""
        out = []
        for page in self.pages:
            for line in page:
                out.append(to_brf(line.rstrip(BLANK)) + LINE_END)
            out.append(FORM_FEED)
        return "".join(out).encode("ascii")

    def preview(self) -> str:
        """Unicode braille, a ruled line between pages, for a sighted reader."""
        width = self.spec.cells_per_line
        parts = []
        for number, page in enumerate(self.pages, start=1):
            parts.append(f"--- {self.spec.name} {number}/{len(self.pages)} " + "-" * 8)
            parts.extend(line.rstrip(BLANK) for line in page)
            parts.extend("" for _ in range(self.spec.lines_per_page - len(page)))
        parts.append("-" * max(width, 20))
        return "\n".join(parts) + "\n"

    def svg(self, title: str = "") -> str:
        return render_svg(self, title)


def parse_brf(data: bytes) -> list[list[str]]:
    """BRF bytes -> pages of Unicode-braille lines (what a reader's fingers meet)."""
    text = data.decode("ascii")
    pages = text.split(FORM_FEED)
    if pages and pages[-1].strip("\r\n") == "":
        pages = pages[:-1]
    out = []
    for page in pages:
        lines = page.replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines = lines[:-1]
        out.append([from_brf(line) for line in lines])
    return out


def paginate(
    spec: LayoutSpec,
    header: str,
    body: list[str],
    page_label: PageLabel,
) -> BrailleDocument:
    """Lay ``body`` lines out on pages, each starting with ``header`` and its page number."""
    width = spec.cells_per_line
    for line in body:
        if len(line) > width:
            raise BadRequest("body line wider than the layout")
    # the header height must not depend on the page count: size it for a wide label
    widest = page_label(99, 99)
    head_lines = _header_lines(header, widest, width)
    capacity = spec.lines_per_page - len(head_lines)
    if capacity < 1:
        raise BadRequest("the header leaves no room on the page")
    chunks = [body[i : i + capacity] for i in range(0, len(body), capacity)] or [[]]
    pages = []
    for index, chunk in enumerate(chunks, start=1):
        label = page_label(index, len(chunks))
        lines = _header_lines(header, label, width)
        lines = lines + ["" for _ in range(len(head_lines) - len(lines))]
        pages.append(tuple(lines + chunk))
    return BrailleDocument(spec=spec, pages=tuple(pages))


def _header_lines(header: str, label: str, width: int) -> list[str]:
    if len(header) + 1 + len(label) <= width:
        return [right_align(header, label, width)]
    lines = wrap(header, width)
    lines.append(right_align("", label, width) if len(label) < width else label[:width])
    return lines


# --- SVG ---------------------------------------------------------------------------

CELL_PITCH_MM = 6.2
LINE_PITCH_MM = 10.0
DOT_PITCH_MM = 2.5
MARGIN_MM = 6.0
PAGE_GAP_MM = 8.0
DOT_RADIUS_MM = 0.75
FLAT_RADIUS_MM = 0.25

# dot number -> (column, row) inside a cell
_DOT_POSITION = {1: (0, 0), 2: (0, 1), 3: (0, 2), 4: (1, 0), 5: (1, 1), 6: (1, 2)}


def render_svg(doc: BrailleDocument, title: str = "") -> str:
    """The raised dots of every page, drawn to scale (mm), pages one under another."""
    spec = doc.spec
    page_w = 2 * MARGIN_MM + spec.cells_per_line * CELL_PITCH_MM
    page_h = 2 * MARGIN_MM + spec.lines_per_page * LINE_PITCH_MM
    total_h = doc.page_count * page_h + (doc.page_count - 1) * PAGE_GAP_MM
    parts = [
        (
            '<svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{page_w:.1f}mm" height="{total_h:.1f}mm" '
            f'viewBox="0 0 {page_w:.2f} {total_h:.2f}">'
        )
    ]
    if title:
        parts.append(f"<title>{escape(title)}</title>")
    for p, page in enumerate(doc.pages):
        top = p * (page_h + PAGE_GAP_MM)
        parts.append(f'<g class="page" data-page="{p + 1}">')
        parts.append(
            f'<rect x="0" y="{top:.2f}" width="{page_w:.2f}" height="{page_h:.2f}" '
            'fill="#fffdf5" stroke="#888" stroke-width="0.3"/>'
        )
        for row, line in enumerate(page):
            for col, cell in enumerate(line):
                bits = dots_of(cell)
                x0 = MARGIN_MM + col * CELL_PITCH_MM + 1.0
                y0 = top + MARGIN_MM + row * LINE_PITCH_MM + 1.5
                for dot, (dx, dy) in _DOT_POSITION.items():
                    cx = x0 + dx * DOT_PITCH_MM
                    cy = y0 + dy * DOT_PITCH_MM
                    if bits & (1 << (dot - 1)):
                        parts.append(
                            f'<circle class="dot" cx="{cx:.2f}" cy="{cy:.2f}" '
                            f'r="{DOT_RADIUS_MM}" fill="#222"/>'
                        )
                    else:
                        parts.append(
                            f'<circle cx="{cx:.2f}" cy="{cy:.2f}" r="{FLAT_RADIUS_MM}" '
                            'fill="#ccc"/>'
                        )
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
