"""What the command line prints: TensorFlow's and TFDS's start-up and logging noise is
kept off the console unless asked for (`--verbose`); TensorFlow-free.

The CLI calls `quiet(True)` before the first TensorFlow import. Library users (scripts,
notebooks) keep TensorFlow's and TFDS's usual output: nothing here runs on import.
"""

import contextlib
import io
import os
import sys
import tempfile
import time

QUIET = False  # set by the CLI (no --verbose)


@contextlib.contextmanager
def _stderr_to_file():
    """Send file descriptor 2 (C++ logging writes there directly) to a temporary file
    while the block runs; yield the file, to show its text when the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def quiet(flag=True, load=True):
    """Make the process quiet (`flag`) or leave TensorFlow's logging as it is.

    Quiet: TensorFlow's C++ information and warning messages off
    (`TF_CPP_MIN_LOG_LEVEL=2` unless the user set it; errors still show), TensorFlow imported with its start-up lines (oneDNN, CPU
    features, absl's "log messages before InitializeLog") swallowed, and absl's Python
    logging (TFDS's "Variant folder ... has no dataset_info.json") at errors only. A
    failing import still shows everything it printed. `load=False` leaves the import to
    `load_tensorflow()`, for commands that may not need TensorFlow.
    """
    global QUIET
    QUIET = bool(flag)
    if QUIET:
        if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        if load:
            load_tensorflow()


def load_tensorflow():
    """Import TensorFlow and TFDS, quietly when the process is quiet (see `quiet`)."""
    if not QUIET:
        return
    if "tensorflow" not in sys.modules or "tensorflow_datasets" not in sys.modules:
        failed = None
        with _stderr_to_file() as captured:
            try:
                import tensorflow  # noqa: F401
                import tensorflow_datasets  # noqa: F401
            except BaseException as error:
                captured.seek(0)
                failed, printed = error, captured.read().decode("utf-8", "replace")
        if failed is not None:  # fd 2 is the console again: show what the import printed
            sys.stderr.write(printed)
            raise failed
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)


@contextlib.contextmanager
def preparing(name):
    """Around a TFDS `download_and_prepare`: when quiet, one line saying what is
    prepared (and, after, how long it took) instead of TFDS's progress bars and banners;
    otherwise TFDS's own output."""
    if not QUIET:
        yield
        return
    import tensorflow_datasets as tfds

    print(f"Preparing the dataset {name} (first use only) ...", end=" ", flush=True)
    start = time.perf_counter()
    tfds.display_progress_bar(False)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    except BaseException:
        print("failed", flush=True)
        raise
    finally:
        tfds.display_progress_bar(True)
    print(f"done in {time.perf_counter() - start:.0f} s", flush=True)
