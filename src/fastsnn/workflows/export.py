"""``fastsnn export``: an SNN (or QANN) checkpoint as an integer spiking network file (read back by ``sources``)."""

import dataclasses
from pathlib import Path

from ..convert import SimulationConfig
from ..data import dataset_info
from ..integer import IntegerConfig, IntegerNetwork, integerize, save
from .sources import dataset_of, spiking_pair


def export_checkpoint(path: str | Path, out: str | Path, config: IntegerConfig = IntegerConfig()) -> IntegerNetwork:
    """Integerize the spiking network of the checkpoint at ``path`` (a QANN's is converted first, signed, T = 2^b − 1)
    for the images of the data set it was trained on, and save it to ``out``.

    The image is quantized over the whole range a normalized pixel of that data set can take. The file records the
    checkpoint's model spec and data set, so that ``fastsnn evaluate`` runs it like any checkpoint.
    """
    checkpoint, snn, _ = spiking_pair(path, SimulationConfig())
    dataset = dataset_of(checkpoint, path, None)
    info = dataset_info(dataset)
    bound = max(max(abs(-m / s), abs((1 - m) / s)) for m, s in zip(info.mean, info.std, strict=True))
    about = {
        "spec": dataclasses.asdict(dataclasses.replace(checkpoint.spec, snn={"T": snn.T, "signed": _signed(snn)})),
        "training": {key: checkpoint.training.get(key) for key in ("dataset", "dataset_info", "finetune")},
        "source": str(path),
    }
    net = integerize(
        snn,
        config.weight_bits,
        input_shape=(info.in_channels, info.image_size, info.image_size),
        input_bound=bound,
        input_bits=config.input_bits,
        about=about,
    )
    save(net, out)
    return net


def _signed(snn) -> bool:
    return all(neuron.signed for _, neuron in snn.neurons())
