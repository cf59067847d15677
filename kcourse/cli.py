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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kcourse", description="Reproduce the course's experiments with Keras.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("list", help="list the experiments")

    run = commands.add_parser("run", help="train an experiment into a run directory")
    run.add_argument("experiment")
    run.add_argument("--out", metavar="DIR",
                     help="run directory (default runs/EXPERIMENT); an existing run resumes")
    _data_options(run)
    run.add_argument("--quick", action="store_true",
                     help="a shrunken run for smoke tests (never for reported figures)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a setting of every row (repeatable)")
    run.add_argument("--fresh", action="store_true",
                     help="delete the run directory first instead of resuming")
    run.add_argument("--quiet", action="store_true", help="no progress bars")

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
    from kcourse import experiments

    overrides = experiments.parse_sets(args.experiment, args.set)
    experiments.resolve(args.experiment, overrides, args.quick)  # validate before TF loads
    from kcourse.runner import run_experiment, summary_table

    out = args.out or experiments.run_dir(args.experiment, args.quick)
    metrics = run_experiment(args.experiment, out=out, data_dir=args.data_dir,
                             seed=args.seed, quick=args.quick, overrides=overrides,
                             fresh=args.fresh, verbose=0 if args.quiet else 1)
    print(f"\n{args.experiment}: {metrics['reference']}")
    print(summary_table(metrics))
    print(f"\nRun directory: {out}")
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
        return {"list": cmd_list, "run": cmd_run, "gradcheck": cmd_gradcheck}[args.command](args)
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
