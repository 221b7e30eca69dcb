"""HTML + inline SVG → PDF (WeasyPrint: selectable text, embedded CJK subset fonts) → PNG
(pdfium). Fonts: Noto Sans CJK from Debian ``fonts-noto-cjk``, reduced once to the characters
documents use (``cadastre.documents.fonts``), with the full face as the fallback."""

from __future__ import annotations

import html
import io
import logging
import threading
from collections.abc import Sequence
from typing import Any

from PIL import Image

log = logging.getLogger(__name__)

FONT_FAMILY = "Noto Sans CJK SC"
PNG_DPI = 150

_pdfium_lock = threading.Lock()   # pdfium is not thread-safe


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _font_face() -> str:
    from cadastre.documents.fonts import document_faces

    faces = []
    for path, weight in document_faces():
        faces.append(f"@font-face {{ font-family: 'DocCJK'; font-weight: {weight}; "
                     f"src: url('{path.as_uri()}'); }}")
    return "\n".join(faces)


BASE_CSS = """
@page { size: A4; margin: 12mm 12mm 14mm 12mm;
        @bottom-center { content: counter(page) " / " counter(pages);
                         font-family: 'DocCJK', '%(family)s', sans-serif;
                         font-size: 7pt; color: #555; } }
body { font-family: 'DocCJK', '%(family)s', sans-serif; font-size: 9pt; color: #111; }
h1 { font-size: 16pt; text-align: center; margin: 0 0 1mm 0; }
.sub { text-align: center; font-size: 8pt; color: #444; margin-bottom: 3mm; }
table { border-collapse: collapse; width: 100%%; }
td, th { border: 0.3pt solid #333; padding: 0.8mm 1.5mm; font-size: 8.5pt; }
th { background: #eee; font-weight: 700; white-space: nowrap; }
table.info th { width: 18mm; text-align: left; }
table.points td, table.points th, table.areas td, table.areas th { text-align: right; }
table.points td:first-child, table.areas td:first-child { text-align: center; }
.map { border: 0.6pt solid #111; margin: 2mm 0; }
.foot { font-size: 7.5pt; color: #333; margin-top: 2mm; }
.foot span { margin-right: 6mm; }
.note { font-size: 7pt; color: #666; margin-top: 1.5mm; }
h2 { font-size: 10pt; margin: 3mm 0 1mm 0; }
.page { page-break-after: always; }
.page:last-child { page-break-after: auto; }
"""


def page_html(title: str, body: str) -> str:
    """A document page; its style sheet (fonts included) is added by ``html_to_pdf``."""
    return (f"<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title></head><body>{body}</body></html>")


_render_lock = threading.Lock()
_style: tuple[Any, Any] | None = None


def _stylesheet() -> tuple[Any, Any]:
    """The font configuration and style sheet, built once: registering the CJK font faces
    costs about 0.1 s per document otherwise."""
    global _style
    if _style is None:
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration

        fonts = FontConfiguration()
        css = CSS(string=_font_face() + BASE_CSS % {"family": FONT_FAMILY}, font_config=fonts)
        _style = (fonts, css)
    return _style


def html_to_pdf(document: str) -> bytes:
    from weasyprint import HTML  # heavy import: only when a document is rendered

    # one at a time: the shared font configuration is not meant for concurrent use, and
    # WeasyPrint holds the GIL for most of its work anyway
    with _render_lock:
        fonts, css = _stylesheet()
        return HTML(string=document).write_pdf(  # type: ignore[no-any-return]
            stylesheets=[css], font_config=fonts)


_extra_css: dict[str, Any] = {}


def render_pages(document: str, extra_css: str = "") -> Any:
    """The laid-out pages of ``document`` (a ``weasyprint.Document``), with ``extra_css`` after
    the base style sheet. Documents made of pages of several renderings are written with
    ``write_pages``; a rendering can be reused (layout is most of the cost)."""
    from weasyprint import CSS, HTML

    with _render_lock:
        fonts, css = _stylesheet()
        sheets = [css]
        if extra_css:
            if extra_css not in _extra_css:
                _extra_css[extra_css] = CSS(string=extra_css, font_config=fonts)
            sheets.append(_extra_css[extra_css])
        return HTML(string=document).render(stylesheets=sheets, font_config=fonts)


