"""Datasets: the CIFAR-10 TFDS builder and the course's preprocessing pipelines."""

from kcourse.data.cifar10 import (CLASS_NAMES, ENV_VAR, DataNotFoundError, KcourseCifar10,
                                  missing_data_message)
from kcourse.data.pipeline import (PRESETS, Cifar10Splits, batched, cifar10_builder,
                                   chain, load_cifar10, random_flip, random_shift,
                                   resolve_data_dir)

__all__ = ["CLASS_NAMES", "ENV_VAR", "DataNotFoundError", "KcourseCifar10", "PRESETS",
           "Cifar10Splits", "batched", "cifar10_builder", "chain", "load_cifar10",
           "random_flip", "random_shift", "resolve_data_dir", "missing_data_message"]
