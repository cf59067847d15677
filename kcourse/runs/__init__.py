"""Run directories: their layout (`layout`) and running an experiment into one
(`experiment`). TensorFlow-free: the tracks do the training."""

from kcourse.runs.experiment import RowContext, run_experiment, select_rows, summary_table
from kcourse.runs.layout import (check_fresh, check_out_dir, default_run_dir, is_run_dir,
                                 locked, read_json, row_tag, run_row, write_json, write_text)

__all__ = ["RowContext", "check_fresh", "check_out_dir", "default_run_dir", "is_run_dir",
           "locked", "read_json", "row_tag", "run_experiment", "run_row", "select_rows",
           "summary_table", "write_json", "write_text"]