def write_pages(document: Any, pages: list[Any] | None = None,
                variant: str | None = "pdf/a-3b", compress: bool = True) -> bytes:
    """``pages`` (default: all of ``document``'s) as one PDF with ``document``'s metadata; by
    default PDF/A-3b (XMP metadata, sRGB output intent, every font embedded). ``compress=False``
    for a document ``combine`` finishes: it compresses the streams faster (pydyf deflates at
    level 9, about 15 ms of a certificate)."""
    with _render_lock:
        doc = document if pages is None else document.copy(pages)
        return doc.write_pdf(  # type: ignore[no-any-return]
            pdf_variant=variant, uncompressed_pdf=not compress)


def combine(pdf: bytes, insert: tuple[bytes, int] | None = None,
            stamps: Sequence[tuple[bytes, int, tuple[float, float, float, float]]] = ()
            ) -> tuple[bytes, int]:
    """``pdf`` with pages of documents written before (a map shared by many documents, a seal)
    copied in as they were written (pikepdf/qpdf: nothing decoded or painted again), so such a
    page is painted once for all the documents that show it. ``stamps``: (document, page of
    ``pdf``, (left, bottom, right, top) in points): the document's first page drawn over that
    page, fitted into the rectangle. ``insert``: (document, at): its pages inserted before page
    ``at`` (0-based), with their bookmarks. ``pdf``'s catalogue (PDF/A metadata, output
    intent) stays as it is; its streams are compressed if they were not (qpdf's deflate, the
    XMP metadata left plain). Returns the document and the number of pages inserted."""
    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as base:
        for stamp, number, rect in stamps:
            with pikepdf.open(io.BytesIO(stamp)) as other:
                base.pages[number].add_overlay(other.pages[0], pikepdf.Rectangle(*rect))
        inserted = 0
        if insert is not None:
            with pikepdf.open(io.BytesIO(insert[0])) as extra:
                inserted = _insert(base, extra, insert[1])
        out = io.BytesIO()
        base.save(out, compress_streams=True)
        return out.getvalue(), inserted


def _insert(base: Any, extra: Any, at: int) -> int:
    """``extra``'s pages and bookmarks into ``base`` before its page ``at``."""
    with base.open_outline() as outline, extra.open_outline() as theirs:
        ours = [(_outline_page(base, item), item) for item in outline.root]
        for i, page in enumerate(extra.pages):
            base.pages.insert(at + i, page)
        moved = {extra.pages[i].obj.objgen: base.pages[at + i].obj
                 for i in range(len(extra.pages))}
        before = [item for page, item in ours if page is not None and page < at]
        after = [item for page, item in ours if page is None or page >= at]
        outline.root[:] = before + [_copy_item(item, moved) for item in theirs.root] + after
    return len(extra.pages)


def _outline_page(pdf: Any, item: Any) -> int | None:
    """The 0-based page a bookmark points to (an explicit destination), else None."""
    import pikepdf

    dest = item.destination
    if isinstance(dest, pikepdf.Array) and len(dest) and isinstance(dest[0], pikepdf.Dictionary):
        return int(pdf.pages.index(pikepdf.Page(dest[0])))
    return None


def _copy_item(item: Any, moved: dict[tuple[int, int], Any]) -> Any:
    """A bookmark of an inserted document, pointing to the page its page became."""
    import pikepdf

    dest = item.destination
    if isinstance(dest, pikepdf.Array) and len(dest) and dest[0].objgen in moved:
        dest = pikepdf.Array([moved[dest[0].objgen], *list(dest)[1:]])
    copy = pikepdf.OutlineItem(item.title, destination=dest)
    copy.children.extend(_copy_item(child, moved) for child in item.children)
    return copy


def pdf_to_png(pdf: bytes, dpi: int = PNG_DPI, only: list[int] | None = None) -> bytes:
    """All pages (or the 0-based pages ``only``), stacked vertically, as one PNG."""
    import pypdfium2 as pdfium

    with _pdfium_lock:
        doc = pdfium.PdfDocument(pdf)
        try:
            numbers = range(len(doc)) if only is None else [i for i in only if 0 <= i < len(doc)]
            pages = [doc[i].render(scale=dpi / 72).to_pil().convert("RGB") for i in numbers]
        finally:
            doc.close()
    if len(pages) == 1:
        image = pages[0]
    else:
        width = max(p.width for p in pages)
        image = Image.new("RGB", (width, sum(p.height for p in pages)), "white")
        y = 0
        for p in pages:
            image.paste(p, (0, y))
            y += p.height
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()
