"""Up-front checks of the recipe keys (transforms, CMC variant) and of the ImageNet weights a
training run loads, before anything is written to OUTPUT_DIR."""
from __future__ import annotations

from ..data.transforms import INTERPOLATIONS, RATIO_SAMPLINGS
from ..errors import CiftInputError, check_choice
from ..evaluation.protocols import CMC_MODES
from ..modeling.backbone import check_pretrained_weights


def check_recipe_inputs(cfg, eval_only: bool = False) -> None:
    """INPUT.INTERPOLATION, INPUT.REA.RATIO_SAMPLING / ATTEMPTS and TEST.CMC_MODE take allowed
    values; a training run's MODEL.BACKBONE.PRETRAIN weights exist and fit the backbone
    (evaluation loads MODEL.WEIGHTS instead).

    Raises:
        CiftInputError: one line naming the key or file and what was expected.
    """
    check_choice("INPUT.INTERPOLATION", cfg.INPUT.INTERPOLATION, tuple(INTERPOLATIONS))
    check_choice("INPUT.REA.RATIO_SAMPLING", cfg.INPUT.REA.RATIO_SAMPLING, RATIO_SAMPLINGS)
    attempts = cfg.INPUT.REA.ATTEMPTS
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise CiftInputError(f"INPUT.REA.ATTEMPTS {attempts!r}: expected an int >= 1")
    check_choice("TEST.CMC_MODE", cfg.TEST.CMC_MODE, CMC_MODES)
    if not eval_only:
        check_pretrained_weights(cfg)
