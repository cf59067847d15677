"""`kcourse report`: the results of run directories as one Markdown page and one HTML
page (TensorFlow-free: JSON, CSV and matplotlib; a track's own figures may load it).

    write_report(["runs/a1", "runs/a2-1cycle"], out="runs/report")
    -> ("runs/report/report.md", "runs/report/report.html")

For every run (a `kcourse run` directory with metrics.json, or a `kcourse tune`
directory with results.json) the report has a section: the experiment and the course's
reference figure, the command that reproduces the run (and, per row, the one that trains
only that row again), the table of the rows (the settings that vary between rows, the
track's result columns, accuracies as percentages, the training time, the selected and
diverged marks), a comparison chart of every row's curve from history.csv, the track's
own comparison figures (`report_figures`, below) and the run's figures/*.png.

The figures are copied into the report folder (OUT/<section>/...), so the report folder
is self-contained: it can be moved, zipped or published without the run directories
(which hold checkpoints and models, and are large). `copy_figures=False` links the
run's figures by relative paths instead (the report then moves only together with the
run directories); the comparison figures are always written into OUT/<section>/.

A track adds figures by defining, in its TensorFlow-free package (the module that
defines `TRACK`), `report_figures(run_dir, metrics, out_folder) -> [PNG paths]`; the
function imports the track's TensorFlow side itself when it needs it.
"""

import csv
import html
import importlib
import math
import os
import re
import shlex
import shutil
import sys

from kcourse.errors import SettingError
from kcourse.runs.layout import read_json, write_text

MARKER = ".kcourse-report"  # in every section folder the report writes (and may replace)


# finding and reading runs
def _run_kind(path):
    if os.path.isfile(os.path.join(path, "metrics.json")):
        return "run"
    if os.path.isfile(os.path.join(path, "results.json")):
        return "search"
    return None


def find_run_dirs(root="runs"):
    """Every run directory under `root` (runs and searches, at any depth, finished or
    not: with metrics.json, results.json or config.json; what is inside a run is not
    searched), sorted by path."""
    found = []
    for folder, subfolders, files in os.walk(root):
        if _run_kind(folder) or "config.json" in files:
            found.append(folder)
            subfolders[:] = []
        else:
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
    return sorted(found)


def _number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_history(path):
    """`{row tag: [history dicts]}` from a history.csv (numbers parsed, empty cells
    left out); {} when there is none."""
    histories = {}
    try:
        with open(path, encoding="utf-8", newline="") as f:
            for line in csv.DictReader(f):
                tag = line.pop("row")
                histories.setdefault(tag, []).append(
                    {k: _number(v) for k, v in line.items() if v not in ("", None)})
    except (OSError, csv.Error, KeyError):
        return {}
    return histories


def _read(path, default=None):
    try:
        return read_json(path)
    except (OSError, ValueError):
        return default


def load_run(path):
    """What the report needs of a run directory, or None when it is none."""
    kind = _run_kind(path)
    if kind is None:
        return None
    config = _read(os.path.join(path, "config.json"), {})
    run = {"path": path, "kind": kind, "config": config}
    if kind == "run":
        run["metrics"] = _read(os.path.join(path, "metrics.json"))
        run["timing"] = _read(os.path.join(path, "timing.json"), {})
        run["history"] = read_history(os.path.join(path, "history.csv"))
        if not isinstance(run["metrics"], dict) or not run["metrics"].get("rows"):
            return None
        run["experiment"] = run["metrics"].get("experiment", config.get("experiment"))
        run["reference"] = run["metrics"].get("reference", "")
    else:
        run["results"] = _read(os.path.join(path, "results.json"))
        if not isinstance(run["results"], dict) or not run["results"].get("trials"):
            return None
        run["experiment"] = run["results"].get("experiment", config.get("experiment"))
        run["reference"] = run["results"].get("reference", "")
    run["experiment"] = run["experiment"] or os.path.basename(os.path.normpath(path))
    return run


def _spec_and_track(experiment):
    """The experiment's spec and track, or (None, None) for an experiment no installed
    track knows (the report still shows its run, with generic columns)."""
    from kcourse import experiments

    try:
        return experiments.get(experiment), experiments.track_of(experiment)
    except SettingError:
        return None, None


