"""The words track's command: `kcourse generate RUN_DIR --prompt ... --beam K` (TensorFlow-
free until it runs)."""

from kcourse.errors import SettingError


def add_commands(commands):
    from kcourse.cli import verbose_option

    generate = commands.add_parser(
        "generate", help="continue a prompt with a trained next-word model "
                         "(inf265-generator runs): the best beam-search completions")
    generate.add_argument("run_dir", metavar="RUN_DIR", help="run directory of kcourse run "
                                                             "inf265-generator")
    generate.add_argument("--prompt", required=True, help="words to continue")
    generate.add_argument("--beam", type=int, default=5, metavar="K",
                          help="beam width: the K best completions (default 5; 1: greedy)")
    generate.add_argument("--length", type=int, default=20, help="words added (default 20)")
    generate.add_argument("--row", type=int, help="row of the run (default: the best)")
    verbose_option(generate)
    return {"generate": cmd_generate}


def cmd_generate(args):
    from kcourse import console

    console.load_tensorflow()
    from kcourse.runs import run_row
    from kcourse.tracks.words.generation import check_request, generate_beam
    from kcourse.tracks.words.sequence import load_generator

    check_request(args.prompt, args.beam, args.length)
    info, row_dir = run_row(args.run_dir, args.row)
    if info["track"] != "words":
        raise SettingError(f"{args.run_dir} is not a run of a word model; give the "
                           "directory of `kcourse run inf265-generator`")
    found = generate_beam(load_generator(row_dir), args.prompt, args.beam, args.length)
    print(f"{'log-probability':>15}  text")
    for text, score in found:
        print(f"{score:15.3f}  {text}")
    return 0
