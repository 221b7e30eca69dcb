"""一码关联 documents: what other departments file under a unit, building or project code
(project approval, land grant contract, planning permit, pre-sale permit, sales contract filing,
mortgage contract, tax-paid certificate, completion acceptance, survey report).

- ``files``: what a document's file may be (PDF without active content, PNG, JPEG);
- ``documents``: the document types, the checks and the filing;
- ``reads``: the documents of a unit (一码关联 view) and the valid ones a case rests on.
"""
