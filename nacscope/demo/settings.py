"""What the demo trains and what it produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nacscope.errors import OptionError

MODELS = ("nac", "simclr", "random")
TITLES = {"nac": "NAC", "simclr": "SimCLR", "random": "random init"}
Log = Callable[[str], None]


@dataclass
class DemoSettings:
    """What the demo trains; changing any of it retrains (or refuses without ``force``)."""

    epochs: int = 20
    bits: int = 32
    hidden: tuple[int, ...] = (256, 256)
    seed: int = 0
    simclr: bool = True
    dataset: str = "digits"
    segment_pairs: int = 20  # segments between random pairs of test digits

    def check(self) -> None:
        if self.epochs < 1:
            raise OptionError(f"must be >= 1, got {self.epochs}", option="epochs")
        if self.bits < 1:
            raise OptionError(f"must be >= 1, got {self.bits}", option="bits")
        if self.segment_pairs < 1:
            raise OptionError(f"must be >= 1, got {self.segment_pairs}", option="segment_pairs")

    @property
    def models(self) -> tuple[str, ...]:
        return MODELS if self.simclr else ("nac", "random")


@dataclass
class DemoResult:
    """What the demo produced: code sets, analyses, the comparison table, figure, timings."""

    out: Path
    codesets: dict[str, Path]
    analyses: dict[str, dict]
    rows: list[dict]
    files: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)

