"""The model report a clinician reads: report.md, its PNGs, subgroups.json and model_card.md.

Everything goes flat into one directory (the training job's SM_OUTPUT_DATA_DIR; the Lambda side
publishes every regular file of it). Kept cheap because it runs inside the training job after the
model is saved: permutation importance on a few thousand held-out rows through the compiled trees,
the subgroup table from a few vectorised counts, the figures on the Agg canvas without pyplot.
"""

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from pipelines import schema
from pipelines.id_mapping import describe

IMPORTANCE_ROWS = 3000
IMPORTANCE_REPEATS = 2
TOP_FEATURES = 15
# 800x600 px and more at 100 dpi, 12 pt text: legible on a laptop screen without zooming.
FIGURE_DPI = 100
FONT_SIZE = 12
# A calibration bin of fewer encounters than this says nothing (a bin of one encounter has an
# observed rate of 0 or 1): it is counted in the histogram but not drawn as a point. At 30 rows
# and a 10-20% rate the 95% interval of the observed rate is still about +/-0.13.
MIN_CALIBRATION_COUNT = 30
# A subgroup's ROC AUC only with this many readmitted and this many not readmitted encounters:
# the same minimum the whole evaluation has (schema.MIN_HELD_OUT_PER_CLASS says why).
SUBGROUP_MIN_PER_CLASS = schema.MIN_HELD_OUT_PER_CLASS
UNKNOWN = "unknown"
# The inputs the subgroup table splits by, and why each is sensitive.
SUBGROUP_COLUMNS: dict[str, str] = {
    "race": "sensitive: a protected characteristic",
    "gender": "sensitive: a protected characteristic",
    "age": "sensitive: a protected characteristic (10-year bands)",
    "payer_code": "a proxy of socioeconomic status (the encounter's insurance or self-pay)",
}
TARGET_DESCRIPTIONS = {
    "readmitted_30d": "readmitted within 30 days",
    "readmitted_any": "readmitted (within 30 days or later)",
}
THRESHOLD_RULES = {
    "max_f1_on_training_rows": (
        "the probability cut that maximises F1 (the balance of sensitivity and precision) on the "
        "training patients' encounters; chosen there, never on the held-out patients, so the "
        "figures below stay honest"
    ),
    "fixed": "fixed by the run's `decision_threshold` hyperparameter",
}
# The dataset's columns as a reader says them (Strack et al. 2014, Table 1).
FEATURE_LABELS: dict[str, str] = {
    "race": "race",
    "gender": "gender",
    "age": "age band",
    "weight": "weight",
    "admission_type_id": "admission type",
    "discharge_disposition_id": "discharge disposition",
    "admission_source_id": "admission source",
    "time_in_hospital": "days in hospital",
    "payer_code": "payer (insurance)",
    "medical_specialty": "admitting physician's specialty",
    "num_lab_procedures": "lab tests during the stay",
    "num_procedures": "procedures (other than lab tests)",
    "num_medications": "distinct medications given",
    "number_outpatient": "outpatient visits, prior year",
    "number_emergency": "emergency visits, prior year",
    "number_inpatient": "inpatient stays, prior year",
    "diag_1": "primary diagnosis (ICD-9 category or chapter)",
    "diag_2": "secondary diagnosis (ICD-9 category or chapter)",
    "diag_3": "third diagnosis (ICD-9 category or chapter)",
    "number_diagnoses": "diagnoses recorded",
    "max_glu_serum": "glucose serum test result",
    "A1Cresult": "HbA1c test result",
    "change": "diabetes medication changed",
    "diabetesMed": "diabetes medication prescribed",
    "history_encounters": "earlier encounters of the patient",
    "history_days_in_hospital": "days in hospital, earlier encounters",
    "history_inpatient": "inpatient stays, summed over earlier encounters",
    "history_emergency": "emergency visits, summed over earlier encounters",
    "history_outpatient": "outpatient visits, summed over earlier encounters",
    "previous_time_in_hospital": "previous encounter: days in hospital",
    "previous_num_medications": "previous encounter: medications",
    "previous_number_diagnoses": "previous encounter: diagnoses",
    "previous_discharge_disposition_id": "previous encounter: discharge disposition",
    "previous_encounter_gap": "previous encounter: encounter_id gap (log, time proxy)",
}


def feature_label(column: str) -> str:
    """A raw column's human name; a medication column says it is one (prescribed, dose up/down)."""
    if column in FEATURE_LABELS:
        return FEATURE_LABELS[column]
    if column in schema.MEDICATION_COLUMNS:
        return f"{column} (prescribed / dose change)"
    return column.replace("_", " ")


