"""Estimated GFR from a serum creatinine, for records that hold a creatinine but no eGFR.

Why computed here: a creatinine of 2.5 mg/dL with no eGFR beside it is renal dysfunction all the
same, and the IVIG boxed warning is about renal dysfunction. The cards say the value was computed,
by which equation, from which result. Creatinine is in mg/dL (terminology.CREATININE_UNIT_FACTORS
converts µmol/L).

- Adults: CKD-EPI 2021 creatinine equation without a race term (Inker et al., N Engl J Med
  2021;385:1737-49, doi:10.1056/NEJMoa2102953):
  142 × min(Scr/κ, 1)^α × max(Scr/κ, 1)^−1.200 × 0.9938^age × 1.012 if female,
  κ 0.7 (female) or 0.9 (male), α −0.241 (female) or −0.302 (male).
- Children: bedside Schwartz (Schwartz et al., J Am Soc Nephrol 2009;20:629-37,
  doi:10.1681/ASN.2008030287): 0.413 × height (cm) / Scr.
"""

from __future__ import annotations

_CKD_EPI = {
    "female": (0.7, -0.241, 1.012),
    "male": (0.9, -0.302, 1.0),
}


def ckd_epi_2021(creatinine_mg_dl: float, age_years: int, sex: str | None) -> tuple[float, str]:
    """eGFR (mL/min/1.73 m²) and the inputs used, as a card states them.

    With the sex not recorded as male or female, the lower of the two estimates is given (the
    cautious side for a renal-risk check), and the card says so.
    """
    if sex in _CKD_EPI:
        return _ckd_epi(creatinine_mg_dl, age_years, sex), f"age {age_years}, {sex}"
    lower = min(_ckd_epi(creatinine_mg_dl, age_years, s) for s in _CKD_EPI)
    return lower, f"age {age_years}, sex not recorded (the lower of the female and male estimates)"


def _ckd_epi(creatinine_mg_dl: float, age_years: int, sex: str) -> float:
    kappa, alpha, female_factor = _CKD_EPI[sex]
    ratio = creatinine_mg_dl / kappa
    return 142.0 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938**age_years * female_factor


def bedside_schwartz(creatinine_mg_dl: float, height_cm: float) -> float:
    return 0.413 * height_cm / creatinine_mg_dl
