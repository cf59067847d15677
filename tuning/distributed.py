"""KerasTuner's distributed mode, run by kcourse: a chief and worker processes.

KerasTuner distributes a search over one chief (the oracle, behind KerasTuner's gRPC
`OracleServicer`) and workers (tuners whose oracle is KerasTuner's `OracleClient`),
configured by `KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and
`KERASTUNER_ORACLE_PORT`. kcourse keeps that protocol and adds what KerasTuner leaves
to its users:

- the chief serves each stage of a search (`tuning.spec.stages`: a coarse-to-fine search
  has two oracles) on its own port, PORT + stage, and keeps them all up until the search
  ends, so a late or restarted worker is told "stopped" by the stages already done;
- a stage ends when KerasTuner's own condition holds (a worker was told "stopped", no
  trial is running and every worker that asked was told "stopped"), polled every 0.2 s
  instead of KerasTuner's 20 s, and then the chief's servers stop;
- a worker killed by a signal mid-trial leaves its trial running in the oracle forever;
  kcourse restarts the worker with the same tuner id, and KerasTuner's `create_trial`
  hands that tuner id its running trial back;
- workers wait for the chief a bounded, stated time (`--wait`, also the deadline of
  every call to the chief), never KerasTuner's 60 minutes, and end when the process that
  started them ends;
- a port in use and an unreachable chief are one-line errors.

Nothing here imports TensorFlow; KerasTuner and gRPC are imported where they are used.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from kcourse.errors import SettingError

ENV_ID, ENV_IP, ENV_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"
ENV_PARENT = "KCOURSE_TUNE_PARENT"  # a local worker ends when this process does
DEFAULT_WAIT = 300  # seconds a worker waits for the chief
MAX_RESTARTS = 3  # per worker: a worker killed again and again stops the search
POLL = 0.2


def address(text):
    """`HOST:PORT` (or `PORT`, on 127.0.0.1) as `(host, port)`; for argparse."""
    import argparse

    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 10.0.0.5:8470), got "
                                         f"{text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _target(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind_error(host, port):
    """Why `host:port` cannot be listened on (None: it can)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as error:
        return f"unknown address {host!r} ({error.strerror})"
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as gRPC's own listener: connections of an earlier chief left in TIME_WAIT do
        # not keep a restarted chief off its port, a listening process does
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror
    return None


def check_ports(host, port, count):
    """The chief's ports PORT..PORT+count-1 are free, else one line saying what to do."""
    for p in range(port, port + count):
        error = _bind_error(host, p)
        if error:
            uses = f"ports {port} and {port + 1}" if count == 2 else f"port {port}"
            raise SettingError(f"the chief cannot listen on {_target(host, p)}: {error} "
                               f"(another search's chief?); this search uses {uses}: "
                               "choose another with --listen HOST:PORT")


def free_port(host, count):
    """A port P with P..P+count-1 free on `host`."""
    for _ in range(50):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port + count <= 65536 and not any(_bind_error(host, p)
                                             for p in range(port, port + count)):
            return port
    raise SettingError(f"found no free port on {host}; name one with --listen HOST:PORT")


