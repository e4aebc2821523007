"""The ``qrnn`` command line: backends, train, eval, translate, plot, validate, demo."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from qrnn.assignments import parse_assignments
from qrnn.errors import QRNNError

# -- qrnn backends ------------------------------------------------------------------------------


def cmd_backends(args) -> int:
    import qrnn
    from qrnn.registry import REGISTRY, unavailable_reason

    for name in qrnn.list_backends():
        cls = REGISTRY.lookup(name)
        reason = unavailable_reason(name)
        status = "available" if reason is None else f"unavailable: {reason}"
        print(f"{name}  [{status}]  (plugin {REGISTRY.owners[name]})")
        print(f"    {cls.capabilities.summary()}")
    for broken in qrnn.broken_plugins():
        print(f"broken plugin {broken.plugin}: {broken.error}")
    return 0


# -- qrnn train ---------------------------------------------------------------------------------

# CLI flag -> (config section, field).
_FLAGS = {
    "model": ("model", "model"),
    "backend": ("model", "backend"),
    "qubits": ("model", "n_qubits"),
    "layers": ("model", "n_layers"),
    "readouts": ("model", "readouts"),
    "hidden": ("model", "hidden"),
    "activation": ("model", "activation"),
    "dropout": ("model", "dropout"),
    "embed_dim": ("model", "embed_dim"),
    "hidden_size": ("model", "hidden_size"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "lr": ("train", "lr"),
    "seed": ("train", "seed"),
    "device": ("train", "device"),
    "patience": ("train", "patience"),
    "steps_per_epoch": ("train", "steps_per_epoch"),
    "time_limit": ("train", "time_limit"),
}


def resolve_config(args):
    """Preset (``--preset`` or ``qrnn/configs/TASK.toml``), then flags, then ``--set``."""
    from qrnn.tasks import TASKS
    from qrnn.train import PRESET_DIR, RunConfig, load_preset

    if args.task not in TASKS:
        raise QRNNError(f"unknown task {args.task!r}; available: {', '.join(sorted(TASKS))}")
    preset = Path(args.preset) if args.preset else PRESET_DIR / f"{args.task}.toml"
    config = load_preset(preset) if preset.exists() or args.preset else RunConfig(args.task)
    if config.task != args.task:
        raise QRNNError(f"preset {str(preset)!r} is for task {config.task!r}, not {args.task!r}")
    sections: dict[str, dict] = {"task_options": {}, "model": {}, "train": {}}
    for flag, (section, field) in _FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            sections[section][field] = value
    if args.backend_option:
        sections["model"]["backend_options"] = parse_assignments(
            args.backend_option, "--backend-option"
        )
    sections["task_options"].update(parse_assignments(args.task_option, "--task-option"))
    for key, value in parse_assignments(args.set, "--set").items():
        section, _, field = key.partition(".")
        if section not in sections or not field:
            raise QRNNError(f"--set keys look like model.hidden or train.lr (got {key!r})")
        sections[section][field] = value
    return config.override(**sections)


def _check_device(config) -> None:
    import qrnn
    from qrnn import distributed
    from qrnn.registry import REGISTRY

    device = distributed.resolve_device(config.train.device, distributed.world_from_env())
    if config.model.model == "qrnn":
        qrnn.list_backends()  # load plugins
        devices = REGISTRY.lookup(config.model.backend).capabilities.devices
        if device.type not in devices:
            raise QRNNError(
                f"backend {config.model.backend!r} runs on {sorted(devices)}, not "
                f"{device.type!r}; use --backend torch.statevector for {device.type}"
            )


def _print_result(trainer, test: dict) -> None:
    summary = trainer.summary()
    print(f"task: {summary['task']}")
    print(f"parameters: {json.dumps(summary['parameters'])}")
    if summary["reference"]:
        print(f"reference: {json.dumps(summary['reference'])}")
    print(f"test: {json.dumps({k: round(v, 5) for k, v in test.items()})}")
    print(f"run directory: {trainer.run_dir}")


def cmd_train(args) -> int:
    from qrnn.train import Trainer

    if args.resume:
        from qrnn.train import read_run_config

        config = read_run_config(args.resume, need_checkpoint=True)
        if args.device:
            config = config.override(train={"device": args.device})
        _check_device(config)
        trainer = Trainer.resume(args.resume, progress=not args.quiet, device=args.device)
        started = f"resuming {args.resume} at epoch {trainer.epoch + 1}, "
        started += f"batch {trainer.batch_in_epoch}"
    else:
        if not args.task:
            raise QRNNError("name a task (qrnn train copying ...) or pass --resume RUN_DIR")
        config = resolve_config(args)
        _check_device(config)
        run_dir = args.run_dir or Path("runs") / (
            f"{config.task}-{config.model.model}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        trainer = Trainer(config, run_dir, progress=not args.quiet)
        started = f"training {config.model.model} on {trainer.task.describe()}"
    say = print if trainer.world.is_main else (lambda *_, **__: None)  # one voice under torchrun
    say(started)
    try:
        trainer.fit(on_epoch=lambda record: say(json.dumps(record), flush=True))
    except KeyboardInterrupt:
        say(
            f"\ninterrupted; checkpoint saved. Continue with: qrnn train --resume {trainer.run_dir}"
        )
        return 130
    test = trainer.test_metrics()
    if trainer.world.is_main:
        _print_result(trainer, test)
    return 0


# -- qrnn eval / plot ---------------------------------------------------------------------------


def cmd_eval(args) -> int:
    from qrnn.train import load_run

    options = parse_assignments(args.backend_option, "--backend-option")
    trainer = load_run(args.run_dir, backend=args.backend, backend_options=options)
    metrics = trainer.test_metrics(split=args.split)
    backend = args.backend or trainer.config.model.backend
    print(
        json.dumps(
            {
                "run": str(args.run_dir),
                "split": args.split,
                "backend": backend,
                **{k: round(v, 6) for k, v in metrics.items()},
            }
        )
    )
    return 0


def cmd_plot(args) -> int:
    from qrnn.plot import plot_attention, plot_runs

    if args.attention:
        if len(args.run_dirs) != 1:
            raise QRNNError(f"--attention draws one run (got {len(args.run_dirs)} run directories)")
        trainer = _translation_run(args.run_dirs[0])
        task = trainer.task
        sentence = args.sentence or task.pairs()["test"][0][0]
        (translation,) = task.translate(trainer.model, [sentence], beam_size=args.beam)
        out = plot_attention(
            translation.attention,
            translation.source_tokens,
            translation.target_tokens,
            Path(args.out or "attention.png"),
            title=f"{sentence}\n-> {translation.text}",
        )
    else:
        out = plot_runs(
            [Path(p) for p in args.run_dirs], Path(args.out or "learning-curves.png"), args.metric
        )
    print(f"wrote {out}")
    return 0


# -- qrnn translate -----------------------------------------------------------------------------


def _translation_run(run_dir: str):
    """The trainer of a finished translation run, with its best weights and saved vocabularies."""
    import torch

    from qrnn.tasks import TranslationTask
    from qrnn.train import BEST_FILE, load_run

    trainer = load_run(run_dir)
    if not isinstance(trainer.task, TranslationTask):
        raise QRNNError(f"{run_dir!r} trained the task {trainer.config.task!r}, not translation")
    best = Path(run_dir) / BEST_FILE
    if not best.exists():
        raise QRNNError(f"{run_dir!r} has no {BEST_FILE} yet: train at least one epoch")
    trainer.model.load_state_dict(torch.load(best, map_location=trainer.device))
    return trainer


def cmd_translate(args) -> int:
    trainer = _translation_run(args.run_dir)
    for translation in trainer.task.translate(trainer.model, args.sentences, args.beam):
        print(translation.text)
    return 0


# -- qrnn validate ------------------------------------------------------------------------------


def _backend_options(items: list[str]) -> dict[str, dict]:
    """``NAME:KEY=VALUE`` items -> {NAME: {KEY: VALUE}}."""
    options: dict[str, dict] = {}
    for item in items:
        name, sep, assignment = item.partition(":")
        if not sep:
            raise QRNNError(f"--option must look like NAME:KEY=VALUE (got {item!r})")
        options.setdefault(name, {}).update(parse_assignments([assignment], "--option"))
    return options


def cmd_validate(args) -> int:
    from qrnn.validate import validate, validate_run

    options = _backend_options(args.option)
    report = validate(
        args.backends,
        n_qubits=args.qubits,
        n_cells=args.cells,
        n_steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        options=options,
    )
    print(report.format())
    if args.run:
        table, agreement = validate_run(args.run, args.backends, options, args.samples)
        print()
        print(table)
        for label, share in agreement.items():
            print(f"predictions on {label} equal to {args.backends[0]}: {share:.1%}")
    return 0


# -- qrnn demo: the main job --------------------------------------------------------------------


def cmd_demo(args) -> int:
    from qrnn.demo import run_demo

    budget = None if args.minutes is None else args.minutes * 60
    run_demo(Path(args.run_dir), time_budget=budget, progress=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qrnn", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("backends", help="list backends and their capabilities").set_defaults(
        func=cmd_backends
    )

    train = sub.add_parser("train", help="train a model on a task")
    train.add_argument(
        "task",
        nargs="?",
        help="copying, adding, digits, mnist, fashion-mnist, sentiment, lm, translation",
    )
    train.add_argument("--preset", help="TOML preset (default: qrnn/configs/TASK.toml)")
    train.add_argument("--model", choices=["qrnn", "rnn", "lstm", "gru", "scornn"])
    train.add_argument("--backend", help="backend name, e.g. torch.statevector")
    train.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE")
    train.add_argument(
        "--task-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="task option, e.g. delay=20, data_dir=..., permute=true",
    )
    train.add_argument("--qubits", type=int)
    train.add_argument("--layers", type=int)
    train.add_argument("--readouts", help="readout set: z, xyz, zz, or a union like xyz+zz")
    train.add_argument("--hidden", type=int, help="controller width H")
    train.add_argument("--activation", choices=["relu", "gelu", "glu", "linear"])
    train.add_argument("--dropout", type=float)
    train.add_argument("--embed-dim", type=int)
    train.add_argument("--hidden-size", type=int, help="baseline width (default: matched)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--device", help="cpu, cuda or cuda:N")
    train.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    train.add_argument("--steps-per-epoch", type=int)
    train.add_argument("--time-limit", type=float, help="seconds of training")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="any config field, e.g. model.head_hidden=true",
    )
    train.add_argument("--run-dir", help="default: runs/TASK-MODEL-TIMESTAMP")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="evaluate a trained run, optionally on another backend")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--backend", help="evaluate the QRNN on this backend instead")
    evaluate.add_argument(
        "--backend-option", action="append", default=[], metavar="KEY=VALUE", help="e.g. shots=1024"
    )
    evaluate.add_argument("--split", default="test", choices=["train", "valid", "test"])
    evaluate.set_defaults(func=cmd_eval)

    plot = sub.add_parser(
        "plot", help="learning curves of runs, or a translation's attention, to a PNG"
    )
    plot.add_argument("run_dirs", nargs="+")
    plot.add_argument("--out", help="default: learning-curves.png, or attention.png")
    plot.add_argument("--metric", help="validation metric to plot beside the loss")
    plot.add_argument(
        "--attention",
        action="store_true",
        help="heat map of a translation run's attention weights while it translates a sentence",
    )
    plot.add_argument("--sentence", help="with --attention: the source (default: the first test)")
    plot.add_argument("--beam", type=int, help="with --attention: beam size (default: the run's)")
    plot.set_defaults(func=cmd_plot)

    translate = sub.add_parser("translate", help="translate sentences with a trained run")
    translate.add_argument("run_dir")
    translate.add_argument("sentences", nargs="+", metavar="SENTENCE")
    translate.add_argument("--beam", type=int, help="beam size (default: the run's; 1: greedy)")
    translate.set_defaults(func=cmd_translate)

    check = sub.add_parser(
        "validate", help="run the same cells (and a trained run) on several backends and compare"
    )
    check.add_argument("backends", nargs="+", help="backend names; tag repeats as name@tag")
    check.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE",
        help="backend option, e.g. qiskit.aer@shots:shots=4096",
    )
    check.add_argument("--qubits", type=int, nargs="+", default=[2, 4])
    check.add_argument("--cells", type=int, default=3, help="random cells per qubit count")
    check.add_argument("--steps", type=int, default=8)
    check.add_argument("--batch-size", type=int, default=4)
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--run", metavar="RUN_DIR", help="also replay a trained QRNN run")
    check.add_argument("--samples", type=int, default=16, help="test sequences of the run")
    check.set_defaults(func=cmd_validate)

    demo = sub.add_parser("demo", help="train a QRNN and an LSTM on copying memory and compare")
    demo.add_argument("--run-dir", default="runs/demo")
    demo.add_argument(
        "--minutes", type=float, help="cap on training minutes per model (default: none)"
    )
    demo.add_argument("-q", "--quiet", action="store_true")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except QRNNError as error:
        print(f"qrnn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