# the commands
def _set_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def reproduce_command(config, out, tune=False, fresh_row=None):
    """The command line that trains the run of `config.json` (`config`) into `out`
    (with `fresh_row`: that row only, again from the start)."""
    words = ["kcourse", "tune" if tune else "run", str(config.get("experiment"))]
    if config.get("quick"):
        words.append("--quick")
    if config.get("seed"):
        words += ["--seed", str(config["seed"])]
    for key, value in (config.get("overrides") or {}).items():
        words += ["--set", f"{key}={_set_value(value)}"]
    if config.get("data_dir"):
        words += ["--data-dir", str(config["data_dir"])]
    words += ["--out", str(out)]
    if fresh_row is not None:
        words += ["--fresh-row", str(fresh_row)]
    return shlex.join(words)


# formatting
def _is_accuracy(key):
    return (key.endswith("accuracy") or key.endswith("accuracy_mean")
            or key.endswith("accuracy_no_tta"))


def fmt(key, value):
    """A table cell: accuracies as percentages (47.32%), other results to 4 decimals,
    settings as given."""
    if value is None:
        return ""
    if isinstance(value, bool):  # a setting says no; a mark (selected, diverged) is blank
        return "yes" if value else ("" if key in ("selected", "diverged") else "no")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (int, float)) and _is_accuracy(key):
        return f"{100 * value:.2f}%"
    if isinstance(value, float):
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1000 else f"{value:.4g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def fmt_setting(value):
    """A setting as `--set` takes it (0.001, not 0.0010)."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return fmt("", value)


def fmt_seconds(seconds):
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def row_seconds(run, tag):
    """A row's training time: `train_seconds` of timing.json (else its `row_seconds`,
    else another `*_seconds`), else the last `seconds` of its history (the time the
    trainer measured), else None."""
    timing = (run.get("timing") or {}).get(tag) or {}
    keys = ["train_seconds", "row_seconds", *sorted(timing)]
    for key in keys:
        if key.endswith("_seconds") and isinstance(timing.get(key), (int, float)):
            return timing[key]
    seconds = [r["seconds"] for r in run.get("history", {}).get(tag, [])
               if isinstance(r.get("seconds"), (int, float))]
    return max(seconds) if seconds else None


def row_columns(run, spec, track):
    """The columns of a run's table: the settings that vary between rows (the
    experiment's row settings first), the track's result columns, the marks."""
    rows = run["metrics"]["rows"]
    configs = [r for r in run["config"].get("rows", []) if isinstance(r, dict)] or rows
    scalar = (str, int, float, bool, type(None))
    varying = [k for k in configs[0] if isinstance(configs[0][k], scalar + (list,))
               and len({repr(c.get(k)) for c in configs}) > 1]
    declared = [k for r in (spec or {}).get("rows", []) for k in r]
    results = list(track.columns) if track else ["val_accuracy", "test_accuracy"]
    wanted = [*declared, *varying, *results, "selected", "diverged"]
    present = [c for i, c in enumerate(wanted)
               if c not in wanted[:i] and any(c in r for r in rows)
               and (c not in ("selected", "diverged") or any(r.get(c) for r in rows))]
    if not any(c in results for c in present):  # an unknown track: its accuracies,
        marks = [c for c in present if c in ("selected", "diverged")]  # before the marks
        present = [c for c in present if c not in marks] + [
            k for k in rows[0] if _is_accuracy(k) and isinstance(rows[0][k], (int, float))
            and k not in present] + marks
    return present


def best_row(rows, track):
    """The index of the run's best row by the track's rule (`Track.best`), among the
    selected rows that did not diverge (like `kcourse export`); None if no row has it."""
    key, direction = track.best if track else ("val_accuracy", "max")
    candidates = [i for i, r in enumerate(rows)
                  if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    fine = [i for i in candidates if not rows[i].get("diverged")]
    candidates = fine or candidates
    selected = [i for i in candidates if rows[i].get("selected")]
    candidates = selected or candidates
    if not candidates:
        return None
    sign = 1 if direction == "max" else -1
    return max(candidates, key=lambda i: sign * rows[i][key])


# comparison figures
def comparison_metrics(run, track):
    """What the comparison chart shows: the smooth loss of a character model, and the
    track's best metric (validation accuracy, validation loss per character)."""
    columns = {k for rows in run["history"].values() for r in rows for k in r}
    best = track.best[0] if track else "val_accuracy"
    wanted = ["smooth_loss", best if best in columns else "val_accuracy"]
    return [m for i, m in enumerate(wanted) if m in columns and m not in wanted[:i]]


