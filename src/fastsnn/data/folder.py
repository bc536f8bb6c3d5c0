"""The user's own images, named ``folder:PATH``, in torchvision's ``ImageFolder`` layout.

    PATH/train/<class>/<image>.png|jpg|...      # class names sorted give the labels 0, 1, ...
    PATH/val/<class>/<image>...                 # the same class folders; the test split

Nothing is fixed in advance: :func:`folder_info` measures the channels (1 when every image is grayscale, else 3),
the classes, the image size (every image must be square and of one size; images are never resized) and the mean/std
of the training images. 16-bit grayscale images are reduced to 8 bits (``round(v * 255 / 65535)``); palette images
count as colour. The data root plays no part: PATH is the folder itself (``~`` expanded, relative to the working
directory).
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes
from torchvision.transforms import v2

from fastsnn.data.info import DatasetInfo
from fastsnn.data.report import DataReport
from fastsnn.data.transforms import image_transform
from fastsnn.errors import DataError

FOLDER_PREFIX = "folder:"
SPLITS = {True: "train", False: "val"}
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", *SIXTEEN_BIT_MODES})
UNSUPPORTED_MODES = frozenset({"I", "F"})  # 32-bit integer or float pixels: no fixed [0, 1] scale
_LAYOUT = "PATH/train/<class>/<image> and PATH/val/<class>/<image>"


def folder_path(name: str) -> Path:
    """The folder named by data set name ``folder:PATH``, ``~`` expanded; :class:`DataError` for an empty PATH."""
    path = name.removeprefix(FOLDER_PREFIX)
    if not path.strip():
        raise DataError(f"Data set {name!r} names no folder; write folder:PATH with PATH holding {_LAYOUT}.")
    return Path(path).expanduser()


def read_image(path: str | Path, mode: str | None = None) -> Image.Image:
    """The image file at ``path`` in 8-bit PIL ``mode`` ("L" or "RGB"); by default "L" for a grayscale source,
    else "RGB" (an "L" image converted to "RGB" repeats its one channel).

    Raises :class:`DataError` naming a file that PIL cannot read or whose pixels have no 8/16-bit scale.
    """
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in UNSUPPORTED_MODES:
                raise DataError(
                    f"Image {path} has 32-bit pixels (PIL mode {image.mode}); save it with 8 or 16 bits per channel."
                )
            if image.mode in SIXTEEN_BIT_MODES:
                sixteen_bit = np.asarray(image, dtype=np.uint32)
                eight_bit = Image.fromarray(((sixteen_bit * 255 + 32767) // 65535).astype(np.uint8))
                return eight_bit.convert(mode or "L")
            return image.convert(mode or ("L" if image.mode in GRAYSCALE_MODES else "RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"Cannot read image {path} ({error}); replace or delete the file.") from None


def _check_layout(root: Path) -> None:
    """``root`` holds ``train/`` and ``val/`` with the same (non-empty list of) class folders."""
    if not root.is_dir():
        raise DataError(f"Image folder {root} does not exist; give folder:PATH with PATH holding {_LAYOUT}.")
    classes = {}
    for split in SPLITS.values():
        if not (root / split).is_dir():
            raise DataError(f"Image folder {root} has no {split}/ folder; it must hold {_LAYOUT}.")
        try:
            classes[split] = find_classes(str(root / split))[0]
        except FileNotFoundError:
            raise DataError(
                f"{root / split} holds no class folder; put one folder of images per class there."
            ) from None
    missing = sorted(set(classes["train"]) - set(classes["val"]))
    extra = sorted(set(classes["val"]) - set(classes["train"]))
    if missing or extra:
        raise DataError(
            f"The class folders of {root / 'val'} differ from those of {root / 'train'} "
            f"(missing from val/: {', '.join(missing) or 'none'}; extra in val/: {', '.join(extra) or 'none'}); "
            "give both splits the same class folders."
        )


def _split(root: Path, *, train: bool, channels: int = 3, transform: v2.Transform | None = None) -> ImageFolder:
    """One split of a checked ``root``; items ``(transform(image), label)``, the image PIL mode "L" if
    ``channels`` is 1 else "RGB". Raises :class:`DataError` naming a class folder without images."""
    loader = functools.partial(read_image, mode="L" if channels == 1 else "RGB")
    split = ImageFolder(str(root / SPLITS[train]), transform=transform, loader=loader, allow_empty=True)
    counts = Counter(split.targets)
    for index, name in enumerate(split.classes):
        if not counts[index]:
            raise DataError(
                f"Class folder {root / SPLITS[train] / name} holds no image ({', '.join(IMG_EXTENSIONS)}); "
                "add its images or remove the folder from train/ and val/."
            )
    return split


def folder_info(path: str | Path) -> DatasetInfo:
    """The :class:`DatasetInfo` measured from the image folder ``path`` (layout in the module docstring).

    Every image is read once (any unreadable one is refused); ``mean``/``std`` are the exact per-channel
    mean and population standard deviation of the training pixels on the [0, 1] scale. Cached per
    resolved path within the process. Raises :class:`DataError` naming the path or file at fault.
    """
    return _measure(_resolved(path))


def _resolved(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


@functools.lru_cache(maxsize=16)
def _measure(root: Path) -> DatasetInfo:
    _check_layout(root)
    splits = [_split(root, train=train) for train in SPLITS]
    first_path, first_size = None, None
    grayscale = True
    count, sums, squares = 0, np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64)
    for split in splits:
        for path, _ in split.samples:
            image = read_image(path)
            if image.width != image.height:
                raise DataError(f"Image {path} is {image.width}x{image.height}; images of a folder must be square.")
            if first_size is None:
                first_path, first_size = path, image.size
            elif image.size != first_size:
                raise DataError(
                    f"Images {first_path} ({first_size[0]}x{first_size[1]}) and {path} ({image.width}x{image.height}) "
                    "differ in size; resize the folder's images to one size (they are never resized here)."
                )
            grayscale &= image.mode == "L"
            if split is splits[0]:
                pixels = np.asarray(image, dtype=np.int64).reshape(image.width * image.height, -1)  # [H*W, 1 or 3]
                count += pixels.shape[0]
                sums += pixels.sum(0)  # a grayscale image counts in each colour channel, as its RGB copy does
                squares += (pixels * pixels).sum(0)
    channels = 1 if grayscale else 3
    # exact integer moments: mean = S / (255 n), variance = (n Q - S^2) / (255 n)^2
    sums, squares = sums[:channels].tolist(), squares[:channels].tolist()
    mean = tuple(s / (255 * count) for s in sums)
    std = tuple((count * q - s * s) ** 0.5 / (255 * count) for s, q in zip(sums, squares, strict=True))
    if not all(std):
        raise DataError(
            f"The training images of {root / 'train'} are one constant colour in some channel (std {std}); "
            "such a folder cannot be normalised."
        )
    return DatasetInfo(FOLDER_PREFIX + str(root), channels, len(splits[0].classes), first_size[0], mean, std)


def load_folder(
    path: str | Path, *, train: bool, augment: bool = False, info: DatasetInfo | None = None
) -> ImageFolder:
    """One split of the image folder ``path`` (``train/`` or ``val/``); items ``(float32 [C, S, S], label)``,
    normalised with ``info`` (default :func:`folder_info` of ``path``; pass the info recorded at training to
    skip measuring). ``augment`` shifts randomly by up to S/8 pixels and flips horizontally with p = 0.5.

    Raises :class:`DataError` for a folder whose layout or class count does not fit ``info``.
    """
    root = _resolved(path)
    info = folder_info(root) if info is None else info
    _check_layout(root)
    geometry = [v2.RandomCrop(info.image_size, padding=info.image_size // 8), v2.RandomHorizontalFlip()]
    transform = image_transform(info, geometry if augment else [], pil=True)
    split = _split(root, train=train, channels=info.in_channels, transform=transform)
    if len(split.classes) != info.num_classes:
        raise DataError(
            f"Image folder {root} has {len(split.classes)} classes but its recorded info {info.name} has "
            f"{info.num_classes}; use the folder the model was trained on."
        )
    return split


def fetch_folder(path: str | Path) -> DataReport:
    """Check and measure the image folder ``path`` (nothing is downloaded); its counts and measured facts."""
    root = _resolved(path)
    info = folder_info(root)
    train, test = (len(_split(root, train=train).samples) for train in SPLITS)
    return DataReport(
        info.name,
        str(root),
        train,
        test,
        note=f"{info.num_classes} classes, {info.in_channels} channel(s) of {info.image_size}x{info.image_size}, "
        f"mean {tuple(round(m, 4) for m in info.mean)}, std {tuple(round(s, 4) for s in info.std)}",
    )
