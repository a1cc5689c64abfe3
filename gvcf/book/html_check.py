"""Check a built book (``python -m gvcf.book check``, after ``jupyter-book build .``): every chapter page exists,
shows its figures and tables with its code folded, no printed line wider than the page nor a Markdown table left as
text, and the build's settings table, and every image or script it loads resolves to a file in the build."""
from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..paper.tables import LINE_WIDTH   # the width every printed line is wrapped to
from .render import SETTINGS_CLASS, SHOW_INPUT   # the settings table's <div> class; the tag of a cell shown on purpose
from .toc import CHAPTERS, TABLE_CHAPTERS

BUILD_DIR = Path("_build") / "html"

# a chapter's code input (myst-nb: <div class="cell_input ...">) counts as folded inside a <details> (myst-nb 1.x's
# hide-input) or inside a cell whose tag makes sphinx-togglebutton fold it
CODE_INPUT_CLASS = "cell_input"
FOLDING_CLASSES = ("tag_hide-input", "tag_hide-cell", "toggle-hidden")
SHOWN_CLASS = f"tag_{SHOW_INPUT}"   # a cell whose code a chapter shows on purpose (gvcf.book.render.SHOW_INPUT)
OUTPUT_CLASS = "cell_output"       # myst-nb's <div> around a code cell's outputs (printed text in a <pre>)
OUTPUT_TEXT_TAGS = ("pre", "p")    # the output elements whose text the check reads: printed text, Markdown outputs


