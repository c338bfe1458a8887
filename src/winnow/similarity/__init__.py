"""Similarity search over the screener's embedding: find more like these, and no near copies.

::

    embedding.py  row embeddings: the deep member's last hidden layer, or standardized inputs
    ann.py        the vector index (exact numpy, or an HNSW graph) and near-duplicate groups
    search.py     ``winnow similar``: the rows most like a few examples, over any input size
    diverse.py    ``screen --diverse``: each near-duplicate cluster's best-ranked row only
    cli.py        the Typer command ``winnow similar``

``import winnow.similarity`` loads nothing heavy (``winnow --help`` stays fast).
"""
