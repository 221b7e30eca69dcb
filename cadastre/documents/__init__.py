"""Documents for right holders: 宗地图 (parcel map), 分层分户图 (floor plan) as PDF and PNG, and
the certificate verification QR code (一证一码). Rendered from HTML + inline SVG by WeasyPrint
(text selectable, CJK fonts embedded); PNG pages by pdfium."""
