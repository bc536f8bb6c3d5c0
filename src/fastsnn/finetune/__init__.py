"""Fine-tuning of converted SNNs against their QANN: layer-wise training, bias calibration, end-to-end distillation."""

from .pipeline import CRITERIA, END_TO_END, Criterion, LayerReport, finetune

__all__ = ["CRITERIA", "END_TO_END", "Criterion", "LayerReport", "finetune"]
