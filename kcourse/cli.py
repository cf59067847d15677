"""The `kcourse` command line. Generic: the experiments, their settings and any extra
commands come from the tracks (`kcourse.tracks`). TensorFlow is imported only by the
commands that need it, so `kcourse --help` and `kcourse list` start at once."""

import argparse
import importlib
import os
import sys

from kcourse import console
from kcourse.errors import DataNotFoundError, SettingError

DIVERGED = 3  # exit code of a run in which a row diverged


def data_options(parser):
    parser.add_argument("--data-dir", metavar="PATH",
                        help="TFDS manual directory holding the datasets (e.g. "
                             "cifar-10-batches-py/); default $KCOURSE_DATA_DIR, else download")
    parser.add_argument("--tfds-dir", metavar="PATH",
                        help="where TFDS keeps prepared datasets (default $TFDS_DATA_DIR "
                             "or ~/tensorflow_datasets)")
    parser.add_argument("--seed", type=seed_value, default=0,
                        help="random seed, 0 to 2**32 - 1 (default 0)")
    verbose_option(parser)


def verbose_option(parser):
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's and TFDS's own logging and progress bars")


def seed_value(text):
    """A seed: an integer in [0, 2**32) (what NumPy, Python and TensorFlow all take)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {value}")
    return value


def finite_float(text):
    """A finite number (not nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def run_options(parser, default_out="runs/EXPERIMENT", fresh=True):
    """The options of a command that trains an experiment into a run directory."""
    parser.add_argument("experiment")
    parser.add_argument("--out", metavar="DIR",
                        help=f"run directory (default {default_out}); an existing run resumes")
    data_options(parser)
    parser.add_argument("--quick", action="store_true",
                        help="a shrunken run for smoke tests (never for reported figures)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of every row (repeatable)")
    if fresh:
        parser.add_argument("--fresh", action="store_true",
                            help="delete the run directory first instead of resuming")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _command_modules():
    from kcourse.tracks import tracks

    return [importlib.import_module(t.commands) for t in tracks().values() if t.commands]


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = Parser(prog="kcourse",
                    description="Reproduce the course's experiments with Keras.")
    from kcourse import __version__

    parser.add_argument("--version", action="version", version=f"kcourse {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser)
    handlers = {"list": cmd_list, "run": cmd_run, "tune": cmd_tune, "export": cmd_export,
                "predict": cmd_predict, "gradcheck": cmd_gradcheck, "report": cmd_report}

    listing = commands.add_parser(
        "list", help="list the experiments, by track; with names, every setting of "
                     "those experiments (the --set keys) with its default and meaning")
    listing.add_argument("names", nargs="*", metavar="EXPERIMENT",
                         help="experiments to show in full")
    run = commands.add_parser(
        "run", help="train an experiment into a run directory (exit code 3 when a row "
                    "diverged)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=experiments_epilog())
    run_options(run)
    run.add_argument("--fresh-row", type=int, action="append", default=[], metavar="N",
                     help="train row N again from the start, keeping the others "
                          "(repeatable)")
    tune = commands.add_parser("tune", help="KerasTuner search of an experiment that is "
                                            "a search (coarse-to-fine or random)")
    run_options(tune)
    from tuning.launch import add_options

    add_options(tune)
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
    export.add_argument("--allow-diverged", action="store_true",
                        help="export a row whose training diverged (refused otherwise)")
    verbose_option(export)
    predict = commands.add_parser(
        "predict", help="the top classes of each input by a run's served model (the "
                        "track decides what an input is: a name, an image file)")
    predict.add_argument("run_dir", metavar="RUN_DIR", help="run directory of kcourse run")
    predict.add_argument("inputs", nargs="+", metavar="INPUT",
                         help="what to classify: names (surnames), image files (CIFAR-10)")
    predict.add_argument("--row", type=int, help="row of the run (default: the best)")
    predict.add_argument("--top", type=int, default=3, help="classes per input (default 3)")
    predict.add_argument("--allow-diverged", action="store_true",
                         help="answer with a row whose training diverged (refused otherwise)")
    predict.add_argument("--draw", metavar="DIR",
                         help="write each input with the objects found drawn to "
                              "DIR/<name>_boxes.png (localization runs)")
    verbose_option(predict)
    report = commands.add_parser(
        "report", help="the results of run directories as one Markdown and one HTML page: "
                       "tables against the course, figures, the commands (default: every "
                       "run under runs/)")
    report.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                        help="run or search directories (default: all under runs/)")
    report.add_argument("--out", default=os.path.join("runs", "report"), metavar="DIR",
                        help="report folder (default runs/report)")
    report.add_argument("--link-figures", action="store_true",
                        help="link the runs' figures instead of copying them")
    verbose_option(report)
    check = commands.add_parser("gradcheck",
                                help="check the experiment's gradients numerically")
    check.add_argument("experiment")
    data_options(check)

    for module in _command_modules():  # the tracks' own options and commands
        if hasattr(module, "add_run_options"):
            module.add_run_options(run)
        handlers.update(module.add_commands(commands))
    parser.set_defaults(handlers=handlers)
    return parser


def experiments_epilog():
    """`kcourse run --help`'s list of the experiments, by track (TensorFlow-free)."""
    from kcourse.tracks import tracks

    lines = ["experiments (`kcourse list EXPERIMENT` shows its settings, the --set keys):"]
    for track in tracks().values():
        runnable = [n for n, s in track.experiments.items() if "search" not in s]
        if runnable:
            lines.append(f"  {track.name}: {', '.join(runnable)}")
    return "\n".join(lines)


def _shown(value):
    """A setting's value as `--set` takes it."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe(name):
    """One experiment in full: what it is, its rows, every setting (default and
    meaning), what --quick changes, its search."""
    from kcourse import experiments

    spec = experiments.get(name)
    track = experiments.track_of(name)
    command = "tune" if "search" in spec else "run"
    lines = [f"{name} ({track.name}): {spec['description']}",
             f"course: {spec['reference']}",
             f"command: kcourse {command} {name} [--set KEY=VALUE ...]"]
    varying = {}
    for row in spec["rows"]:
        for key, value in row.items():
            varying.setdefault(key, []).append(_shown(value))
    rows = [", ".join(f"{k}={_shown(v)}" for k, v in row.items()) or "the defaults"
            for row in spec["rows"]]
    lines.append(f"rows ({len(rows)}):")
    lines += [f"  {i}: {text}" for i, text in enumerate(rows)]
    defaults = spec["defaults"]
    width = max(len(k) for k in defaults)
    value_width = min(max(len(_shown(v)) for v in defaults.values()), 24)
    lines.append("settings (--set KEY=VALUE changes every row):")
    for key, value in defaults.items():
        meaning = track.settings.get(key, "")
        if key in varying:
            meaning += f" [rows: {' | '.join(varying[key])}]"
        lines.append(f"  {key.ljust(width)}  {_shown(value).ljust(value_width)}  {meaning}")
    quick = spec.get("quick")
    if quick:
        lines.append("--quick: " + ", ".join(f"{k}={_shown(v)}" for k, v in quick.items())
                     + " (a smoke test, never for reported figures)")
    if "search" in spec:
        search = spec["search"]
        lines.append("search: " + ", ".join(
            f"{k}={v}" for k, v in search.items() if k != "space"))
        for key, values in search.get("space", {}).items():
            lines.append(f"  {key}: {values}")
    return "\n".join(lines)


def cmd_list(args):
    from kcourse.tracks import tracks

    if args.names:
        print("\n\n".join(describe(name) for name in args.names))
        return 0
    for track in tracks().values():
        print(f"{track.name}: {track.title}")
        width = max(len(name) for name in track.experiments)
        for name, spec in track.experiments.items():
            print(f"  {name.ljust(width)}  {spec['description']}")
            print(f"  {''.ljust(width)}  course: {spec['reference']}")
        print()
    print("`kcourse list EXPERIMENT` shows an experiment's settings (the --set keys).")
    return 0


def checked_options(args, search=False):
    """The keyword arguments of a run (or, with `search`, a search) from the command
    line, checked before TensorFlow loads."""
    from kcourse import experiments
    from kcourse.runs.layout import check_fresh, check_out_dir, default_run_dir

    spec = experiments.get(args.experiment)
    if not search and "search" in spec:
        raise SettingError(f"{args.experiment} is a search: run it with "
                           f"`kcourse tune {args.experiment}`")
    if search and "search" not in spec:
        searches = [n for n, s in experiments.experiments().items() if "search" in s]
        raise SettingError(f"{args.experiment} is not a search; use one of "
                           f"{', '.join(searches)}")
    overrides = experiments.parse_sets(args.experiment, args.set)
    for module in _command_modules():
        if hasattr(module, "run_overrides"):
            overrides.update(module.run_overrides(args, args.experiment))
    configs = experiments.resolve(args.experiment, overrides, args.quick)
    out = args.out or default_run_dir(args.experiment, args.quick, configs[0])
    check_out_dir(out)
    if getattr(args, "fresh", False):
        check_fresh(out, args.experiment)
    return {"out": out,
            "data_dir": args.data_dir, "seed": args.seed, "quick": args.quick,
            "overrides": overrides, "fresh": getattr(args, "fresh", False),
            "verbose": 0 if args.quiet else 1}


def cmd_run(args):
    options = checked_options(args)
    console.load_tensorflow()
    from kcourse import experiments
    from kcourse.runs import run_experiment, summary_table

    metrics = run_experiment(args.experiment, fresh_rows=args.fresh_row, **options)
    print(f"\n{args.experiment} (course: {metrics['reference']})")
    print(summary_table(metrics))
    legend = experiments.track_of(args.experiment).legend
    if legend:
        print(legend)
    print(f"\nRun directory: {options['out']}")
    diverged = [row["tag"] for row in metrics["rows"] if row.get("diverged")]
    if diverged:
        print(f"kcourse: training diverged in {', '.join(diverged)}: those rows keep their "
              "last finite weights and are not exported unless asked (--allow-diverged); "
              "lower the learning rate", file=sys.stderr)
        return DIVERGED
    return 0


def cmd_tune(args):
    options = checked_options(args, search=True)
    if args.report:
        from tuning.report import report

        print(report(args.experiment, options["out"]))
        return 0
    from tuning import launch

    plan = launch.plan(args, options)  # its start-up errors come before TensorFlow
    if plan.supervise is not None:  # a worker machine: only worker processes here
        plan.supervise()
        return 0
    console.load_tensorflow()
    from kcourse.training import set_threads
    from tuning.search import run_search, search_summary, work

    set_threads(plan.threads)  # before TensorFlow's first op

    options["max_trials"] = args.max_trials
    if plan.worker:
        work(args.experiment, wait=args.wait, **options)
        return 0
    with plan.chief() as runner:
        results = run_search(args.experiment, runner=runner, **options)
    print(f"\n{args.experiment} (course: {results['reference']})")
    print(search_summary(results, options["out"]))
    return 0


def cmd_export(args):
    console.load_tensorflow()
    from kcourse.serving import export

    path = export(args.run_dir, args.out_dir, args.version, args.row, args.format,
                  args.name, allow_diverged=args.allow_diverged)
    print(f"Exported to {path}")
    if args.format == "saved_model":
        print(f"Inspect: saved_model_cli show --dir {path} --all")
    return 0


def cmd_predict(args):
    console.load_tensorflow()
    from kcourse.serving import predict

    for given, answer in predict(args.run_dir, args.inputs, args.row, args.top,
                                 allow_diverged=args.allow_diverged, draw=args.draw):
        shown = given.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        if answer and isinstance(answer[0], dict):  # objects found
            text = "  ".join(f"{o['class']} {o['confidence']:.3f} at "
                             f"[{', '.join(f'{v:g}' for v in o['box'])}]" for o in answer)
        elif answer == []:
            text = "nothing found"
        else:
            text = "  ".join(f"{name} {p:.3f}" for name, p in answer)
        print(f"{shown}: {text}")
    if args.draw:
        print(f"Drawn: {args.draw}/")
    return 0


def cmd_report(args):
    from kcourse.runs.report import write_report

    markdown, page = write_report(args.run_dirs or None, out=args.out,
                                  copy_figures=not args.link_figures)
    print(f"Report: {markdown}\n        {page}")
    return 0


def cmd_gradcheck(args):
    from kcourse import experiments

    spec = experiments.get(args.experiment)
    if "gradcheck" not in spec:
        raise SettingError(f"{args.experiment} has no gradient check")
    track = experiments.track_of(args.experiment)
    console.load_tensorflow()
    threshold, results = track.module().gradcheck(spec, args.data_dir, args.seed)
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
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "tfds_dir", None):
            os.environ["TFDS_DATA_DIR"] = os.path.abspath(args.tfds_dir)
        previous = console.QUIET
        console.quiet(not getattr(args, "verbose", False), load=False)
        try:  # the handlers load TensorFlow (console.load_tensorflow) once arguments pass
            return args.handlers[args.command](args)
        finally:
            console.QUIET = previous
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
