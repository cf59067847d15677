"""`kcourse lr-range`: the learning-rate range test of a multi-layer experiment
(TensorFlow-free until it runs)."""

import os

from kcourse.errors import SettingError


def add_commands(commands):
    from kcourse.cli import finite_float, run_options

    parser = commands.add_parser("lr-range", help="learning-rate range test: plot accuracy "
                                                  "against the rate, suggest eta_min and "
                                                  "eta_max (a2-*, a3-* experiments)")
    run_options(parser, "runs/EXPERIMENT-lr-range")
    parser.add_argument("--eta-min", type=finite_float, default=1e-5, help="default 1e-5")
    parser.add_argument("--eta-max", type=finite_float, default=1.0, help="default 1")
    parser.add_argument("--epochs", type=int, default=8, help="default 8")
    return {"lr-range": cmd_lr_range}


def cmd_lr_range(args):
    from kcourse import experiments
    from kcourse.runs import default_run_dir

    spec = experiments.get(args.experiment)
    if spec.get("task") != "mlp":
        raise SettingError(f"{args.experiment} has no cyclical learning rate; "
                           "range-test an a2-* or a3-* experiment")
    overrides = experiments.parse_sets(args.experiment, args.set)
    config = experiments.resolve(args.experiment, overrides, args.quick)[0]
    if not 0 < args.eta_min < args.eta_max:
        raise SettingError(f"need 0 < --eta-min < --eta-max, got {args.eta_min} and "
                           f"{args.eta_max}")
    if args.epochs < 1:
        raise SettingError(f"--epochs must be at least 1, got {args.epochs}")
    out = args.out or default_run_dir(args.experiment + "-lr-range", args.quick)
    settings = {"experiment": args.experiment, "config": config, "seed": args.seed,
                "eta_min": args.eta_min, "eta_max": args.eta_max, "epochs": args.epochs}
    suggestion = _measured(out, settings, args.fresh)
    if suggestion is None:
        from kcourse import console

        console.load_tensorflow()
        from kcourse.tracks.cifar_mlp.track import lr_range_experiment

        suggestion = lr_range_experiment(args.experiment, config, out=out,
                                         data_dir=args.data_dir, seed=args.seed,
                                         eta_min=args.eta_min, eta_max=args.eta_max,
                                         epochs=args.epochs, verbose=0 if args.quiet else 1)
    print(f"\nSuggested cyclical range: eta_min={suggestion['eta_min']:.3g}, "
          f"eta_max={suggestion['eta_max']:.3g} (validation accuracy peaks at "
          f"{suggestion['peak_val_accuracy']:.4f}).")
    print(f"Use them with: kcourse run {args.experiment} --set eta_min="
          f"{suggestion['eta_min']:.3g} --set eta_max={suggestion['eta_max']:.3g}")
    print(f"Plot: {os.path.join(out, 'lr_range.png')}")
    return 0


def _measured(out, settings, fresh):
    """The suggestion of a range test `out` already holds with the same `settings`
    (None when there is none, or with `fresh`, which deletes it); another test's
    directory is refused."""
    import json
    import shutil

    from kcourse.runs.layout import check_out_dir, read_json

    check_out_dir(out)
    path = os.path.join(out, "lr_range.json")
    if not os.path.exists(path):
        if fresh and os.path.isdir(out) and os.listdir(out):
            raise SettingError(f"--fresh would delete {out}, which holds no range test; "
                               "choose another --out")
        return None
    if fresh:
        shutil.rmtree(out)
        return None
    try:
        saved = read_json(path)
        same = all(json.loads(json.dumps(v)) == saved.get(k) for k, v in settings.items())
        same = same and isinstance(saved.get("suggestion"), dict)
    except (OSError, ValueError, AttributeError):
        same = False
    if not same:
        raise SettingError(f"{out} holds a range test of other settings; choose another "
                           "--out or pass --fresh to measure again")
    print(f"{out} already holds this range test (--fresh measures it again).")
    return saved["suggestion"]