class _PageParser(HTMLParser):
    """Collects <img src> and <script src> everywhere, and images and tables inside the page's main content, the
    code inputs there shown unfolded, and the tables inside the build's settings (<div class="gvcf-settings">)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.images: list[str] = []          # every img src on the page
        self.scripts: list[str] = []         # every script src on the page (MathJax included)
        self.content_images: list[str] = []  # img src inside <main> / the article
        self.content_tables = 0
        self.code_inputs = 0                 # code cell inputs inside the content
        self.unfolded_inputs = 0             # ... of which not inside a toggle
        self.settings_tables = 0             # tables inside the settings <div> (inside the content)
        # the text of each <pre> (printed text) and <p> (Markdown outputs) inside a cell's output, by tag
        self.output_texts: dict[str, list[str]] = {tag: [] for tag in OUTPUT_TEXT_TAGS}
        self._reading: tuple[str, list[str]] | None = None   # (tag, its text so far) of the output element being read
        self._stack: list[tuple[str, dict]] = []   # (tag, {role: 1} for each role the element opens)
        self._open = {"content": 0, "fold": 0, "settings": 0, "shown": 0, "output": 0}   # open elements per role

    @staticmethod
    def _is_content(tag: str, attrs: dict) -> bool:
        classes = (attrs.get("class") or "").split()
        return tag == "main" or attrs.get("role") == "main" or "bd-article" in classes

    @property
    def _depth(self) -> int:
        return self._open["content"]

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            src = a.get("src") or ""
            self.images.append(src)
            if self._depth:
                self.content_images.append(src)
            return  # void element
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        classes = (a.get("class") or "").split()
        if tag == "table" and self._depth:
            self.content_tables += 1
            self.settings_tables += bool(self._open["settings"])
        if self._depth and CODE_INPUT_CLASS in classes:
            self.code_inputs += 1
            self.unfolded_inputs += not (self._open["fold"] or self._open["shown"])
        if tag in ("br", "hr", "meta", "link", "input", "source", "wbr", "area", "base", "col", "embed",
                   "param", "track"):
            return
        roles = {"content": self._is_content(tag, a),
                 "fold": tag == "details" or any(c in classes for c in FOLDING_CLASSES),
                 "settings": bool(self._depth) and SETTINGS_CLASS in classes,
                 "shown": SHOWN_CLASS in classes,
                 "output": OUTPUT_CLASS in classes}
        if tag in OUTPUT_TEXT_TAGS and self._open["output"]:
            self._reading = (tag, [])
        roles = {k: 1 for k, v in roles.items() if v}
        self._stack.append((tag, roles))
        for role in roles:
            self._open[role] += 1

    def handle_startendtag(self, tag, attrs):
        if tag == "img":
            self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        if self._reading is not None:
            self._reading[1].append(data)

    def handle_endtag(self, tag):
        if self._reading is not None and tag == self._reading[0]:
            self.output_texts[tag].append("".join(self._reading[1]))
            self._reading = None
        # pop to the matching open tag (tolerates unclosed <p>, <li>, ...)
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                for _, roles in self._stack[i:]:
                    for role in roles:
                        self._open[role] -= 1
                del self._stack[i:]
                break


def _asset_problem(page: Path, src: str, build: Path, kind: str = "image") -> str | None:
    """Why `src` (an image or script) on `page` does not resolve to a file in the build, or None."""
    if src.startswith("data:"):
        return None
    if not src:
        return f"{page.relative_to(build)}: {kind} without src"
    parts = urlsplit(src)
    if parts.scheme or parts.netloc:
        return f"{page.relative_to(build)}: {kind} {src!r} is remote (the book must be self-contained)"
    path = unquote(parts.path)
    target = (build / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
    if not target.is_file():
        return f"{page.relative_to(build)}: {kind} {src!r} does not exist"
    return None


def _page_problems(page: Path, parser: _PageParser, build: Path) -> list[str]:
    return [p for src in parser.images if (p := _asset_problem(page, src, build, "image"))] + \
        [p for src in parser.scripts if (p := _asset_problem(page, src, build, "script"))]


def _is_pipe_table(text: str) -> bool:
    """Whether a paragraph is a Markdown pipe table left as text: its first two lines start and end with '|'."""
    lines = [line.strip() for line in text.strip().splitlines()]
    return len(lines) >= 2 and all(line.startswith("|") and line.endswith("|") for line in lines[:2])


def check_html(build_dir: str | os.PathLike = BUILD_DIR, chapters=CHAPTERS, table_chapters=TABLE_CHAPTERS,
               pages=("book/intro", "book/method", "book/reproduce", "book/bibliography")) -> list[str]:
    """Problems with a built book: missing chapter pages, images or scripts that are remote or do not resolve
    (MathJax must be the local copy: readers may be offline), chapters without a figure, chapters in
    table_chapters without a table (besides the settings table), chapters showing code cells unfolded (not inside
    a toggle, nor in a cell tagged show-input: shown on purpose), chapters printing a line wider than LINE_WIDTH (it
    would scroll sideways), chapters showing a Markdown table as a paragraph of text, and chapters without the table
    of the build's settings. Other pages that exist are checked for images and scripts too. An empty list means the book looks complete."""
    build = Path(build_dir)
    if not build.is_dir():
        return [f"{build}: no build directory (run `jupyter-book build .`)"]
    problems = []
    if not (build / "index.html").exists():
        problems.append(f"{build / 'index.html'}: missing")
    for stem in chapters:
        page = build / "book" / "chapters" / f"{stem}.html"
        if not page.exists():
            problems.append(f"chapter {stem}: page {page} is missing")
            continue
        parser = _PageParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        problems += _page_problems(page, parser, build)
        if not any(src for src in parser.content_images):
            problems.append(f"chapter {stem}: no figure (<img>) on {page.relative_to(build)}")
        if stem in table_chapters and parser.content_tables - parser.settings_tables == 0:
            problems.append(f"chapter {stem}: no <table> on {page.relative_to(build)}")
        if parser.unfolded_inputs:
            problems.append(f"chapter {stem}: {parser.unfolded_inputs} of {parser.code_inputs} code cell(s) shown "
                            f"unfolded on {page.relative_to(build)} (the runner tags them hide-input: rerun "
                            f"`python -m gvcf.book run`)")
        wide = [line for text in parser.output_texts["pre"] for line in text.splitlines() if len(line) > LINE_WIDTH]
        if wide:
            problems.append(f"chapter {stem}: {len(wide)} printed line(s) wider than {LINE_WIDTH} characters scroll "
                            f"sideways on {page.relative_to(build)} (wrap them with gvcf.paper.tables.wrap or "
                            f"text_table), the widest: {max(wide, key=len)[:LINE_WIDTH]!r}")
        pipes = [p for p in parser.output_texts["p"] if _is_pipe_table(p)]
        if pipes:
            problems.append(f"chapter {stem}: {len(pipes)} Markdown table(s) shown as text on "
                            f"{page.relative_to(build)} (myst-nb renders a Markdown output as CommonMark, which has "
                            f"no tables: show a DataFrame with gvcf.paper.tables.page_table), the first: "
                            f"{pipes[0].splitlines()[0][:LINE_WIDTH]!r}")
        if not parser.settings_tables:
            problems.append(f"chapter {stem}: no table of the build's settings (<div class=\"{SETTINGS_CLASS}\"> "
                            f"with a <table>) on {page.relative_to(build)}")
    for name in pages:
        page = build / f"{name}.html"
        if page.exists():
            parser = _PageParser()
            parser.feed(page.read_text(encoding="utf-8", errors="replace"))
            problems += _page_problems(page, parser, build)
    return problems
