"""Former name of :mod:`nacscope.analysis.patterns` (distinct activation patterns in the data).

Renamed so that "regions" in module names means linear regions in input space only
(:mod:`~nacscope.analysis.segments`, :mod:`~nacscope.analysis.partition`, :mod:`~nacscope.analysis.plane`,
:mod:`~nacscope.analysis.regions_compare`); this module keeps ``from nacscope.analysis.regions import ...``
working.
"""

from nacscope.analysis.patterns import (  # noqa: F401 (re-exported)
    combine_groups,
    cumulative_distinct,
    distinct_patterns,
    region_sizes,
    region_stats,
    size_histogram,
)
