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
NDC = "http://hl7.org/fhir/sid/ndc"
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
# 2160-0 is serum creatinine by mass (mg/dL); 14682-9 "Creatinine [Moles/volume] in Serum or Plasma"
# is the same test reported in SI units (µmol/L), as European labs send it (the French and German
# national FHIR profiles bind creatinine to 14682-9). Both convert through CREATININE_UNIT_FACTORS.
CREATININE_LOINC = frozenset({"2160-0", "14682-9"})
# eGFR by MDRD (33914-3, 77147-7, 48642-3, 48643-1), CKD-EPI 2009 (62238-1, and 88293-6 / 88294-4,
# the same equation reported with and without its race coefficient, as US labs did until the 2021
# refit) and CKD-EPI 2021 without race (98979-8).
EGFR_LOINC = frozenset({"33914-3", "77147-7", "48642-3", "48643-1", "62238-1", "88293-6", "88294-4", "98979-8"})
WEIGHT_LOINC = frozenset({"29463-7", "3141-9"})
HEIGHT_LOINC = frozenset({"8302-2"})
PREGNANCY_STATUS_LOINC = "82810-3"
# 11449-6 "Pregnancy status - Reported" is the older code still in records converted from C-CDA and
# bound by national profiles (the French FRLMPregnancyStatus); some answer it with a boolean.
PREGNANCY_STATUS_CODES = frozenset({PREGNANCY_STATUS_LOINC, "11449-6"})
PREGNANT_ANSWER_LOINC = "LA15173-0"
UNKNOWN_ANSWER_LOINC = "LA4489-6"  # "Unknown": says nothing either way
# The answers of pregnancy status 82810-3, in LOINC's answer list (LL4129-4) and in SNOMED CT as US
# Core records them (US Core Observation Pregnancy Status: its example answers 77386006 Pregnant; the
# HL7 pregnancy status value set holds 77386006 and 60001007 Not pregnant; LA15173-0 ↔ 77386006 and
# LA26683-5 ↔ 60001007 are mapped as equivalent in public ConceptMaps). Any other answer says nothing.
PREGNANT_ANSWERS = frozenset({(LOINC, PREGNANT_ANSWER_LOINC), (SNOMED, "77386006")})
NOT_PREGNANT_ANSWERS = frozenset({(LOINC, "LA26683-5"), (SNOMED, "60001007")})
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
        | PREGNANCY_STATUS_CODES
        | {EXPECTED_DELIVERY_LOINC}
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
# Creatinine (molar mass 113.12 g/mol): 1 mg/dL = 88.42 µmol/L. The CKD-EPI and Schwartz equations
# take mg/dL. The micro sign (U+00B5) and the Greek mu (U+03BC) are both seen in lab feeds.
CREATININE_UMOL_PER_MG_DL = 88.42
CREATININE_UNIT_FACTORS: dict[str, float] = {
    "mg/dL": 1.0,
    "umol/L": 1 / CREATININE_UMOL_PER_MG_DL,
    "\u00b5mol/L": 1 / CREATININE_UMOL_PER_MG_DL,
    "\u03bcmol/L": 1 / CREATININE_UMOL_PER_MG_DL,
    "mmol/L": 1000 / CREATININE_UMOL_PER_MG_DL,
}
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
    # An injury code whose 7th character is S (sequela, ICD-10-CM) names the late effect of an
    # injury, not the injury: a sequela of a subdural haemorrhage is not a bleed today.
    exclude_injury_sequelae: bool = False

    def __post_init__(self) -> None:
        # The prefixes as sets, so a code is matched by a few set lookups (`_icd10_under` says how
        # each kind of prefix reads): categories ("I60") and prefixes read as written ("Z86.71", "O").
        categories = {p for p in self.icd10_prefixes if len(p) > 1 and "." not in p}
        object.__setattr__(self, "_categories", frozenset(categories))
        object.__setattr__(self, "_starts", frozenset(set(self.icd10_prefixes) - categories))

    def matches(self, system: str | None, code: str | None) -> bool:
        if not system or not code:
            return False
        if system == SNOMED:
            return code in self.snomed
        if system in ICD10_SYSTEMS:
            upper = icd10_dotted(code)
            if self.exclude_injury_sequelae and _injury_sequela(upper):
                return False
            categories: frozenset[str] = self._categories  # type: ignore[attr-defined]
            starts: frozenset[str] = self._starts  # type: ignore[attr-defined]
            if upper in categories or ("." in upper and upper.split(".", 1)[0] in categories):
                return True
            return any(upper[:end] in starts for end in range(1, len(upper) + 1))
        return False