def comparison_figure(run, track, folder):
    """Every row's curves on one chart (`folder/rows_compared.png`), or None when the
    run has fewer than two rows with a history."""
    from kcourse import plots

    rows = run["metrics"]["rows"]
    curves = [(r["tag"], run["history"][r["tag"]]) for r in rows
              if r.get("tag") in run["history"]]
    metrics = comparison_metrics(run, track)
    if len(curves) < 2 or not metrics:
        return None
    history = [h for _, hs in curves for h in hs]
    x = "step" if any(h.get("step") for h in history) else "epoch"
    title = f"{run['experiment']}: every row"
    return plots.plot_row_curves(curves, metrics, os.path.join(folder, "rows_compared.png"),
                                 x=x, title=title)


def _track_hook(track):
    """The track's `report_figures` function, or None (see the module's docstring)."""
    if track is None:
        return None
    package = track.impl.rpartition(".")[0]
    if not package:
        return None
    module = sys.modules.get(package) or importlib.import_module(package)
    if getattr(module, "TRACK", None) is not track:
        return None
    return getattr(module, "report_figures", None)


# the document: sections of blocks, rendered as Markdown and as HTML
def _slug(text, taken):
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


def _figure_caption(name, tags):
    stem = os.path.splitext(name)[0]
    for tag in sorted(tags, key=len, reverse=True):
        if stem.startswith(tag + "_"):
            return tag, stem[len(tag) + 1:].replace("_", " ")
    return None, stem.replace("_", " ")


