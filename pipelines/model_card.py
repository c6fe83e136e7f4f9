"""model_card.md: the model card of one trained version, beside its report.

The sections of "Model Cards for Model Reporting" (Mitchell et al., FAT* 2019): model details,
intended use, data, metrics, subgroups (the paper's "quantitative analyses" by factor), ethical
considerations, caveats and limits. The training job writes it into the same report directory as
report.md (published with it), with this version's figures filled in, so a reader of any version
finds its own card. Standard library only beyond pipelines.report's helpers.
"""

import datetime
import os
from collections.abc import Sequence
from typing import Any, Optional

from pipelines import schema
from pipelines.report import (
    MIN_CALIBRATION_COUNT,
    TARGET_DESCRIPTIONS,
    exclusion_text,
    feature_label,
    operating_point,
    threshold_text,
)

MODEL_CARD_FILE = "model_card.md"
TOP_INPUTS = 5


def _pct(value: Optional[float], digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def history_lines(metrics: dict[str, Any]) -> list[str]:
    """The card's and the report's patient-history section: which columns, from what, and what they
    added on this run's own split (metrics.json `history`)."""
    block = metrics.get("history") or {}
    if not block.get("enabled"):
        return ["## Patient history", "", "- Not used: every encounter is scored on its own record.", ""]
    lines = [
        "## Patient history",
        "",
        "- Columns: {}.".format(", ".join(f"`{c}`" for c in block.get("columns", [])) or "none informative"),
        "- Made of the same patient's strictly earlier encounters only: the data have no dates, so "
        "`encounter_id` order is the time proxy (a smaller id is earlier). No outcome of an earlier "
        "encounter is used. At scoring, a patient's earlier encounters come from the scored file and "
        "from this model's training data (`patient_history.csv.gz`, sha256 recorded with the version); "
        "a new patient has no history, which is normal.",
    ]
    without = block.get("without_history")
    if without:
        lines.append(
            "- What history added on this run's held-out patients (the same algorithm fitted without "
            "the history columns on the same split): ROC AUC {:.4f} -> {:.4f} ({:+.4f}), PR AUC "
            "{:.4f} -> {:.4f} ({:+.4f}).".format(
                without["roc_auc"],
                without["roc_auc"] + block["roc_auc_gain"],
                block["roc_auc_gain"],
                without["pr_auc"],
                without["pr_auc"] + block["pr_auc_gain"],
                block["pr_auc_gain"],
            )
        )
    lines.append("")
    return lines


def subgroup_summary_lines(subgroups: dict[str, Any]) -> list[str]:
    """Per sensitive input: the spread of ROC AUC (where computed), of the calibration gap and of the
    share flagged across its groups; the full table is in report.md and subgroups.json."""
    lines = [
        "| input | why it matters | groups | ROC AUC range (groups with enough rows) "
        "| largest calibration gap | share flagged |",
        "|---|---|---|---|---|---|",
    ]
    for column, entry in subgroups["inputs"].items():
        groups = entry["groups"]
        aucs = [(g["roc_auc"], g["group"]) for g in groups if g["roc_auc"] is not None]
        auc_text = "none: too few readmissions per group"
        if aucs:
            (low, low_group), (high, high_group) = min(aucs), max(aucs)
            auc_text = (
                f"{low:.3f} ({low_group}) - {high:.3f} ({high_group}); {len(aucs)} of {len(groups)} groups"
            )
        sized = [g for g in groups if g["encounters"] >= MIN_CALIBRATION_COUNT] or groups
        gap = max(sized, key=lambda g: abs(g["mean_predicted"] - g["observed_rate"]))
        gap_text = "{} ({}): predicted {}, observed {}".format(
            gap["group"], f"{gap['encounters']:,}", _pct(gap["mean_predicted"]), _pct(gap["observed_rate"])
        )
        flags = [g["flag_rate"] for g in sized]
        lines.append(
            "| {} (`{}`) | {} | {} | {} | {} | {} - {} |".format(
                entry["label"],
                column,
                entry["sensitive"],
                len(groups),
                auc_text,
                gap_text,
                _pct(min(flags)),
                _pct(max(flags)),
            )
        )
    return lines


def model_card_text(
    metrics: dict[str, Any],
    subgroups: dict[str, Any],
    importances: Sequence[dict[str, Any]],
    job_name: Optional[str] = None,
    created: Optional[datetime.datetime] = None,
) -> str:
    """The card's Markdown from this version's metrics.json content, subgroup table and importances."""
    created = created or datetime.datetime.now(datetime.timezone.utc)
    model = metrics["model"]
    point = operating_point(model)
    target = TARGET_DESCRIPTIONS.get(metrics["target"], metrics["target"])
    rows, patients = metrics["rows"], metrics["patients"]
    versions = metrics.get("versions", {})
    parameters = ", ".join(f"{k}={v}" for k, v in sorted(metrics.get("parameters", {}).items())) or "defaults"
    top = ", ".join(feature_label(r["feature"]) for r in list(importances)[:TOP_INPUTS]) or "-"
    lines = [
        "# Model card: {} for {}".format(metrics["algorithm"], metrics["target"]),
        "",
        'Sections after Mitchell et al., "Model Cards for Model Reporting" (FAT* 2019). Figures are '
        "this version's, on its held-out patients; the full report is [report.md](report.md).",
        "",
        "## Model details",
        "",
        "- Training job: {}; card written {}.".format(
            f"`{job_name}`" if job_name else "(run outside SageMaker)", created.strftime("%Y-%m-%d %H:%M UTC")
        ),
        "- Model: scikit-learn {} ({}), seed {}; one Pipeline with its feature preparation inside.".format(
            metrics["algorithm"], parameters, metrics.get("seed", "-")
        ),
        "- Output: the probability that the encounter is {}; the encounter is flagged when it is at "
        "least the decision threshold {:.4f} ({}).".format(
            target, point["threshold"], threshold_text(metrics)
        ),
        "- Inputs: {} columns of the encounter record (demographics, admission, stay, diagnoses by "
        "ICD-9 category where the training data has 30 or more encounters of it, else by chapter, "
        "lab results, diabetes medications){}; no identifier.".format(
            len(metrics.get("features", [])),
            " and {} patient-history columns".format(len(metrics.get("history", {}).get("columns", [])))
            if metrics.get("history", {}).get("columns")
            else "",
        ),
        "- Software: Python {}, scikit-learn {}, pandas {}, numpy {}.".format(
            versions.get("python", "-"),
            versions.get("scikit-learn", "-"),
            versions.get("pandas", "-"),
            versions.get("numpy", "-"),
        ),
        "",
        "## Intended use",
        "",
        "- Decision support at discharge for adult inpatients with diabetes: flag the encounters at "
        f"higher risk of being {target} so that a care team can prioritise follow-up (a call, an earlier "
        "appointment, medication reconciliation). A person decides; the flag adds care, it never "
        "removes any.",
        "- Users: care coordinators and clinicians of hospitals like the ones in the data, after "
        "checking the model on their own patients.",
        "",
        "Out of scope:",
        "",
        "- denying, delaying or rationing care or coverage, insurance pricing, or judging clinicians or "
        "hospitals;",
        "- a diagnosis or a prognosis of an individual patient;",
        "- patients outside the data's population: without diabetes, children, outpatient or emergency-only "
        "visits, stays over 14 days, health systems outside the US;",
        "- encounters ending in death or hospice (not scored: no readmission can follow them);",
        "- use on current records without re-validation (the data are 1999-2008, coded in ICD-9).",
        "",
        "## Data",
        "",
        '- Source: UCI Machine Learning Repository, "Diabetes 130-US hospitals for years 1999-2008" '
        "(Strack et al. 2014, CC BY 4.0): 101,766 inpatient encounters of diabetic patients, stays of 1-14 "
        "days with lab tests and medications, from 130 US hospitals.",
        "- This run: {:,} input rows. {}".format(rows["input"], exclusion_text(metrics)),
        "- Split by patient: a seeded draw (seed {}) puts {:.0%} of the patients, with all their "
        "encounters, in the held-out set: {:,} training encounters of {:,} patients, {:,} held-out "
        "encounters of {:,} patients. The split is not by time.".format(
            metrics.get("seed", "-"),
            float(metrics.get("validation_fraction", 0.0)),
            rows["training"],
            patients["training"],
            rows["validation"],
            patients["validation"],
        ),
        "- Prevalence ({}): {} of the training encounters, {} of the held-out ones.".format(
            target,
            _pct(metrics.get("positive_share", {}).get("training")),
            _pct(point["prevalence"]),
        ),
        "",
        *history_lines(metrics),
        "## Metrics (held-out patients)",
        "",
        "| metric | value |",
        "|---|---|",
        "| ROC AUC | {:.4f} |".format(model["roc_auc"]),
        "| PR AUC (average precision; no skill = prevalence) | {:.4f} |".format(model["pr_auc"]),
        "| log loss | {:.4f} |".format(model["log_loss"]),
        "| Brier score | {:.4f} |".format(model["brier"]),
        "| decision threshold | {:.4f} |".format(point["threshold"]),
        "| prevalence | {} |".format(_pct(point["prevalence"])),
        "| flagged at the threshold (`positive_rate`) | {} |".format(_pct(point["flag_rate"])),
        "| sensitivity / specificity at the threshold | {} / {} |".format(
            _pct(point["sensitivity"]), _pct(point["specificity"])
        ),
        "| precision (PPV) at the threshold | {} |".format(_pct(point["precision"])),
        "",
    ]
    comparison = metrics.get("comparison")
    if comparison:
        low, high = comparison["interval"]
        lines += [
            "Comparison with the champion on the same held-out rows (DeLong's paired test): ROC AUC "
            "difference {:+.4f}, {:.0%} interval [{:+.4f}, {:+.4f}], p = {:.3g}. The gate promotes a model "
            "only when the interval's lower end is above -MAX_AUC_DROP (0 by default: shown better than "
            "the champion).".format(
                comparison["roc_auc_difference"], comparison["confidence"], low, high, comparison["p_value"]
            ),
        ]
    elif metrics.get("champion_error"):
        lines.append("The champion could not be scored: {}.".format(metrics["champion_error"]))
    else:
        lines.append("No champion was scored on these rows (none was given to this training job).")
    lines += [
        "",
        f"Strongest inputs (permutation importance, report.md): {top}.",
        "",
        "## Subgroups",
        "",
        "Race, gender and age are sensitive characteristics and inputs of the model; the payer code is "
        'an input and a proxy of socioeconomic status. Missing values are the group "unknown". Per '
        "group, report.md and subgroups.json give encounters, readmitted, ROC AUC with its 95% interval "
        "(with at least {n} readmitted and {n} not), calibration and the share flagged.".format(
            n=subgroups["min_per_class_for_roc_auc"]
        ),
        "",
        *subgroup_summary_lines(subgroups),
        "",
        "## Ethical considerations",
        "",
        "- The model reads race, gender, age and payer. Readmission reflects access to care as well as "
        "health, so the model can learn, and repeat, differences in access between groups. Check the "
        "subgroup table before use, and consider whether these inputs should stay.",
        "- A missed readmission (false negative) means a patient without the extra follow-up; a false "
        "alarm costs a follow-up that was not needed. The threshold trades one against the other: at "
        "{}, {} of readmitted encounters are flagged and {} of flagged encounters are readmitted.".format(
            f"{point['threshold']:.4f}", _pct(point["sensitivity"]), _pct(point["precision"])
        ),
        "- The data are de-identified; scoring files and predictions of real patients are health data.",
        "",
        "## Caveats and limits",
        "",
        "- `encounter_id` is the only proxy of time: the data carry no dates, so the held-out figures "
        "measure new patients from the same period, not future ones.",
        "- 1999-2008 US data from 130 hospitals: practice, drugs and coding have changed since (ICD-9 "
        "diagnoses; US hospitals code in ICD-10 since 2015). Re-validate before any use on current data.",
        "- Readmissions are those the source database recorded; one it did not see counts as none.",
        "- Many inputs are often missing (weight in most encounters, payer and specialty in about half); "
        "missing is a value of its own to the model.",
        (
            "- The threshold maximises F1 on training rows; it is not a clinical cost trade-off. A site "
            "should choose its own from the precision-recall curve."
            if metrics.get("threshold_rule") != "fixed"
            else "- The threshold was fixed by the run's configuration, not derived from these data."
        ),
        f"- Calibration is shown only for probability bins of at least {MIN_CALIBRATION_COUNT} encounters; "
        "high probabilities are rare, so the model's calibration there is unknown.",
        "- Patients have several encounters; all of a patient's are on one side of the split, but the "
        "metrics weigh frequent patients more.",
        "- Permutation importance measures what the model relies on, not causes.",
        "",
        f"Dataset schema version {schema.SCHEMA_VERSION}; report.md decodes the codes of the `*_id` inputs.",
    ]
    return "\n".join(lines) + "\n"


def write_model_card(
    report_dir: str,
    metrics: dict[str, Any],
    subgroups: dict[str, Any],
    importances: Sequence[dict[str, Any]],
    job_name: Optional[str] = None,
) -> str:
    """Write model_card.md into `report_dir` (beside report.md); returns its path."""
    path = os.path.join(report_dir, MODEL_CARD_FILE)
    with open(path, "w") as handle:
        handle.write(model_card_text(metrics, subgroups, importances, job_name=job_name))
    return path
