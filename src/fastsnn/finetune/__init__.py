"""Fine-tuning of converted SNNs against their QANN: layer-wise training, bias calibration, end-to-end training."""

from .config import Criterion, EndToEndLoss, FinetuneConfig
from .judge import LayerReport
from .pipeline import END_TO_END, finetune

__all__ = ["END_TO_END", "Criterion", "EndToEndLoss", "FinetuneConfig", "LayerReport", "finetune"]
