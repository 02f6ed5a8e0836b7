"""NAC / SimCLR training: a configuration dataclass, presets, one step, and one straight-line loop.

Modules: :mod:`.config` (``TrainConfig``, presets, validation, ``plan_run``), :mod:`.step` (learning-rate
schedule, the views' forward passes, ``train_step``), :mod:`.evaluate` (quick k-NN / mAP evaluation),
:mod:`.loop` (``train``: data, model, resume, DDP, checkpoints, metrics). The optimisers are in
:mod:`nacscope.optim`, torchrun set-up in :mod:`nacscope.distributed`. Everything public is re-exported here.
"""

from nacscope.optim import make_optimizer, param_groups
from nacscope.train_options import FORWARDS, OBJECTIVES, OPTIMIZERS, PRESETS, RESUME_OVERRIDABLE
from nacscope.training.config import TrainConfig, TrainingDiverged, apply_preset, plan_run, validate
from nacscope.training.evaluate import baseline_eval, embed, quick_eval
from nacscope.training.loop import TrainResult, train
from nacscope.training.step import forward_views, lr_at, train_step

__all__ = [
    "FORWARDS", "OBJECTIVES", "OPTIMIZERS", "PRESETS", "RESUME_OVERRIDABLE", "TrainConfig", "TrainResult",
    "TrainingDiverged", "apply_preset", "baseline_eval", "embed", "forward_views", "lr_at", "make_optimizer",
    "param_groups", "plan_run", "quick_eval", "train", "train_step", "validate",
]