def icd10_dotted(code: str) -> str:
    """An ICD-10 code as the code sets spell it: upper case, with the dot after the category.

    EHRs and billing feeds send the same code as "I61.9", "I619" or "i61.9" (claims and many code
    tables carry no dot: the CMS order files list "I619"). Every ICD-10 category is three
    characters, a letter then two alphanumerics, so the dot can only go after the third.
    """
    upper = code.strip().upper()
    if "." not in upper and len(upper) > 3 and upper[0].isalpha():
        return f"{upper[:3]}.{upper[3:]}"
    return upper


def _injury_sequela(code: str) -> bool:
    """ICD-10-CM chapter 19 (S, T) codes carry the encounter in a 7th character: A initial, D
    subsequent, S sequela."""
    bare = code.replace(".", "")
    return bare[:1] in ("S", "T") and len(bare) == 7 and bare.endswith("S")


def _icd10_under(code: str, prefix: str) -> bool:
    """True when `code` is `prefix` or more specific than it.

    "I60" covers "I60.9" (a category and its subcodes), "Z86.71" covers "Z86.718", and a lone
    chapter letter ("O") covers the whole chapter. Codes are compared dotted (`icd10_dotted`): "I600"
    is I60.0, never a code of another category, since every category has three characters.
    """
    if code == prefix:
        return True
    if len(prefix) == 1 or "." in prefix:
        return code.startswith(prefix)
    return code.startswith(prefix + ".")


ITP = ConditionSet(snomed=frozenset({"32273002", "2897005"}), icd10_prefixes=("D69.3",))
# ICD-10 P61.0 "Transient neonatal thrombocytopenia" (including alloimmune and maternal-ITP related
# thrombocytopenia of the newborn: ICD-10-CM tabular inclusion terms) is the newborn's thrombocytopenia.
THROMBOCYTOPENIA = ConditionSet(snomed=frozenset({"302215000"}), icd10_prefixes=("D69.6", "P61.0"))
# ICD-10-CM D75.82 "Heparin induced thrombocytopenia (HIT)" was the billable code until FY2023, when it
# became the parent of D75.821–D75.829: a HIT recorded before October 2022 carries D75.82 itself, and
# the prefix covers it and each child (CMS ICD-10-CM tabular; the pre-2023 code lists carry "D7582").
HIT = ConditionSet(snomed=frozenset({"73397007"}), icd10_prefixes=("D75.82",))
IGA_DEFICIENCY = ConditionSet(snomed=frozenset({"190979003"}), icd10_prefixes=("D80.2",))
# CKD and its stages as problem lists code them (SNOMED CT 431855005 stage 1, 431856006 stage 2,
# 433144002 stage 3, 431857002 stage 4, 46177005 end-stage renal disease: public SNOMED CT value sets
# and the CKD stage hierarchy), with ICD-10 N18 and its subcodes.
CKD = ConditionSet(
    snomed=frozenset({"709044004", "431855005", "431856006", "433144002", "431857002", "46177005"}),
    icd10_prefixes=("N18",),
)
# ICD-10-CM E08 (due to an underlying condition) and E09 (drug-induced: steroid diabetes in ITP) too;
# SNOMED CT 46635009 diabetes mellitus type 1 beside 44054006 type 2.
DIABETES = ConditionSet(
    snomed=frozenset({"73211009", "44054006", "46635009"}), icd10_prefixes=("E08", "E09", "E10", "E11", "E13")
)
# Venous and arterial thrombosis, current or past: the label's risk factor is a history of either.
# ICD-10-CM I21 acute and I25.2 old myocardial infarction, I74 arterial embolism and thrombosis,
# I81 portal vein thrombosis, Z86.73 history of TIA or cerebral infarction.
THROMBOSIS = ConditionSet(
    snomed=frozenset({"128053003", "59282003", "230690007"}),
    icd10_prefixes=("I21", "I25.2", "I26", "I63", "I74", "I80", "I81", "I82", "Z86.71", "Z86.73"),
)
# Sepsis and the codes it is often recorded under: SNOMED CT 76571007 septic shock; ICD-10-CM R65.2
# severe sepsis (R65.20 without, R65.21 with septic shock), ICD-10 (WHO) R57.2 septic shock, and
# P36 bacterial sepsis of the newborn (checked against public ICD-10 code lists and SNOMED maps).
SEPSIS = ConditionSet(snomed=frozenset({"91302008", "76571007"}), icd10_prefixes=("A41", "R65.2", "R57.2", "P36"))
DIC = ConditionSet(snomed=frozenset({"67406007"}), icd10_prefixes=("D65",))
VOLUME_DEPLETION = ConditionSet(snomed=frozenset({"34095006"}), icd10_prefixes=("E86",))
# ICD-10-CM Z3A "Weeks of gestation" (Z3A.00–Z3A.49) is coded only on a pregnant patient's record,
# beside the O-chapter codes (ICD-10-CM chapter 15 note: "use additional code from category Z3A").
PREGNANCY = ConditionSet(snomed=frozenset({"77386006"}), icd10_prefixes=("Z33.1", "Z3A", "O"))
# The puerperium inside the O chapter: postpartum, not pregnant (still an IVIG thrombosis risk factor).
POSTPARTUM = ConditionSet(icd10_prefixes=("O85", "O86", "O87", "O89", "O90", "Z39"))
HCV = ConditionSet(snomed=frozenset({"50711007", "128302006"}), icd10_prefixes=("B17.1", "B18.2", "B19.2"))
CIDP = ConditionSet(snomed=frozenset({"128209004"}), icd10_prefixes=("G61.81",))
HIV = ConditionSet(snomed=frozenset({"86406008"}), icd10_prefixes=("B20",))

