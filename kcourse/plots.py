"""Figures of a run, written as PNG files (matplotlib, no display needed).

The figures are `matplotlib.figure.Figure` objects drawn by the Agg canvas, outside
pyplot: importing this module chooses no backend and leaves pyplot alone, so a notebook
keeps its inline pictures, and writing a file needs no display.
"""

import os

import numpy as np
from matplotlib.figure import Figure


def _subplots(*args, figsize, **kwargs):
    """`(figure, axes)` like `plt.subplots`, on a figure pyplot does not manage."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def _save(fig, path, layout=True):
    """Write the figure to `path` atomically (a temporary file, then a rename)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if layout:
        fig.tight_layout()
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp{os.getpid()}{ext}"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return path


def plot_curves(rows, metric, path, title=None, x="epoch"):
    """Training and validation `metric` (loss, cost or accuracy) against `x`."""
    fig, ax = _subplots(figsize=(6, 4))
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
    fig, axes = _subplots(1, k, figsize=(1.4 * k, 1.9))
    for j, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(_template_image(kernel, j))
        ax.set_title(class_names[j], fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _template_image(kernel, j):
    """Column `j` of a (3072, K) kernel as a 32x32 RGB image, every channel min-max
    scaled to [0, 1]."""
    image = kernel[:, j].reshape(32, 32, 3)
    low, high = image.min(axis=(0, 1)), image.max(axis=(0, 1))
    return (image - low) / np.maximum(high - low, 1e-12)


def plot_template_grid(kernels, class_names, path, title=None):
    """The templates of several linear classifiers side by side: one line of K images
    per `{label: kernel}` item (each kernel (3072, K), scaled as in `plot_templates`),
    the class names above the first line, the labels on the left."""
    items = [(label, np.asarray(kernel)) for label, kernel in kernels.items()]
    k = items[0][1].shape[1]
    width = max(len(str(label)) for label, _ in items)
    fig, axes = _subplots(len(items), k, squeeze=False,
                          figsize=(1.1 * k + 0.07 * width + 0.3, 1.15 * len(items) + 0.6))
    for i, (label, kernel) in enumerate(items):
        for j, ax in enumerate(axes[i]):
            ax.imshow(_template_image(kernel, j))
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if i == 0:
                ax.set_title(class_names[j], fontsize=8)
        axes[i][0].set_ylabel(str(label), rotation=0, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_row_curves(curves, metrics, path, x="step", title=None):
    """Several rows of an experiment on one chart: one panel per metric of `metrics`,
    one line per `(label, rows)` item of `curves` (`rows` being history dicts; points
    where a metric is missing or not finite are left out); the legend below."""
    ncol = min(len(curves), 2 if len(metrics) == 1 else 4)
    legend_lines = -(-len(curves) // ncol)
    height = 3.4 + 0.2 * legend_lines
    fig, axes = _subplots(1, len(metrics), squeeze=False,
                          figsize=(5.5 * len(metrics), height))
    for ax, metric in zip(axes[0], metrics):
        for label, rows in curves:
            points = [(row[x], row[metric]) for row in rows
                      if isinstance(row.get(metric), (int, float)) and
                      np.isfinite(row[metric]) and isinstance(row.get(x), (int, float))]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, label=str(label), marker="." if len(points) < 30 else None)
        ax.set_xlabel("updates" if x == "step" else x)
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", fontsize=7, ncol=ncol,
                   frameon=False)
    fig.suptitle(title or "every row", fontsize=10)
    fig.tight_layout(rect=(0, (0.2 * legend_lines + 0.1) / height, 1, 1))
    return _save(fig, path, layout=False)


def plot_series(series, path, x_label, y_label, title=None, log_x=False):
    """One line per `{label: [(x, y), ...]}` item, marked at its points (e.g. test
    accuracy against the fraction of labels, one line per training mode)."""
    fig, ax = _subplots(figsize=(6, 4))
    for label, points in series.items():
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", label=str(label))
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title or y_label)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def confusion_matrix(labels, predictions, num_classes):
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def plot_confusion(labels, predictions, class_names, path, title=None):
    """Confusion matrix (rows: true class, columns: predicted class), with counts."""
    matrix = confusion_matrix(labels, predictions, len(class_names))
    fig, ax = _subplots(figsize=(6.5, 5.5))
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


