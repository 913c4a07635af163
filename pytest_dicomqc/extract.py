"""Turning pydicom values into exact builtins, and the columns the report shows by default.

pydicom hands out subclasses (``DSfloat``, ``IS``, ``UID``, ``PersonName``, ``MultiValue``)
that execnet cannot send; everything leaving this module is ``str``/``int``/``float``/``None``
or a list of those.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from pytest_dicomqc.record import Scalar, Value

#: Tags shown in the Files sheet, by keyword, in column order around the pixel summary.
LEADING_TAGS = ("ImageType", "VOILUTFunction")
DESCRIPTIVE_TAGS = (
    "Modality",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "Manufacturer",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "InstanceNumber",
)
MAX_TEXT = 1024
#: Direct identifiers besides person names (VR PN): a rule may test them, but their values are
#: never shown in findings, messages or the terminal (CI logs and reports travel further than data).
IDENTIFYING_KEYWORDS = frozenset(
    {
        "PatientID",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "PatientBirthDate",
        "PatientBirthTime",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "PatientMotherBirthName",
        "MedicalRecordLocator",
        "AccessionNumber",
        "IssuerOfPatientID",
        "PatientInsurancePlanCodeSequence",
    }
)


def is_identifying(tag: int) -> bool:
    """Whether values of ``tag`` identify a person (names, IDs, birth dates, addresses)."""
    if not dictionary_has_tag(tag):
        return False
    return dictionary_VR(tag) == "PN" or keyword_for_tag(tag) in IDENTIFYING_KEYWORDS


def normalise(value: Any) -> Value:
    """An exact-builtin copy of a pydicom element value; multi-values become lists."""
    if isinstance(value, (MultiValue, list, tuple)) and not isinstance(value, Sequence):
        return [_scalar(item) for item in value]
    return _scalar(value)


def _scalar(value: Any) -> Scalar:
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (float, Decimal)):
        number = float(value)
        return number if math.isfinite(number) else str(number)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, Sequence):
        return f"<sequence of {len(value)} items>"
    text = str.__str__(str(value))
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def element_value(element: DataElement | RawDataElement) -> Value:
    """Value of ``element``; an element pydicom cannot convert is kept as its raw text."""
    if isinstance(element, RawDataElement):
        raw = element.value or b""
        return _scalar(raw.decode("latin-1").strip("\x00 ")) if len(raw) <= MAX_TEXT else _scalar(raw)
    return normalise(element.value)