@contextmanager
def _style() -> Iterator[None]:
    """The report's font size while its figures are drawn and saved (text sizes are fixed when an
    artist is made, so this wraps both)."""
    import matplotlib

    with matplotlib.rc_context({"font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE + 2}):
        yield


def _figure(width: float, height: float, **kwargs: Any) -> Any:
    """A figure (inches; FIGURE_DPI pixels each) drawn by the Agg canvas directly: no pyplot (its
    state machine and backend resolution are import time and bookkeeping a training container that
    only writes PNGs does not need), nothing to close afterwards."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=FIGURE_DPI, **kwargs)
    FigureCanvasAgg(figure)
    return figure


def permutation_importances(
    model: Any, frame: pd.DataFrame, y: np.ndarray, seed: int, scorer: Optional[Any] = None
) -> list[dict[str, Any]]:
    """Mean drop of ROC AUC when one raw feature column is shuffled, on a subsample of held-out rows.

    scikit-learn's `permutation_importance(model, sample, y, scoring="roc_auc", n_repeats=...,
    random_state=seed)`, number for number, without its cost: it re-runs the whole pipeline (feature
    preparation, encoding, every tree) on 3,000 rows for each of 70 shuffles. Here the rows are
    prepared and encoded once: both steps work column by column and row by row, so shuffling a raw
    column's rows and encoding equals encoding and shuffling that column of the matrix. The shuffles
    are scikit-learn's (the same seeds, applied cumulatively per repeat) and all shuffled matrices
    are scored in one call, through the compiled trees when `scorer` (a PipelineScorer) has them.
    Pipelines of another shape keep scikit-learn's own function.
    """
    columns = list(model.named_steps["features"].feature_names_)
    rng = np.random.RandomState(seed)
    rows = rng.permutation(len(frame))[:IMPORTANCE_ROWS]
    sample = frame.iloc[rows][columns].reset_index(drop=True)
    target = y[rows]
    if len(np.unique(target)) < 2:
        return []
    decision = _encoded_decision(model, scorer)
    if decision is None:
        means, stds = _sklearn_importances(model, sample, target, seed)
    else:
        encoded_columns = list(model.named_steps["encode"].feature_names_)
        matrix = np.asarray(model[:2].transform(sample), dtype=float)
        # scikit-learn draws one seed from random_state, then every column starts a fresh
        # RandomState(seed) and shuffles its index in place once per repeat.
        column_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
        shuffle_rng = np.random.RandomState(column_seed)
        index, order = np.arange(len(sample)), []
        for _ in range(IMPORTANCE_REPEATS):
            shuffle_rng.shuffle(index)
            order.append(index.copy())
        used = [c for c in columns if c in encoded_columns]
        blocks = [matrix]
        for column in used:
            j = encoded_columns.index(column)
            values = matrix[:, j]
            for shuffled in order:
                values = values[shuffled]  # cumulative, as scikit-learn permutes its permuted copy
                block = matrix.copy()
                block[:, j] = values
                blocks.append(block)
        auc = ranked_auc(target, decision(np.vstack(blocks)).reshape(len(blocks), len(sample)))
        repeats = len(order)
        drops = {
            column: auc[0] - auc[1 + k * repeats : 1 + (k + 1) * repeats] for k, column in enumerate(used)
        }
        zero = np.zeros(len(order))  # a column the model does not read: shuffling it changes nothing
        means = [float(np.mean(drops.get(c, zero))) for c in columns]
        stds = [float(np.std(drops.get(c, zero))) for c in columns]
    ranked = sorted(zip(columns, means, stds), key=lambda r: -r[1])
    return [{"feature": c, "importance": float(m), "std": float(s)} for c, m, s in ranked]


def ranked_auc(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of `scores` against the 0/1 labels `y`, all rows at once.

    The Mann-Whitney form (mean rank of the positives, ties sharing their average rank) is the
    area roc_auc_score integrates, equal to it up to float rounding (1e-15), without its
    per-call validation (3 ms each, 71 calls per report).
    """
    from scipy.stats import rankdata

    positive = np.asarray(y) == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(np.atleast_2d(scores), axis=1)
    return (ranks[:, positive].sum(axis=1) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _encoded_decision(model: Any, scorer: Optional[Any]) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    """What scikit-learn's `roc_auc` scorer ranks rows by, as a function of the encoded matrix
    (decision_function where the model has one, else the positive class probability); None when
    the pipeline is not features -> encode -> ... (then only scikit-learn's function applies)."""
    names = [name for name, _step in model.steps]
    if names[:2] != ["features", "encode"] or len(names) < 3:
        return None
    compiled = getattr(scorer, "compiled", None)
    if compiled is not None and getattr(scorer, "pipeline", None) is model and len(names) == 3:
        return compiled.raw_predict  # scikit-learn's decision_function, bit for bit
    tail = model[2:]
    if hasattr(tail, "decision_function"):
        return lambda matrix: np.asarray(tail.decision_function(matrix)).ravel()
    return lambda matrix: tail.predict_proba(matrix)[:, 1]


def _sklearn_importances(model: Any, sample: pd.DataFrame, target: np.ndarray, seed: int) -> Any:
    from sklearn.inspection import permutation_importance

    result = permutation_importance(
        model, sample, target, scoring="roc_auc", n_repeats=IMPORTANCE_REPEATS, random_state=seed, n_jobs=1
    )
    return [float(v) for v in result.importances_mean], [float(v) for v in result.importances_std]


def operating_point(model_metrics: dict[str, Any]) -> dict[str, Any]:
    """What the threshold does on the held-out rows, from the confusion counts: the share flagged
    (metrics.json's `positive_rate`), the prevalence, sensitivity, specificity and precision."""
    c = model_metrics["confusion"]
    tp, fp, tn, fn = (int(c[k]) for k in ("tp", "fp", "tn", "fn"))
    rows = tp + fp + tn + fn

    def share(part: int, whole: int) -> Optional[float]:
        return part / whole if whole else None

    return {
        "threshold": float(model_metrics["threshold"]),
        "rows": rows,
        "positives": tp + fn,
        "flagged": tp + fp,
        "prevalence": share(tp + fn, rows),
        "flag_rate": share(tp + fp, rows),
        "sensitivity": share(tp, tp + fn),
        "specificity": share(tn, tn + fp),
        "false_positive_rate": share(fp, tn + fp),
        "precision": share(tp, tp + fp),
    }


def _point_label(point: dict[str, Any]) -> str:
    return "operating point: threshold {:.3f}, flags {:.1%}".format(point["threshold"], point["flag_rate"])


def roc_figure(y: np.ndarray, probability: np.ndarray, model_metrics: dict[str, Any]) -> Any:
    """The ROC curve with the operating point (the threshold's false and true positive rates)."""
    from sklearn.metrics import roc_curve

    point = operating_point(model_metrics)
    fig = _figure(8, 6)
    ax = fig.subplots()
    fpr, tpr, _ = roc_curve(y, probability)
    ax.plot(fpr, tpr, linewidth=2, label="model (ROC AUC {:.3f})".format(model_metrics["roc_auc"]))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    x, y_point = point["false_positive_rate"] or 0.0, point["sensitivity"] or 0.0
    ax.plot([x], [y_point], "o", color="C3", markersize=10, label=_point_label(point), gid="operating_point")
    ax.annotate(
        f"sensitivity {y_point:.0%}\nspecificity {1 - x:.0%}",
        (x, y_point),
        xytext=(12, -36),
        textcoords="offset points",
    )
    ax.set(
        xlabel="false positive rate (1 - specificity)",
        ylabel="true positive rate (sensitivity)",
        title="ROC, held-out patients",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.subplots_adjust(left=0.1, right=0.97, top=0.93, bottom=0.1)
    return fig


def precision_recall_figure(y: np.ndarray, probability: np.ndarray, model_metrics: dict[str, Any]) -> Any:
    """The precision-recall curve, the prevalence (a model without skill) and the operating point."""
    from sklearn.metrics import precision_recall_curve

    point = operating_point(model_metrics)
    fig = _figure(8, 6)
    ax = fig.subplots()
    precision, recall, _ = precision_recall_curve(y, probability)
    ax.plot(
        recall,
        precision,
        linewidth=2,
        label="model (average precision {:.3f})".format(model_metrics["pr_auc"]),
    )
    prevalence = float(np.mean(y))
    ax.axhline(prevalence, linestyle="--", color="grey", label=f"prevalence ({prevalence:.1%})")
    x, y_point = point["sensitivity"] or 0.0, point["precision"] or 0.0
    ax.plot([x], [y_point], "o", color="C3", markersize=10, label=_point_label(point), gid="operating_point")
    ax.annotate(
        f"recall {x:.0%}\nprecision {y_point:.0%}",
        (x, y_point),
        xytext=(12, 10),
        textcoords="offset points",
    )
    ax.set(
        xlabel="recall (sensitivity)",
        ylabel="precision (positive predictive value)",
        title="Precision-recall, held-out patients",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    fig.subplots_adjust(left=0.1, right=0.97, top=0.93, bottom=0.1)
    return fig


def calibration_figure(bins: Sequence[dict[str, Any]], min_count: int = MIN_CALIBRATION_COUNT) -> Any:
    """Mean predicted probability against the observed rate per bin, each point labelled with its
    encounters, and a histogram of the encounters per bin below. Bins of fewer than `min_count`
    encounters are counted in the histogram (grey) but not drawn as points."""
    from pipelines.evaluation import CALIBRATION_BINS

    width = 1.0 / CALIBRATION_BINS
    drawn = [b for b in bins if b["count"] >= min_count]
    fig = _figure(8, 7.5)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    x = [b["mean_predicted"] for b in drawn]
    observed = [b["observed_rate"] for b in drawn]
    top.plot(
        x,
        observed,
        marker="o",
        linewidth=2,
        label=f"model (bins of {min_count}+ encounters)",
        gid="calibration",
    )
    for b in drawn:
        top.annotate(
            "n={:,}".format(b["count"]),
            (b["mean_predicted"], b["observed_rate"]),
            xytext=(8, -14),
            textcoords="offset points",
            fontsize=FONT_SIZE - 1,
        )
    right = max([(b["bin"] + 1) * width for b in bins] + [0.1])
    top.plot([0, right], [0, right], linestyle="--", color="grey", label="perfect calibration")
    top.set(ylabel="observed readmission rate", title="Calibration, held-out patients", xlim=(0, right))
    top.set_ylim(0, max([*observed, right]) * 1.05)
    top.grid(alpha=0.3)
    top.legend(loc="upper left")
    centers = [(b["bin"] + 0.5) * width for b in bins]
    counts = [b["count"] for b in bins]
    colors = ["C0" if c >= min_count else "lightgrey" for c in counts]
    bottom.bar(centers, counts, width=width * 0.9, color=colors, gid="bin_counts")
    from matplotlib.ticker import FuncFormatter, NullLocator

    bottom.set_yscale("log")
    # Plain tick labels (the default log labels are mathtext, $10^{3}$) and no minor ticks (eight
    # per decade, each a tick object to build and draw): the counts are written on the bars.
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:,.0f}"))
    bottom.yaxis.set_minor_locator(NullLocator())
    for center, count in zip(centers, counts):
        bottom.annotate(
            f"{count:,}",
            (center, count),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            fontsize=FONT_SIZE - 2,
        )
    bottom.set(
        xlabel=f"predicted probability (bins of {width:.1f}; grey: under {min_count} encounters, not drawn)",
        ylabel="encounters",
    )
    bottom.set_ylim(0.8, max([*counts, 1]) * 4)
    fig.subplots_adjust(left=0.13, right=0.97, top=0.94, bottom=0.09, hspace=0.08)
    return fig


def importance_figure(
    importances: Sequence[dict[str, Any]], rows: int, repeats: int = IMPORTANCE_REPEATS
) -> Any:
    """The top inputs by permutation importance, named for a reader, with the spread over the
    shuffles as error bars (said under the plot)."""
    shown = list(importances[:TOP_FEATURES])[::-1]
    fig = _figure(10, 7)
    ax = fig.subplots()
    ax.barh(
        [feature_label(r["feature"]) for r in shown],
        [r["importance"] for r in shown],
        xerr=[r["std"] for r in shown],
        capsize=4,
        color="C0",
    )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(
        xlabel="drop in held-out ROC AUC when the input is shuffled",
        title="Top inputs (permutation importance)",
    )
    ax.grid(axis="x", alpha=0.3)
    fig.text(
        0.01,
        0.01,
        f"Bar: mean drop over {repeats} shuffles of {rows:,} held-out encounters. "
        "Error bar: one standard deviation over those shuffles.",
        fontsize=FONT_SIZE - 1,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def _group_values(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column's values as text, missing (`?`, empty) as "unknown"."""
    values = frame[column].to_numpy(dtype=object).copy()
    values[pd.isna(values)] = UNKNOWN
    text = values.astype(str)
    text[(text == schema.MISSING_MARKER) | (text == "")] = UNKNOWN
    return text


def _roc_auc_with_interval(
    y: np.ndarray, probability: np.ndarray
) -> tuple[Optional[float], Any, Optional[str]]:
    """A group's ROC AUC and its 95% DeLong interval, or why it is not given (too few of a class)."""
    from pipelines.evaluation import _midrank_placements

    positives = int(y.sum())
    negatives = len(y) - positives
    if positives < SUBGROUP_MIN_PER_CLASS or negatives < SUBGROUP_MIN_PER_CLASS:
        return (
            None,
            None,
            f"{positives:,} readmitted and {negatives:,} not: needs {SUBGROUP_MIN_PER_CLASS} of each",
        )
    positive = y == 1
    v10, v01 = _midrank_placements(probability[positive], probability[~positive])
    auc = float(v10.mean())
    se = float(np.sqrt(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01)))
    return auc, [auc - 1.96 * se, auc + 1.96 * se], None


def subgroup_table(
    frame: pd.DataFrame, y: np.ndarray, probability: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Per group of each sensitive input (SUBGROUP_COLUMNS): encounters, readmitted, ROC AUC (with
    its interval, or why not), mean predicted vs observed rate, the share flagged and the share of
    the group's readmissions flagged. Counts are bincounts over the held-out rows; only the ROC AUC
    ranks each group's rows (a few dozen groups)."""
    y = np.asarray(y).astype(int)
    p = np.asarray(probability, dtype=float)
    flagged = p >= threshold
    table: dict[str, Any] = {
        "threshold": float(threshold),
        "rows": len(y),
        "min_per_class_for_roc_auc": SUBGROUP_MIN_PER_CLASS,
        "missing_value": UNKNOWN,
        "inputs": {},
    }
    for column, why in SUBGROUP_COLUMNS.items():
        if column not in frame.columns:
            continue
        names, inverse = np.unique(_group_values(frame, column), return_inverse=True)
        inverse = inverse.ravel()
        count = np.bincount(inverse, minlength=len(names))
        positives = np.bincount(inverse, weights=y, minlength=len(names))
        predicted = np.bincount(inverse, weights=p, minlength=len(names))
        flags = np.bincount(inverse, weights=flagged, minlength=len(names))
        found = np.bincount(inverse, weights=flagged & (y == 1), minlength=len(names))
        groups = []
        for k, name in enumerate(names):
            selected = inverse == k
            auc, interval, why_not = _roc_auc_with_interval(y[selected], p[selected])
            groups.append(
                {
                    "group": str(name),
                    "encounters": int(count[k]),
                    "readmitted": int(positives[k]),
                    "roc_auc": auc,
                    "roc_auc_interval": interval,
                    "roc_auc_not_computed": why_not,
                    "mean_predicted": float(predicted[k] / count[k]),
                    "observed_rate": float(positives[k] / count[k]),
                    "flag_rate": float(flags[k] / count[k]),
                    "sensitivity": float(found[k] / positives[k]) if positives[k] else None,
                }
            )
        if column != "age":  # age bands read in their own order; the others largest first
            groups.sort(key=lambda g: -g["encounters"])
        groups.sort(key=lambda g: g["group"] == UNKNOWN)
        table["inputs"][column] = {"label": feature_label(column), "sensitive": why, "groups": groups}
    return table


def _percent(value: Optional[float], digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def subgroup_lines(table: dict[str, Any]) -> list[str]:
    """The subgroup table of report.md (the same numbers as subgroups.json)."""
    lines = [
        "## Performance by subgroup",
        "",
        "Race, gender, age and payer are model inputs. Race, gender and age are sensitive "
        "characteristics; the payer code (the encounter's insurance, or self-pay) is a proxy of "
        "socioeconomic status. For each group of each: held-out encounters, readmitted, ROC AUC with its "
        "95% DeLong interval (only with at least {n} readmitted and {n} not readmitted encounters, "
        "otherwise why not), calibration (mean predicted probability vs observed rate), the share "
        "flagged at the threshold and the share of the group's readmissions flagged (sensitivity). "
        'Missing values (`?`) are shown as "{u}". The same table: `subgroups.json`.'.format(
            n=table["min_per_class_for_roc_auc"], u=UNKNOWN
        ),
    ]
    for column, entry in table["inputs"].items():
        lines += [
            "",
            "### {} (`{}`): {}".format(entry["label"], column, entry["sensitive"]),
            "",
            "| group | encounters | readmitted | ROC AUC (95% interval) | mean predicted | observed rate "
            "| flagged | sensitivity |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for g in entry["groups"]:
            if g["roc_auc"] is None:
                auc = "not computed ({})".format(g["roc_auc_not_computed"])
            else:
                auc = "{:.3f} ({:.3f}-{:.3f})".format(g["roc_auc"], *g["roc_auc_interval"])
            lines.append(
                "| {} | {:,} | {:,} | {} | {} | {} | {} | {} |".format(
                    g["group"],
                    g["encounters"],
                    g["readmitted"],
                    auc,
                    _percent(g["mean_predicted"]),
                    _percent(g["observed_rate"]),
                    _percent(g["flag_rate"]),
                    _percent(g["sensitivity"], 0),
                )
            )
    return lines


def coded_input_lines(frame: pd.DataFrame, y: np.ndarray) -> list[str]:
    """What the codes of the `*_id` inputs mean (the dataset's IDs_mapping.csv), with how many
    held-out encounters carry each and their readmission rate."""
    lines = ["## What the coded inputs mean", ""]
    lines.append(
        "The `*_id` inputs are codes; their meaning is the dataset's `IDs_mapping.csv`. Held-out "
        "encounters per code and their observed readmission rate:"
    )
    y = np.asarray(y).astype(int)
    for column in schema.CODED_ID_COLUMNS:
        if column not in frame.columns:
            continue
        names, inverse = np.unique(_group_values(frame, column), return_inverse=True)
        inverse = inverse.ravel()
        count = np.bincount(inverse, minlength=len(names))
        positives = np.bincount(inverse, weights=y, minlength=len(names))
        lines += [
            "",
            f"**{feature_label(column)}** (`{column}`)",
            "",
            "| code | meaning | encounters | readmitted |",
        ]
        lines.append("|---|---|---|---|")
        for k in np.argsort(-count, kind="mergesort"):
            code = str(names[k])
            meaning = UNKNOWN if code == UNKNOWN else describe(column, code)
            lines.append(f"| {code} | {meaning} | {count[k]:,} | {positives[k] / count[k]:.1%} |")
    return lines


def exclusion_text(metrics: dict[str, Any]) -> str:
    """Which encounters the target leaves out, their dispositions decoded."""
    if metrics["target"] not in schema.TARGETS_EXCLUDING_DEATH_OR_HOSPICE:
        return "No encounter is left out for this target."
    names = ", ".join(
        f"{code} ({describe(schema.DISCHARGE_COLUMN, code)})"
        for code in schema.EXCLUDED_DISCHARGE_DISPOSITIONS
    )
    return (
        "{:,} encounters ending in death or hospice (discharge dispositions {}) are left out of training "
        "and evaluation, and are not scored: no readmission can follow them.".format(
            metrics["rows"]["excluded_death_or_hospice"], names
        )
    )


def threshold_text(metrics: dict[str, Any]) -> str:
    rule = metrics.get("threshold_rule", "max_f1_on_training_rows")
    return THRESHOLD_RULES.get(rule, rule)


METRIC_MEANINGS = {
    "roc_auc": "chance that a readmitted encounter is ranked above one that is not (0.5: no skill)",
    "pr_auc": "average precision over all thresholds (the prevalence is no skill)",
    "log_loss": "penalises confident wrong probabilities (lower is better)",
    "brier": "mean squared error of the probability (lower is better)",
    "positive_rate": "share of held-out encounters flagged (probability >= threshold), not of readmitted",
    "threshold": "probability at and above which an encounter is flagged",
}


def write_report(
    report_dir: str,
    model: Any,
    metrics: dict[str, Any],
    frame: pd.DataFrame,
    y: np.ndarray,
    probability: np.ndarray,
    seed: int,
    scorer: Optional[Any] = None,
    job_name: Optional[str] = None,
) -> dict[str, str]:
    """Write the PNGs, report.md, subgroups.json and model_card.md into `report_dir` (flat); returns
    the written paths by name.

    `frame`, `y`, `probability`: the held-out rows, their outcomes and the model's probabilities.
    `scorer`: the model's PipelineScorer when the caller has one (its compiled trees make the
    permutation importances cheap; without it they are computed through scikit-learn).
    `job_name`: the training job's name, for the model card (SageMaker's TRAINING_JOB_NAME)."""
    from pipelines.model_card import write_model_card

    os.makedirs(report_dir, exist_ok=True)
    paths: dict[str, str] = {}
    model_metrics = metrics["model"]
    y = np.asarray(y)
    probability = np.asarray(probability, dtype=float)
    importances = permutation_importances(model, frame, y, seed, scorer)
    importance_rows = min(IMPORTANCE_ROWS, len(frame))
    with _style():
        paths["roc"] = _save(roc_figure(y, probability, model_metrics), report_dir, "roc_curve.png")
        paths["pr"] = _save(
            precision_recall_figure(y, probability, model_metrics), report_dir, "precision_recall_curve.png"
        )
        paths["calibration"] = _save(
            calibration_figure(model_metrics["calibration"]), report_dir, "calibration_curve.png"
        )
        paths["importance"] = _save(
            importance_figure(importances, importance_rows), report_dir, "feature_importance.png"
        )
    subgroups = subgroup_table(frame, y, probability, float(model_metrics["threshold"]))
    paths["subgroups"] = os.path.join(report_dir, "subgroups.json")
    with open(paths["subgroups"], "w") as handle:
        json.dump(subgroups, handle, indent=2)
    lines = report_lines(metrics, importances, importance_rows, subgroups, frame, y)
    paths["report"] = os.path.join(report_dir, "report.md")
    with open(paths["report"], "w") as handle:
        handle.write("\n".join(lines) + "\n")
    paths["model_card"] = write_model_card(report_dir, metrics, subgroups, importances, job_name=job_name)
    return paths


def report_lines(
    metrics: dict[str, Any],
    importances: Sequence[dict[str, Any]],
    importance_rows: int,
    subgroups: dict[str, Any],
    frame: pd.DataFrame,
    y: np.ndarray,
) -> list[str]:
    """report.md, line by line."""
    model_metrics = metrics["model"]
    point = operating_point(model_metrics)
    target = TARGET_DESCRIPTIONS.get(metrics["target"], metrics["target"])
    lines = [
        "# Model report: {} ({})".format(metrics["algorithm"], metrics["target"]),
        "",
        "Outcome: {}. Held-out patients: {:,} encounters of {:,} patients, never seen in training "
        "(whole patients are drawn to one side). {}".format(
            target, metrics["rows"]["validation"], metrics["patients"]["validation"], exclusion_text(metrics)
        ),
        "",
        "## At the decision threshold",
        "",
        "- **Prevalence**: {} of the held-out encounters ({:,} of {:,}) were {}.".format(
            _percent(point["prevalence"]), point["positives"], point["rows"], target
        ),
        "- **Threshold** {:.4f}: {}.".format(point["threshold"], threshold_text(metrics)),
        "- **Flagged** (`positive_rate`): {} of the held-out encounters ({:,}) have a probability at or "
        "above the threshold. This is the share of encounters the model flags for follow-up, not the "
        "share readmitted.".format(_percent(point["flag_rate"]), point["flagged"]),
        "- Of the flagged encounters, {} were {} (precision, positive predictive value); the model flags "
        "{} of the readmitted encounters (sensitivity) and leaves {} of the others unflagged "
        "(specificity).".format(
            _percent(point["precision"]),
            target,
            _percent(point["sensitivity"]),
            _percent(point["specificity"]),
        ),
        "",
        "| metric | model | champion | what it says |",
        "|---|---|---|---|",
    ]
    champion = metrics.get("champion") or {}
    for name in ("roc_auc", "pr_auc", "log_loss", "brier", "positive_rate", "threshold"):
        lines.append(
            "| {} | {:.4f} | {} | {} |".format(
                name,
                model_metrics[name],
                f"{champion[name]:.4f}" if name in champion else "-",
                METRIC_MEANINGS[name],
            )
        )
    c = model_metrics["confusion"]
    lines += [
        "",
        "Confusion at threshold {:.4f}: TP {} FP {} TN {} FN {}.".format(
            model_metrics["threshold"], c["tp"], c["fp"], c["tn"], c["fn"]
        ),
    ]
    comparison = comparison_lines(metrics.get("comparison"))
    if comparison:
        lines += ["", "## Comparison with the champion", *comparison]
    if metrics.get("champion_error"):
        lines += ["", "Champion not scored: {}".format(metrics["champion_error"])]
    from pipelines.model_card import history_lines

    lines += ["", *history_lines(metrics)[:-1]]
    shown = [b for b in model_metrics["calibration"] if b["count"] >= MIN_CALIBRATION_COUNT]
    hidden = [b for b in model_metrics["calibration"] if b["count"] < MIN_CALIBRATION_COUNT]
    from pipelines.evaluation import CALIBRATION_BINS

    width = 1.0 / CALIBRATION_BINS
    hidden_text = (
        " Not drawn: "
        + ", ".join(
            "{:.1f}-{:.1f} ({:,} encounter{})".format(
                b["bin"] * width, (b["bin"] + 1) * width, b["count"], "" if b["count"] == 1 else "s"
            )
            for b in hidden
        )
        + "."
        if hidden
        else ""
    )
    lines += [
        "",
        "## Plots",
        "",
        "![ROC curve](roc_curve.png)",
        "",
        "ROC curve on the held-out patients; the red dot is the operating point (the threshold): "
        "sensitivity {} at a false positive rate of {}.".format(
            _percent(point["sensitivity"]), _percent(point["false_positive_rate"])
        ),
        "",
        "![Precision-recall curve](precision_recall_curve.png)",
        "",
        "Precision-recall curve; the dashed line is the prevalence ({}), what a model without skill "
        "achieves; the red dot is the operating point (recall {}, precision {}).".format(
            _percent(point["prevalence"]), _percent(point["sensitivity"]), _percent(point["precision"])
        ),
        "",
        "![Calibration curve](calibration_curve.png)",
        "",
        "Calibration: per probability bin of 0.1, the mean predicted probability against the observed "
        "rate, each point labelled with its encounters; the histogram below counts the encounters per "
        "bin. Bins of fewer than {} encounters are not drawn as points (their observed rate rests on too "
        "few encounters to mean anything).{} {} of {} bins drawn.".format(
            MIN_CALIBRATION_COUNT, hidden_text, len(shown), len(model_metrics["calibration"])
        ),
        "",
        "![Feature importance](feature_importance.png)",
        "",
        "## Feature importance",
        "",
        "Permutation importance: how much the held-out ROC AUC drops when one input's values are "
        f"shuffled across {importance_rows:,} held-out encounters (the model is not retrained), "
        f"averaged over {IMPORTANCE_REPEATS} shuffles; the error bars (and the ± column) are the "
        "standard deviation over those shuffles. "
        "Inputs that share information (e.g. the three diagnoses) can each look less important than "
        "they are together. Importance is not causation.",
        "",
        "| input | column | AUC drop | ± (std over shuffles) |",
        "|---|---|---|---|",
    ]
    lines += [
        "| {} | `{}` | {:.4f} | {:.4f} |".format(
            feature_label(r["feature"]), r["feature"], r["importance"], r["std"]
        )
        for r in importances[:TOP_FEATURES]
    ]
    lines += ["", *subgroup_lines(subgroups), "", *coded_input_lines(frame, y)]
    lines += ["", "The model card (intended use, data, limits): [model_card.md](model_card.md)."]
    return lines


def comparison_lines(comparison: Optional[dict[str, Any]]) -> list[str]:
    """The report's account of the paired comparison the promotion gate decides on (none without a
    champion scored on the same rows): the difference, its interval, the test, the p-value and the
    gate's rule (functions/evaluate_model.py), with what the default margin of 0 makes of it."""
    if not comparison:
        return []
    low, high = comparison["interval"]
    verdict = "above" if low > 0 else "not above"
    return [
        "",
        "| comparison with the champion (same rows) | value |",
        "|---|---|",
        "| ROC AUC difference (model - champion) | {:+.4f} |".format(comparison["roc_auc_difference"]),
        "| {:.0%} interval (DeLong) | [{:+.4f}, {:+.4f}] |".format(comparison["confidence"], low, high),
        "| standard error | {:.4f} |".format(comparison["standard_error"]),
        "| p-value (two-sided, difference = 0) | {:.3g} |".format(comparison["p_value"]),
        "| rows (readmitted) | {} ({}) |".format(comparison["rows"], comparison["positives"]),
        "| test | DeLong's paired test of two correlated ROC AUCs (DeLong, DeLong and Clarke-Pearson 1988) |",
        "",
        "Both models scored the same held-out encounters, so their ROC AUCs are correlated; DeLong's "
        "test accounts for that. The gate promotes the model only when the interval's lower end is above "
        "-MAX_AUC_DROP (0 by the recommended setting: the model must be shown better than the champion "
        "on these rows), and its ROC AUC is at least MIN_ROC_AUC. "
        f"Here the lower end ({low:+.4f}) is {verdict} 0.",
    ]


def _save(fig: Any, report_dir: str, name: str) -> str:
    """The PNG at FIGURE_DPI; zlib level 1: ~20% less time encoding than the default level for
    files ~7% larger (the report runs inside the timed training job)."""
    path = os.path.join(report_dir, name)
    fig.savefig(path, dpi=FIGURE_DPI, pil_kwargs={"compress_level": 1})
    return path
