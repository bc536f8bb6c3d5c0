"""One function per ``fastsnn`` command: check the paths, call the workflow, print its result."""

import dataclasses

# training option (as parsed) -> TrainConfig field
_TRAINING_FIELDS = {
    "model": "model", "dataset": "dataset", "data_root": "data_root", "bits": "bits", "width": "width", "stem": "stem",
    "weight_bits": "weight_bits", "float_epochs": "float_epochs", "epochs": "epochs", "final_epochs": "final_epochs",
    "batch_size": "batch_size", "lr": "lr", "quant_lr": "quant_lr", "seed": "seed", "train_limit": "train_limit",
    "test_limit": "test_limit", "out": "out_dir", "checkpoint_every": "checkpoint_every",
    "checkpoint_seconds": "checkpoint_seconds",
}  # fmt: skip


def train_config(args, base=None):
    """The :class:`~fastsnn.workflows.train.TrainConfig` of ``base`` (default: TrainConfig()) with the
    training options present in ``args`` (for ``demo``, only those the user typed)."""
    from ..workflows.train import TrainConfig

    given = {field: getattr(args, option) for option, field in _TRAINING_FIELDS.items() if hasattr(args, option)}
    if getattr(args, "float_only", False):
        given["bits"] = None
    if getattr(args, "no_progressive", False):
        given["progressive"] = False
    if hasattr(args, "quiet"):
        given["progress"] = not args.quiet
    return dataclasses.replace(base or TrainConfig(), **given)


def data(args) -> int:
    from ..data import fetch_dataset

    print(fetch_dataset(args.name, root=args.root, download=not args.no_download))
    return 0


def train(args) -> int:
    from ..workflows.distributed import rank
    from ..workflows.train import train_progressive

    paths = train_progressive(train_config(args))
    if rank() == 0:
        for stage, path in paths.items():
            print(f"{stage}: {path}")
    return 0


def convert(args) -> int:
    from ..workflows.convert import convert_checkpoint
    from ..workflows.validation import check_paths

    check_paths(read={"checkpoint": args.checkpoint}, write={"--out": args.out})
    snn = convert_checkpoint(args.checkpoint, args.out, T=args.time_steps, signed=not args.unsigned)
    print(f"{args.out}: {len(snn.neurons())} IF neurons, T={snn.T}, signed={not args.unsigned}")
    return 0


def evaluate(args) -> int:
    from ..analysis import format_activity_summary, format_results
    from ..workflows.atomic import write_json
    from ..workflows.evaluate import evaluate_checkpoint
    from ..workflows.validation import check_paths

    check_paths(
        read=_compared(args),
        write={"--json": args.json},
        write_folders={"--save-predictions": args.save_predictions},
        data_root=args.data_root,
    )
    results = evaluate_checkpoint(
        args.checkpoint,
        float_checkpoint=args.float_checkpoint,
        finetuned=args.finetuned,
        rate_norm=args.rate_norm,
        rate_norm_time_steps=args.rate_norm_T,
        time_steps=args.time_steps,
        dataset=args.dataset,
        data_root=args.data_root,
        batch_size=args.batch_size,
        limit=args.limit,
        progress=not args.quiet,
        save_predictions=args.save_predictions,
        activity_images=args.activity,
    )
    print(format_results(results))
    if "activity" in results:
        print(format_activity_summary(results["activity"]))
    if args.save_predictions:
        print(f"predictions drawn in {args.save_predictions}")
    if args.json:
        print(f"results written to {write_json(args.json, results)}")
    return 0


def finetune(args) -> int:
    from ..workflows.atomic import write_json
    from ..workflows.finetune import finetune_checkpoint, format_reports
    from ..workflows.validation import check_paths

    check_paths(
        read={"checkpoint": args.checkpoint}, write={"--out": args.out, "--json": args.json}, data_root=args.data_root
    )
    reports = finetune_checkpoint(
        args.checkpoint,
        args.out,
        T=args.time_steps,
        signed=not args.unsigned,
        objective=args.objective,
        steps_per_layer=args.steps,
        lr=args.lr,
        calibrate=args.calibrate,
        end_to_end_steps=args.end_to_end_steps,
        criterion=args.criterion,
        batch_size=args.batch_size,
        held_out=args.held_out,
        limit=args.limit,
        dataset=args.dataset,
        data_root=args.data_root,
        seed=args.seed,
        progress=not args.quiet,
    )
    print(format_reports(reports))
    print(f"{args.out}: fine-tuned SNN ({sum(r.kept for r in reports)} of {len(reports)} corrections kept)")
    if args.json:
        print(f"results written to {write_json(args.json, [dataclasses.asdict(r) for r in reports])}")
    return 0


def analyze(args) -> int:
    from ..analysis import format_activity_summary, format_conversion_errors
    from ..workflows.analyze import analyze_checkpoint, save_analysis
    from ..workflows.validation import check_paths

    out = args.out or args.checkpoint.parent / f"{args.checkpoint.stem}-analysis"
    check_paths(read=_compared(args), write_folders={"--out": out}, data_root=args.data_root)
    errors, reports = analyze_checkpoint(
        args.checkpoint,
        float_checkpoint=args.float_checkpoint,
        finetuned=args.finetuned,
        T=args.time_steps,
        dataset=args.dataset,
        data_root=args.data_root,
        limit=args.limit,
        batch_size=args.batch_size,
    )
    print(format_conversion_errors(errors))
    print(format_activity_summary([{**r.to_dict(), "model": name, "T": r.T} for name, r in reports.items()]))
    written = save_analysis(errors, out, reports=reports, title=args.checkpoint.name)
    print("written: " + ", ".join(map(str, written)))
    return 0


def import_weights(args) -> int:
    from ..data import list_datasets
    from ..models import list_models
    from ..workflows.imports import import_checkpoint
    from ..workflows.validation import check_choice, check_paths

    check_paths(read={"weights": args.weights}, write={"--out": args.out})
    check_choice("--model", args.model, list_models())
    check_choice("--dataset", args.dataset, list_datasets())
    checkpoint = import_checkpoint(
        args.weights,
        args.out,
        model=args.model,
        dataset=args.dataset,
        bits=args.bits,
        weight_bits=args.weight_bits,
        width=args.width,
        stem=args.stem,
        allow_pickle=args.allow_pickle,
    )
    print(f"{args.out}: {args.model} ({len(checkpoint.model_state)} tensors checked), bits={args.bits}")
    return 0


def demo(args) -> int:
    from ..workflows.demo import DEMOS, run_demo

    demo = DEMOS[args.task]
    run_demo(
        train_config(args, demo.config()),
        finetune_steps=args.finetune_steps or demo.finetune_steps,
        held_out=args.held_out or demo.held_out,
        eval_batch=demo.eval_batch,
        json=args.json,
    )
    return 0


def _compared(args) -> dict:
    """The input checkpoints of evaluate and analyze, by option."""
    return {"checkpoint": args.checkpoint, "--float-checkpoint": args.float_checkpoint, "--finetuned": args.finetuned}
