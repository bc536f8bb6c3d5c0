"""Layer-wise fine-tuning of converted SNNs against their QANN."""

from .layerwise import OBJECTIVES, LayerReport, finetune, finetune_with_report

__all__ = ["OBJECTIVES", "LayerReport", "finetune", "finetune_with_report"]
