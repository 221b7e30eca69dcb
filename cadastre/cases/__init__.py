"""Registration cases (办件): the business catalogue, the working-day calendar and clock, the
stages from acceptance to 登簿 and archiving, the business rules and the register entries.

- ``catalogue``: business types, limits, materials;  ``calendar`` / ``clock``: working days and
  traffic lights (computed in SQL);  ``model``: stages and moves;  ``application``: what is
  asked for;  ``rules`` / ``entry``: what the law refuses and what 登簿 writes;  ``workflow``:
  the transactions;  ``queries``: worklists, supervision, public progress.
"""
