"""The screens of the inspect TUI (one module each) and its dialogs."""

from nacscope.tui.screens.collisions import CollisionsScreen
from nacscope.tui.screens.dialogs import HelpScreen, LayerPicker
from nacscope.tui.screens.neighbours import NeighboursScreen
from nacscope.tui.screens.overview import OverviewScreen
from nacscope.tui.screens.projection import ProjectionScreen
from nacscope.tui.screens.regions import RegionsScreen

__all__ = [
    "CollisionsScreen",
    "HelpScreen",
    "LayerPicker",
    "NeighboursScreen",
    "OverviewScreen",
    "ProjectionScreen",
    "RegionsScreen",
]
