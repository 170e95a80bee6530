"""The sources the rules cite, so every card can say where its advice comes from.

Seed documents are the clinical summaries this service was built from (`shared/seeds/`); the
guidelines are the primary literature behind them. A card's `source` names the rule's first
citation; its detail lists all of them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Citation:
    key: str
    label: str
    url: str | None = None


S000 = Citation(
    "S000",
    "Seed 000: IVIG in maternal thrombocytopenia (BSTQ summary of Khalife et al. 2025)",
    "https://pubmed.ncbi.nlm.nih.gov/40286641/",
)
S001 = Citation(
    "S001",
    "Seed 001: IVIG in thrombocytopenia (clinical summary)",
)
S002 = Citation(
    "S002",
    "Seed 002: How IVIG increases platelet counts (clinical summary)",
)
S003 = Citation(
    "S003",
    "Seed 003: IVIG for refractory HIT (Transfusion News on Padmanabhan et al., CHEST 2017)",
    "https://doi.org/10.1016/j.chest.2017.03.050",
)
S004 = Citation(
    "S004",
    "Seed 004: IVIG and platelet transfusion together (clinical summary)",
)
ASH19 = Citation(
    "ASH19",
    "ASH 2019 guidelines for immune thrombocytopenia (Neunert et al., Blood Adv 2019;3:3829)",
    "https://doi.org/10.1182/bloodadvances.2019000966",
)
ICR19 = Citation(
    "ICR19",
    "International consensus report on ITP (Provan et al., Blood Adv 2019;3:3780)",
    "https://doi.org/10.1182/bloodadvances.2019000812",
)
ASH18 = Citation(
    "ASH18",
    "ASH 2018 guidelines for heparin-induced thrombocytopenia (Cuker et al., Blood Adv 2018;2:3360)",
    "https://doi.org/10.1182/bloodadvances.2018024489",
)
LABEL = Citation(
    "LABEL",
    "US prescribing information of IVIG products (boxed warning: thrombosis, renal dysfunction)",
    "https://dailymed.nlm.nih.gov/dailymed/search.cfm?query=immune+globulin+intravenous",
)
KH25 = Citation(
    "KH25",
    "Khalife et al., Transfus Apher Sci 2025;64(3):104125",
    "https://pubmed.ncbi.nlm.nih.gov/40286641/",
)
# --- patient facts of RULES.md v2 (computed eGFR, HIT kept as an allergy) -------------------------
INKER21 = Citation(
    "INKER21",
    "CKD-EPI 2021 creatinine equation without race (Inker et al., N Engl J Med 2021;385:1737)",
    "https://doi.org/10.1056/NEJMoa2102953",
)
SCHWARTZ09 = Citation(
    "SCHWARTZ09",
    "Bedside Schwartz equation for children (Schwartz et al., J Am Soc Nephrol 2009;20:629)",
    "https://doi.org/10.1681/ASN.2008030287",
)
CTCAE5 = Citation(
    "CTCAE5",
    "Common Terminology Criteria for Adverse Events v5.0 (platelet count decreased)",
    "https://ctep.cancer.gov/protocoldevelopment/electronic_applications/ctc.htm",
)
RULE_BOOK = Citation(
    "RULEBOOK",
    "ivig-cds rule book: data quality policy (RULES.md)",
)
