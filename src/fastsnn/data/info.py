"""Static facts about a data set: shape, classes, normalisation, task."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields

from fastsnn.errors import DataError


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a data set.

    Images are ``[in_channels, image_size, image_size]`` after the data set's
    transform; ``mean``/``std`` (one value per channel, on the [0, 1] pixel
    scale) are what :func:`fastsnn.data.load_dataset` normalises with.
    ``anchors``: a detection set's published YOLOv2 anchors ``((w, h), ...)`` in
    32-pixel cells, which :meth:`fastsnn.tasks.Detection.prepare` takes instead of
    k-means of the training boxes; ``None`` when the set publishes none.
    """

    name: str
    in_channels: int
    num_classes: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # what the targets are: class indices, per-pixel class masks ("segmentation"), or boxes ("detection",
    # padded [MAX_OBJECTS, 5] rows of fastsnn.tasks.boxes; num_classes counts object classes, no background)
    task: str = "classification"
    anchors: tuple[tuple[float, float], ...] | None = None

    def to_dict(self) -> dict:
        """The fields by name, JSON-able (tuples become lists in JSON); :meth:`from_dict` rebuilds the info."""
        return asdict(self)

    @classmethod
    def from_dict(cls, recorded: Mapping) -> DatasetInfo:
        """The info that :meth:`to_dict` recorded (e.g. in a checkpoint), lists read back as tuples.

        Raises :class:`DataError` naming the missing or unknown fields.
        """
        unknown = sorted(set(recorded) - {field.name for field in fields(cls)})
        missing = [field.name for field in fields(cls) if field.default is MISSING and field.name not in recorded]
        if unknown or missing:
            raise DataError(
                f"Recorded data set info {dict(recorded)!r} does not describe a data set "
                f"(missing fields: {', '.join(missing) or 'none'}; unknown fields: {', '.join(unknown) or 'none'})."
            )
        anchors = recorded.get("anchors")
        as_tuples = {"mean": tuple(recorded["mean"]), "std": tuple(recorded["std"])}
        if anchors is not None:
            as_tuples["anchors"] = tuple(tuple(anchor) for anchor in anchors)
        return cls(**{**recorded, **as_tuples})


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
