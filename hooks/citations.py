"""The sources the rules cite, so every card can say where its advice comes from.

Only primary sources are cited (RULES.md v2 header): guidelines, labels and the studies the seed
documents in `shared/seeds/` rest on, each with a link a clinician can open. A seed file is the
project's own reading material, not a clinical source to show a clinician, so none is cited here;
each constant below says which seed statements it stands behind. Cards about the record itself
(data that could not be read) cite `DATA_CHECK`, which says plainly that it is not clinical advice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Citation:
    key: str
    label: str
    url: str | None = None
    clinical: bool = True  # False only for DATA_CHECK: a card about the data, not about treatment


# Seed 001/002/004 "IVIG 1 g/kg single dose, may repeat", pregnancy, the treatment thresholds.
ASH19 = Citation(
    "ASH19",
    "ASH 2019 guidelines for immune thrombocytopenia (Neunert et al., Blood Adv 2019;3:3829)",
    "https://doi.org/10.1182/bloodadvances.2019000966",
)
# Seed 001 "secondary ITP": HCV-associated ITP (IVIG first) and HIV-associated ITP (antiretrovirals
# first unless significant bleeding) are recommendations of the 2011 guideline, not of ASH19.
ASH11 = Citation(
    "ASH11",
    "ASH 2011 evidence-based practice guideline for immune thrombocytopenia (Neunert et al., Blood 2011;117:4190)",
    "https://doi.org/10.1182/blood-2010-08-302984",
)
# Seed 001/004 emergency treatment (IVIG + corticosteroid + platelet transfusion together), the
# platelet count before treatment, transfusion rarely alone in ITP.
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
# Seed 003 is a news item about this case series.
PADMANABHAN17 = Citation(
    "PADMANABHAN17",
    "IVIG for severe refractory HIT, 3 patients (Padmanabhan et al., Chest 2017)",
    "https://doi.org/10.1016/j.chest.2017.03.050",
)
LABEL = Citation(
    "LABEL",
    "US prescribing information of IVIG products (boxed warning: thrombosis, renal dysfunction)",
    "https://dailymed.nlm.nih.gov/dailymed/search.cfm?query=immune+globulin+intravenous",
)
SMPC = Citation(
    "SMPC",
    "EU summary of product characteristics of normal immunoglobulin for IV use (Privigen, section 4.2)",
    "https://www.ema.europa.eu/en/medicines/human/EPAR/privigen",
)
AHA17 = Citation(
    "AHA17",
    "AHA 2017 scientific statement on Kawasaki disease (McCrindle et al., Circulation 2017;135:e927)",
    "https://doi.org/10.1161/CIR.0000000000000484",
)
# Seed 000 is a summary of this study.
KH25 = Citation(
    "KH25",
    "Khalife et al., Transfus Apher Sci 2025;64(3):104125",
    "https://pubmed.ncbi.nlm.nih.gov/40286641/",
)
# Seed 001 "septic thrombocytopenia": the randomised trial of IVIG 0.4 g/kg × 3 days (29 patients, no DIC).
SEPSIS91 = Citation(
    "SEPSIS91",
    "Treatment of septic thrombocytopenia with immune globulin (J Clin Immunol 1991;11:363)",
    "https://doi.org/10.1007/BF00918802",
)
# Seed 001 "neonatal ITP": IVIG 0.4 g/kg/day × 5 in 4 newborns (+21 and +33 ×10⁹/L at 24 and 48 h).
NEONATAL87 = Citation(
    "NEONATAL87",
    "High-dose IV gammaglobulin in neonatal immune thrombocytopenia (Am J Hematol 1987;26:247)",
    "https://doi.org/10.1002/ajh.2830260306",
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
DATA_CHECK = Citation(
    "DATA",
    "Data check of this service: about the record, not clinical advice",
    clinical=False,
)