def _run_figures(run, folder, out, copy):
    """`[(row tag or None, caption, path relative to out)]` of the run's figures/*.png,
    copied into `folder/figures` (or linked where they are)."""
    source = os.path.join(run["path"], "figures")
    try:
        names = sorted(n for n in os.listdir(source) if n.lower().endswith(".png"))
    except OSError:
        return []
    tags = [r.get("tag", "") for r in run.get("metrics", {}).get("rows", [])]
    figures = []
    for name in names:
        path = os.path.join(source, name)
        if copy:
            target = os.path.join(folder, "figures", name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(path, target)
            path = target
        figures.append((*_figure_caption(name, tags), os.path.relpath(path, out)))
    return figures


def _prepare_folder(folder):
    """A section's folder, emptied if an earlier report wrote it; anything else is
    refused rather than overwritten."""
    if os.path.isdir(folder) and os.listdir(folder):
        if not os.path.exists(os.path.join(folder, MARKER)):
            raise SettingError(f"{folder} exists and was not written by kcourse report; "
                               "choose another --out")
        shutil.rmtree(folder)
    os.makedirs(folder)
    write_text(os.path.join(folder, MARKER), "written by kcourse report\n")


def _title(run, kind=""):
    """The experiment, and the run directory's name when it says more."""
    name = os.path.basename(os.path.normpath(run["path"]))
    return run["experiment"] + kind + (f" ({name})" if name != run["experiment"] else "")


def run_section(run, out, slug, copy=True, say=print):
    """The section of one `kcourse run` directory (blocks, see `render_markdown`)."""
    spec, track = _spec_and_track(run["experiment"])
    metrics, config = run["metrics"], run["config"]
    rows = metrics["rows"]
    folder = os.path.join(out, slug)
    _prepare_folder(folder)

    def rel(path):
        return os.path.relpath(path, out)

    command = reproduce_command({"experiment": run["experiment"], **config}, run["path"])
    blocks = [("text", f"Run directory `{run['path']}`"
               + (f", track {track.name}" if track else "")
               + (". A `--quick` run: a smoke test, not a reported figure."
                  if config.get("quick") else ".")),
              ("text", "Reproduce (on an existing run directory this resumes; add "
                       "`--fresh` to train every row again):"),
              ("code", command)]
    columns = row_columns(run, spec, track)
    seconds = [row_seconds(run, r.get("tag")) for r in rows]
    header = ["#", *(c.replace("_", " ") for c in columns)]
    if any(s is not None for s in seconds):
        header.append("training time")
    best = best_row(rows, track)
    results = set(track.columns if track else ()) | {"selected", "diverged"}
    table = []
    for i, row in enumerate(rows):
        cells = [str(i), *(fmt(c, row.get(c)) if c in results or _is_accuracy(c)
                           else fmt_setting(row.get(c)) for c in columns)]
        if len(header) > len(cells):
            cells.append(fmt_seconds(seconds[i]))
        table.append(cells)
    blocks.append(("table", header, table, best if len(rows) > 1 else None))
    if getattr(track, "legend", ""):
        blocks.append(("text", track.legend))
    if best is not None:
        key = track.best[0] if track else "val_accuracy"
        blocks.append(("text", f"Best row (by {key.replace('_', ' ')}, like `kcourse "
                               f"export`): {best}, `{rows[best].get('tag')}`: "
                               f"{fmt(key, rows[best].get(key))}; course: "
                               f"{run['reference']}."))
    planned = len(config.get("rows", [])) if isinstance(config.get("rows"), list) else 0
    if planned > len(rows):
        blocks.append(("text", f"Rows {len(rows)} to {planned - 1} are not finished: the "
                               "command above resumes them."))
    blocks.append(("text", "Train one row again, keeping the others:"))
    blocks.append(("code", "\n".join(
        reproduce_command({"experiment": run["experiment"], **config}, run["path"],
                          fresh_row=i) + f"   # {row.get('tag', i)}"
        for i, row in enumerate(rows))))

    compared = []
    path = comparison_figure(run, track, folder)
    if path:
        compared.append(("every row: " + ", ".join(comparison_metrics(run, track))
                         .replace("_", " "), rel(path)))
    try:  # a track's extra figures (finding or drawing them) must not cost the report
        hook = _track_hook(track)
        extra = (hook(run["path"], metrics, folder) or []) if hook is not None else []
    except Exception as error:
        extra = []
        say(f"kcourse report: the track figures of {run['path']} failed "
            f"({type(error).__name__}: {error}); the report goes on without them")
    for path in extra:
        caption = os.path.splitext(os.path.basename(path))[0].replace("_", " ")
        compared.append((caption, rel(path)))
    if compared:
        blocks += [("heading", "Rows compared"), ("figures", compared, "wide")]

    figures = _run_figures(run, folder, out, copy)
    if figures:
        blocks.append(("heading", "Figures of the run"))
        for tag in [r.get("tag") for r in rows] + [None]:
            mine = [(caption, path) for t, caption, path in figures if t == tag]
            if mine:
                blocks += [("subheading", f"`{tag}`" if tag else "Other figures"),
                           ("figures", mine, "grid")]
    return {"id": slug, "title": _title(run), "reference": run["reference"],
            "path": run["path"], "quick": bool(config.get("quick")), "blocks": blocks,
            "best": (fmt(track.best[0] if track else "val_accuracy",
                         rows[best].get(track.best[0] if track else "val_accuracy"))
                     if best is not None else ""),
            "best_of": ((track.best[0] if track else "val_accuracy").replace("_", " ")
                        + f" of row {best}" if best is not None else "")}


def search_section(run, out, slug, copy=True, say=print):
    """The section of one `kcourse tune` directory: its trials, best marked."""
    results, config = run["results"], run["config"]
    folder = os.path.join(out, slug)
    _prepare_folder(folder)
    spec, _ = _spec_and_track(run["experiment"])
    objective = ((spec or {}).get("search") or {}).get("objective", "val_accuracy")
    trials, best = results["trials"], results.get("best")
    ignore = {"stage", "trial", objective}
    keys = [k for t in trials for k in t if k not in ignore]
    keys = [k for i, k in enumerate(keys) if k not in keys[:i]]
    header = ["stage", "trial", *(k.replace("_", " ") for k in keys),
              objective.replace("_", " ")]
    table = [[str(t.get("stage", "")), str(t.get("trial", "")),
              *(fmt(k, t.get(k)) if _is_accuracy(k) else fmt_setting(t.get(k))
                for k in keys), fmt(objective, t.get(objective))]
             for t in trials]
    marked = trials.index(best) if best in trials and len(trials) > 1 else None
    command = reproduce_command({"experiment": run["experiment"], **config}, run["path"],
                                tune=True)
    blocks = [("text", f"Search directory `{run['path']}`"
               + (". A `--quick` search: a smoke test, not a reported figure."
                  if config.get("quick") else ".")),
              ("text", "Reproduce (on an existing directory KerasTuner resumes the search; "
                       "add `--fresh` to search again from scratch):"),
              ("code", command),
              ("table", header, table, marked)]
    if best:
        test = results.get("best_test_accuracy")
        tested = ("" if test is None else "; held-out test accuracy of its model, "
                  f"measured once: {fmt('test_accuracy', test)}")
        blocks.append(("text", f"Best trial: {best.get('stage', '')} "
                               f"{best.get('trial', '')}, {objective.replace('_', ' ')} "
                               f"{fmt(objective, best.get(objective))}{tested}; "
                               f"course: {run['reference']}."))
    figures = _run_figures(run, folder, out, copy)
    if figures:
        blocks += [("heading", "Figures of the search"),
                   ("figures", [(c, p) for _, c, p in figures], "wide")]
    return {"id": slug, "title": _title(run, " search"),
            "reference": run["reference"], "path": run["path"],
            "quick": bool(config.get("quick")), "blocks": blocks,
            "best": fmt(objective, best.get(objective)) if best else "",
            "best_of": objective.replace("_", " ") + " of the best trial" if best else ""}


def _course_order(runs):
    from kcourse import experiments

    names = list(experiments.experiments())
    return sorted(runs, key=lambda r: (names.index(r["experiment"]) if r["experiment"]
                                       in names else len(names), r["path"]))


def write_report(run_dirs=None, out="runs/report", root="runs", copy_figures=True,
                 say=None):
    """Write the report of `run_dirs` (default: every run directory under `root`) as
    `out/report.md` and `out/report.html`; return their paths.

    Directories that are not finished kcourse runs or searches are skipped with a note
    (`say`, default: a line on stderr); none left is a SettingError. With
    `copy_figures` (default) the run's figures are copied into `out`, so the report
    folder stands alone; without, they are linked by relative paths.
    """
    if say is None:
        def say(message):
            print(message, file=sys.stderr)

    if run_dirs is None:
        if not os.path.isdir(root):
            raise SettingError(f"no {root}/ folder here: give the run directories "
                               "(kcourse report RUN_DIR ...) or run an experiment first "
                               "(kcourse run EXPERIMENT)")
        run_dirs = find_run_dirs(root)
    runs, skipped = [], []
    out_real = os.path.realpath(out)
    for path in run_dirs:
        run = load_run(path) if os.path.isdir(path) else None
        if run is None:
            why = ("no such directory" if not os.path.isdir(path) else
                   "no metrics.json or results.json: not a finished kcourse run")
            say(f"kcourse report: skipping {path}: {why}")
            skipped.append((path, why))
            continue
        real = os.path.realpath(path)
        if out_real == real or out_real.startswith(real + os.sep):
            raise SettingError(f"--out {out} is inside the run directory {path}; write "
                               "the report elsewhere (default runs/report)")
        runs.append(run)
    if not runs:
        where = "the given directories" if skipped else f"{root}/"
        raise SettingError(f"no finished kcourse run in {where}: train one with "
                           "`kcourse run EXPERIMENT --out DIR` (or `kcourse tune`) and "
                           "give its DIR, or the folder holding the runs")
    if os.path.exists(out) and not os.path.isdir(out):
        raise SettingError(f"--out {out} is a file, not a directory")
    os.makedirs(out, exist_ok=True)
    taken = set()
    sections = []
    for run in _course_order(runs):
        slug = _slug(os.path.basename(os.path.normpath(run["path"])), taken)
        make = run_section if run["kind"] == "run" else search_section
        sections.append(make(run, out, slug, copy=copy_figures, say=say))
    doc = {"title": "kcourse results", "sections": sections, "skipped": skipped,
           "copied": copy_figures}
    md_path, html_path = os.path.join(out, "report.md"), os.path.join(out, "report.html")
    write_text(md_path, render_markdown(doc))
    write_text(html_path, render_html(doc))
    return md_path, html_path


# rendering
def _overview(doc):
    header = ["experiment", "run directory", "best", "course reference"]
    rows = [[f"[{s['title']}](#{s['id']})" + (" (quick)" if s["quick"] else ""),
             f"`{s['path']}`", f"{s['best']} ({s['best_of']})" if s["best"] else "",
             s["reference"]] for s in doc["sections"]]
    return header, rows


def _intro(doc):
    where = ("copied into this folder, which stands alone" if doc["copied"] else
             "linked where they are in the run directories: move this folder together "
             "with them")
    return ("Written by `kcourse report` from the run directories below. Accuracies are "
            "percentages; the training time comes from timing.json, else from the last "
            "`seconds` of history.csv. The figures are " + where + ".")


def _md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header, rows, marked=None):
    lines = ["| " + " | ".join(map(_md_cell, header)) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for i, row in enumerate(rows):
        cells = [_md_cell(c) for c in row]
        if i == marked:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(doc):
    """The report as Markdown (GitHub flavour: pipe tables, images by relative path)."""
    parts = [f"# {doc['title']}", _intro(doc), _md_table(*_overview(doc))]
    if doc["skipped"]:
        parts.append("Skipped: " + "; ".join(f"`{p}` ({why})" for p, why in doc["skipped"]))
    for section in doc["sections"]:
        parts.append(f'<a id="{section["id"]}"></a>\n\n## {section["title"]}\n\n'
                     f"course: {section['reference']}")
        for block in section["blocks"]:
            kind = block[0]
            if kind == "text":
                parts.append(block[1])
            elif kind == "code":
                parts.append(f"```sh\n{block[1]}\n```")
            elif kind == "table":
                parts.append(_md_table(block[1], block[2], block[3]) +
                             ("\n\n(bold: the best row)" if block[3] is not None else ""))
            elif kind == "heading":
                parts.append(f"### {block[1]}")
            elif kind == "subheading":
                parts.append(f"#### {block[1]}")
            elif kind == "figures":
                parts.append(" ".join(f"![{caption}]({path.replace(os.sep, '/')})"
                                      for caption, path in block[1]))
    return "\n\n".join(parts) + "\n"


def _inline(text):
    """Plain text with `code` spans and [links](#anchors), escaped for HTML."""
    text = html.escape(str(text), quote=False)
    text = re.sub(r"`([^`]*)`", r"<code>\1</code>", text)
    return re.sub(r"\[([^\]]*)\]\((#[^)]*)\)", r'<a href="\2">\1</a>', text)


def _html_table(header, rows, marked=None):
    head = "".join(f"<th>{_inline(h)}</th>" for h in header)
    body = "".join(
        ('<tr class="best">' if i == marked else "<tr>")
        + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>\n"
        for i, row in enumerate(rows))
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


STYLE = """body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
  padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
tr.best td { font-weight: bold; background: #eef6ee; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 0.4em; display: inline-block; vertical-align: top; }
figure.wide img { max-width: 100%; }
figure.grid img { width: 360px; }
figcaption { font-size: 0.8em; color: #555; text-align: center; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
"""


def _html_figure(caption, path, kind):
    src = html.escape(path.replace(os.sep, "/"))
    caption = html.escape(caption)
    return (f'<figure class="{kind}"><a href="{src}"><img src="{src}" alt="{caption}"></a>'
            f"<figcaption>{caption}</figcaption></figure>")


def render_html(doc):
    """The same report as one self-contained HTML page (the images by relative path)."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(doc['title'])}</title>", f"<style>{STYLE}</style>",
             "</head><body>", f"<h1>{html.escape(doc['title'])}</h1>",
             f"<p>{_inline(_intro(doc))}</p>", _html_table(*_overview(doc))]
    if doc["skipped"]:
        parts.append("<p>Skipped: " + "; ".join(f"<code>{html.escape(p)}</code> "
                                                 f"({html.escape(why)})"
                                                 for p, why in doc["skipped"]) + "</p>")
    for section in doc["sections"]:
        parts.append(f'<h2 id="{html.escape(section["id"])}">'
                     f"{html.escape(section['title'])}</h2>")
        parts.append(f"<p>course: {_inline(section['reference'])}</p>")
        for block in section["blocks"]:
            kind = block[0]
            if kind == "text":
                parts.append(f"<p>{_inline(block[1])}</p>")
            elif kind == "code":
                parts.append(f"<pre><code>{html.escape(block[1])}</code></pre>")
            elif kind == "table":
                parts.append(_html_table(block[1], block[2], block[3]))
            elif kind == "heading":
                parts.append(f"<h3>{_inline(block[1])}</h3>")
            elif kind == "subheading":
                parts.append(f"<h4>{_inline(block[1])}</h4>")
            elif kind == "figures":
                parts.append("<div>" + "".join(_html_figure(caption, path, block[2])
                                               for caption, path in block[1]) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
