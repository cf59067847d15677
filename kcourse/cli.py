"""The `kcourse` command line. TensorFlow is imported only by the commands that train."""

import argparse
import os
import sys


def _data_options(parser):
    parser.add_argument("--data-dir", metavar="PATH",
                        help="TFDS manual directory holding the datasets (e.g. "
                             "cifar-10-batches-py/); default $KCOURSE_DATA_DIR, else download")
    parser.add_argument("--tfds-dir", metavar="PATH",
                        help="where TFDS keeps prepared datasets (default $TFDS_DATA_DIR "
                             "or ~/tensorflow_datasets)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _run_options(parser, default_out, fresh=True):
    parser.add_argument("experiment")
    parser.add_argument("--out", metavar="DIR",
                        help=f"run directory (default {default_out}); an existing run resumes")
    _data_options(parser)
    parser.add_argument("--quick", action="store_true",
                        help="a shrunken run for smoke tests (never for reported figures)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of every row (repeatable)")
    parser.add_argument("--text", metavar="PATH",
                        help="character models (a4, a4-long, char-lstm): train on this "
                             "UTF-8 text file instead of tiny_shakespeare")
    if fresh:
        parser.add_argument("--fresh", action="store_true",
                            help="delete the run directory first instead of resuming")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kcourse", description="Reproduce the course's experiments with Keras.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("list", help="list the experiments")

    run = commands.add_parser("run", help="train an experiment into a run directory")
    _run_options(run, "runs/EXPERIMENT")

    tune = commands.add_parser("tune", help="coarse-to-fine KerasTuner search of lambda "
                                            "(experiments a2-lambda, a3-lambda)")
    _run_options(tune, "runs/EXPERIMENT")

    lr_range = commands.add_parser("lr-range", help="learning-rate range test: plot "
                                                    "accuracy against the rate, suggest "
                                                    "eta_min and eta_max")
    _run_options(lr_range, "runs/EXPERIMENT-lr-range", fresh=False)
    lr_range.add_argument("--eta-min", type=float, default=1e-5, help="default 1e-5")
    lr_range.add_argument("--eta-max", type=float, default=1.0, help="default 1")
    lr_range.add_argument("--epochs", type=int, default=8, help="default 8")

    sample = commands.add_parser("sample", help="generate text with a trained character "
                                                "model (a4, a4-long, char-lstm runs)")
    sample.add_argument("run_dir", metavar="RUN_DIR", help="run directory of kcourse run")
    sample.add_argument("--row", type=int, help="row of the run (default: the best)")
    sample.add_argument("--prompt", default="\n", help="text to continue (default a newline)")
    sample.add_argument("--length", type=int, default=500, help="characters (default 500)")
    sample.add_argument("--temperature", type=float, default=1.0,
                        help="softmax temperature; 0 = greedy (default 1)")
    sample.add_argument("--top-p", type=float, default=1.0,
                        help="nucleus sampling mass in (0, 1] (default 1: no cut)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    export = commands.add_parser(
        "export", help="export a trained model for serving: a SavedModel in TensorFlow "
                       "Serving's layout OUT_DIR/<experiment>/<version>/, or ONNX")
    export.add_argument("run_dir", metavar="RUN_DIR", help="run directory of kcourse run")
    export.add_argument("out_dir", metavar="OUT_DIR", help="model base directory")
    export.add_argument("--version", type=int, help="version number (default: the next)")
    export.add_argument("--row", type=int, help="row of the run (default: the best)")
    export.add_argument("--name", help="model name (default: the experiment's)")
    export.add_argument("--format", choices=("saved_model", "onnx"), default="saved_model",
                        help="saved_model (default) or onnx (image classifiers; needs "
                             "kcourse[onnx])")

    check = commands.add_parser("gradcheck",
                                help="check the experiment's gradients numerically")
    check.add_argument("experiment")
    _data_options(check)
    return parser


def cmd_list(args):
    from kcourse.experiments import EXPERIMENTS

    width = max(len(name) for name in EXPERIMENTS)
    for name, spec in EXPERIMENTS.items():
        print(f"{name.ljust(width)}  {spec['description']}")
        print(f"{''.ljust(width)}  reference: {spec['reference']}")
    return 0


def cmd_run(args):
    options = _run_options_of(args, "run")
    from kcourse.runner import run_experiment, summary_table

    out = options["out"]
    metrics = run_experiment(args.experiment, **options)
    print(f"\n{args.experiment}: {metrics['reference']}")
    print(summary_table(metrics))
    print(f"\nRun directory: {out}")
    return 0


def _run_options_of(args, need):
    """The keyword arguments of a run or a search from the command line, checked."""
    from kcourse import experiments

    overrides = _overrides(args, need)
    return {"out": args.out or experiments.run_dir(args.experiment, args.quick),
            "data_dir": args.data_dir, "seed": args.seed, "quick": args.quick,
            "overrides": overrides, "fresh": args.fresh, "verbose": 0 if args.quiet else 1}


def _overrides(args, need):
    """Check that the experiment suits the command (`need`: run, search or mlp) and
    parse and validate its --set overrides, all before TensorFlow loads."""
    from kcourse import experiments

    spec = experiments.get(args.experiment)
    if need == "run" and "search" in spec:
        raise experiments.SettingError(f"{args.experiment} is a search: run it with "
                                       f"`kcourse tune {args.experiment}`")
    if need == "search" and "search" not in spec:
        searches = [n for n, s in experiments.EXPERIMENTS.items() if "search" in s]
        raise experiments.SettingError(f"{args.experiment} is not a search; use one of "
                                       f"{', '.join(searches)}")
    if need == "mlp" and spec["task"] != "mlp":
        raise experiments.SettingError(f"{args.experiment} has no cyclical learning rate; "
                                       "range-test an a2-* or a3-* experiment")
    overrides = experiments.parse_sets(args.experiment, args.set)
    if getattr(args, "text", None):
        if spec["task"] != "char":
            raise experiments.SettingError(f"--text is for character models; "
                                           f"{args.experiment} trains on CIFAR-10")
        if not os.path.isfile(args.text):
            raise experiments.SettingError(f"--text {args.text}: no such file")
        overrides["text"] = os.path.abspath(args.text)
    experiments.resolve(args.experiment, overrides, args.quick)
    return overrides


def cmd_tune(args):
    options = _run_options_of(args, "search")
    from tuning.search import coarse_to_fine, search_table

    out = options["out"]
    results = coarse_to_fine(args.experiment, **options)
    print(f"\n{args.experiment}: {results['reference']}")
    print(search_table(results))
    best = results["best"]
    step = f", n_s {best['n_s_epochs']} epochs per half cycle" if "n_s_epochs" in best else ""
    print(f"\nBest lambda {best['lambda']:.4g}{step} (validation accuracy "
          f"{best['val_accuracy']:.4f}, test accuracy {results['best_test_accuracy']:.4f}); "
          f"fine stage searched log10(lambda) in [{results['fine_range'][0]:.2f}, "
          f"{results['fine_range'][1]:.2f}].")
    print(f"Results: {os.path.join(out, 'results.json')}, "
          f"{os.path.join(out, 'figures', 'lambda_search.png')}")
    return 0


def cmd_lr_range(args):
    from kcourse import experiments

    overrides = _overrides(args, "mlp")
    if not 0 < args.eta_min < args.eta_max:
        raise experiments.SettingError(f"need 0 < --eta-min < --eta-max, got "
                                       f"{args.eta_min} and {args.eta_max}")
    if args.epochs < 1:
        raise experiments.SettingError(f"--epochs must be at least 1, got {args.epochs}")
    from kcourse.runner import lr_range_experiment

    out = args.out or experiments.run_dir(args.experiment + "-lr-range", args.quick)
    suggestion = lr_range_experiment(args.experiment, out=out, data_dir=args.data_dir,
                                     seed=args.seed, quick=args.quick, overrides=overrides,
                                     eta_min=args.eta_min, eta_max=args.eta_max,
                                     epochs=args.epochs, verbose=0 if args.quiet else 1)
    print(f"\nSuggested cyclical range: eta_min={suggestion['eta_min']:.3g}, "
          f"eta_max={suggestion['eta_max']:.3g} (validation accuracy peaks at "
          f"{suggestion['peak_val_accuracy']:.4f}).")
    print(f"Use them with: kcourse run {args.experiment} --set eta_min="
          f"{suggestion['eta_min']:.3g} --set eta_max={suggestion['eta_max']:.3g}")
    print(f"Plot: {os.path.join(out, 'lr_range.png')}")
    return 0


def cmd_sample(args):
    from kcourse.experiments import SettingError

    if args.length < 1 or args.temperature < 0 or not 0 < args.top_p <= 1:
        raise SettingError("need --length >= 1, --temperature >= 0 and 0 < --top-p <= 1")
    from kcourse.data.text import Vocabulary
    from kcourse.sampling import MAX_LENGTH, generate
    from kcourse.serving import is_char_row, load_row_model, run_row

    if args.length > MAX_LENGTH:
        raise SettingError(f"--length is at most {MAX_LENGTH}")
    _, row_dir = run_row(args.run_dir, args.row)
    if not is_char_row(row_dir):
        raise SettingError(f"{row_dir} is not a character model (no vocab.json); give the "
                           "directory of `kcourse run a4` (or a4-long, char-lstm)")
    model = load_row_model(row_dir)
    vocab = Vocabulary.load(os.path.join(row_dir, "vocab.json"))
    print(args.prompt + generate(model, vocab, args.prompt, args.length, args.temperature,
                                 args.top_p, args.seed))
    return 0


def cmd_export(args):
    from kcourse.serving import export

    path = export(args.run_dir, args.out_dir, args.version, args.row, args.format,
                  args.name)
    print(f"Exported to {path}")
    if args.format == "saved_model":
        print(f"Inspect: saved_model_cli show --dir {path} --all")
    return 0


def cmd_gradcheck(args):
    from kcourse import experiments

    spec = experiments.get(args.experiment)
    if "gradcheck" not in spec:
        raise experiments.SettingError(f"{args.experiment} has no gradient check")
    from kcourse.runner import gradcheck_experiment

    threshold, results = gradcheck_experiment(args.experiment, args.data_dir, args.seed)
    worst = 0.0
    for setting, errors in results:
        label = ", ".join(f"{k}={v}" for k, v in setting.items())
        for path, error in errors.items():
            worst = max(worst, error)
            status = "ok" if error < threshold else "FAIL"
            print(f"{label:32s} {path:28s} max relative error {error:.3e}  {status}")
    passed = worst < threshold
    print(f"{'PASSED' if passed else 'FAILED'}: largest relative error {worst:.3e} "
          f"(threshold {threshold:g})")
    return 0 if passed else 1


def main(argv=None):
    args = build_parser().parse_args(argv)
    if getattr(args, "tfds_dir", None):
        os.environ["TFDS_DATA_DIR"] = os.path.abspath(args.tfds_dir)
    from kcourse.errors import DataNotFoundError
    from kcourse.experiments import SettingError

    try:
        commands = {"list": cmd_list, "run": cmd_run, "tune": cmd_tune,
                    "lr-range": cmd_lr_range, "gradcheck": cmd_gradcheck,
                    "sample": cmd_sample, "export": cmd_export}
        return commands[args.command](args)
    except SettingError as error:
        print(f"kcourse: error: {error}", file=sys.stderr)
        return 2
    except DataNotFoundError as error:  # its message says how to point at the data
        print(f"kcourse: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted. Run the same command again to resume from the last "
              "checkpoint.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
