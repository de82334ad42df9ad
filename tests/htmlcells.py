"""A page's tables, headings and tags, read with the standard library: what the HTML report tests assert on."""

from __future__ import annotations

from html.parser import HTMLParser


class Cells(HTMLParser):
    """The page's tables as rows of (text, class) cells, its headings, and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, str]]] = []
        self.headings: list[str] = []
        self.tags: set[str] = set()
        self._cell: tuple[str, str] | None = None
        self._heading = False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ("", dict(attrs).get("class") or "")
        elif tag in ("h1", "h2"):
            self._heading = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None
        elif tag in ("h1", "h2"):
            self._heading = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell = (self._cell[0] + data, self._cell[1])
        elif self._heading:
            self.headings[-1] += data


def parse(page: str) -> Cells:
    p = Cells()
    p.feed(page)
    return p
