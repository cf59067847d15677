"""Datasets (TFDS builders, splits, text) and how the trainer reads them (batches,
epoch orders, augmentation, text streams)."""

from kcourse.data.augment import chain, random_cutout, random_flip, random_shift
from kcourse.data.batching import InMemory, InMemoryBatches, batched, in_memory
from kcourse.data.cifar10 import (CLASS_NAMES, ENV_VAR, DataNotFoundError, KcourseCifar10,
                                  missing_data_message)
from kcourse.data.splits import (PRESETS, Cifar10Splits, cifar10_builder, load_cifar10,
                                 resolve_data_dir)
from kcourse.data.mnist_canvas import (CanvasSplits, KcourseMnistDetection,
                                       KcourseMnistLocalization, load_mnist_canvases,
                                       mnist_canvas_builder)
from kcourse.data.orders import BalancedSampler, balanced_orders, uniform_orders
from kcourse.data.streams import TextStreams
from kcourse.data.surnames import (LANGUAGES, GraphNameEncoder, KcourseSurnames, NameEncoder,
                                   SurnameSplits, load_surnames, surnames_builder)

__all__ = ["CLASS_NAMES", "ENV_VAR", "LANGUAGES", "BalancedSampler", "CanvasSplits",
           "Cifar10Splits", "KcourseMnistDetection", "KcourseMnistLocalization",
           "load_mnist_canvases", "mnist_canvas_builder",
           "DataNotFoundError", "GraphNameEncoder", "InMemory", "InMemoryBatches",
           "KcourseCifar10", "KcourseSurnames", "NameEncoder", "PRESETS", "SurnameSplits",
           "TextStreams", "balanced_orders", "batched", "chain", "cifar10_builder",
           "in_memory", "load_cifar10", "load_surnames", "missing_data_message",
           "random_cutout", "random_flip", "random_shift", "resolve_data_dir", "surnames_builder",
           "uniform_orders"]

from kcourse.data.books import (BookSplits, KcourseBooks, WordVocabulary, books_builder,
                                build_vocabulary, context_windows, load_books, read_split,
                                task_windows, tokenize)

__all__ += ["BookSplits", "KcourseBooks", "WordVocabulary", "books_builder",
            "build_vocabulary", "context_windows", "load_books", "read_split",
            "task_windows", "tokenize"]
