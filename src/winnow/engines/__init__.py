"""Where screening runs: one output, two engines.

::

    output.py      what every engine writes: selected rows ranked with rule and reasons, the
                   ranked output spilled to disk when large, the summary that counts every record
    local.py       the local engine: streams any input in bounded memory on this machine
                   (score_file, screen: two passes for a budget, one for a threshold)
    units.py       Parquet inputs cut into units of whole row groups, atomic part files
    ray_engine.py  the Ray engine: the same two passes as Ray Data jobs over a cluster

Both engines choose rows with :mod:`winnow.select`, so their outputs agree row for row;
:meth:`winnow.Screener.screen` (``engine="local" | "ray"``) is the entry point of both.
"""
