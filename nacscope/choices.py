"""The named choices of the library, importable without numpy or torch.

Library modules validate against these tuples (one-line :class:`nacscope.errors.OptionError` naming the
parameter); the CLI builds its option types from the same tuples, so ``--help`` lists exactly what the
library accepts. The training choices live beside the presets in :mod:`nacscope.train_options`.
"""

from __future__ import annotations

#: Dataset splits: ``all`` is train then test.
SPLITS = ("train", "test", "all")
#: Retrieval ranking: Hamming distance (ties by gallery index) or the authors' {0,1} dot product.
RANKS = ("hamming", "dot")
#: The plane partition: exact convex polygons, or grid sampling (a lower bound).
PLANE_METHODS = ("exact", "grid")
#: Dump arithmetic: fp32 (exact signs) or bf16 (opt-in: flips near-zero signs).
PRECISIONS = ("fp32", "bf16")

#: Ranges shared by the library's checks and the CLI's help.
MAX_BITS = 4096  # longer codes: the code head alone outgrows a laptop's memory for wide encoders
MAX_SEED = 2**31 - 1  # a seed is mixed with ranks and epochs into 64-bit generator seeds
MAX_THREADS = 1024
