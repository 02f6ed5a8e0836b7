"""``nacscope demo``: the whole journey on scikit-learn's digits, on the CPU, with nothing downloaded.

Steps (each one reused when its result is already in the output folder):

1. train a NAC encoder (``mlp`` 64-256-256, 32-bit code) and, for contrast, a SimCLR one with the
   same encoder, head and augmentations (:func:`nacscope.training.train`);
2. take a randomly initialised encoder of the same architecture (seeded);
3. dump every ReLU site and the code layer of all 1,797 digits for each model into a code set
   (:func:`nacscope.codes.job.run_dump`); the held-out test digits (every 5th) are the
   retrieval queries, the training digits the gallery;
4. analyse each code set (:func:`nacscope.analysis.analyze_codeset`, probes included; cached in the
   files), and write ``comparison.json``, ``comparison.md`` and ``comparison.png``.

The comparison answers the paper's claim with numbers: does NAC training cut input space into more
linear regions (exact counts along segments between test digits), give more distinct codes, and
retrieve better than SimCLR and a random initialisation? (The whole network's distinct patterns on
the 1,797 digits are not shown: every model gives each digit its own, so that count says nothing.)
"""

from nacscope.demo.compare import comparison_figure, comparison_markdown, comparison_rows, format_value, verdict
from nacscope.demo.run import run_demo
from nacscope.demo.settings import MODELS, TITLES, DemoResult, DemoSettings
from nacscope.demo.steps import analyse, dump_or_reuse, load_demo_model, segments_or_reuse, train_or_reuse

__all__ = ["MODELS", "TITLES", "DemoResult", "DemoSettings", "analyse", "comparison_figure", "comparison_markdown",
           "comparison_rows", "dump_or_reuse", "format_value", "load_demo_model", "run_demo", "segments_or_reuse",
           "train_or_reuse", "verdict"]
