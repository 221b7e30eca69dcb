"""Domain queries of the query API: search (``search``), parcel/building/unit look-ups,
what-is-here and the 楼盘表 (``features``), 一码关联 for registry staff (``registry``), and the
Chinese labels of coded attributes (``labels``). Imports nothing from ``api/``."""
