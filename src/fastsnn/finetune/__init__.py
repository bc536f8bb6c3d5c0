"""Layer-wise fine-tuning of converted SNNs against their QANN."""

from .layerwise import LayerReport, finetune

__all__ = ["LayerReport", "finetune"]
