"""What the coded `*_id` columns mean: `data/IDs_mapping.csv` of the dataset, as a Python literal.

The training container has no `data/` folder and the code bundle ships only the package's `.py`
files (pipelines/bundle.py), so the descriptions live here; tests/pipelines/test_model_report.py
keeps them equal to the CSV (`python -m pipelines.id_mapping data/IDs_mapping.csv` prints the
literal again after the CSV changes). Standard library only.
"""

# ruff: noqa: E501 (the descriptions are the CSV's, verbatim)
import csv
import io
import sys
from typing import Optional

# column -> code (as the CSV spells it, a string) -> description, whitespace trimmed.
ID_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "admission_type_id": {
        "1": "Emergency",
        "2": "Urgent",
        "3": "Elective",
        "4": "Newborn",
        "5": "Not Available",
        "6": "NULL",
        "7": "Trauma Center",
        "8": "Not Mapped",
    },
    "discharge_disposition_id": {
        "1": "Discharged to home",
        "2": "Discharged/transferred to another short term hospital",
        "3": "Discharged/transferred to SNF",
        "4": "Discharged/transferred to ICF",
        "5": "Discharged/transferred to another type of inpatient care institution",
        "6": "Discharged/transferred to home with home health service",
        "7": "Left AMA",
        "8": "Discharged/transferred to home under care of Home IV provider",
        "9": "Admitted as an inpatient to this hospital",
        "10": "Neonate discharged to another hospital for neonatal aftercare",
        "11": "Expired",
        "12": "Still patient or expected to return for outpatient services",
        "13": "Hospice / home",
        "14": "Hospice / medical facility",
        "15": "Discharged/transferred within this institution to Medicare approved swing bed",
        "16": "Discharged/transferred/referred another institution for outpatient services",
        "17": "Discharged/transferred/referred to this institution for outpatient services",
        "18": "NULL",
        "19": "Expired at home. Medicaid only, hospice.",
        "20": "Expired in a medical facility. Medicaid only, hospice.",
        "21": "Expired, place unknown. Medicaid only, hospice.",
        "22": "Discharged/transferred to another rehab fac including rehab units of a hospital .",
        "23": "Discharged/transferred to a long term care hospital.",
        "24": "Discharged/transferred to a nursing facility certified under Medicaid but not certified under Medicare.",
        "25": "Not Mapped",
        "26": "Unknown/Invalid",
        "30": "Discharged/transferred to another Type of Health Care Institution not Defined Elsewhere",
        "27": "Discharged/transferred to a federal health care facility.",
        "28": "Discharged/transferred/referred to a psychiatric hospital of psychiatric distinct part unit of a hospital",
        "29": "Discharged/transferred to a Critical Access Hospital (CAH).",
    },
    "admission_source_id": {
        "1": "Physician Referral",
        "2": "Clinic Referral",
        "3": "HMO Referral",
        "4": "Transfer from a hospital",
        "5": "Transfer from a Skilled Nursing Facility (SNF)",
        "6": "Transfer from another health care facility",
        "7": "Emergency Room",
        "8": "Court/Law Enforcement",
        "9": "Not Available",
        "10": "Transfer from critial access hospital",
        "11": "Normal Delivery",
        "12": "Premature Delivery",
        "13": "Sick Baby",
        "14": "Extramural Birth",
        "15": "Not Available",
        "17": "NULL",
        "18": "Transfer From Another Home Health Agency",
        "19": "Readmission to Same Home Health Agency",
        "20": "Not Mapped",
        "21": "Unknown/Invalid",
        "22": "Transfer from hospital inpt/same fac reslt in a sep claim",
        "23": "Born inside this hospital",
        "24": "Born outside this hospital",
        "25": "Transfer from Ambulatory Surgery Center",
        "26": "Transfer from Hospice",
    },
}


def parse_ids_mapping(text: str) -> dict[str, dict[str, str]]:
    """The CSV's blocks (a `<column>,description` header, `code,description` rows, a blank `,` line
    between blocks) as column -> code -> description."""
    mapping: dict[str, dict[str, str]] = {}
    current: Optional[str] = None
    for row in csv.reader(io.StringIO(text)):
        if not row or all(not cell.strip() for cell in row):
            current = None
            continue
        if current is None:
            current = row[0].strip()
            mapping[current] = {}
            continue
        mapping[current][row[0].strip()] = row[1].strip()
    return mapping


def describe(column: str, code: object) -> str:
    """`code`'s description for one of the coded columns ("unknown" for a missing value, the code
    itself when the mapping has none)."""
    if code is None or (isinstance(code, float) and code != code):
        return "unknown"
    text = str(code).strip()
    if text.endswith(".0"):  # a code read as a number
        text = text[:-2]
    return ID_DESCRIPTIONS.get(column, {}).get(text, text)


def main(argv: Optional[list[str]] = None) -> int:
    """Print the ID_DESCRIPTIONS literal of a mapping CSV (to paste above after the CSV changed)."""
    args = sys.argv[1:] if argv is None else argv
    with open(args[0] if args else "data/IDs_mapping.csv", newline="") as handle:
        mapping = parse_ids_mapping(handle.read())
    print("ID_DESCRIPTIONS: dict[str, dict[str, str]] = {")
    for column, codes in mapping.items():
        print(f"    {column!r}: {{")
        for code, description in codes.items():
            print(f"        {code!r}: {description!r},")
        print("    },")
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