def answers(host, port, timeout):
    """Whether the chief listens at `host:port` within `timeout` seconds: a TCP
    connection, opened and closed (kcourse's chief listens on a stage's port only while
    it serves that stage). Not a gRPC channel: with one opened and closed before each
    stage, one trial in two or three took about 10 s more (see README, Scaling)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=max(0.05, timeout)):
                return True
        except OSError:
            if time.monotonic() + 0.1 > deadline:
                return False
            time.sleep(0.1)


def wait_for_stage(host, port, stage, wait):
    """Wait until the chief serves `stage` (at `port + stage`). While it still serves the
    previous stage it is alive, finishing that stage's trials, and the wait goes on;
    otherwise an error after `wait` seconds."""
    deadline = time.monotonic() + wait
    while not answers(host, port + stage, 0.5):
        if stage and answers(host, port + stage - 1, 0.5):
            deadline = time.monotonic() + wait
        elif time.monotonic() > deadline:
            raise SettingError(f"the chief at {_target(host, port + stage)} did not answer "
                               f"within {wait:g} s: start the chief first (kcourse tune "
                               "SEARCH --listen HOST:PORT) or check --chief; --wait sets "
                               "how long workers wait")


def _watch_parent(parent):
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)  # the process that started this worker ended: so does the worker


def start_worker(wait):
    """In a worker process: end with the process that started it, and give every call to
    the chief a deadline of `wait` seconds (KerasTuner's is 60 minutes)."""
    from keras_tuner.src.distribute import oracle_client

    parent = os.environ.get(ENV_PARENT)
    if parent and parent.isdigit():
        threading.Thread(target=_watch_parent, args=(int(parent),), daemon=True).start()
    oracle_client.TIMEOUT = wait
    return os.environ[ENV_IP], int(os.environ[ENV_PORT])


def run_stages(tuners, host, port, wait):
    """A worker's search: for each stage, wait for the chief to serve it, then run
    KerasTuner's worker loop (`tuner.search`) against it until it says "stopped".
    `tuners` yields `(make_tuner, search_kwargs)`; a tuner is made only once its stage
    is served (KerasTuner reads the chief's port when the tuner is made)."""
    import grpc

    for stage, (make, kwargs) in enumerate(tuners):
        wait_for_stage(host, port, stage, wait)
        os.environ[ENV_PORT] = str(port + stage)
        try:
            make().search(**kwargs)
        except grpc.RpcError as error:
            raise SettingError(f"lost the chief at {_target(host, port + stage)} "
                               f"({error.code().name}: {error.details()}); when it is "
                               "back, run the same command again") from None


class Workers:
    """Local worker processes: `command` run with KerasTuner's three variables, its
    output in `log_dir/<tuner id>.log`. A worker killed by a signal is started again with
    the same tuner id; a worker that fails otherwise stops the search with its last line.
    """

    def __init__(self, command, ids, host, port, log_dir, report=print):
        self.command, self.host, self.port, self.log_dir = command, host, port, log_dir
        self.report = report
        self.ids = list(ids)
        self.procs, self.restarts, self.done = {}, dict.fromkeys(self.ids, 0), set()

    def log(self, tuner_id):
        return os.path.join(self.log_dir, f"{tuner_id}.log")

    def _spawn(self, tuner_id):
        os.makedirs(self.log_dir, exist_ok=True)
        env = {**os.environ, ENV_ID: tuner_id, ENV_IP: self.host, ENV_PORT: str(self.port),
               ENV_PARENT: str(os.getpid())}
        with open(self.log(tuner_id), "ab") as log:
            self.procs[tuner_id] = subprocess.Popen(
                self.command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)

    def start(self):
        for tuner_id in self.ids:
            if tuner_id not in self.procs:
                self._spawn(tuner_id)

    def _last_line(self, tuner_id):
        try:
            with open(self.log(tuner_id), "rb") as f:
                lines = f.read()[-4000:].decode("utf-8", "replace").strip().splitlines()
        except OSError:
            lines = []
        return lines[-1].strip() if lines else "no output"

    def check(self):
        """Restart the workers a signal killed; an error for one that failed."""
        for tuner_id, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None or tuner_id in self.done:
                continue
            if code == 0:
                self.done.add(tuner_id)
            elif code < 0 and self.restarts[tuner_id] < MAX_RESTARTS:
                self.restarts[tuner_id] += 1
                self.report(f"worker {tuner_id} was killed ({signal.Signals(-code).name}); "
                            "starting it again with the same tuner id, which gets its "
                            "unfinished trial back")
                self._spawn(tuner_id)
            else:
                how = (f"was killed ({signal.Signals(-code).name}) {MAX_RESTARTS + 1} times"
                       if code < 0 else f"failed (exit code {code})")
                line = self._last_line(tuner_id).removeprefix("kcourse: error: ")
                then = "" if "run the same command" in line else (
                    "; run the same command again to resume")
                raise SettingError(f"worker {tuner_id} {how}: {line} (log: "
                                   f"{self.log(tuner_id)}){then}")

    def finished(self):
        return len(self.done) == len(self.ids)

    def stop(self):
        """End every worker still running (politely, then for sure)."""
        running = [p for p in self.procs.values() if p.poll() is None]
        for proc in running:
            proc.terminate()
        deadline = time.monotonic() + 5
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def supervise(self):
        """Run the workers to the end (a worker machine, `--chief HOST:PORT`)."""
        try:
            self.start()
            while not self.finished():
                self.check()
                time.sleep(POLL)
        finally:
            self.stop()


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def progress_line(stage, trial, tuner_id, seconds, done, total, objective):
    """One line per finished trial: stage, trial id, worker, values, objective, time."""
    values = ", ".join(f"{k} {_fmt(v)}" for k, v in trial.hyperparameters.values.items())
    result = (f"{objective} {trial.score:.4f}" if trial.status == "COMPLETED"
              else trial.status.lower())
    return (f"[{stage} {done}/{total}] trial {trial.trial_id} by {tuner_id}: {values} -> "
            f"{result} ({seconds:.1f} s)")


def _servicer(oracle, stage, report):
    """KerasTuner's `OracleServicer` that also reports each finished trial and keeps an
    error the oracle raised (e.g. too many consecutive failed trials)."""
    from keras_tuner.src.distribute import oracle_chief

    class Servicer(oracle_chief.OracleServicer):
        def __init__(self):
            super().__init__(oracle)
            self.started, self.error = {}, None

        def CreateTrial(self, request, context):
            response = super().CreateTrial(request, context)
            trial = self.oracle.ongoing_trials.get(request.tuner_id)
            if trial is not None:
                self.started[trial.trial_id] = (request.tuner_id, time.monotonic())
            return response

        def EndTrial(self, request, context):
            trial_id = request.trial.trial_id
            try:
                response = super().EndTrial(request, context)
                # KerasTuner saves the oracle before it takes the trial off the running
                # ones: saved again, a chief restarted now does not run it once more
                self.oracle.save()
            except Exception as error:  # the worker gets it too, as a gRPC error
                self.error = error
                raise
            tuner_id, start = self.started.get(trial_id, ("?", time.monotonic()))
            report(progress_line(stage, self.oracle.trials[trial_id], tuner_id,
                                 time.monotonic() - start, len(set(self.oracle.end_order)),
                                 self.oracle.max_trials, self.oracle.objective.name))
            return response

        def done(self):
            return self.stop_triggered and oracle_chief.exit_chief(self.oracle)

    return Servicer()


class Chief:
    """The chief of a distributed search, in this process: `run(tuner, stage)` serves
    the stage's oracle at `port + stage` and returns when the stage is done, the local
    `workers` (a `Workers`, or None) started with the first stage and watched meanwhile.
    Use as a context manager: on leaving, the servers stop and the workers end."""

    def __init__(self, host, port, workers=None, report=print):
        self.host, self.port, self.workers, self.report = host, port, workers, report
        self.servers = []

    def _serve(self, servicer, port):
        from concurrent import futures

        import grpc
        from keras_tuner.src import protos

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1),
                             options=[("grpc.so_reuseport", 0)])
        protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
        try:
            bound = server.add_insecure_port(_target(self.host, port))
        except RuntimeError:
            bound = 0
        if not bound:
            check_ports(self.host, port, 1)  # says why, if it can
            raise SettingError(f"the chief cannot listen on {_target(self.host, port)}; "
                               "choose another address with --listen HOST:PORT")
        server.start()
        self.servers.append(server)

    def run(self, tuner, stage, **search_kwargs):
        tuner.oracle.verbose = 0  # the chief prints one line per trial instead
        tuner.save()
        servicer = _servicer(tuner.oracle, tuner.project_name, self.report)
        self._serve(servicer, self.port + stage)
        if self.workers is not None:
            self.workers.start()
        while not servicer.done():
            if servicer.error is not None:
                first = (str(servicer.error).strip() or repr(servicer.error)).splitlines()[0]
                raise SettingError(f"the search stopped: {first} (the trials' errors are in "
                                   "the workers' logs)")
            if self.workers is not None:
                self.workers.check()
                if self.workers.finished():
                    raise SettingError("every worker ended before the search did; see "
                                       f"their logs in {self.workers.log_dir}")
            time.sleep(POLL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.workers is not None:
            self.workers.stop()
        for server in self.servers:
            server.stop(grace=1).wait()
        return False


def worker_command(name, options, sets, threads, wait, tfds_dir=None, max_trials=None):
    """The command line of a local worker: this search, as a worker."""
    command = [sys.executable, "-m", "kcourse", "tune", name, "--out",
               os.path.abspath(options["out"]), "--seed", str(options["seed"]), "--quiet",
               "--wait", f"{wait:g}"]
    if threads:
        command += ["--threads", str(threads)]
    if options["quick"]:
        command.append("--quick")
    if max_trials:
        command += ["--max-trials", str(max_trials)]
    if options["data_dir"]:
        command += ["--data-dir", os.path.abspath(options["data_dir"])]
    if tfds_dir:
        command += ["--tfds-dir", os.path.abspath(tfds_dir)]
    for setting in sets:
        command += ["--set", setting]
    return command


def raise_on_sigterm():
    """SIGTERM unwinds like Ctrl-C, so the workers are ended on the way out."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
