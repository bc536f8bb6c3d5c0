"""Fine-tuning of converted SNNs against their QANN: layer-wise training, bias calibration, end-to-end distillation."""

from .config import Criterion, FinetuneConfig
from .pipeline import END_TO_END, LayerReport, finetune

__all__ = ["END_TO_END", "Criterion", "FinetuneConfig", "LayerReport", "finetune"]