def plot_weight_histograms(weights, path, threshold=None, title=None):
    """Histograms of the weights of several models (`{label: 1-D array}`), one panel
    each on a shared axis, counts on a log scale; `threshold` draws the band
    `|w| < threshold` counted as near zero."""
    labels = list(weights)
    values = [np.asarray(weights[k], dtype=float).ravel() for k in labels]
    high = max(float(np.max(np.abs(v))) for v in values if v.size) if values else 1.0
    bins = np.linspace(-high, high, 121)
    fig, axes = _subplots(len(labels), 1, squeeze=False, sharex=True,
                          figsize=(7, 1.5 * len(labels) + 0.8))
    for ax, label, v in zip(axes[:, 0], labels, values):
        ax.hist(v, bins=bins, color="tab:blue")
        ax.set_yscale("log")
        if threshold:
            ax.axvspan(-threshold, threshold, color="tab:red", alpha=0.25)
            label += f"  ({np.mean(np.abs(v) < threshold):.1%} with |w| < {threshold:g})"
        ax.set_title(label, fontsize=8)
        ax.set_ylabel("weights", fontsize=8)
    axes[-1, 0].set_xlabel("weight value")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_class_accuracies(accuracies, path, title=None):
    """Accuracy of every class (`{class name: accuracy}`) as horizontal bars, with
    their mean as a line."""
    names = list(accuracies)
    values = np.array([accuracies[n] for n in names], dtype=float)
    fig, ax = _subplots(figsize=(6, 0.25 * len(names) + 1.2))
    ax.barh(range(len(names)), values, color="tab:blue")
    ax.axvline(np.nanmean(values), color="tab:red", linestyle="--",
               label=f"mean {np.nanmean(values):.3f}")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title(title or "accuracy per class", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_learning_rate(rows, path, title=None):
    """The learning rate at every evaluation point against the update step."""
    fig, ax = _subplots(figsize=(6, 3))
    ax.plot([row["step"] for row in rows], [row["learning_rate"] for row in rows],
            marker=".")
    ax.set_xlabel("update step")
    ax.set_ylabel("learning rate")
    ax.set_title(title or "learning rate")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_lr_range(rows, path, suggestion=None, title=None):
    """Loss and accuracy against the learning rate of a range test (log scale)."""
    fig, (ax_loss, ax_acc) = _subplots(1, 2, figsize=(10, 4))
    lrs = [row["learning_rate"] for row in rows]
    losses = np.array([row["train_loss"] for row in rows], dtype=float)
    ax_loss.plot(lrs, losses, label="training")
    finite = losses[np.isfinite(losses)]
    if finite.size:  # the loss explodes at the end: keep the interesting part in view
        ax_loss.set_ylim(0.9 * finite.min(), 1.5 * finite[0])
    ax_acc.plot(lrs, [row["val_accuracy"] for row in rows], label="validation")
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if suggestion:
            for key in ("eta_min", "eta_max"):
                ax.axvline(suggestion[key], color="gray", linestyle="--")
                ax.text(suggestion[key], ax.get_ylim()[1], key, rotation=90, va="top",
                        ha="right", fontsize=8)
    fig.suptitle(title or "learning-rate range test")
    return _save(fig, path)


def plot_search(trials, param, path, title=None, objective="val_accuracy", choices=()):
    """The objective of every trial of a search against `param` (log scale), one line
    per stage and combination of the other hyperparameters (`choices`)."""
    fig, ax = _subplots(figsize=(6, 4))

    def combination(t):
        return tuple(t.get(c) for c in choices)

    combinations = sorted({combination(t) for t in trials}, key=str)
    for stage, marker in (("coarse", "o"), ("fine", "x")):
        for values in combinations:
            points = sorted((t[param], t[objective]) for t in trials
                            if t["stage"] == stage and combination(t) == values)
            if points:
                xs, ys = zip(*points)
                label = f"{stage} stage" + "".join(f", {c} = {v}"
                                                   for c, v in zip(choices, values))
                ax.plot(xs, ys, marker=marker, linestyle="-" if stage == "coarse" else "",
                        label=label)
    best = max(trials, key=lambda t: t[objective])
    ax.scatter([best[param]], [best[objective]], s=120, facecolors="none",
               edgecolors="red", label=f"best: {param}={best[param]:.3g}"
               + "".join(f", {c} = {best[c]}" for c in choices if c in best))
    ax.set_xscale("log")
    ax.set_xlabel(param)
    ax.set_ylabel(objective.replace("_", " "))
    ax.set_title(title or f"search over {param}")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_space_search(trials, names, path, objective="val_accuracy", title=None):
    """The objective of every trial against each searched setting (one panel each;
    log axes for positive settings spanning more than a factor 10)."""
    fig, axes = _subplots(1, len(names), figsize=(2.6 * len(names), 2.8), sharey=True,
                             squeeze=False)
    scores = [t[objective] for t in trials]
    best = int(np.argmax(scores))
    for ax, name in zip(axes[0], names):
        values = [t[name] for t in trials]
        if all(isinstance(v, (int, float)) for v in values):
            ax.scatter(values, scores, s=14)
            ax.scatter([values[best]], [scores[best]], s=40, color="tab:red", label="best")
            if min(values) > 0 and max(values) > 10 * min(values) and isinstance(
                    values[0], float):
                ax.set_xscale("log")
        else:
            kinds = sorted(set(map(str, values)))
            ax.scatter([kinds.index(str(v)) for v in values], scores, s=14)
            ax.scatter([kinds.index(str(values[best]))], [scores[best]], s=40,
                       color="tab:red", label="best")
            ax.set_xticks(range(len(kinds)), kinds, fontsize=8)
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(objective.replace("_", " "))
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_char_losses(rows, path, title=None):
    """A character model's smooth loss (per sequence) and validation loss (nats per
    character) against the number of updates."""
    fig, (left, right) = _subplots(1, 2, figsize=(10, 3.5))
    left.plot([r["step"] for r in rows], [r["smooth_loss"] for r in rows])
    left.set_ylabel("smooth loss (per sequence)")
    val = [r for r in rows if "val_loss_per_char" in r]
    right.plot([r["step"] for r in val], [r["val_loss_per_char"] for r in val], marker=".")
    right.set_ylabel("validation loss (nats / char)")
    for ax in (left, right):
        ax.set_xlabel("updates")
        ax.grid(alpha=0.3)
    fig.suptitle(title or "character model")
    return _save(fig, path)


def plot_canvas_boxes(images, truths, predictions, path, titles=None, title=None,
                      columns=6):
    """Gray canvases with their boxes drawn: the true ones in green, the predicted ones
    in red, each with its label (class and, for predictions, confidence).

    Args:
        images: `(n, H, W)` or `(n, H, W, 1)`, uint8 (0-255) or float in [0, 1].
        truths, predictions: one list per image (or None for none) of boxes
            `(x_min, y_min, x_max, y_max, label)` in pixels, edges on pixel borders
            (pixel `(r, c)` covers `[c, c + 1) x [r, r + 1)`); `label` a short text.
        path: the PNG file to write.
        titles: optional line above each canvas.
        title: optional title of the figure.
        columns: canvases per line.
    """
    from matplotlib.patches import Rectangle

    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    n = len(images)
    truths = truths if truths is not None else [None] * n
    predictions = predictions if predictions is not None else [None] * n
    columns = max(1, min(columns, n))
    lines = -(-n // columns)
    height, width = images.shape[1:3]
    size = 2.0 / 60  # inches per pixel (a 48x60 canvas: 2.0 x 1.6 inches)
    fig, axes = _subplots(lines, columns, squeeze=False,
                          figsize=(size * width * columns + 0.2,
                                   (size * height + (0.2 if titles is not None else 0))
                                   * lines + 0.4))
    high = 255 if images.dtype == np.uint8 else 1.0
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        ax = axes[i // columns][i % columns]
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=high, extent=(0, width, height, 0),
                  interpolation="nearest")
        for boxes, colour, below in ((truths[i], "lime", False), (predictions[i], "red", True)):
            for x0, y0, x1, y1, label in boxes or []:
                if not np.all(np.isfinite([x0, y0, x1, y1])):
                    continue
                # far outside the canvas (an untrained model's boxes): drawn to its margin
                x0, x1 = np.clip([x0, x1], -width, 2 * width)
                y0, y1 = np.clip([y0, y1], -height, 2 * height)
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False,
                                       edgecolor=colour, linewidth=1.2))
                if label:
                    tx = float(np.clip(min(x0, x1) + 0.5, 0, width - 1))
                    ty = float(np.clip((max(y0, y1) - 0.5) if below else (min(y0, y1) + 0.5),
                                       0, height))
                    ax.text(tx, ty, str(label), color=colour, fontsize=6, clip_on=True,
                            va="bottom" if below else "top", ha="left",
                            bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5,
                                  "linewidth": 0})
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=6)
    if title:
        fig.suptitle(title + "  (green: true, red: predicted)", fontsize=8)
    return _save(fig, path)
