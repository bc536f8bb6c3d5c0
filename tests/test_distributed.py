"""DDP: two CPU processes (gloo) train the same model and must end with identical weights."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from fastsnn.workflows.checkpoint import load_checkpoint
from fastsnn.workflows.train import TrainConfig, fit, train_progressive
from helpers import write_tiny_fashion_mnist


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, config: TrainConfig, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    captured = {}
    real_fit = fit

    def capturing_fit(*args, **kwargs):
        model = real_fit(*args, **kwargs)
        captured.update({name: p.detach().clone() for name, p in model.named_parameters()})
        return model

    import fastsnn.workflows.train

    fastsnn.workflows.train.fit = capturing_fit
    try:
        train_progressive(config)
    finally:
        dist.destroy_process_group()
    save_file(captured, os.path.join(out, f"rank{rank}.safetensors"))


@pytest.mark.parametrize(
    "model, dataset, width",
    [
        ("resnet20", "fashion-mnist", 0.25),
        ("deeplab_vgg9", "fashion-scenes", 0.125),
        ("tiny_yolov2", "fashion-scenes-det", 0.125),
    ],
)
def test_two_ranks_end_with_identical_weights(tmp_path, model, dataset, width):
    root = write_tiny_fashion_mnist(tmp_path / "data")
    config = TrainConfig(
        model=model,
        dataset=dataset,
        data_root=str(root),
        width=width,
        train_limit=256,  # the tiny set's size; scenes would otherwise number 10,000
        test_limit=32,
        bits=2,
        progressive=False,
        float_epochs=1,
        epochs=1,
        batch_size=32,
        out_dir=str(tmp_path / "run"),
        progress=False,
    )
    mp.start_processes(
        _worker, args=(2, _free_port(), config, str(tmp_path)), nprocs=2, join=True, start_method="spawn"
    )
    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    assert rank0.keys() == rank1.keys() and any(k.endswith("alpha") for k in rank0)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    saved = load_checkpoint(tmp_path / "run" / "q2.safetensors").model_state
    assert all(torch.equal(saved[key], rank0[key]) for key in rank0), "rank 0 writes the checkpoint"
    # each rank saw half of the data per epoch: 256 images / (2 ranks * 32) = 4 steps
    assert load_checkpoint(tmp_path / "run" / "q2.safetensors").training["scheduler"]["last_epoch"] == 4
