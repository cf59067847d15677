"""Figures of a run, written as PNG files (matplotlib, no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(rows, metric, path, title=None, x="epoch"):
    """Training and validation `metric` (loss, cost or accuracy) against `x`."""
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [row[x] for row in rows]
    for prefix, label in (("train_", "training"), ("val_", "validation")):
        if prefix + metric in rows[0]:
            ax.plot(xs, [row[prefix + metric] for row in rows], label=label)
    ax.set_xlabel("update step" if x == "step" else x)
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_templates(kernel, class_names, path, title=None):
    """The learnt weights of a linear classifier as one 32x32 image per class.

    `kernel` has shape (3072, K), each column an HWC-flattened image; every colour
    channel of every template is min-max scaled to [0, 1] (as the course shows them).
    """
    kernel = np.asarray(kernel)
    k = kernel.shape[1]
    fig, axes = plt.subplots(1, k, figsize=(1.4 * k, 1.9))
    for j, ax in enumerate(np.atleast_1d(axes)):
        image = kernel[:, j].reshape(32, 32, 3)
        low, high = image.min(axis=(0, 1)), image.max(axis=(0, 1))
        ax.imshow((image - low) / np.maximum(high - low, 1e-12))
        ax.set_title(class_names[j], fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def confusion_matrix(labels, predictions, num_classes):
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def plot_confusion(labels, predictions, class_names, path, title=None):
    """Confusion matrix (rows: true class, columns: predicted class), with counts."""
    matrix = confusion_matrix(labels, predictions, len(class_names))
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, count, ha="center", va="center", fontsize=7,
                color="white" if count > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    fig.colorbar(im, ax=ax)
    return _save(fig, path)
