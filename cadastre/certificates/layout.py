"""The printed page of a certificate, proof or query result, after the national forms: title and
number, the record table, 附记, the registration statement, the office's seal with the date (a
square left for it: ``cadastre.certificates.seal`` stamps it), and the 一证一码 QR code with the
verification address. The parcel map (宗地图) and floor plans (分层分户图) follow as 附图页,
rendered by ``cadastre.documents``.

Only fields the privacy policy lets the holder see (``Role.OWNER``, the ``certificate`` entity)
are printed.
"""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

from cadastre.access import privacy
from cadastre.access.privacy import Role
from cadastre.certificates.record import CertificateContent, day
from cadastre.certificates.seal import SEAL_ANCHOR
from cadastre.documents.render import esc

TITLES = {"certificate": ("中华人民共和国不动产权证书", "Real Estate Title Certificate"),
          "proof": ("不动产登记证明", "Real Estate Registration Proof"),
          "query_result": ("不动产登记信息查询结果", "Register Information Query Result")}

# (policy field, label, English) per kind, in the order of the national forms
_ROWS = {
    "certificate": (("holders", "权利人", "Holder(s)"),
                    ("co_ownership", "共有情况", "Co-ownership"),
                    ("seat", "坐落", "Location"),
                    ("unit_code", "不动产单元号", "Unit code"),
                    ("right_type", "权利类型", "Right type"),
                    ("right_nature", "权利性质", "Right nature"),
                    ("use", "用途", "Use"),
                    ("area", "面积", "Area"),
                    ("term", "使用期限", "Term"),
                    ("other", "权利其他状况", "Other particulars")),
    "proof": (("right_kind", "证明权利或事项", "Right or matter proven"),
              ("holders", "权利人（申请人）", "Holder (applicant)"),
              ("obligors", "义务人", "Obligor(s)"),
              ("seat", "坐落", "Location"),
              ("unit_code", "不动产单元号", "Unit code"),
              ("other", "其他", "Particulars")),
    "query_result": (("seat", "坐落", "Location"),
                     ("unit_code", "不动产单元号", "Unit code"),
                     ("use", "用途", "Use"),
                     ("area", "面积", "Area"),
                     ("as_of", "查询时点", "Register as of")),
}
STATEMENT = {
    "certificate": "根据《中华人民共和国民法典》等法律法规，为保护不动产权利人合法权益，"
                   "对不动产权利人申请登记的本证所列不动产权利，经审查核实，准予登记，颁发此证。",
    "proof": "根据《中华人民共和国民法典》等法律法规，对申请人申请登记的本证明所列事项，"
             "经审查核实，准予登记，颁发此证明。",
    "query_result": "本查询结果依据不动产登记簿记载出具，反映查询时点的登记状况。",
}
ELECTRONIC_NOTE = ("本文件为电子证照，由登记机构以数字签名加盖电子签章；签名有效的电子文件与"
                   "纸质证照具有同等效力。扫描二维码可核验真伪及是否现势。 / An electronic "
                   "document sealed with the "
                   "registry's digital signature; scan the QR code to check that it is genuine and "
                   "current.")

CSS = """
@page { @bottom-center { content: none; } }
.record h1 { font-size: 20pt; letter-spacing: 2pt; margin-top: 2mm; }
.record .en { text-align: center; font-size: 8pt; color: #555; }
.record .number { text-align: center; font-size: 12pt; font-weight: 700; margin: 3mm 0 4mm 0; }
.record table.form { table-layout: fixed; }
.record table.form th { width: 30mm; text-align: center; }
.record table.form td { font-size: 9.5pt; line-height: 1.45; }
.record table.form th small, .record h2 small { display: block; font-weight: 400;
    font-size: 6.5pt; color: #555; }
.record table.form td p { margin: 0; }
.record .remark { border: 0.3pt solid #333; border-top: none; padding: 1.5mm 2mm;
    min-height: 16mm; font-size: 9pt; }
.record .remark b { display: block; margin-bottom: 1mm; }
.record .tables h2 { margin-top: 4mm; }
.record .tables td, .record .tables th { font-size: 8pt; }
.record .sealed { display: table; table-layout: fixed; width: 100%; margin-top: 5mm; }
.record .statement { display: table-cell; vertical-align: top; font-size: 9pt; line-height: 1.6;
    padding-right: 4mm; }
.record .office { margin-top: 3mm; text-align: right; }
.record .stamp { display: table-cell; vertical-align: top; width: 42mm; }
.record .seal { width: 42mm; height: 42mm; }
.record .qr { display: table-cell; vertical-align: top; width: 34mm; text-align: center;
    font-size: 6.5pt; color: #333; }
.record .qr img { width: 32mm; height: 32mm; }
.record .url { font-size: 6.5pt; color: #333; word-break: break-all; }
.record .note { margin-top: 3mm; }
.annex { page-break-before: always; }
"""


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "".join(f"<p>{esc(v)}</p>" for v in value if v)
    return esc(value) if value not in (None, "") else "—"


def record_html(content: CertificateContent, number: str, issued: date, verify_url: str,
                qr_png: bytes, remark: list[str]) -> str:
    """The record page(s) of the document (``div.record``)."""
    kind = content.kind
    rec = privacy.apply("certificate", Role.OWNER,
                        {**content.record, "number": number, "remark": remark})
    title, english = TITLES[kind]
    rows = "".join(f"<tr><th>{esc(zh)}<small>{esc(en)}</small></th><td>{_value(rec.get(key))}"
                   "</td></tr>" for key, zh, en in _ROWS[kind])
    remark_html = (f"<div class=\"remark\"><b>附记 <small>Remarks</small></b>"
                   f"{_value(rec.get('remark'))}</div>") if kind != "query_result" else ""
    tables = "".join(
        f"<h2>{esc(caption)}</h2><table><tr>{''.join(f'<th>{esc(h)}</th>' for h in head)}</tr>"
        + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                  for row in body) + "</table>"
        for caption, head, body in content.tables)
    tables = f"<div class=\"tables\">{tables}</div>" if tables else ""
    qr = base64.b64encode(qr_png).decode("ascii")
    return (
        f"<div class=\"record\"><h1>{esc(title)}</h1><div class=\"en\">{esc(english)}</div>"
        f"<div class=\"number\">{esc(rec.get('number', ''))}</div>"
        f"<table class=\"form\">{rows}</table>{remark_html}{tables}"
        f"<div class=\"sealed\"><div class=\"statement\">{esc(STATEMENT[kind])}"
        f"<div class=\"office\">登记机构（章）：{esc(rec.get('registry_office', ''))}<br>"
        f"{esc(day(issued))}</div></div>"
        f"<div class=\"stamp\"><div id=\"{SEAL_ANCHOR}\" class=\"seal\"></div></div>"
        f"<div class=\"qr\"><img src=\"data:image/png;base64,{qr}\" alt=\"QR\">"
        f"<br>扫码核验 / Scan to verify</div></div>"
        f"<div class=\"url\">核验地址 / Verify at: {esc(verify_url)}</div>"
        f"<div class=\"note\">{esc(ELECTRONIC_NOTE)}</div></div>")


def document_html(title: str, body: str, office: str, keywords: str) -> str:
    """A whole HTML document with the metadata WeasyPrint writes into the PDF (and its XMP)."""
    return ("<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><meta name=\"author\" content=\"{esc(office)}\">"
            f"<meta name=\"keywords\" content=\"{esc(keywords)}\">"
            "<meta name=\"generator\" content=\"cadastre-server\">"
            f"</head><body>{body}</body></html>")
