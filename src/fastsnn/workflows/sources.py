"""What the checkpoint-level workflows share: models and data of a run, read from its checkpoints."""

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from ..convert import SimulationConfig, SpikingNetwork, convert
from ..data import DatasetInfo, dataset_info, load_dataset
from ..errors import CheckpointError, DataError, OptionError
from ..integer import IntegerNetwork, is_integer_file
from ..integer import load as load_integer
from ..quant import QuantReLU, levels
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .model_spec import spec_from_json


def kind_of(checkpoint: Checkpoint) -> str:
    """What a checkpoint holds: ``"float ANN"``, ``"QANN"`` or ``"SNN"``."""
    if checkpoint.spec.snn is not None:
        return "SNN"
    return "float ANN" if checkpoint.spec.bits is None else "QANN"


@dataclasses.dataclass
class Network:
    """A model read from a checkpoint file."""

    path: Path
    checkpoint: Checkpoint
    model: nn.Module

    @property
    def kind(self) -> str:
        return kind_of(self.checkpoint)

    @property
    def label(self) -> str:
        """Row name: ``"float ANN"``, ``"QANN"``, ``"SNN signed"``, ``"SNN signed + fine-tuned (ste)"``, ..."""
        if self.kind != "SNN":
            return self.kind
        label = "SNN signed" if self.checkpoint.spec.snn["signed"] else "SNN unsigned"
        if isinstance(self.model, IntegerNetwork):
            label = f"integer {label} ({self.model.graph['weight_bits']}-bit weights)"
        finetuned = self.checkpoint.training.get("finetune")
        return f"{label} + fine-tuned ({finetuned['objective']})" if finetuned else label


def load_network(path: str | Path, *, like: Checkpoint | None = None) -> Network:
    """The model of the checkpoint (or exported integer network) at ``path``; with ``like``, it must be the same
    network (bit widths aside)."""
    if is_integer_file(path):
        checkpoint, model = integer_checkpoint(path)
    else:
        checkpoint = load_checkpoint(path)
        model = checkpoint.build_model()
    if like is not None:
        like.spec.check_same_network(checkpoint.spec, f"checkpoint {path}")
    return Network(Path(path), checkpoint, model)


