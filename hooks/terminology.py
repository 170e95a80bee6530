"""Every code, code set, product name and unit the service recognises, in one reviewable place.

Verification: each code below was checked against a published source on 2026-11-22 (ICD-10-CM
against the CMS FY2026 tabular list; LOINC, SNOMED CT, RxNorm, CVX and ATC against VSAC/OMOP
value-set exports and FHIR implementation guides; UCUM with the NLM ucum-lhc validator). Codes
that could not be verified are deliberately absent (for example the RxNorm brand-name RxCUIs of
IVIG products: IVIG is recognised by CVX, ATC and product name instead). `K/uL` and `G/L` are not
UCUM (they parse as kelvin and gauss) but common local spellings, accepted on input only.

Why one module: a terminology error is a clinical error, so the codes must be checked once, by one
reviewer, against their source. Each set names where its codes come from (RULES.md "Shared
definitions"); nothing here is invented. Matching is by system *and* code: a bare code from an
unknown system never counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10_WHO = "http://hl7.org/fhir/sid/icd-10"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
ICD10_SYSTEMS = frozenset({ICD10_CM, ICD10_WHO})


@dataclass(frozen=True)
class Code:
    """One coding the service emits (for example in a suggested ServiceRequest)."""

    system: str
    code: str
    display: str

    def as_fhir(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


# --- Observations (LOINC) ------------------------------------------------------------------
PLATELET_COUNT_LOINC = frozenset({"777-3", "778-1", "26515-7", "49497-1", "74464-9"})
# Platelets counted in plasma (platelet-rich plasma, apheresis products) are not the patient's count.
PLASMA_PLATELET_LOINC = frozenset({"13056-7", "26516-5"})
IPF_LOINC = frozenset({"71693-6"})
IGA_LOINC = frozenset({"2458-8"})
CREATININE_LOINC = frozenset({"2160-0"})
EGFR_LOINC = frozenset({"33914-3", "77147-7", "48642-3", "48643-1", "62238-1", "98979-8"})
WEIGHT_LOINC = frozenset({"29463-7", "3141-9"})
HEIGHT_LOINC = frozenset({"8302-2"})
PREGNANCY_STATUS_LOINC = "82810-3"
PREGNANT_ANSWER_LOINC = "LA15173-0"
UNKNOWN_ANSWER_LOINC = "LA4489-6"  # "Unknown": says nothing either way
EXPECTED_DELIVERY_LOINC = "11778-8"

CBC_PANEL = Code(LOINC, "58410-2", "CBC panel - Blood by Automated count")
IGA_TEST = Code(LOINC, "2458-8", "IgA [Mass/volume] in Serum or Plasma")
CREATININE_TEST = Code(LOINC, "2160-0", "Creatinine [Mass/volume] in Serum or Plasma")
PLATELET_TRANSFUSION = Code(SNOMED, "180208003", "Intravenous blood transfusion of platelets")

# Every Observation code a prefetch template asks for, grouped as the templates group them.
PLATELET_TEMPLATE_CODES = tuple(sorted(PLATELET_COUNT_LOINC | IPF_LOINC))
LAB_TEMPLATE_CODES = tuple(
    sorted(
        WEIGHT_LOINC
        | HEIGHT_LOINC
        | IGA_LOINC
        | CREATININE_LOINC
        | EGFR_LOINC
        | {PREGNANCY_STATUS_LOINC, EXPECTED_DELIVERY_LOINC}
    )
)

# --- Units ---------------------------------------------------------------------------------
# Platelet counts to 10^9/L. UCUM spellings plus the common non-UCUM lab spellings (K/uL).
PLATELET_UNIT_FACTORS: dict[str, float] = {
    "10*3/uL": 1.0,
    "10*9/L": 1.0,
    "K/uL": 1.0,
    "10*3/mm3": 1.0,
    "G/L": 1.0,
    "/uL": 0.001,
    "/mm3": 0.001,
    "{cells}/uL": 0.001,
}
WEIGHT_UNIT_FACTORS: dict[str, float] = {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237}
HEIGHT_UNIT_FACTORS: dict[str, float] = {"cm": 1.0, "m": 100.0, "mm": 0.1, "[in_i]": 2.54, "in": 2.54}
IGA_UNIT_FACTORS: dict[str, float] = {"mg/dL": 1.0, "g/L": 100.0, "mg/L": 0.1}
CREATININE_UNIT_FACTORS: dict[str, float] = {"mg/dL": 1.0, "umol/L": 1 / 88.42}
EGFR_UNIT_FACTORS: dict[str, float] = {"mL/min/{1.73_m2}": 1.0, "mL/min/1.73m2": 1.0, "mL/min": 1.0}
IPF_UNIT_FACTORS: dict[str, float] = {"%": 1.0}


# --- Conditions ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ConditionSet:
    """A clinical concept as SNOMED CT codes plus ICD-10 codes or code prefixes.

    ICD-10 entries match the code itself and every more specific code under it ("I60" matches
    "I60.9"), which is how ICD-10 chapters and categories are meant to be read.
    """

    snomed: frozenset[str] = frozenset()
    icd10_prefixes: tuple[str, ...] = ()

    def matches(self, system: str | None, code: str | None) -> bool:
        if not system or not code:
            return False
        if system == SNOMED:
            return code in self.snomed
        if system in ICD10_SYSTEMS:
            return any(_icd10_under(code.upper(), prefix) for prefix in self.icd10_prefixes)
        return False


def _icd10_under(code: str, prefix: str) -> bool:
    """True when `code` is `prefix` or more specific than it.

    "I60" covers "I60.9" (a category and its subcodes), "Z86.71" covers "Z86.718", and a lone
    chapter letter ("O") covers the whole chapter. "I6" is never a prefix here, so "I60" cannot
    accidentally cover "I600"-style codes of another category.
    """
    if code == prefix:
        return True
    if len(prefix) == 1 or "." in prefix:
        return code.startswith(prefix)
    return code.startswith(prefix + ".")


ITP = ConditionSet(snomed=frozenset({"32273002", "2897005"}), icd10_prefixes=("D69.3",))
THROMBOCYTOPENIA = ConditionSet(snomed=frozenset({"302215000"}), icd10_prefixes=("D69.6",))
HIT = ConditionSet(snomed=frozenset({"73397007"}), icd10_prefixes=("D75.821", "D75.822", "D75.828", "D75.829"))
IGA_DEFICIENCY = ConditionSet(snomed=frozenset({"190979003"}), icd10_prefixes=("D80.2",))
CKD = ConditionSet(snomed=frozenset({"709044004"}), icd10_prefixes=("N18",))
# ICD-10-CM E08 (due to an underlying condition) and E09 (drug-induced: steroid diabetes in ITP) too.
DIABETES = ConditionSet(
    snomed=frozenset({"73211009", "44054006"}), icd10_prefixes=("E08", "E09", "E10", "E11", "E13")
)
# Venous and arterial thrombosis, current or past: the label's risk factor is a history of either.
# ICD-10-CM I21 acute and I25.2 old myocardial infarction, I74 arterial embolism and thrombosis,
# I81 portal vein thrombosis, Z86.73 history of TIA or cerebral infarction.
THROMBOSIS = ConditionSet(
    snomed=frozenset({"128053003", "59282003", "230690007"}),
    icd10_prefixes=("I21", "I25.2", "I26", "I63", "I74", "I80", "I81", "I82", "Z86.71", "Z86.73"),
)
SEPSIS = ConditionSet(snomed=frozenset({"91302008"}), icd10_prefixes=("A41",))
DIC = ConditionSet(snomed=frozenset({"67406007"}), icd10_prefixes=("D65",))
VOLUME_DEPLETION = ConditionSet(snomed=frozenset({"34095006"}), icd10_prefixes=("E86",))
PREGNANCY = ConditionSet(snomed=frozenset({"77386006"}), icd10_prefixes=("Z33.1", "O"))
# The puerperium inside the O chapter: postpartum, not pregnant (still an IVIG thrombosis risk factor).
POSTPARTUM = ConditionSet(icd10_prefixes=("O85", "O86", "O87", "O89", "O90", "Z39"))
HCV = ConditionSet(snomed=frozenset({"50711007", "128302006"}), icd10_prefixes=("B17.1", "B18.2", "B19.2"))
CIDP = ConditionSet(snomed=frozenset({"128209004"}), icd10_prefixes=("G61.81",))
HIV = ConditionSet(snomed=frozenset({"86406008"}), icd10_prefixes=("B20",))

# Intracranial: SNOMED CT 1386000 and, since no subsumption service is at hand, its common children
# as EHRs code them (21454007 subarachnoid, 274100004 cerebral, 35486000 subdural haemorrhage);
# ICD-10 I60–I62 and the traumatic S06.4 epidural, S06.5 subdural, S06.6 subarachnoid haemorrhage.
CRITICAL_BLEEDING = ConditionSet(
    snomed=frozenset({"1386000", "21454007", "274100004", "35486000"}),
    icd10_prefixes=("I60", "I61", "I62", "S06.4", "S06.5", "S06.6"),
)
# GI (74474003, with 37372002 upper and 87763006 lower GI haemorrhage) and genitourinary bleeding.
SIGNIFICANT_BLEEDING = ConditionSet(
    snomed=frozenset({"74474003", "37372002", "87763006", "34436003"}),
    icd10_prefixes=("K92.0", "K92.1", "K92.2", "R31"),
)
# Any other bleed (SNOMED CT 131148009 Bleeding, ICD-10 R58 Haemorrhage NEC): not a class by itself,
# but critical when flagged life-threatening (RULES.md "any bleed flagged life-threatening").
ANY_BLEEDING = ConditionSet(snomed=frozenset({"131148009"}), icd10_prefixes=("R58",))

# --- Medications ---------------------------------------------------------------------------
IVIG_RXNORM: frozenset[str] = frozenset()  # filled only with RxCUIs verified against RxNorm
IVIG_CVX = frozenset({"87"})
IVIG_ATC = frozenset({"J06BA02"})
IVIG_PRODUCT_NAMES = (
    "privigen",
    "gammagard liquid",
    "gammagard s/d",
    "gamunex-c",
    "gamunex",
    "gammaked",
    "octagam",
    "panzyga",
    "flebogamma",
    "bivigam",
    "asceniv",
    "gammaplex",
)
# IgA-depleted IVIG (IgA ≤ 2.2 µg/mL in 5 % solution per its label): the product to suggest in IgA deficiency.
IGA_DEPLETED_PRODUCT_NAMES = ("gammagard s/d",)
SUBCUTANEOUS_IG_NAMES = ("hizentra", "cuvitru", "hyqvia", "xembify", "cutaquig")
GENERIC_IG_NAMES = ("immune globulin", "immunoglobulin", "immune globulin (human)")
# How orders and allergy lists often name the product, as words: "IVIG", "IGIV" (the CVX name), "SCIG".
IVIG_ABBREVIATIONS = ("ivig", "igiv")
SCIG_ABBREVIATIONS = ("scig",)
IG_ABBREVIATIONS = IVIG_ABBREVIATIONS + SCIG_ABBREVIATIONS
_STANDALONE_WORD = re.compile(r"(?<![\w-])([a-z]+)(?![\w-])")


def standalone_words(text: str) -> set[str]:
    """The words of `text` not joined to another by a hyphen: "IVIG" yes, the "IGIV" of "CMV-IGIV" no."""
    return set(_STANDALONE_WORD.findall(text.lower()))
# Hyperimmune and anti-D globulins say "immune globulin" too but are not IVIG (anti-D is its own ITP drug).
HYPERIMMUNE_IG_WORDS = (
    "rho(d)",
    "anti-d",
    "hepatitis b",
    "rabies",
    "tetanus",
    "botulism",
    "cytomegalovirus",
    "varicella",
    "anthrax",
    "vaccinia",
    "antithymocyte",
    "winrho",
    "rhophylac",
    # CMV-IGIV, HBIG/Hep B IGIV, RSV-IGIV, VZIG: hyperimmune products whose names end in "IGIV".
    "cmv",
    "cytogam",
    "hep b",
    "hbig",
    "hepagam",
    "nabi-hb",
    "rsv",
    "respigam",
    "vzig",
    "varizig",
    "vigiv",
)

CORTICOSTEROID_RXNORM = {
    "8640": "prednisone",
    "8638": "prednisolone",
    "6902": "methylprednisolone",
    "3264": "dexamethasone",
}
HEPARIN_RXNORM = {"5224": "heparin", "67108": "enoxaparin"}
# Heparins by name, generic and brand (brands are how many orders are written: Lovenox and Clexane
# are enoxaparin, Fragmin dalteparin, Innohep tinzaparin, Fraxiparine nadroparin, Hep-Lock heparin).
LMWH_NAMES = (
    "enoxaparin",
    "dalteparin",
    "tinzaparin",
    "nadroparin",
    "heparin",
    "lovenox",
    "clexane",
    "fragmin",
    "innohep",
    "fraxiparin",
    "hep-lock",
)

PREDNISONE = Code(RXNORM, "8640", "prednisone")
IGA_DEPLETED_IVIG_TEXT = "Immune globulin intravenous, IgA-depleted (Gammagard S/D)"

# Estrogens add to IVIG's thrombosis risk (label). No RxNorm code verified: recognised by name.
ESTROGEN_NAMES = ("estradiol", "estrogen", "ethinylestradiol", "ethinyl estradiol", "estrogens, conjugated")

# Every code and name `orders.classify_medication` recognises, lower-cased: a medication whose JSON
# contains none of them cannot be one the rules read, so a long medication history is filtered on
# raw JSON before parsing (hooks/data_needs.py). tests/test_data_needs.py holds the two together.
MEDICATION_KEYWORDS: tuple[str, ...] = tuple(
    sorted(
        {
            *CORTICOSTEROID_RXNORM,
            *CORTICOSTEROID_RXNORM.values(),
            *HEPARIN_RXNORM,
            *HEPARIN_RXNORM.values(),
            *IVIG_RXNORM,
            *IVIG_CVX,
            *(code.lower() for code in IVIG_ATC),
            *IVIG_PRODUCT_NAMES,
            *SUBCUTANEOUS_IG_NAMES,
            *GENERIC_IG_NAMES,
            *IG_ABBREVIATIONS,
            *LMWH_NAMES,
            *ESTROGEN_NAMES,
        }
    )
)

# ServiceRequest.category of a surgical procedure: an urgent one means a rapid platelet rise is needed.
SURGICAL_PROCEDURE_SNOMED = "387713003"
URGENT_PRIORITIES = frozenset({"urgent", "asap", "stat"})

# Skin-only bleeding (petechiae, ecchymosis) is "minor/none" for the bleeding classes.
SKIN_BLEEDING = ConditionSet(snomed=frozenset({"271813007", "302227002"}))

INTRAVENOUS_ROUTE_SNOMED = frozenset({"47625008"})
SUBCUTANEOUS_ROUTE_SNOMED = frozenset({"34206005"})

ANAPHYLAXIS = ConditionSet(snomed=frozenset({"39579001"}))
# Condition.severity meaning "life threatening": makes any bleed critical (RULES.md "Bleeding").
LIFE_THREATENING_SEVERITY = frozenset({"442452003"})
# Anti-IgA antibody lab codes: none verified yet, so recognition is by the result's name.
ANTI_IGA_LOINC: frozenset[str] = frozenset()
POSITIVE_ANSWERS = frozenset({"LA6576-8"})


# --- IVIG indications and the IgA-depleted product (dose-check regimens; issue 9) ------------------
# Each code was checked on 2026-11-23 against a public code list:
# - Kawasaki disease: ICD-10-CM M30.3 "Mucocutaneous lymph node syndrome [Kawasaki]" and SNOMED CT
#   75053002 "Acute febrile mucocutaneous lymph node syndrome" (HL7 ICSR AE-reporting IG, ValueSet
#   KawasakiDiseaseDiagnosisCodes; ICD-10-CM tabular).
# - Guillain-Barré syndrome: ICD-10-CM G61.0 (HL7 ICSR IG ValueSet GBSDiagnosisCodes; ICD-10-CM
#   tabular) and SNOMED CT 40956001 "Guillain-Barre syndrome (disorder)" (CDC PHIN VADS value sets).
#   G61.81 is CIDP (the `CIDP` set above), not GBS, although that IG's set lists both.
# - Primary immunodeficiency (antibody and combined defects the IVIG labels treat): ICD-10-CM D80
#   except D80.2 (selective IgA deficiency: no IVIG indication, and a reason for an IgA-depleted
#   product) and D80.7 (transient hypogammaglobulinaemia of infancy), D81 (combined
#   immunodeficiencies, SCID), D82.0 (Wiskott-Aldrich syndrome), D83 (common variable
#   immunodeficiency), per the ICD-10(-CM) tabular D80–D84 block; SNOMED CT 58606001 "Primary
#   immune deficiency disorder" (Swiss CH-EPR term value sets, CDC PHIN VADS) and 23238000 "Common
#   variable agammaglobulinemia" (HL7 COVID-19 Library IG, immunocompromised-condition value set).
KAWASAKI = ConditionSet(snomed=frozenset({"75053002"}), icd10_prefixes=("M30.3",))
GUILLAIN_BARRE = ConditionSet(snomed=frozenset({"40956001"}), icd10_prefixes=("G61.0",))
PRIMARY_IMMUNODEFICIENCY = ConditionSet(
    snomed=frozenset({"58606001", "23238000"}),
    icd10_prefixes=("D80.0", "D80.1", "D80.3", "D80.4", "D80.5", "D80.6", "D80.8", "D80.9", "D81", "D82.0", "D83"),
)
NDC = "http://hl7.org/fhir/sid/ndc"
# GAMMAGARD S/D, the IgA-depleted IVIG (Takeda, BLA 103133): NDC package code 0944-2658-04 (the kit),
# product 0944-2658, checked against the FDA NDC directory (openFDA drug/ndc). A suggestion that
# replaces a product carries this coding first, so a client can act on it (text alone is refused).
IGA_DEPLETED_IVIG_NDC = Code(NDC, "0944-2658-04", "GAMMAGARD S/D (immune globulin intravenous, human), kit")
IVIG_ATC_CODE = Code(ATC, "J06BA02", "immunoglobulins, normal human, for intravascular adm.")
#: The codings of a product a suggestion names by its text (coding[0] is the one a client acts on).
PRODUCT_CODINGS: dict[str, tuple[Code, ...]] = {IGA_DEPLETED_IVIG_TEXT: (IGA_DEPLETED_IVIG_NDC, IVIG_ATC_CODE)}
# --- end of the IVIG indications block ----------------------------------------------------------


def codings_of(concept: object) -> Iterable[tuple[str | None, str | None]]:
    """(system, code) pairs of a CodeableConcept model, tolerating absent parts."""
    for coding in getattr(concept, "coding", None) or ():
        yield coding.system, coding.code


def has_loinc(concept: object, codes: frozenset[str]) -> str | None:
    """The first LOINC code of `concept` in `codes`, or None."""
    for system, code in codings_of(concept):
        if system == LOINC and code in codes:
            return code
    return None


def concept_text(concept: object) -> str:
    """A human label for a CodeableConcept: its text, else the first display, else the first code."""
    if concept is None:
        return ""
    text = getattr(concept, "text", None)
    if text:
        return str(text)
    for coding in getattr(concept, "coding", None) or ():
        if coding.display:
            return str(coding.display)
    for coding in getattr(concept, "coding", None) or ():
        if coding.code:
            return str(coding.code)
    return ""


#: Every condition concept a rule reads, so the record's conditions can be filtered on raw JSON
#: before parsing (hooks/record.py): a new ConditionSet defined above is included automatically.
ALL_CONDITION_SETS: tuple[ConditionSet, ...] = tuple(
    v for v in tuple(globals().values()) if isinstance(v, ConditionSet)
)
#: Words of a condition's text the rules read without a code (anti-IgA antibodies).
CONDITION_TEXT_WORDS = ("anti-iga",)
