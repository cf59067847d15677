"""What `kcourse tune` runs, from its options (TensorFlow-free, so its start-up errors
come at once): the search in this process; the chief of a KerasTuner distributed search
with its local workers (`--workers N`, N >= 2, or `--listen`); one worker
(KerasTuner's three variables set, as the chief sets them for its workers); or the
workers of a worker machine (`--chief HOST:PORT`)."""

import argparse
import contextlib
import dataclasses
import os
import socket

from kcourse.errors import SettingError
from kcourse.runs.layout import start_fresh
from tuning import distributed
from tuning.spec import check_run_dir, search_spec, stages


def _count(least):
    def parse(text):
        if not text.isdigit() or int(text) < least:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got "
                                             f"{text!r}")
        return int(text)
    return parse


def add_options(parser):
    """`kcourse tune`'s own options: KerasTuner's distributed mode and the report."""
    parser.add_argument("--workers", type=_count(0), metavar="N",
                        help="worker processes on this machine (default 1, in this "
                             "process); N >= 2 runs KerasTuner's distributed mode: a chief "
                             "in this process and N worker processes")
    parser.add_argument("--listen", type=distributed.address, metavar="HOST:PORT",
                        help="the chief's address (default 127.0.0.1 and a free port); a "
                             "coarse-to-fine search also uses PORT+1; 0.0.0.0:PORT lets "
                             "other machines' workers in")
    parser.add_argument("--chief", type=distributed.address, metavar="HOST:PORT",
                        help="run only workers (--workers N, default 1) for the chief at "
                             "HOST:PORT (a worker machine; the same --out, shared)")
    parser.add_argument("--wait", type=_count(1), default=distributed.DEFAULT_WAIT,
                        metavar="SECONDS",
                        help="how long a worker waits for the chief (default "
                             f"{distributed.DEFAULT_WAIT}); also the deadline of every call "
                             "to it")
    parser.add_argument("--threads", type=_count(1), metavar="N",
                        help="TensorFlow threads of each process (default TensorFlow's; "
                             "with worker processes, the cores shared among them)")
    parser.add_argument("--max-trials", type=_count(1), metavar="T",
                        help="trials of a random search, or in all of a coarse-to-fine "
                             "one (the fine stage gets what the grid leaves)")
    parser.add_argument("--report", action="store_true",
                        help="no search: the best trials in --out so far as a table and "
                             "figures/trials.png (the objective against each setting)")


@dataclasses.dataclass
class Plan:
    """`chief()`: a context manager giving the runner of each stage (None: in this
    process); `worker`: run as one worker; `supervise`: run only worker processes."""
    chief: object = contextlib.nullcontext
    worker: bool = False
    supervise: object = None
    threads: int = None


def _shared_threads(workers):
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def plan(args, options):
    """The plan of `kcourse tune`, every start-up check done: KerasTuner's variables,
    the addresses, a free port, a reachable chief, a run directory of this search."""
    name = args.experiment
    search = search_spec(name, options["quick"], args.max_trials)
    env = [os.environ.get(v) for v in (distributed.ENV_ID, distributed.ENV_IP,
                                       distributed.ENV_PORT)]
    listen = args.listen
    workers = args.workers
    if any(env):
        if not all(env) or not env[2].isdigit():
            raise SettingError(f"set all three of {distributed.ENV_ID}, {distributed.ENV_IP} "
                               f"and {distributed.ENV_PORT} (a whole number), or none")
        if args.chief or args.listen:
            raise SettingError("--chief and --listen replace KerasTuner's variables; unset "
                               f"{distributed.ENV_IP} or drop the option")
        if "chief" not in env[0]:  # KerasTuner's rule: a tuner id with "chief" is the chief
            return Plan(worker=True, threads=args.threads)
        listen, workers = (env[1], int(env[2])), workers or 0
    if args.chief and options["fresh"]:
        raise SettingError("--fresh deletes the run directory: give it to the chief's "
                           "command, not to a worker machine's")
    if not options["fresh"]:
        check_run_dir(name, options["out"], options["seed"], options["quick"],
                      options["overrides"])
    else:  # before any worker writes its log there
        start_fresh(options["out"], name)
        options["fresh"] = False
    distributed.raise_on_sigterm()  # the workers started below end with this process
    if args.chief:
        if args.listen:
            raise SettingError("--chief (this machine runs workers) and --listen (this "
                               "machine runs the chief) exclude each other")
        host, port = args.chief
        distributed.wait_for_stage(host, port, 0, args.wait)
        count = 1 if workers is None else workers
        if count < 1:
            raise SettingError("--chief needs --workers N with N >= 1")
        pool = _workers(args, options, host, port, count,
                        [f"{socket.gethostname()}-{i}" for i in range(1, count + 1)])
        return Plan(supervise=pool.supervise)
    workers = 1 if workers is None else workers
    if listen is None and workers <= 1:
        if workers == 0:
            raise SettingError("--workers 0 runs no trial here: give --listen HOST:PORT "
                               "for other machines' workers, or N >= 1")
        return Plan(threads=args.threads)
    ports = len(stages(search))
    if listen is None:
        host, port = "127.0.0.1", distributed.free_port("127.0.0.1", ports)
    else:
        (host, port) = listen
        distributed.check_ports(host, port, ports)
    connect = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    pool = (_workers(args, options, connect, port, workers,
                     [f"worker-{i}" for i in range(1, workers + 1)]) if workers else None)
    used = f"{port} and {port + 1}" if ports == 2 else f"{port}"
    print(f"{name}: chief on {host}, port{'s' if ports == 2 else ''} {used}; "
          f"{workers} worker process{'es' if workers != 1 else ''} here"
          + (f" (logs: {pool.log_dir})" if pool else "")
          + ("" if host.startswith("127.") or host == "::1" else
             f"; other machines: kcourse tune {name} --chief THIS_HOST:{port} --out "
             f"{options['out']} (a shared directory)"), flush=True)
    if pool:  # they load TensorFlow and the data while this process does, then wait
        pool.start()

    def chief():
        return distributed.Chief(host, port, pool, report=lambda line: print(line,
                                                                             flush=True))

    return Plan(chief=lambda: _running(chief()), threads=args.threads)


@contextlib.contextmanager
def _running(chief):
    with chief:
        yield chief.run


def _workers(args, options, host, port, count, ids):
    threads = args.threads or _shared_threads(count)
    command = distributed.worker_command(args.experiment, options, args.set, threads,
                                         args.wait, getattr(args, "tfds_dir", None),
                                         args.max_trials)
    return distributed.Workers(command, ids, host, port,
                               os.path.join(options["out"], "workers"),
                               report=lambda line: print(line, flush=True))