# --- Bleeding classes as hierarchies (RULES.md v2 "Bleeding classes are hierarchies") ---------
# No SNOMED CT subsumption service is at hand, so each class lists the listed concept and its
# descendants as published in a public SNOMED CT subset: the SNOMED International IPS free set
# (HL7/fhir-ips, ValueSet ProblemsSnomedCtIpsFreeSet, SNOMED CT International 2022-07-31), where
# every code below appears with the meaning given. ICD-10 is read by category (a prefix covers its
# subcodes); ICD-10-CM codes were checked against the CMS FY2026 tabular list.
#
# Critical: intracranial haemorrhage, SNOMED CT 1386000 and descendants:
#   274100004 cerebral hemorrhage, 21454007 subarachnoid hemorrhage, 35486000 subdural hemorrhage,
#   195176009 non-traumatic subdural hemorrhage, 281864001 non-traumatic intracranial subdural
#   hematoma, 304831001 chronic intracranial subdural hematoma, 425957003 non-traumatic
#   intracerebral ventricular hemorrhage, 70611002 perinatal intraventricular hemorrhage,
#   209987007 traumatic subdural hemorrhage, 262952002 traumatic subdural hematoma, 262955000
#   subarachnoid hemorrhage due to traumatic injury, 111593004 closed fracture of vault of skull
#   with intracranial hemorrhage.
# ICD-10: I60–I62 (nontraumatic); P52 intracranial nontraumatic hemorrhage of newborn (P52.0–P52.9)
# and P10 intracranial laceration and hemorrhage due to birth injury (P10.0–P10.9); traumatic, with
# haemorrhage: S06.34/S06.35/S06.36 traumatic hemorrhage of right/left/unspecified cerebrum,
# S06.37/S06.38 contusion, laceration and hemorrhage of cerebellum/brainstem, S06.4 epidural,
# S06.5 traumatic subdural, S06.6 traumatic subarachnoid hemorrhage. S06.31–S06.33 (contusion and
# laceration of cerebrum, no haemorrhage in the title) are not included; sequelae (7th character S)
# never count.
CRITICAL_BLEEDING = ConditionSet(
    snomed=frozenset(
        {
            "1386000",
            "274100004",
            "21454007",
            "35486000",
            "195176009",
            "281864001",
            "304831001",
            "425957003",
            "70611002",
            "209987007",
            "262952002",
            "262955000",
            "111593004",
        }
    ),
    icd10_prefixes=(
        "I60",
        "I61",
        "I62",
        "P52",
        "P10",
        "S06.34",
        "S06.35",
        "S06.36",
        "S06.37",
        "S06.38",
        "S06.4",
        "S06.5",
        "S06.6",
    ),
    exclude_injury_sequelae=True,
)
# Significant: GI haemorrhage, SNOMED CT 74474003 and descendants (IPS free set): 37372002 upper GI
#   bleeding, 87763006 lower GI hemorrhage, 61401005 gastric hemorrhage, 95533003 duodenal
#   hemorrhage, 95540002 hemorrhage of colon, 12063002 rectal hemorrhage, 266464001 hemorrhage of
#   rectum and anus, 15238002 esophageal bleeding, 17709002 bleeding esophageal varices, 24807004
#   bleeding gastric varices, 57748001 bleeding ulcer of esophagus, 64121000 peptic ulcer with
#   hemorrhage, 12274003 acute and 49232000 chronic peptic ulcer with hemorrhage, 15902003 gastric
#   ulcer with hemorrhage, 89748001 acute and 57246001 chronic gastric ulcer with hemorrhage,
#   12847006 acute and 89469000 chronic duodenal ulcer with hemorrhage, 307233002 erosion of stomach
#   with hemorrhage, 197092000 hemorrhage of large intestine with diverticular disease.
# ICD-10-CM: K92.0 hematemesis, K92.1 melena, K92.2 GI hemorrhage unspecified, and the bleeds EHRs
# code by their cause: K25–K28 (gastric, duodenal, peptic, gastrojejunal ulcer) .0/.2 acute and
# .4/.6 chronic or unspecified "with hemorrhage"; K22.11 ulcer of esophagus with bleeding; I85.01
# and I85.11 esophageal varices with bleeding; K29.x1 gastritis/duodenitis with bleeding; K57.x1 and
# K57.x3 diverticular disease with bleeding; K62.5 hemorrhage of anus and rectum.
# Genitourinary: 34436003 blood in urine, with 87696004 hemorrhagic cystitis and 405555006
# hemorrhage of urethra (IPS free set); ICD-10 R31 hematuria.
_ULCER_WITH_HEMORRHAGE = tuple(f"K2{site}.{sub}" for site in "5678" for sub in "0246")
_GASTRITIS_WITH_BLEEDING = tuple(f"K29.{sub}1" for sub in "023456789")  # K29.1 does not exist
_DIVERTICULAR_WITH_BLEEDING = (
    "K57.01",
    "K57.11",
    "K57.13",
    "K57.21",
    "K57.31",
    "K57.33",
    "K57.41",
    "K57.51",
    "K57.53",
    "K57.81",
    "K57.91",
    "K57.93",
)
SIGNIFICANT_BLEEDING = ConditionSet(
    snomed=frozenset(
        {
            "74474003",
            "37372002",
            "87763006",
            "61401005",
            "95533003",
            "95540002",
            "12063002",
            "266464001",
            "15238002",
            "17709002",
            "24807004",
            "57748001",
            "64121000",
            "12274003",
            "49232000",
            "15902003",
            "89748001",
            "57246001",
            "12847006",
            "89469000",
            "307233002",
            "197092000",
            "34436003",
            "87696004",
            "405555006",
        }
    ),
    icd10_prefixes=(
        "K92.0",
        "K92.1",
        "K92.2",
        *_ULCER_WITH_HEMORRHAGE,
        "K22.11",
        "I85.01",
        "I85.11",
        *_GASTRITIS_WITH_BLEEDING,
        *_DIVERTICULAR_WITH_BLEEDING,
        "K62.5",
        "R31",
    ),
)
# Minor bleeding beyond the skin (RULES.md "minor/none", but not "skin-only"): it neither makes the
# bleeding significant nor leaves it "none" or "skin-only" (ASH19's observation advice for children
# is for no or skin-only bleeding). SNOMED CT 249366005 bleeding from nose = ICD-10 R04.0 epistaxis,
# 86276007 bleeding gums, 386692008 menorrhagia = ICD-10 N92.0 (checked against public SNOMED CT
# value sets and SNOMED-to-ICD-10 maps: MedDRA→SNOMED CT ConceptMap "Epistaxis" → 249366005,
# "Menorrhagia" → 386692008; 249366005 ↔ R04.0, 386692008 ↔ N92.0).
MINOR_BLEEDING = ConditionSet(
    snomed=frozenset({"249366005", "86276007", "386692008"}), icd10_prefixes=("R04.0", "N92.0")
)
# Any other bleed (SNOMED CT 131148009 Bleeding, ICD-10 R58 Haemorrhage NEC): not a class by itself,
# but critical when flagged life-threatening (RULES.md "any bleed flagged life-threatening").
ANY_BLEEDING = ConditionSet(snomed=frozenset({"131148009"}), icd10_prefixes=("R58",))