def integer_checkpoint(path: str | Path) -> tuple[Checkpoint, IntegerNetwork]:
    """The integer network in ``path`` (``fastsnn export``) and a record of the checkpoint it was exported from,
    without tensors, so that the workflows treat it like an SNN checkpoint of that network."""
    net = load_integer(path)
    about = net.graph["about"]
    try:
        spec = spec_from_json(about["spec"])
        training = dict(about["training"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path} does not record the checkpoint it was exported from ({error})") from None
    return Checkpoint(spec, {}, training, {}, None), net


@dataclasses.dataclass
class Compared:
    """The checkpoints a command compares, by kind. ``qann`` is the QANN checkpoint given, else the QANN an
    SNN checkpoint carries (the reference of agreement); ``snns`` maps each SNN checkpoint's row name to it."""

    first: Network  # the first checkpoint named: its data set and task are the run's
    float_model: nn.Module | None
    qann: nn.Module | None
    qann_given: bool
    snns: dict[str, SpikingNetwork]

    @property
    def default_time_steps(self) -> list[int]:
        """``[2^bits - 1]`` of the QANN (given or carried); refuses when there is none."""
        if self.qann is None:
            raise OptionError("time_steps", "are needed: no QANN was named to take T = 2^bits - 1 from")
        return [levels(next(m.bits for m in self.qann.modules() if isinstance(m, QuantReLU)))]


def read_compared(paths: Sequence[str | Path]) -> Compared:
    """Read the checkpoints at ``paths`` (any kinds, the same network), at most one float ANN and one QANN."""
    first = load_network(paths[0])
    networks = [first, *(load_network(path, like=first.checkpoint) for path in paths[1:])]
    by_kind: dict[str, list[Network]] = {"float ANN": [], "QANN": [], "SNN": []}
    for network in networks:
        by_kind[network.kind].append(network)
    for kind in ("float ANN", "QANN"):
        if len(by_kind[kind]) > 1:
            raise OptionError(
                "checkpoints", f"name {len(by_kind[kind])} {kind} checkpoints "
                f"({', '.join(str(n.path) for n in by_kind[kind])}); compare one {kind} with SNNs"
            )  # fmt: skip
    snns: dict[str, SpikingNetwork] = {}
    for network in by_kind["SNN"]:
        label = network.label if network.label not in snns else f"{network.label} ({network.path.name})"
        snns[label] = network.model
    qann = by_kind["QANN"][0].model if by_kind["QANN"] else None
    carried = (n.checkpoint.build_reference() for n in by_kind["SNN"])
    return Compared(
        first=first,
        float_model=by_kind["float ANN"][0].model if by_kind["float ANN"] else None,
        qann=qann if qann is not None else next((q for q in carried if q is not None), None),
        qann_given=qann is not None,
        snns=snns,
    )


def spiking_pair(path: str | Path, simulation: SimulationConfig) -> tuple[Checkpoint, SpikingNetwork, nn.Module]:
    """The checkpoint at ``path``, its spiking network and the QANN it comes from.

    A QANN checkpoint is converted with ``simulation``; an SNN checkpoint (from ``fastsnn convert`` or
    ``fastsnn finetune``) is taken as it is, with the QANN it carries, and ``simulation`` must be left
    at its defaults.
    """
    checkpoint = load_checkpoint(path)
    kind = kind_of(checkpoint)
    if kind == "float ANN":
        raise CheckpointError(
            f"{path} holds a float ANN; pass a QANN (q<bits>.safetensors from `fastsnn train`) or an SNN checkpoint"
        )
    if kind == "QANN":
        qann = checkpoint.build_model()
        return checkpoint, convert(qann, signed=simulation.signed, T=simulation.time_steps), qann
    for field in dataclasses.fields(simulation):
        if getattr(simulation, field.name) != field.default:
            raise OptionError(
                field.name, f"applies when a QANN is converted; {path} already holds a spiking network "
                f"(T={checkpoint.spec.snn['T']}, signed={checkpoint.spec.snn['signed']})"
            )  # fmt: skip
    qann = checkpoint.build_reference()
    if qann is None:
        raise CheckpointError(
            f"{path} does not carry the QANN it was converted from (written by an older fastsnn); "
            "convert the QANN checkpoint again with `fastsnn convert`"
        )
    return checkpoint, checkpoint.build_model(), qann


def save_spiking(
    out: str | Path, snn: SpikingNetwork, qann: nn.Module, checkpoint: Checkpoint, path: str | Path, **training
) -> Path:
    """Write ``snn`` (converted from the QANN of ``checkpoint``, read from ``path``) with that QANN as its
    reference, the data set and where it was converted from; ``training`` adds records (e.g. fine-tuning)."""
    spec = dataclasses.replace(checkpoint.spec, snn={"T": snn.T, "signed": all(n.signed for _, n in snn.neurons())})
    records = {
        "dataset": checkpoint.training.get("dataset"),
        "dataset_info": checkpoint.training.get("dataset_info"),
        "converted_from": checkpoint.training.get("converted_from", str(path)),
        **training,
    }
    return save_checkpoint(out, snn.cpu(), spec, reference=qann.cpu(), training=records)


def dataset_of(checkpoint: Checkpoint, path: str | Path, override: str | None) -> str:
    """``override`` if given, else the data set recorded in the checkpoint at training; its channels
    and classes must match the model's, and the recorded facts of that data set (for a ``folder:PATH`` set,
    measured from the folder at training: channels, classes, size, mean and std) must still hold."""
    dataset = override or checkpoint.training.get("dataset")
    if dataset is None:
        raise OptionError("dataset", f"is needed: {path} does not record the data set it was trained on")
    checkpoint.spec.check_dataset(dataset)
    recorded = checkpoint.training.get("dataset_info")
    now = dataset_info(dataset).to_dict()
    if recorded is not None and recorded.get("name") == now["name"]:  # a folder's name is its resolved path
        then = DatasetInfo.from_dict(recorded).to_dict()
        changed = [key for key in now if now[key] != then[key]]
        if changed:
            raise DataError(
                f"data set {dataset} is not what {path} was trained on: {', '.join(changed)} changed (recorded "
                f"{[then[key] for key in changed]}, now {[now[key] for key in changed]}); restore its images"
            )
    return dataset


def first(dataset: Dataset, limit: int | None) -> Dataset:
    """The first ``limit`` items of ``dataset`` (all of them if ``limit`` is None)."""
    return dataset if limit is None else Subset(dataset, range(min(limit, len(dataset))))


def test_loader(dataset: str, root, *, batch_size: int, limit: int | None = None) -> DataLoader:
    """Batches of the test split (the first ``limit`` images), in order."""
    return DataLoader(first(load_dataset(dataset, train=False, root=root), limit), batch_size=batch_size)


def tuning_split(dataset: str, root, *, held_out: int, limit: int | None = None) -> tuple[Dataset, Dataset]:
    """Un-augmented training images split into (tuning set, held-out set): the held-out set is the
    last ``held_out`` images, the tuning set the first ``limit`` of the others. The test split is never used."""
    train_set = load_dataset(dataset, train=True, root=root)
    if not 0 < held_out < len(train_set):
        raise OptionError(
            "held_out", f"must be in 1..{len(train_set) - 1} for {dataset} ({len(train_set)} training images), "
            f"got {held_out}"
        )  # fmt: skip
    tuning = Subset(train_set, range(len(train_set) - held_out))
    return first(tuning, limit), Subset(train_set, range(len(train_set) - held_out, len(train_set)))


def calibration_batches(
    dataset: Dataset, *, batches: int = 8, batch_size: int = 128, seed: int = 0
) -> list[torch.Tensor]:
    """``batches`` random batches of images ``[batch_size, C, H, W]`` from ``dataset`` (same for a seed)."""
    sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    images = []
    for batch, _ in loader:
        images.append(batch)
        if len(images) == batches:
            break
    return images


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
