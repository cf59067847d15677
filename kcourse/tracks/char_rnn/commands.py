"""The character track's command-line pieces: `kcourse run ... --text FILE` and
`kcourse sample RUN_DIR` (TensorFlow-free until they run)."""

import os

from kcourse.errors import SettingError


def add_run_options(parser):
    parser.add_argument("--text", metavar="PATH",
                        help="character models (a4, a4-long, char-lstm): train on this "
                             "UTF-8 text file instead of tiny_shakespeare")


def run_overrides(args, experiment):
    """`--text PATH` as the setting `text` of a character experiment."""
    from kcourse.experiments import get

    if not getattr(args, "text", None):
        return {}
    if get(experiment)["track"] != "char_rnn":
        raise SettingError(f"--text is for the character models (a4, a4-long, "
                           f"char-lstm); {experiment} is not one")
    if not os.path.isfile(args.text):
        raise SettingError(f"--text {args.text}: no such file")
    return {"text": os.path.abspath(args.text)}


def add_commands(commands):
    from kcourse.cli import finite_float, seed_value, verbose_option

    sample = commands.add_parser("sample", help="generate text with a trained character "
                                                "model (a4, a4-long, char-lstm runs)")
    sample.add_argument("run_dir", metavar="RUN_DIR", help="run directory of kcourse run")
    sample.add_argument("--row", type=int, help="row of the run (default: the best)")
    sample.add_argument("--prompt", default="\n", help="text to continue (default a newline)")
    sample.add_argument("--length", type=int, default=500, help="characters (default 500)")
    sample.add_argument("--temperature", type=finite_float, default=1.0,
                        help="softmax temperature; 0 = greedy (default 1)")
    sample.add_argument("--top-p", type=finite_float, default=1.0,
                        help="nucleus sampling mass in (0, 1] (default 1: no cut)")
    sample.add_argument("--seed", type=seed_value, default=0,
                        help="random seed, 0 to 2**32 - 1 (default 0)")
    verbose_option(sample)
    return {"sample": cmd_sample}


def cmd_sample(args):
    if args.length < 1 or args.temperature < 0 or not 0 < args.top_p <= 1:
        raise SettingError("need --length >= 1, --temperature >= 0 and 0 < --top-p <= 1")
    from kcourse import console

    console.load_tensorflow()
    from kcourse.runs import run_row
    from kcourse.tracks.char_rnn.generation import MAX_LENGTH, generate
    from kcourse.tracks.char_rnn.track import load_row

    if args.length > MAX_LENGTH:
        raise SettingError(f"--length is at most {MAX_LENGTH}")
    info, row_dir = run_row(args.run_dir, args.row)
    if info["track"] != "char_rnn":
        raise SettingError(f"{args.run_dir} is not a run of a character model; give the "
                           "directory of `kcourse run a4` (or a4-long, char-lstm)")
    model, vocab = load_row(row_dir)
    print(args.prompt + generate(model, vocab, args.prompt, args.length, args.temperature,
                                 args.top_p, args.seed))
    return 0
