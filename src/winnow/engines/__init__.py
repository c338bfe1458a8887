"""Where batches run: the local streaming engine lives in :mod:`winnow.batch`; Ray Data here."""