# --- Medications ---------------------------------------------------------------------------
IVIG_RXNORM: frozenset[str] = frozenset()  # filled only with RxCUIs verified against RxNorm
IVIG_CVX = frozenset({"87"})
IVIG_ATC = frozenset({"J06BA02"})
# "gammagard" alone: orders and allergy lists often write the brand without "Liquid" or "S/D", and every
# Gammagard product is human normal immune globulin (GAMMAGARD Liquid, Liquid ERC and S/D in the FDA NDC
# directory, openFDA drug/ndc: products 0944-2700, 0944-2705, 0944-2658). KIOVIG (EMA EU/1/05/329,
# human normal immunoglobulin 100 mg/ml for infusion) is the EU brand of Takeda's Gammagard Liquid.
IVIG_PRODUCT_NAMES = (
    "privigen",
    "gammagard",
    "kiovig",
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

# --- Negation in product names (RULES.md "A name that says the product is free of heparin ... is
# not a heparin") ---------------------------------------------------------------------------------
# How product and order names say a heparin is absent: "heparin-free", "heparin free", "free of
# heparin", "without heparin", "w/o heparin", "no heparin", "non-heparin(ised)", "nonheparinized",
# "unheparinised", "heparin: none", "0 units heparin". Such a phrase is removed before heparin
# names are looked for, so "Enoxaparin 40 mg (heparin-free diluent)" is still enoxaparin.
_HEPARIN_NEGATION = re.compile(
    r"heparin[\s-]*free"
    r"|free\s+(?:of|from)\s+heparin\w*"
    r"|(?<![\w-])(?:without|w/o|w/out|no|non|not|sans|un)[\s-]*heparin\w*"
    r"|heparin\w*\s*:\s*(?:none|no|nil|0)\b"
    r"|(?<![\w.])0\s*(?:units?|iu|u)\s+(?:of\s+)?heparin\w*",
    re.IGNORECASE,
)


def without_heparin_negations(text: str) -> str:
    """`text` with every phrase saying "no heparin" blanked out (the rest is still read)."""
    return _HEPARIN_NEGATION.sub(" ", text)


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
# Reactions written as text (manifestation.text, reaction.description): "anaphylaxis",
# "anaphylactic shock", "anaphylactoid reaction".
ANAPHYLAXIS_WORDS = re.compile(r"\banaphyla\w*", re.IGNORECASE)

# --- HIT on record as an allergy (RULES.md v2 "HIT on record") -----------------------------------
# A reaction coded as HIT (the `HIT` set: SNOMED CT 73397007, ICD-10-CM D75.82x) on any allergy, or
# HIT named in the text of an allergy to a heparin: "HIT", "HITT", "HIT type II", "heparin-induced
# thrombocytopenia", "heparin associated thrombocytopenia", "PF4 antibody". "HIT" is matched only
# in capitals as a word of its own ("hit by a car" is not HIT). A heparin allergy whose reaction is
# thrombocytopenia (the THROMBOCYTOPENIA set or the word) is read as HIT too: immune HIT is the
# thrombocytopenia heparin causes that matters, and reading it so only ever stops heparin.
HIT_WORDS = re.compile(
    r"(?<![\w-])HITT?(?![\w])"
    r"|heparin[\s-]*(?:induced|associated|related)[\s-]*thrombocytop\w*"
    r"|\b(?:anti-?)?PF4\b",
)
HIT_WORDS_ANY_CASE = re.compile(r"heparin[\s-]*(?:induced|associated|related)[\s-]*thrombocytop\w*", re.IGNORECASE)
THROMBOCYTOPENIA_WORDS = re.compile(r"\bthrombocytop\w*|\blow\s+platelets?\b", re.IGNORECASE)
# A mention that says HIT was excluded: "HIT ruled out", "HIT antibody negative", "no HIT", "not HIT".
HIT_NEGATED = re.compile(
    r"(?:\b(?:no|not|non)[\s-]+(?:HITT?\b|heparin[\s-]*induced))"
    r"|(?:\b(?:ruled\s+out|r/o|excluded|negative\s+for)\s+(?:HITT?\b|heparin[\s-]*induced))"
    r"|(?:(?:HITT?|PF4)\b[^.;]{0,30}?\b(?:negative|neg\b|ruled\s+out|excluded|unlikely))",
    re.IGNORECASE,
)

# Pregnancy *state* codes, whose onset is the start of the pregnancy (RULES.md v2 "Dates"). Other
# codes of the O chapter name a complication, whose onset is the complication's, not the pregnancy's.
PREGNANCY_STATE = ConditionSet(snomed=frozenset({"77386006"}), icd10_prefixes=("Z33.1",))
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
# GAMMAGARD S/D, the IgA-depleted IVIG (Takeda, BLA 103133): NDC package code 0944-2658-04 (the kit),
# product 0944-2658, checked against the FDA NDC directory (openFDA drug/ndc). A suggestion that
# replaces a product carries this coding first, so a client can act on it (text alone is refused).
IGA_DEPLETED_IVIG_NDC = Code(NDC, "0944-2658-04", "GAMMAGARD S/D (immune globulin intravenous, human), kit")
IVIG_ATC_CODE = Code(ATC, "J06BA02", "immunoglobulins, normal human, for intravascular adm.")
#: The codings of a product a suggestion names by its text (coding[0] is the one a client acts on).
PRODUCT_CODINGS: dict[str, tuple[Code, ...]] = {IGA_DEPLETED_IVIG_TEXT: (IGA_DEPLETED_IVIG_NDC, IVIG_ATC_CODE)}
# --- end of the IVIG indications block ----------------------------------------------------------


# The same code systems as EHRs also name them: by OID (`urn:oid:`, as records converted from
# C-CDA carry them), over https, or with a trailing slash. Each OID is the one the FHIR
# specification lists beside the system's URI (FHIR R4 "Code systems": terminologies-systems).
_SYSTEM_OIDS = {
    "2.16.840.1.113883.6.1": LOINC,
    "2.16.840.1.113883.6.96": SNOMED,
    "2.16.840.1.113883.6.90": ICD10_CM,
    "2.16.840.1.113883.6.3": ICD10_WHO,
    "2.16.840.1.113883.6.88": RXNORM,
    "2.16.840.1.113883.12.292": CVX,
    "2.16.840.1.113883.6.69": NDC,
}
_CANONICAL = {
    **{f"urn:oid:{oid}": uri for oid, uri in _SYSTEM_OIDS.items()},
    **{uri.replace("http://", "https://", 1): uri for uri in _SYSTEM_OIDS.values()},
    **{uri + "/": uri for uri in _SYSTEM_OIDS.values()},
    **{uri.replace("http://", "https://", 1) + "/": uri for uri in _SYSTEM_OIDS.values()},
}


def canonical_system(system: str | None) -> str | None:
    """The FHIR URI of a code system the record names another way; any other system as written."""
    return _CANONICAL.get(system, system) if system else system


def codings_of(concept: object) -> Iterable[tuple[str | None, str | None]]:
    """(system, code) pairs of a CodeableConcept model, tolerating absent parts."""
    for coding in getattr(concept, "coding", None) or ():
        yield canonical_system(coding.system), coding.code


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
#: Their union, for that filter: one lookup per coding (a superset: no set's exclusions applied).
ANY_CONDITION = ConditionSet(
    snomed=frozenset().union(*(c.snomed for c in ALL_CONDITION_SETS)),
    icd10_prefixes=tuple(sorted({p for c in ALL_CONDITION_SETS for p in c.icd10_prefixes})),
)
#: Words of a condition's text the rules read without a code (anti-IgA antibodies).
CONDITION_TEXT_WORDS = ("anti-iga",)
