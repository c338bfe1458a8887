"""Reading tables as bounded Arrow batches and writing results and rejects."""

from winnow.io.readers import TableSource, open_source
from winnow.io.rejects import Reject, RejectsWriter

__all__ = ["Reject", "RejectsWriter", "TableSource", "open_source"]
