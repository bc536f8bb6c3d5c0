"""One function per ``fastsnn`` command: check the paths, build the configs from the options, call the
workflow, print its result."""

import dataclasses

from ..convert import SimulationConfig
from ..finetune import FinetuneConfig
from .options import config_from


def data(args) -> int:
    from ..data import fetch_dataset

    print(fetch_dataset(args.name, root=args.root, download=not args.no_download))
    return 0


def train(args) -> int:
    from ..workflows.distributed import rank
    from ..workflows.train import TrainConfig, train_progressive

    paths = train_progressive(config_from(TrainConfig(), args))
    if rank() == 0:
        for stage, path in paths.items():
            print(f"{stage}: {path}")
    return 0


def convert(args) -> int:
    from ..workflows.convert import convert_checkpoint
    from ..workflows.validation import check_paths

    check_paths(read={"checkpoint": args.checkpoint}, write={"--out": args.out})
    simulation = config_from(SimulationConfig(), args)
    snn = convert_checkpoint(args.checkpoint, args.out, simulation)
    print(f"{args.out}: {len(snn.neurons())} IF neurons, T={snn.T}, signed={simulation.signed}")
    return 0


def evaluate(args) -> int:
    from ..analysis import format_activity_summary, format_results
    from ..atomic_file import write_json
    from ..workflows.evaluate import EVALUATION_DATA, EvaluateConfig, evaluate_checkpoints
    from ..workflows.validation import check_paths

    check_paths(
        read={"checkpoints": args.checkpoints},
        write={"--json": args.json},
        write_folders={"--save-predictions": args.save_predictions},
        data_root=args.data_root,
    )
    results = evaluate_checkpoints(
        args.checkpoints,
        config=config_from(EvaluateConfig(), args),
        data=config_from(EVALUATION_DATA, args),
        progress=not args.quiet,
        save_predictions=args.save_predictions,
    )
    print(format_results(results))
    if "activity" in results:
        print(format_activity_summary(results["activity"]))
    if args.save_predictions:
        print(f"predictions drawn in {args.save_predictions}")
    if args.json:
        print(f"results written to {write_json(args.json, results)}")
    return 0


def export(args) -> int:
    from ..integer import IntegerConfig
    from ..workflows.export import export_checkpoint
    from ..workflows.validation import check_paths

    check_paths(read={"checkpoint": args.checkpoint}, write={"--out": args.out})
    config = config_from(IntegerConfig(), args)
    net = export_checkpoint(args.checkpoint, args.out, config)
    ops = net.graph["ops"]
    neurons = sum(op["op"] == "neuron" for op in ops)
    wide = len(net.wide_ops)
    print(f"{args.out}: integer SNN, {len(ops)} ops ({neurons} neuron layers), T={net.T}, "
          f"{config.weight_bits}-bit weights; exact in float32 but for {wide} op(s) in float64 or int32")  # fmt: skip
    return 0


def finetune(args) -> int:
    from ..atomic_file import write_json
    from ..workflows.data_config import TuningSplit
    from ..workflows.finetune import FINETUNE_DATA, finetune_checkpoint, format_reports
    from ..workflows.validation import check_paths

    check_paths(
        read={"checkpoint": args.checkpoint}, write={"--out": args.out, "--json": args.json}, data_root=args.data_root
    )
    reports = finetune_checkpoint(
        args.checkpoint,
        args.out,
        config=config_from(FinetuneConfig(), args),
        simulation=config_from(SimulationConfig(), args),
        data=config_from(FINETUNE_DATA, args),
        split=config_from(TuningSplit(), args),
        progress=not args.quiet,
    )
    print(format_reports(reports))
    print(f"{args.out}: fine-tuned SNN ({sum(r.kept for r in reports)} of {len(reports)} corrections kept)")
    if args.json:
        print(f"results written to {write_json(args.json, [dataclasses.asdict(r) for r in reports])}")
    return 0


def analyze(args) -> int:
    from ..analysis import format_activity_summary, format_conversion_errors
    from ..workflows.analyze import ANALYSIS_DATA, analyze_checkpoints, save_analysis
    from ..workflows.validation import check_paths

    first = args.checkpoints[0]
    out = args.out or first.parent / f"{first.stem}-analysis"
    check_paths(read={"checkpoints": args.checkpoints}, write_folders={"--out": out}, data_root=args.data_root)
    errors, reports = analyze_checkpoints(
        args.checkpoints, simulation=config_from(SimulationConfig(), args), data=config_from(ANALYSIS_DATA, args)
    )
    print(format_conversion_errors(errors))
    print(format_activity_summary([{**r.to_dict(), "model": name, "T": r.T} for name, r in reports.items()]))
    written = save_analysis(errors, out, reports=reports, title=first.name)
    print("written: " + ", ".join(map(str, written)))
    return 0


def import_weights(args) -> int:
    from ..workflows.imports import IMPORTED, import_checkpoint
    from ..workflows.validation import check_paths

    check_paths(read={"weights": args.weights}, write={"--out": args.out})
    model = config_from(IMPORTED, args)
    checkpoint = import_checkpoint(args.weights, args.out, model, allow_pickle=args.allow_pickle)
    print(f"{args.out}: {model.model} ({len(checkpoint.model_state)} tensors checked), bits={model.bits}")
    return 0


def demo(args) -> int:
    from ..workflows.demo import DEMOS, DemoConfig, run_demo

    demo = config_from(DemoConfig(), args)
    run_demo(config_from(DEMOS[demo.task].config(), args), demo, json=args.json)
    return 0
