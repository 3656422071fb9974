"""Modality labels carried by every VI-ReID item: (img_path, pid, camid, modality)."""

VISIBLE = "visible"
INFRARED = "infrared"
MODALITIES = (VISIBLE, INFRARED)


def is_visible(modality: str) -> bool:
    """True for a visible-light item; raises for an unknown modality label."""
    if modality not in MODALITIES:
        raise ValueError(f"modality {modality!r}: expected one of {MODALITIES}")
    return modality == VISIBLE
